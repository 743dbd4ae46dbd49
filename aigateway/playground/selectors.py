"""Reads for the playground: the teams and routes a user may try, and runs they may see.

A run belongs to its author: every lookup by id filters by the user, so someone else's id is
a 404, exactly like an id that does not exist. Team admins of a team whose policy allows it
see the metadata of members' runs, read through ``values()`` of metadata columns only, so a
prompt or an answer never even leaves the database for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q
from django.http import Http404

from aigateway.playground.models import PlaygroundRun
from auth.models import Team, TeamRole

AnyUser = AbstractBaseUser | AnonymousUser
# What a team admin may see of a member's run (never messages, answer or search_text).
METADATA_FIELDS = ("id", "user__username", "team__name", "route", "meta", "request_id",
                   "created_at")  # fmt: skip


def _user_id(user: AnyUser) -> int:
    if user.pk is None:  # anonymous: the views let only signed-in users here
        raise Http404("No such run.")
    return int(user.pk)


@dataclass(frozen=True, slots=True)
class TeamChoice:
    id: int
    label: str  # "Acme / Research"
    routes: tuple[str, ...]


def playground_teams_for_user(*, user: AnyUser) -> list[TeamChoice]:
    """The user's own teams (membership, any role) with the routes each may use."""
    if not user.is_authenticated:
        return []
    teams = (
        Team.objects.filter(memberships__user_id=user.pk)
        .select_related("organisation")
        .prefetch_related("allowed_routes")
        .order_by("organisation__name", "name")
    )
    return [
        TeamChoice(
            id=team.pk,
            label=f"{team.organisation.name} / {team.name}",
            routes=tuple(sorted(r.name for r in team.allowed_routes.all())),
        )
        for team in teams
    ]


def playground_runs_for_user(
    *, user: AnyUser, query: str = "", limit: int = 50
) -> list[PlaygroundRun]:
    """The user's own runs, newest first; ``query`` matches the route or any text."""
    runs = PlaygroundRun.objects.filter(user_id=_user_id(user)).select_related("team")
    query = query.strip()
    if query:
        runs = runs.filter(Q(route__icontains=query) | Q(search_text__icontains=query))
    return list(runs.order_by("-created_at", "-id")[:limit])


def playground_run_get_for_user(*, user: AnyUser, run_id: int) -> PlaygroundRun:
    """The user's own run, else 404 (another user's run is not distinguishable)."""
    if not 0 < run_id < 2**63:  # beyond any id (and the database's integer range)
        raise Http404("No such run.")
    runs = PlaygroundRun.objects.filter(pk=run_id, user_id=_user_id(user))
    run = runs.select_related("team").first()
    if run is None:
        raise Http404("No such run.")
    return run


def playground_team_runs_for_admin(*, user: AnyUser, limit: int = 50) -> list[dict[str, Any]]:
    """Metadata of other members' runs in the teams this user administers, where the team's
    policy (``Team.playground_history_visible_to_admins``) allows it."""
    if not user.is_authenticated:
        return []
    teams = Team.objects.filter(
        memberships__user_id=user.pk,
        memberships__role=TeamRole.TEAM_ADMIN,
        playground_history_visible_to_admins=True,
    ).values_list("pk", flat=True)
    rows = (
        PlaygroundRun.objects.filter(team_id__in=list(teams))
        .exclude(user_id=user.pk)
        .order_by("-created_at", "-id")
        .values(*METADATA_FIELDS)[:limit]
    )
    return list(rows)
