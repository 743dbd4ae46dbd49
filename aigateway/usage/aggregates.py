"""Usage totals for the management API: requests, tokens and cost grouped by team, user,
route, provider or day, over a date range, limited to what the asking user may see.

Who sees which calls (the dashboard's rules):
- superusers: every call;
- platform admins and auditors: every call of their organisations;
- team admins: every call of the teams they administer;
- everyone: their own calls (made in their name, or with a key they created).

One aggregate query plus at most one query for the labels, whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet, Sum

from aigateway.usage.models import UsageRecord
from aigateway.usage.sql import UtcBucket
from auth.models import ApiKey, Team, TeamRole
from auth.roles import roles_of

GROUPS: dict[str, str] = {
    "team": "team_id",
    "user": "user_id",
    "route": "route",
    "provider": "provider",
    "day": "day",
}
CACHE_HITS = ("HIT", "SEMANTIC-HIT")
MAX_DAYS = 366


@dataclass(frozen=True)
class UsageRow:
    key: str  # team or user id, route, provider, or YYYY-MM-DD; "" for calls without one
    label: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    cache_hits: int


@dataclass(frozen=True)
class UsageFilters:
    start: date
    end: date  # inclusive
    team_id: int | None = None
    user_id: int | None = None
    route: str | None = None
    provider: str | None = None


def usage_visible(user: AbstractBaseUser | AnonymousUser) -> Q:
    """The usage records ``user`` may see, as a filter (no record for anonymous users)."""
    roles = roles_of(user)
    if roles.user_id is None:
        return Q(pk__in=[])
    if roles.superuser:
        return Q()
    administered = [team for team, role in roles.team_roles.items() if role == TeamRole.TEAM_ADMIN]
    own_keys = ApiKey.objects.filter(created_by_id=roles.user_id).values("pk")
    visible = Q(user_id=roles.user_id) | Q(api_key_id__in=own_keys)
    if roles.wide_orgs:
        visible |= Q(organisation_id__in=roles.wide_orgs)
    if administered:
        visible |= Q(team_id__in=administered)
    return visible


def _range(filters: UsageFilters) -> Q:
    start = datetime.combine(filters.start, time.min, tzinfo=UTC)
    end = datetime.combine(filters.end + timedelta(days=1), time.min, tzinfo=UTC)
    q = Q(created_at__gte=start, created_at__lt=end)
    if filters.team_id is not None:
        q &= Q(team_id=filters.team_id)
    if filters.user_id is not None:
        q &= Q(user_id=filters.user_id)
    if filters.route is not None:
        q &= Q(route=filters.route)
    if filters.provider is not None:
        q &= Q(provider=filters.provider)
    return q


def usage_records_for_user(
    *, user: AbstractBaseUser | AnonymousUser, filters: UsageFilters
) -> QuerySet[UsageRecord]:
    """The calls ``user`` may see that match ``filters`` (the dashboard's Usage page and its
    CSV export list them; ``usage_aggregate`` sums them)."""
    return UsageRecord.objects.filter(usage_visible(user) & _range(filters))


def _labels(group_by: str, keys: list[object]) -> dict[object, str]:
    ids = [k for k in keys if isinstance(k, int)]
    if group_by == "team":
        teams = Team.objects.filter(pk__in=ids).values_list("pk", "organisation__slug", "slug")
        return {pk: f"{org}/{slug}" for pk, org, slug in teams}
    if group_by == "user":
        return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    return {}


def usage_aggregate(
    *, user: AbstractBaseUser | AnonymousUser, group_by: str, filters: UsageFilters
) -> list[UsageRow]:
    """Totals per ``group_by`` value (days ascending; otherwise most requests first)."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    records = usage_records_for_user(user=user, filters=filters)
    if group_by == "day":
        # The UTC day as text (YYYY-MM-DD), in plain SQL on SQLite too (TruncDate would call
        # a Python function per row there).
        records = records.annotate(day=UtcBucket("created_at", "day"))
    column = GROUPS[group_by]
    rows = list(
        records.values(column)
        .annotate(
            requests=Count("pk"),
            errors=Count("pk", filter=Q(status_code__gte=400)),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost_usd=Sum("cost_usd"),
            cache_hits=Count("pk", filter=Q(cache_status__in=CACHE_HITS)),
        )
        .order_by(column)
    )
    labels = _labels(group_by, [row[column] for row in rows])
    result = []
    for row in rows:
        value = row[column]
        key = "" if value is None else str(value)
        result.append(
            UsageRow(
                key=key,
                label=labels.get(value, key) if key else "(none)",
                requests=row["requests"],
                errors=row["errors"],
                input_tokens=row["input_tokens"] or 0,
                output_tokens=row["output_tokens"] or 0,
                cost_usd=Decimal(row["cost_usd"] or 0),
                cache_hits=row["cache_hits"],
            )
        )
    if group_by != "day":
        result.sort(key=lambda r: (-r.requests, r.key))
    return result
