"""Limits and budgets with their live usage (aigateway/quotas: who may see and set which)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from aigateway.api.management.common import Id, IdPath
from aigateway.api.management.security import current_user
from aigateway.quotas.models import Limit
from aigateway.quotas.permissions import limit_can_view
from aigateway.quotas.selectors import LimitRow, limits_visible_to
from aigateway.quotas.services import amount_text, limit_delete, limit_set

router = Router(tags=["limits"])
ScopeName = Literal["org", "team", "key", "user", "deployment"]
KindName = Literal["rpm", "tpm", "concurrent", "tokens_day", "tokens_month", "cost_day",
                   "cost_month"]  # fmt: skip
Amount = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=40)]


class LiveUsageOut(Schema):
    used: float
    remaining: float
    capacity: float = Field(description="Bucket size (rpm/tpm: the burst, else the limit).")
    percent_used: int
    over_soft_threshold: bool
    resets_at: datetime
    summary: str


class LimitOut(Schema):
    id: int
    scope: ScopeName
    scope_id: int
    target: str = Field(description="What the limit applies to, e.g. acme/research.")
    kind: KindName
    value: str = Field(description="Decimal, as a string (USD for cost limits).")
    burst: str | None
    soft_threshold_percent: int
    enabled: bool
    can_manage: bool
    usage: LiveUsageOut | None = Field(description="Live usage (null: not asked, or Redis down).")


class LimitList(Schema):
    data: list[LimitOut]
    usage_available: bool


class LimitFilters(Schema):
    scope: ScopeName | None = None
    scope_id: Id | None = None
    kind: KindName | None = None
    live: bool = Field(True, description="Include live usage (one limiter call).")


class LimitSet(Schema):
    scope: ScopeName
    scope_id: Id
    kind: KindName
    value: Amount
    burst: Amount | None = None
    soft_threshold_percent: int = Field(80, ge=1, le=100)
    enabled: bool = True


class LimitChange(Schema):
    value: Amount | None = None
    burst: Amount | None = Field(None, description="null clears it (the limit is the bucket).")
    soft_threshold_percent: int | None = Field(None, ge=1, le=100)
    enabled: bool | None = None


def limit_out(row: LimitRow) -> LimitOut:
    usage = row.usage
    return LimitOut(
        id=row.id,
        scope=row.scope,  # type: ignore[arg-type]
        scope_id=row.target.scope_id,
        target=row.target.label,
        kind=row.kind,  # type: ignore[arg-type]
        value=amount_text(row.value) or "0",
        burst=amount_text(row.burst),
        soft_threshold_percent=row.soft_threshold_percent,
        enabled=row.enabled,
        can_manage=row.can_manage,
        usage=None if usage is None else LiveUsageOut(
            used=usage.used, remaining=max(0.0, usage.remaining), capacity=usage.capacity,
            percent_used=usage.percent_used, over_soft_threshold=usage.over_soft_threshold,
            resets_at=usage.resets_at, summary=usage.summary,
        ),
    )  # fmt: skip


def _row(request: HttpRequest, limit_id: int, live: bool) -> LimitRow:
    overview = limits_visible_to(current_user(request), live=live, with_alerts=False)
    for row in overview.rows:
        if row.id == limit_id:
            return row
    raise Limit.DoesNotExist


def _visible_limit(request: HttpRequest, limit_id: int) -> Limit:
    limit = Limit.objects.get(pk=limit_id)
    if not limit_can_view(current_user(request), limit):
        raise Limit.DoesNotExist
    return limit


@router.get("", response=LimitList, summary="Limits you can see, with live usage")
def list_limits(request: HttpRequest, filters: Query[LimitFilters]) -> LimitList:
    overview = limits_visible_to(current_user(request), live=filters.live, with_alerts=False)
    rows = [
        limit_out(row)
        for row in overview.rows
        if (filters.scope is None or row.scope == filters.scope)
        and (filters.scope_id is None or row.target.scope_id == filters.scope_id)
        and (filters.kind is None or row.kind == filters.kind)
    ]
    return LimitList(data=rows, usage_available=overview.usage_available)


@router.post("", response={200: LimitOut, 201: LimitOut}, summary="Set a limit")
def set_limit(request: HttpRequest, body: LimitSet) -> Status[LimitOut]:
    """One limit per target and kind: 201 when created, 200 when an existing one changed."""
    existed = Limit.objects.filter(scope=body.scope, scope_id=body.scope_id,
                                   kind=body.kind).exists()  # fmt: skip
    limit = limit_set(actor=current_user(request), scope=body.scope, scope_id=body.scope_id,
                      kind=body.kind, value=body.value, burst=body.burst,
                      soft_threshold_percent=body.soft_threshold_percent,
                      enabled=body.enabled)  # fmt: skip
    return Status(200 if existed else 201, limit_out(_row(request, limit.pk, live=False)))


@router.get("/{limit_id}", response=LimitOut, summary="One limit, with live usage")
def get_limit(request: HttpRequest, limit_id: IdPath, live: bool = True) -> LimitOut:
    return limit_out(_row(request, limit_id, live=live))


@router.patch("/{limit_id}", response=LimitOut, summary="Change a limit")
def change_limit(request: HttpRequest, limit_id: IdPath, body: LimitChange) -> LimitOut:
    limit = _visible_limit(request, limit_id)
    given = body.model_fields_set
    limit_set(
        actor=current_user(request),
        scope=limit.scope,
        scope_id=limit.scope_id,
        kind=limit.kind,
        value=body.value if body.value is not None else limit.value,
        burst=body.burst if "burst" in given else limit.burst,
        soft_threshold_percent=body.soft_threshold_percent or limit.soft_threshold_percent,
        enabled=body.enabled if body.enabled is not None else limit.enabled,
    )
    return limit_out(_row(request, limit_id, live=False))


@router.delete("/{limit_id}", response={204: None}, summary="Delete a limit")
def delete_limit(request: HttpRequest, limit_id: IdPath) -> HttpResponse:
    limit_delete(actor=current_user(request), limit=_visible_limit(request, limit_id))
    return HttpResponse(status=204)
