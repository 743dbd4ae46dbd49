"""Read-only queries of the Cache page: what the cache did per team and route (from usage
records) and how many answers each team namespace holds (from the answer store).

Query budget: who the user is (two membership queries, none for superusers), the visible
teams (one), then one aggregate query per window, whatever the number of teams or routes.
Counting entries reads the answer store, not the database.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, Sum
from django.utils import timezone

from aigateway.caching import store
from aigateway.core.redis import get_async_redis, redis_configured
from aigateway.usage.models import UsageRecord
from auth.models import Team
from auth.roles import roles_of, teams_visible

WINDOWS = {"day": timedelta(hours=24), "week": timedelta(days=7)}
ENTRY_SCAN_LIMIT = 10_000  # keys counted per team namespace before the count says "N+"


def team_prefix(team_id: int) -> str:
    """The key prefix of a team namespace's exact answers (every route)."""
    return f"{store.PREFIX}x:team:{team_id}:"


@dataclass(frozen=True)
class CacheFigures:
    requests: int = 0
    exact_hits: int = 0
    semantic_hits: int = 0
    saved_tokens: int = 0
    saved_cost_usd: Decimal = Decimal(0)

    def __add__(self, other: CacheFigures) -> CacheFigures:
        return CacheFigures(
            self.requests + other.requests,
            self.exact_hits + other.exact_hits,
            self.semantic_hits + other.semantic_hits,
            self.saved_tokens + other.saved_tokens,
            self.saved_cost_usd + other.saved_cost_usd,
        )

    @property
    def exact_hit_percent(self) -> float | None:
        """Share of all requests answered by an exact hit (None without requests)."""
        return 100 * self.exact_hits / self.requests if self.requests else None

    @property
    def semantic_hit_percent(self) -> float | None:
        return 100 * self.semantic_hits / self.requests if self.requests else None


@dataclass(frozen=True)
class EntryCount:
    count: int
    truncated: bool = False  # more than ``count`` (the scan stopped at its limit)

    def __str__(self) -> str:
        return f"{self.count:,}+" if self.truncated else f"{self.count:,}"


@dataclass(frozen=True)
class RouteCache:
    route: str
    day: CacheFigures
    week: CacheFigures


@dataclass
class TeamCache:
    team: Team
    can_purge: bool
    day: CacheFigures = field(default_factory=CacheFigures)
    week: CacheFigures = field(default_factory=CacheFigures)
    routes: list[RouteCache] = field(default_factory=list)
    entries: EntryCount | None = None


@dataclass(frozen=True)
class CacheOverview:
    teams: list[TeamCache]
    shared_store: bool  # Redis: counts cover every process; in process: this one only

    @property
    def can_purge_any(self) -> bool:
        return any(row.can_purge for row in self.teams)


def cache_teams_visible_to(user: AbstractBaseUser | AnonymousUser) -> list[tuple[Team, bool]]:
    """The teams whose cache the user may see, each with whether they may purge it.
    Superusers: every team; platform admins and auditors: their organisations' teams;
    team admins and members: their own teams."""
    roles = roles_of(user)
    teams = teams_visible(roles, everything_for_superusers=True)
    return [(t, roles.superuser or t.organisation_id in roles.admin_orgs) for t in teams]


# -- figures --------------------------------------------------------------------------------
def _window_figures(team_ids: list[int], since: datetime) -> dict[tuple[int, str], CacheFigures]:
    """One aggregate query: figures per (team, route) since ``since``."""
    rows = (
        UsageRecord.objects.filter(team_id__in=team_ids, created_at__gte=since)
        .values("team_id", "route")
        .annotate(
            requests=Count("id"),
            exact_hits=Count("id", filter=Q(cache_status="HIT")),
            semantic_hits=Count("id", filter=Q(cache_status="SEMANTIC-HIT")),
            tokens=Sum("saved_tokens"),
            cost=Sum("saved_cost_usd"),
        )
        .order_by("team_id", "route")
    )
    return {
        (int(row["team_id"]), row["route"]): CacheFigures(
            row["requests"],
            row["exact_hits"],
            row["semantic_hits"],
            row["tokens"] or 0,
            row["cost"] or Decimal(0),
        )
        for row in rows
        if row["team_id"] is not None  # filtered on team ids: never None, for the checker
    }


def cache_overview_for_user(
    *, user: AbstractBaseUser | AnonymousUser, now: datetime | None = None
) -> CacheOverview:
    """Per visible team: the last 24 h and 7 days (totals and per route), and its entries."""
    now = now or timezone.now()
    teams = cache_teams_visible_to(user)
    rows = {team.pk: TeamCache(team=team, can_purge=can) for team, can in teams}
    if not rows:
        return CacheOverview(teams=[], shared_store=redis_configured())
    ids = list(rows)
    figures = {name: _window_figures(ids, now - span) for name, span in WINDOWS.items()}
    empty = CacheFigures()
    routes: dict[int, set[str]] = {}
    for name, per_route in figures.items():
        for (team_id, route), value in per_route.items():
            row = rows[team_id]
            setattr(row, name, getattr(row, name) + value)
            routes.setdefault(team_id, set()).add(route)
    for team_id, names in routes.items():
        rows[team_id].routes = [
            RouteCache(
                route,
                figures["day"].get((team_id, route), empty),
                figures["week"].get((team_id, route), empty),
            )
            for route in sorted(names)
        ]
    for team_id, count in cache_entries_per_team(ids).items():
        rows[team_id].entries = count
    return CacheOverview(teams=list(rows.values()), shared_store=redis_configured())


# -- entries --------------------------------------------------------------------------------
def _count_in_process(prefix: str, limit: int) -> EntryCount:
    local = store._local  # looked up each call: the store may be replaced (tests)
    now = time.monotonic()
    count = 0
    with local._lock:
        for key, (expires, _value) in local._entries.items():
            if expires > now and key.startswith(prefix):
                count += 1
                if count > limit:
                    return EntryCount(limit, truncated=True)
    return EntryCount(count)


def cache_entries_per_team(
    team_ids: Iterable[int], *, limit: int = ENTRY_SCAN_LIMIT
) -> dict[int, EntryCount]:
    """How many cached answers each team namespace (``aigw:cache:x:team:<id>:``) holds.

    Without Redis: the entries of this process's in-process store (expired ones skipped).
    With Redis: a SCAN per team, stopped past ``limit`` keys (shown as "10,000+").
    """
    ids = list(team_ids)

    async def count() -> dict[int, EntryCount]:
        client = get_async_redis()
        if client is None:
            return {pk: _count_in_process(team_prefix(pk), limit) for pk in ids}
        counts: dict[int, EntryCount] = {}
        for pk in ids:
            found = 0
            truncated = False
            async for _key in client.scan_iter(match=team_prefix(pk) + "*", count=1000):
                found += 1
                if found > limit:
                    found, truncated = limit, True
                    break
            counts[pk] = EntryCount(found, truncated)
        return counts

    if not ids:
        return {}
    return async_to_sync(count)()
