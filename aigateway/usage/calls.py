"""Single calls for the Usage page and its CSV export: newest first, keyset-paginated.

Who sees which calls and the filters are those of ``aigateway.usage.aggregates`` (the
management API's usage totals), so the table, the chart and the totals always agree.

The cursor is the (created_at, id) of the last row shown: a page costs an index range scan
from there, however deep, and stays stable while new calls are recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from aigateway.usage.aggregates import UsageFilters, usage_records_for_user
from aigateway.usage.models import UsageRecord
from auth.models import Team

MAX_PAGE = 200
EXPORT_BATCH = 2000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = re.compile(r"^(\d{1,18})\.(\d{1,18})$")


@dataclass(frozen=True)
class CallRow:
    record: UsageRecord
    team: str  # organisation/team slug, "" for none
    user: str  # username, "" for none


@dataclass(frozen=True)
class CallsPage:
    rows: list[CallRow]
    next_cursor: str | None


def _cursor_of(record: UsageRecord) -> str:
    micros = (record.created_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{record.pk}"


def parse_cursor(cursor: str | None) -> Q:
    """The rows after a cursor, as a filter; ValueError for one this module did not hand out."""
    if not cursor:
        return Q()
    match = CURSOR.match(cursor)
    if match is None:
        raise ValueError("This is not a cursor from a previous page.")
    try:
        moment = EPOCH + timedelta(microseconds=int(match.group(1)))
    except OverflowError:
        raise ValueError("This is not a cursor from a previous page.") from None
    pk = int(match.group(2))
    return Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=pk)


def _newest_first(records: QuerySet[UsageRecord]) -> QuerySet[UsageRecord]:
    return records.order_by("-created_at", "-pk")


def call_rows(records: list[UsageRecord]) -> list[CallRow]:
    """Rows with team and user names: two queries per batch, whatever its size."""
    team_ids = {r.team_id for r in records if r.team_id is not None}
    user_ids = {r.user_id for r in records if r.user_id is not None}
    teams = {
        pk: f"{org}/{slug}"
        for pk, org, slug in Team.objects.filter(pk__in=team_ids).values_list(
            "pk", "organisation__slug", "slug"
        )
    }
    users = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    return [
        CallRow(
            record=r,
            team=teams.get(r.team_id, f"#{r.team_id}") if r.team_id is not None else "",
            user=users.get(r.user_id, f"#{r.user_id}") if r.user_id is not None else "",
        )
        for r in records
    ]


def usage_calls_page(
    *,
    user: AbstractBaseUser | AnonymousUser,
    filters: UsageFilters,
    cursor: str | None = None,
    limit: int = 50,
) -> CallsPage:
    """One page of calls, newest first (ValueError for a malformed cursor)."""
    after = parse_cursor(cursor)
    limit = max(1, min(limit, MAX_PAGE))
    records = usage_records_for_user(user=user, filters=filters).filter(after)
    found = list(_newest_first(records)[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return CallsPage(call_rows(found), _cursor_of(found[-1]) if more and found else None)


def usage_calls_batches(
    *, user: AbstractBaseUser | AnonymousUser, filters: UsageFilters, batch: int = EXPORT_BATCH
) -> Iterator[list[CallRow]]:
    """Every matching call, newest first, ``batch`` at a time (for the CSV export)."""
    records = usage_records_for_user(user=user, filters=filters)
    after = Q()
    while True:
        found = list(_newest_first(records.filter(after))[:batch])
        if not found:
            return
        yield call_rows(found)
        if len(found) < batch:
            return
        after = parse_cursor(_cursor_of(found[-1]))
