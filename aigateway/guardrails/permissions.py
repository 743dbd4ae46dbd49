"""Who may see and change which guardrail policies (the page, the services, the preview).

- Django superusers: every policy.
- Platform admins of an organisation: its organisation policy, its teams' policies and its
  route policies; read and change.
- Auditors of an organisation: read all of them; change nothing.
- Team admins: read and change their own team's policy; read the organisation and route
  policies their team is held to.
- Members (and everyone else): no access (the page answers 403).

The predicates take ``Roles`` (auth/roles.py, two queries) and plain ids, so the page's list
(aigateway/guardrails/selectors.py) and the single checks of the services agree.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from aigateway.guardrails.models import GuardrailPolicy, Scope
from auth.models import TeamRole
from auth.roles import AnyUser, Roles, roles_of


def team_admin_of(roles: Roles) -> frozenset[int]:
    return frozenset(t for t, r in roles.team_roles.items() if r == TeamRole.TEAM_ADMIN)


def may_use_page(roles: Roles) -> bool:
    return roles.superuser or bool(roles.wide_orgs) or bool(team_admin_of(roles))


def can_view(roles: Roles, *, scope: str, organisation_id: int, team_id: int | None) -> bool:
    if roles.superuser or organisation_id in roles.wide_orgs:
        return True
    admin_teams = team_admin_of(roles)
    if scope == Scope.TEAM:
        return team_id in admin_teams
    # Organisation and route policies: the team admins of that organisation read them.
    return any(roles.team_orgs.get(team) == organisation_id for team in admin_teams)


def can_manage(roles: Roles, *, scope: str, organisation_id: int, team_id: int | None) -> bool:
    if roles.superuser or organisation_id in roles.admin_orgs:
        return True
    return scope == Scope.TEAM and team_id in team_admin_of(roles)


def policy_require_view(user: AnyUser, policy: GuardrailPolicy) -> Roles:
    roles = roles_of(user)
    if not can_view(
        roles, scope=policy.scope, organisation_id=policy.organisation_id, team_id=policy.team_id
    ):
        raise PermissionDenied("You may not see this guardrail policy.")
    return roles


def policy_require_manage(
    user: AnyUser, *, scope: str, organisation_id: int, team_id: int | None
) -> None:
    roles = roles_of(user)
    if not can_manage(roles, scope=scope, organisation_id=organisation_id, team_id=team_id):
        raise PermissionDenied(
            "Only platform admins of the organisation change its organisation and route "
            "policies; team admins change their own team's policy."
        )
