"""Usage totals grouped by team, user, route, provider or day (aigateway/usage/aggregates.py
says whose calls each role sees: members only their own)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field

from aigateway.api.management.common import Id, Text100, Text200
from aigateway.api.management.errors import ApiError
from aigateway.api.management.security import current_user
from aigateway.usage.aggregates import MAX_DAYS, UsageFilters, usage_aggregate

router = Router(tags=["usage"])


class UsageQuery(Schema):
    group_by: Literal["team", "user", "route", "provider", "day"] = "day"
    start: date | None = Field(None, description="First day (UTC), default 30 days ago.")
    end: date | None = Field(None, description="Last day (UTC, inclusive), default today.")
    team_id: Id | None = None
    user_id: Id | None = None
    route: Text200 | None = None
    provider: Text100 | None = None


class UsageRowOut(Schema):
    key: str = Field(description="Team or user id, route, provider or YYYY-MM-DD.")
    label: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: str = Field(description="Decimal, as a string.")
    cache_hits: int


class UsageOut(Schema):
    group_by: str
    start: date
    end: date
    data: list[UsageRowOut]


@router.get("", response=UsageOut, summary="Usage totals over a date range")
def usage(request: HttpRequest, query: Query[UsageQuery]) -> UsageOut:
    today = timezone.now().date()
    end = query.end or today
    try:
        start = query.start or end - timedelta(days=29)
    except OverflowError:
        raise ApiError(400, "'end' is out of range.", param="end") from None
    if start > end:
        raise ApiError(400, "'start' must not be after 'end'.", param="start")
    if (end - start).days >= MAX_DAYS or end >= date.max - timedelta(days=1):
        raise ApiError(400, f"Ask for at most {MAX_DAYS} days at a time.", param="end")
    filters = UsageFilters(start=start, end=end, team_id=query.team_id, user_id=query.user_id,
                           route=query.route, provider=query.provider)  # fmt: skip
    rows = usage_aggregate(user=current_user(request), group_by=query.group_by, filters=filters)
    return UsageOut(
        group_by=query.group_by,
        start=start,
        end=end,
        data=[
            UsageRowOut(
                key=r.key, label=r.label, requests=r.requests, errors=r.errors,
                input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                cost_usd=f"{r.cost_usd.normalize():f}", cache_hits=r.cache_hits,
            )
            for r in rows
        ],
    )  # fmt: skip
