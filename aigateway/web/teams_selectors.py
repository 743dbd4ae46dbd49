"""Reads for the Teams & keys pages. Who sees what is auth/permissions.py's rule (the
management API's too): superusers every team; platform admins and auditors every team of
their organisations; team admins and members their own teams (read-only for members).

The list costs a fixed number of queries whatever the number of teams (members and active
keys counted in SQL, routes in one prefetch).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.db.models import Count, Q
from django.utils import timezone

from aigateway.quotas.models import Scope
from aigateway.quotas.selectors import LimitsOverview, limits_visible_to
from aigateway.routing.models import Route
from auth.models import ApiKey, Organisation, OrgRole, Team, TeamMembership, TeamRole
from auth.permissions import AnyUser, team_can_change, team_can_manage_people
from auth.roles import Roles, roles_of, teams_visible
from auth.selectors import team_keys, team_members


def role_label(roles: Roles, team: Team) -> str:
    """The user's role for the team; an organisation-wide role wins over a membership."""
    org_role = roles.org_roles.get(team.organisation_id)
    if org_role in (OrgRole.PLATFORM_ADMIN, OrgRole.AUDITOR):
        return OrgRole(org_role).label
    if team.pk in roles.team_roles:
        return TeamRole(roles.team_roles[team.pk]).label
    return "Gateway operator" if roles.superuser else "—"


@dataclass(frozen=True)
class TeamListRow:
    team: Team
    role: str
    routes: list[str]
    members: int
    active_keys: int


def teams_for_page(roles: Roles) -> list[TeamListRow]:
    now = timezone.now()
    active = Q(api_keys__revoked_at__isnull=True) & (
        Q(api_keys__expires_at__isnull=True) | Q(api_keys__expires_at__gt=now)
    )  # the same rule as ApiKey.is_active
    teams = (
        teams_visible(roles, everything_for_superusers=True)
        .annotate(
            member_count=Count("memberships", distinct=True),
            active_key_count=Count("api_keys", filter=active, distinct=True),
        )
        .prefetch_related("allowed_routes")
    )
    return [
        TeamListRow(
            team=team,
            role=role_label(roles, team),
            routes=sorted(r.name for r in team.allowed_routes.all()),
            members=team.member_count,  # type: ignore[attr-defined]
            active_keys=team.active_key_count,  # type: ignore[attr-defined]
        )
        for team in teams
    ]


def organisations_for_new_teams(roles: Roles) -> list[tuple[str, str]]:
    """(slug, name) of the organisations the user may create teams in."""
    organisations = Organisation.objects.order_by("name")
    if not roles.superuser:
        organisations = organisations.filter(pk__in=roles.admin_orgs)
    return list(organisations.values_list("slug", "name"))


def route_names() -> list[str]:
    return list(Route.objects.order_by("name").values_list("name", flat=True))


def team_limits(user: AnyUser, team: Team, *, live: bool = True) -> LimitsOverview:
    """The limits the user may see on the team itself and on its keys, with live usage,
    and their open alerts (the Limits page's rows, narrowed to this team)."""
    overview = limits_visible_to(user, live=live)

    def ours(scope: str, team_id: int | None, scope_id: int) -> bool:
        if scope == Scope.TEAM:
            return scope_id == team.pk
        return scope == Scope.KEY and team_id == team.pk

    rows = [r for r in overview.rows if ours(r.scope, r.target.team_id, r.target.scope_id)]
    ids = {r.id for r in rows}
    alerts = [a for a in overview.alerts if a.limit.id in ids]
    return replace(overview, rows=rows, alerts=alerts, targets=[])


@dataclass(frozen=True)
class TeamDetail:
    team: Team
    role: str
    can_change: bool  # rename, re-route, delete (platform admins)
    can_manage_people: bool  # members and keys (team admins too)
    members: list[TeamMembership]
    keys: list[ApiKey]
    team_routes: list[str]


def team_detail(user: AnyUser, team: Team) -> TeamDetail:
    roles = roles_of(user)
    return TeamDetail(
        team=team,
        role=role_label(roles, team),
        can_change=team_can_change(roles, team),
        can_manage_people=team_can_manage_people(roles, team),
        members=team_members(team),
        keys=team_keys(team),
        team_routes=sorted(team.allowed_routes.values_list("name", flat=True)),
    )
