"""Read-only queries for dashboard pages, scoped to what the user may see.

The query count of a page must not depend on how many teams the user sees: teams come from
one query (organisation joined, active keys counted in SQL) and their routes from one
prefetch, whatever their number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from aigateway.routing.models import Route
from auth.models import OrgRole, Team, TeamRole
from auth.roles import Roles, roles_of, teams_visible

_WIDE_ROLES = (OrgRole.PLATFORM_ADMIN, OrgRole.AUDITOR)


@dataclass(frozen=True)
class TeamSummary:
    name: str
    organisation: str
    role: str
    routes: list[str]
    active_keys: int


@dataclass(frozen=True)
class OverdueCredential:
    provider: str
    name: str
    masked: str
    due: datetime


@dataclass(frozen=True)
class DashboardSummary:
    teams: list[TeamSummary]
    is_platform_admin: bool
    overdue_credentials: list[OverdueCredential]


def _role_label(roles: Roles, team: Team) -> str:
    """The organisation-wide role wins over a membership of the team itself."""
    org_role = roles.org_roles.get(team.organisation_id)
    if org_role in _WIDE_ROLES:
        return OrgRole(org_role).label
    return TeamRole(roles.team_roles[team.pk]).label


def teams_visible_to(user: AbstractBaseUser | AnonymousUser) -> list[tuple[Team, str]]:
    """Teams the user belongs to, plus every team of organisations they administer or audit,
    each with the user's role label for it, ordered by organisation then team slug."""
    roles = roles_of(user)
    return [(team, _role_label(roles, team)) for team in teams_visible(roles)]


def dashboard_summary_for_user(*, user: AbstractBaseUser | AnonymousUser) -> DashboardSummary:
    roles = roles_of(user)
    now = timezone.now()
    active = Q(api_keys__revoked_at__isnull=True) & (
        Q(api_keys__expires_at__isnull=True) | Q(api_keys__expires_at__gt=now)
    )  # the same rule as ApiKey.is_active
    teams = (
        teams_visible(roles)
        .annotate(active_key_count=Count("api_keys", filter=active, distinct=True))
        .prefetch_related(
            Prefetch("allowed_routes", queryset=Route.objects.only("name").order_by("name"))
        )
    )
    rows = [
        TeamSummary(
            name=team.name,
            organisation=team.organisation.name,
            role=_role_label(roles, team),
            routes=[route.name for route in team.allowed_routes.all()],
            active_keys=team.active_key_count,  # type: ignore[attr-defined]
        )
        for team in teams
    ]
    is_admin = bool(
        user.is_authenticated and (getattr(user, "is_superuser", False) or bool(roles.admin_orgs))
    )
    return DashboardSummary(
        teams=rows,
        is_platform_admin=is_admin,
        overdue_credentials=credentials_overdue(now=now) if is_admin else [],
    )


def credentials_overdue(*, now: datetime) -> list[OverdueCredential]:
    """Active provider credentials past their rotation date (platform admins' to-do list)."""
    from providers.models import Credential, CredentialStatus

    rows = (
        Credential.objects.filter(status=CredentialStatus.ACTIVE, rotation_due_at__lt=now)
        .select_related("provider")
        .order_by("rotation_due_at")
    )
    return [
        OverdueCredential(
            c.provider.name, c.name, c.masked or f"env:{c.env_var}", c.rotation_due_at
        )
        for c in rows
        if c.rotation_due_at is not None
    ]
