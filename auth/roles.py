"""Who a user is in the tenancy: one place for every page and service that checks roles
(two queries; none for anonymous users)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from auth.models import Organisation, OrgMembership, OrgRole, Team, TeamMembership

AnyUser = AbstractBaseUser | AnonymousUser


@dataclass(frozen=True)
class Roles:
    user_id: int | None
    superuser: bool = False
    org_roles: Mapping[int, str] = field(default_factory=dict)  # organisation id → OrgRole
    team_roles: Mapping[int, str] = field(default_factory=dict)  # team id → TeamRole
    team_orgs: Mapping[int, int] = field(default_factory=dict)  # own team id → organisation id

    @property
    def admin_orgs(self) -> frozenset[int]:
        return frozenset(o for o, r in self.org_roles.items() if r == OrgRole.PLATFORM_ADMIN)

    @property
    def wide_orgs(self) -> frozenset[int]:
        """Organisations whose every limit this user reads (platform admin or auditor)."""
        wide = (OrgRole.PLATFORM_ADMIN, OrgRole.AUDITOR)
        return frozenset(o for o, r in self.org_roles.items() if r in wide)

    @property
    def own_orgs(self) -> frozenset[int]:
        return frozenset(self.org_roles) | frozenset(self.team_orgs.values())


def roles_of(user: AnyUser) -> Roles:
    """The user's roles (two queries; none for anonymous users)."""
    if not user.is_authenticated:
        return Roles(user_id=None)
    teams = TeamMembership.objects.filter(user_id=user.pk).values_list(
        "team_id", "role", "team__organisation_id"
    )
    team_rows = list(teams)
    return Roles(
        user_id=user.pk,
        superuser=bool(getattr(user, "is_superuser", False)),
        org_roles=dict(
            OrgMembership.objects.filter(user_id=user.pk).values_list("organisation_id", "role")
        ),
        team_roles={team: role for team, role, _ in team_rows},
        team_orgs={team: org for team, _, org in team_rows},
    )


def teams_visible(roles: Roles, *, everything_for_superusers: bool = False) -> QuerySet[Team]:
    """The user's own teams plus every team of organisations they administer or audit
    (superusers: every team when asked), ordered by organisation then team slug."""
    teams = Team.objects.select_related("organisation").order_by("organisation__slug", "slug")
    if roles.superuser and everything_for_superusers:
        return teams
    if not roles.wide_orgs and not roles.team_roles:
        return teams.none()
    return teams.filter(Q(organisation_id__in=roles.wide_orgs) | Q(pk__in=list(roles.team_roles)))


def covers_every_organisation(orgs: frozenset[int]) -> bool:
    """True when ``orgs`` is not empty and no organisation lies outside it (one query): a
    platform admin or auditor of every organisation answers for the whole gateway (the usual
    single-company set-up), so gateway-wide objects and events are theirs too."""
    if not orgs:
        return False
    return not Organisation.objects.exclude(pk__in=orgs).exists()
