"""Who may see and change which limits: the permission model of the Limits page and services.

- Django superusers: every limit.
- Platform admins of an organisation: limits of the organisation, its teams, their API keys
  and its users (anyone with a role in the organisation or one of its teams; a user limit
  only when the admin administers every organisation the user belongs to). Deployment
  limits are for superusers only: deployments serve every organisation.
- Team admins: limits of their own team's API keys only (not the team's or organisation's).
- Auditors: read every limit of their organisation, and deployment limits; change nothing.
- Members (and team admins): read the limits of their team, of its API keys and their own
  user limits; change nothing.

The predicates work on ``Target`` (what a limit applies to) and ``Roles`` (who is asking), so
the page's bulk selector (aigateway.quotas.selectors) and the single checks of the services
(aigateway.quotas.services) agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from aigateway.quotas.models import Limit, Scope
from aigateway.quotas.rules import SCOPE_LABELS
from auth.models import (
    ApiKey,
    Organisation,
    OrgMembership,
    Team,
    TeamMembership,
    TeamRole,
)
from auth.roles import Roles, roles_of

AnyUser = AbstractBaseUser | AnonymousUser


# -- what a limit applies to ------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    scope: str
    scope_id: int
    label: str  # acme · acme/research · acme/research/ci (agw-3fJk9aQz…) · alice · r → p:m
    organisation_ids: frozenset[int] = frozenset()  # the org of an org/team/key; a user's orgs
    team_id: int | None = None  # team and key scopes
    time_zone: str = "UTC"  # budgets roll over at midnight here
    exists: bool = True

    @property
    def value(self) -> str:
        """The form value naming this target: ``scope:id``."""
        return f"{self.scope}:{self.scope_id}"

    def describe(self) -> str:
        return f"{SCOPE_LABELS.get(self.scope, self.scope)} {self.label}"


def missing_target(scope: str, scope_id: int) -> Target:
    """A limit whose organisation, team, key, user or deployment was deleted."""
    return Target(scope, scope_id, f"#{scope_id} (deleted)", exists=False)


def key_label(org_slug: str, team_slug: str, name: str, prefix: str) -> str:
    return f"{org_slug}/{team_slug}/{name} ({prefix}…)"


def deployment_label(route: str, provider: str, model: str) -> str:
    return f"{route} → {provider}:{model}"


def user_organisations(user_ids: list[int]) -> dict[int, set[int]]:
    """user id → organisations they have a role in, directly or through a team (2 queries)."""
    orgs: dict[int, set[int]] = {pk: set() for pk in user_ids}
    rows = OrgMembership.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "organisation_id"
    )
    rows2 = TeamMembership.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "team__organisation_id"
    )
    for user_id, org_id in [*rows, *rows2]:
        orgs[user_id].add(org_id)
    return orgs


def target_resolve(scope: str, scope_id: int) -> Target:
    """The target of ``scope``/``scope_id``; ``exists`` is False if there is no such thing."""
    from aigateway.routing.models import Deployment

    if scope == Scope.ORGANISATION:
        org = Organisation.objects.filter(pk=scope_id).first()
        if org is not None:
            return Target(scope, org.pk, org.slug, frozenset({org.pk}), time_zone=org.time_zone)
    elif scope == Scope.TEAM:
        team = Team.objects.select_related("organisation").filter(pk=scope_id).first()
        if team is not None:
            org = team.organisation
            label = f"{org.slug}/{team.slug}"
            return Target(scope, team.pk, label, frozenset({org.pk}), team.pk, org.time_zone)
    elif scope == Scope.KEY:
        key = (
            ApiKey.objects.select_related("team__organisation")
            .only("name", "prefix", "team__slug", "team__organisation__slug")
            .filter(pk=scope_id)
            .first()
        )
        if key is not None:
            team, org = key.team, key.team.organisation
            label = key_label(org.slug, team.slug, key.name, key.prefix)
            return Target(scope, key.pk, label, frozenset({org.pk}), team.pk, org.time_zone)
    elif scope == Scope.USER:
        user = get_user_model().objects.filter(pk=scope_id).first()
        if user is not None:
            orgs = user_organisations([user.pk])[user.pk]
            tz = (
                Organisation.objects.filter(pk__in=orgs)
                .order_by("pk")
                .values_list("time_zone", flat=True)
                .first()
            )
            return Target(scope, user.pk, user.get_username(), frozenset(orgs),
                          time_zone=tz or "UTC")  # fmt: skip
    elif scope == Scope.DEPLOYMENT:
        dep = Deployment.objects.select_related("route", "provider").filter(pk=scope_id).first()
        if dep is not None:
            label = deployment_label(dep.route.name, dep.provider.name, dep.upstream_model)
            return Target(scope, dep.pk, label)
    return missing_target(scope, scope_id)


# -- the rules --------------------------------------------------------------------------------
def can_view(roles: Roles, target: Target) -> bool:
    if roles.superuser:
        return True
    if not target.exists:
        return False
    wide, orgs = roles.wide_orgs, target.organisation_ids
    if target.scope == Scope.ORGANISATION:
        return target.scope_id in wide
    if target.scope in (Scope.TEAM, Scope.KEY):
        return bool(orgs & wide) or target.team_id in roles.team_roles
    if target.scope == Scope.USER:
        return bool(orgs & wide) or target.scope_id == roles.user_id
    if target.scope == Scope.DEPLOYMENT:
        return bool(wide)
    return False


def can_manage(roles: Roles, target: Target) -> bool:
    if roles.superuser:
        return True
    if not target.exists:
        return False
    admin, orgs = roles.admin_orgs, target.organisation_ids
    if target.scope in (Scope.ORGANISATION, Scope.TEAM):
        return bool(orgs & admin)
    if target.scope == Scope.USER:
        # A user limit applies to all the user's calls: only an admin of every organisation
        # the user belongs to may set it (one organisation must not throttle another's use).
        return bool(orgs) and orgs <= admin
    if target.scope == Scope.KEY:
        return bool(orgs & admin) or roles.team_roles.get(target.team_id or 0) == (
            TeamRole.TEAM_ADMIN
        )
    # Deployments serve every organisation: only gateway operators (superusers) limit them.
    return False


def limit_can_view(user: AnyUser, limit: Limit) -> bool:
    return can_view(roles_of(user), target_resolve(limit.scope, limit.scope_id))


def limit_can_manage(user: AnyUser, *, scope: str, scope_id: int) -> bool:
    return can_manage(roles_of(user), target_resolve(scope, scope_id))


def limit_require_view(user: AnyUser, limit: Limit) -> Target:
    """The limit's target if ``user`` may read the limit; else PermissionDenied."""
    target = target_resolve(limit.scope, limit.scope_id)
    if not can_view(roles_of(user), target):
        raise PermissionDenied("You may not see this limit.")
    return target


def limit_require_manage(user: AnyUser, *, scope: str, scope_id: int) -> Target:
    """The target if ``user`` may set or delete limits on it; else PermissionDenied (also
    when there is no such target, so its existence is not revealed)."""
    target = target_resolve(scope, scope_id)
    if not can_manage(roles_of(user), target):
        what = target.describe() if can_view(roles_of(user), target) else "this target"
        raise PermissionDenied(f"You may not change limits of {what}.")
    return target
