"""Admin actions on routing state: forcing, resetting and reading circuit breakers and their
history."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from django.contrib.auth.models import AbstractBaseUser

from aigateway.audit.services import audit_record
from aigateway.gateway.breaker import BreakerConfig, BreakerState, Transition, breaker_store
from aigateway.gateway.breaker_events import store_transition
from aigateway.gateway.breaker_sync import breaker_sync
from aigateway.routing.models import BreakerEvent, Deployment

BREAKER_MODES = ("open", "closed", "reset")
MAX_REASON = 300  # as the management API's


@dataclass(frozen=True)
class DeploymentBreaker:
    deployment: Deployment
    breaker: BreakerState

    @property
    def opened_at(self) -> datetime | None:
        """When the breaker last opened (automatic openings; None while it never has)."""
        at = self.breaker.opened_at
        return datetime.fromtimestamp(at, UTC) if at else None


def breaker_force(
    *, deployment: Deployment, mode: str, reason: str, actor: AbstractBaseUser | None = None
) -> Transition:
    """Force a breaker open (maintenance) or closed, or reset it. A reason is required;
    the transition is stored with it and audited."""
    if mode not in BREAKER_MODES:
        raise ValueError(f"mode must be one of {', '.join(BREAKER_MODES)}")
    if not reason.strip():
        raise ValueError("Give a reason: it is kept in the breaker's history.")
    if len(reason.strip()) > MAX_REASON or "\x00" in reason:
        raise ValueError(f"The reason is at most {MAX_REASON} characters of text.")

    async def force() -> Transition:
        return await breaker_store().force(deployment.pk, mode)

    transition = async_to_sync(force)()
    breaker_sync.forget(deployment.pk)  # this process's cached "closed" (others: within 0.5 s)
    who = actor.get_username() if actor is not None and actor.pk else "cli"
    recorded = Transition(
        transition.deployment_id,
        transition.from_state,
        transition.to_state,
        f"{mode} by {who}: {reason.strip()}",
    )
    store_transition(recorded, actor_id=actor.pk if actor is not None else None)
    audit_record(
        action=f"breaker.{mode}",
        target_type="deployment",
        target_id=deployment.pk,
        target_label=str(deployment),
        actor=actor,
        actor_label="cli",
        details={
            "reason": reason.strip(),
            "from": transition.from_state,
            "to": transition.to_state,
            # The same shape as every other admin change (aigateway/audit/changes.py).
            "before": {"state": transition.from_state},
            "after": {"state": transition.to_state},
        },
    )
    return recorded


def breakers_list(*, deployment_ids: list[int] | None = None) -> list[DeploymentBreaker]:
    """Every deployment's breaker (or those of ``deployment_ids``), live from the shared store."""
    rows = Deployment.objects.select_related("route", "provider")
    if deployment_ids is not None:
        rows = rows.filter(pk__in=deployment_ids)
    deployments = list(rows.order_by("route__name", "priority"))
    cfg, now = BreakerConfig.from_settings(), time.time()

    async def states() -> list[BreakerState]:
        store = breaker_store()
        return [await store.snapshot(d.pk, now, cfg) for d in deployments]

    return [
        DeploymentBreaker(d, s) for d, s in zip(deployments, async_to_sync(states)(), strict=True)
    ]


def breaker_history(*, deployment_id: int | None = None, limit: int = 50) -> list[BreakerEvent]:
    """The newest transitions (automatic and forced, with their reasons), of one deployment
    or of all."""
    events = BreakerEvent.objects.select_related(
        "deployment__route", "deployment__provider", "actor"
    )
    if deployment_id is not None:
        events = events.filter(deployment_id=deployment_id)
    return list(events[:limit])
