"""Read-only queries for dashboard pages, scoped to what the user may see.

The query count of a page must not depend on how many teams the user sees: teams come from
one query (organisation joined, active keys counted in SQL) and their routes from one
prefetch, whatever their number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from aigateway.routing.models import Route
from auth.models import OrgMembership, OrgRole, Team, TeamMembership, TeamRole

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


@dataclass(frozen=True)
class _Visibility:
    org_roles: dict[int, str]  # organisation id → OrgRole value
    team_roles: dict[int, str]  # team id → TeamRole value

    @property
    def wide_orgs(self) -> list[int]:
        return [org for org, role in self.org_roles.items() if role in _WIDE_ROLES]

    def role_label(self, team: Team) -> str:
        """The organisation-wide role wins over a membership of the team itself."""
        org_role = self.org_roles.get(team.organisation_id)
        if org_role in _WIDE_ROLES:
            return OrgRole(org_role).label
        return TeamRole(self.team_roles[team.pk]).label


def _visibility(user: AbstractBaseUser | AnonymousUser) -> _Visibility:
    if not user.is_authenticated:
        return _Visibility({}, {})
    return _Visibility(
        org_roles=dict(
            OrgMembership.objects.filter(user_id=user.pk).values_list("organisation_id", "role")
        ),
        team_roles=dict(
            TeamMembership.objects.filter(user_id=user.pk).values_list("team_id", "role")
        ),
    )


def _visible_teams(visibility: _Visibility) -> QuerySet[Team]:
    """Teams the user belongs to, plus every team of organisations they administer or audit."""
    wide = visibility.wide_orgs
    if not wide and not visibility.team_roles:
        return Team.objects.none()
    return (
        Team.objects.filter(Q(organisation_id__in=wide) | Q(pk__in=list(visibility.team_roles)))
        .select_related("organisation")
        .order_by("organisation__slug", "slug")
    )


def teams_visible_to(user: AbstractBaseUser | AnonymousUser) -> list[tuple[Team, str]]:
    """Teams the user belongs to, plus every team of organisations they administer or audit,
    each with the user's role label for it, ordered by organisation then team slug."""
    visibility = _visibility(user)
    return [(team, visibility.role_label(team)) for team in _visible_teams(visibility)]


def dashboard_summary_for_user(*, user: AbstractBaseUser | AnonymousUser) -> DashboardSummary:
    visibility = _visibility(user)
    now = timezone.now()
    active = Q(api_keys__revoked_at__isnull=True) & (
        Q(api_keys__expires_at__isnull=True) | Q(api_keys__expires_at__gt=now)
    )  # the same rule as ApiKey.is_active
    teams = (
        _visible_teams(visibility)
        .annotate(active_key_count=Count("api_keys", filter=active, distinct=True))
        .prefetch_related(
            Prefetch("allowed_routes", queryset=Route.objects.only("name").order_by("name"))
        )
    )
    rows = [
        TeamSummary(
            name=team.name,
            organisation=team.organisation.name,
            role=visibility.role_label(team),
            routes=[route.name for route in team.allowed_routes.all()],
            active_keys=team.active_key_count,  # type: ignore[attr-defined]
        )
        for team in teams
    ]
    is_admin = bool(
        user.is_authenticated
        and (
            getattr(user, "is_superuser", False)
            or OrgRole.PLATFORM_ADMIN in visibility.org_roles.values()
        )
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
