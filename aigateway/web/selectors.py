"""Read-only queries for dashboard pages, scoped to what the user may see."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from auth.models import OrgRole, Team


@dataclass(frozen=True)
class TeamSummary:
    name: str
    organisation: str
    role: str
    routes: list[str]
    active_keys: int


@dataclass(frozen=True)
class DashboardSummary:
    teams: list[TeamSummary]
    is_platform_admin: bool


def teams_visible_to(user: AbstractBaseUser | AnonymousUser) -> list[tuple[Team, str]]:
    """Teams the user belongs to, plus every team of organisations they administer or audit."""
    if not user.is_authenticated:
        return []
    seen: dict[int, tuple[Team, str]] = {}
    org_roles = {m.organisation_id: m.role for m in user.org_memberships.all()}  # type: ignore[union-attr]
    wide = [org for org, role in org_roles.items() if role in (OrgRole.PLATFORM_ADMIN, OrgRole.AUDITOR)]
    for team in Team.objects.filter(organisation_id__in=wide).select_related("organisation"):
        seen[team.pk] = (team, OrgRole(org_roles[team.organisation_id]).label)
    for membership in user.team_memberships.select_related("team__organisation"):  # type: ignore[union-attr]
        seen.setdefault(membership.team.pk, (membership.team, membership.get_role_display()))
    return sorted(seen.values(), key=lambda pair: (pair[0].organisation.slug, pair[0].slug))


def dashboard_summary_for_user(*, user: AbstractBaseUser | AnonymousUser) -> DashboardSummary:
    rows = []
    for team, role in teams_visible_to(user):
        rows.append(
            TeamSummary(
                name=team.name,
                organisation=team.organisation.name,
                role=role,
                routes=sorted(r.name for r in team.allowed_routes.all()),
                active_keys=team.api_keys.filter(revoked_at__isnull=True).count(),
            )
        )
    is_admin = bool(
        user.is_authenticated
        and (
            user.is_superuser  # type: ignore[union-attr]
            or user.org_memberships.filter(role=OrgRole.PLATFORM_ADMIN).exists()  # type: ignore[union-attr]
        )
    )
    return DashboardSummary(teams=rows, is_platform_admin=is_admin)
