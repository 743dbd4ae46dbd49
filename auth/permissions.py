"""Who may see and change teams, their members and their API keys (the dashboard's rules).

- Django superusers: everything.
- Platform admins: every team of their organisation: create, rename, delete, give routes,
  manage members and keys.
- Team admins: their own teams' members and keys (not the team itself, nor its routes: which
  models a team may call, and so what it may spend, is the organisation's decision).
- Auditors: read every team of their organisation; change nothing.
- Members: read their own teams; change nothing.

Anything a user may not see does not exist for them: lookups raise ``DoesNotExist`` (a 404),
never PermissionDenied, so another organisation's ids reveal nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from auth.models import Organisation, Team, TeamRole
from auth.roles import Roles, roles_of, teams_visible

AnyUser = AbstractBaseUser | AnonymousUser


def team_can_view(roles: Roles, team: Team) -> bool:
    return roles.superuser or team.organisation_id in roles.wide_orgs or team.pk in roles.team_roles


def team_can_change(roles: Roles, team: Team) -> bool:
    """Rename, re-route or delete the team itself."""
    return roles.superuser or team.organisation_id in roles.admin_orgs


def team_can_manage_people(roles: Roles, team: Team) -> bool:
    """Add, change and remove members; issue and revoke keys."""
    return team_can_change(roles, team) or roles.team_roles.get(team.pk) == TeamRole.TEAM_ADMIN


def organisation_can_view(roles: Roles, organisation: Organisation) -> bool:
    return roles.superuser or organisation.pk in roles.own_orgs


def teams_visible_to(user: AnyUser) -> list[Team]:
    """Every team the user may see (superusers: all), by organisation then slug, with their
    routes (a fixed number of queries whatever the number of teams)."""
    teams = teams_visible(roles_of(user), everything_for_superusers=True)
    return list(teams.prefetch_related("allowed_routes"))


def team_get_for_user(user: AnyUser, team_id: int) -> Team:
    """The team if ``user`` may see it; ``Team.DoesNotExist`` otherwise."""
    team = Team.objects.select_related("organisation").get(pk=team_id)
    if not team_can_view(roles_of(user), team):
        raise Team.DoesNotExist
    return team


def organisation_get_for_user(user: AnyUser, slug: str) -> Organisation:
    """The organisation if ``user`` has a role in it; ``Organisation.DoesNotExist`` otherwise."""
    organisation = Organisation.objects.get(slug=slug)
    if not organisation_can_view(roles_of(user), organisation):
        raise Organisation.DoesNotExist
    return organisation


def require_team_change(user: AnyUser, team: Team) -> None:
    if not team_can_change(roles_of(user), team):
        raise PermissionDenied("Only platform admins of the team's organisation can change it.")


def require_team_people(user: AnyUser, team: Team) -> None:
    if not team_can_manage_people(roles_of(user), team):
        raise PermissionDenied("Only the team's admins and platform admins can do this.")


def require_organisation_admin(user: AnyUser, organisation: Organisation) -> None:
    roles = roles_of(user)
    if not (roles.superuser or organisation.pk in roles.admin_orgs):
        raise PermissionDenied("Only platform admins of the organisation can create teams.")
