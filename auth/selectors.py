"""Reading a team's members and keys (callers check visibility: auth/permissions.py)."""

from __future__ import annotations

from auth.models import ApiKey, Team, TeamMembership


def team_members(team: Team) -> list[TeamMembership]:
    return list(team.memberships.select_related("user").order_by("user__username"))


def team_member_get(team: Team, user_id: int) -> TeamMembership:
    """``TeamMembership.DoesNotExist`` when the user is not in the team."""
    return team.memberships.select_related("user").get(user_id=user_id)


def team_keys(team: Team) -> list[ApiKey]:
    """Every key of the team, revoked ones included (prefixes only: secrets are not stored)."""
    return list(
        team.api_keys.select_related("created_by")
        .prefetch_related("allowed_routes")
        .order_by("name")
    )


def team_key_get(team: Team, key_id: int) -> ApiKey:
    return (
        team.api_keys.select_related("created_by").prefetch_related("allowed_routes").get(pk=key_id)
    )
