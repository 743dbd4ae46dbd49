"""Circuit breakers: live state, recent transitions, and forcing one open/closed or resetting
it (whoever may edit routes: gateway operators and platform admins of every organisation;
with a reason, stored with the transition and audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from aigateway.api.management.common import Id, IdPath, Reason
from aigateway.api.management.errors import ApiError
from aigateway.api.management.security import current_user
from aigateway.routing.models import BreakerEvent, Deployment
from aigateway.routing.services import breaker_force, breakers_list
from aigateway.web.permissions import require_breaker_controller, require_gateway_reader

router = Router(tags=["breakers"])
ACTIONS = {"open": "open", "close": "closed", "reset": "reset"}


class BreakerOut(Schema):
    deployment_id: int
    deployment: str
    state: str = Field(description="closed, open, half_open, forced_open or forced_closed.")
    consecutive_failures: int
    window_ok: int
    window_failed: int
    opened_at: datetime | None


class BreakerList(Schema):
    data: list[BreakerOut]


class BreakerEventOut(Schema):
    id: int
    deployment_id: int
    created_at: datetime
    from_state: str
    to_state: str
    reason: str
    actor: str | None


class BreakerEventList(Schema):
    data: list[BreakerEventOut]


class EventQuery(Schema):
    deployment_id: Id | None = None
    limit: int = Field(50, ge=1, le=500)


class BreakerForce(Schema):
    action: Literal["open", "close", "reset"]
    reason: Reason = Field(description="Why: kept with the transition and in the audit log.")


@router.get("/breakers", response=BreakerList, summary="Every deployment's breaker")
def list_breakers(request: HttpRequest) -> BreakerList:
    require_gateway_reader(current_user(request))
    return BreakerList(
        data=[
            BreakerOut(
                deployment_id=row.deployment.pk, deployment=str(row.deployment),
                state=row.breaker.state, consecutive_failures=row.breaker.consecutive_failures,
                window_ok=row.breaker.window_ok, window_failed=row.breaker.window_failed,
                opened_at=datetime.fromtimestamp(row.breaker.opened_at, UTC)
                if row.breaker.opened_at else None,
            )
            for row in breakers_list()
        ]
    )  # fmt: skip


@router.get("/breakers/events", response=BreakerEventList, summary="Breaker transitions")
def list_breaker_events(request: HttpRequest, query: Query[EventQuery]) -> BreakerEventList:
    require_gateway_reader(current_user(request))
    events = BreakerEvent.objects.select_related("actor")
    if query.deployment_id is not None:
        events = events.filter(deployment_id=query.deployment_id)
    return BreakerEventList(
        data=[
            BreakerEventOut(
                id=e.pk, deployment_id=e.deployment_id, created_at=e.created_at,
                from_state=e.from_state, to_state=e.to_state, reason=e.reason,
                actor=e.actor.get_username() if e.actor else None,
            )
            for e in events[: query.limit]
        ]
    )  # fmt: skip


class TransitionOut(Schema):
    deployment_id: int
    from_state: str
    to_state: str
    reason: str


@router.post("/deployments/{deployment_id}/breaker", response=TransitionOut,
             summary="Force a breaker open or closed, or reset it")  # fmt: skip
def force_breaker(request: HttpRequest, deployment_id: IdPath, body: BreakerForce) -> TransitionOut:
    user: AbstractBaseUser = current_user(request)
    require_breaker_controller(user)
    deployment = Deployment.objects.select_related("route", "provider").get(pk=deployment_id)
    if not body.reason.strip():
        raise ApiError(400, "Give a reason: it is kept in the breaker's history.", param="reason")
    transition = breaker_force(deployment=deployment, mode=ACTIONS[body.action],
                               reason=body.reason, actor=user)  # fmt: skip
    return TransitionOut(deployment_id=deployment.pk, from_state=transition.from_state,
                         to_state=transition.to_state, reason=transition.reason)  # fmt: skip
