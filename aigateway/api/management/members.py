"""A team's members: list, add, change role, remove (team admins and platform admins)."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema, Status

from aigateway.api.management.common import IdPath, Username
from aigateway.api.management.security import current_user
from auth.models import TeamMembership
from auth.permissions import team_get_for_user
from auth.selectors import team_member_get, team_members
from auth.team_services import member_add, member_remove, member_set_role

router = Router(tags=["members"])
TeamRoleName = Literal["team_admin", "member"]


class MemberOut(Schema):
    user_id: int
    username: str
    role: TeamRoleName


class MemberList(Schema):
    data: list[MemberOut]


class MemberAdd(Schema):
    username: Username
    role: TeamRoleName = "member"


class MemberChange(Schema):
    role: TeamRoleName


def member_out(membership: TeamMembership) -> MemberOut:
    return MemberOut(
        user_id=membership.user_id,
        username=membership.user.get_username(),
        role=membership.role,  # type: ignore[arg-type]
    )


@router.get("/{team_id}/members", response=MemberList, summary="A team's members")
def list_members(request: HttpRequest, team_id: IdPath) -> MemberList:
    team = team_get_for_user(current_user(request), team_id)
    return MemberList(data=[member_out(m) for m in team_members(team)])


@router.post("/{team_id}/members", response={201: MemberOut}, summary="Add a member")
def add_member(request: HttpRequest, team_id: IdPath, body: MemberAdd) -> Status[MemberOut]:
    user = current_user(request)
    team = team_get_for_user(user, team_id)
    membership = member_add(actor=user, team=team, username=body.username, role=body.role)
    return Status(201, member_out(membership))


@router.patch("/{team_id}/members/{user_id}", response=MemberOut, summary="Change a role")
def change_member(
    request: HttpRequest, team_id: IdPath, user_id: IdPath, body: MemberChange
) -> MemberOut:
    user = current_user(request)
    team = team_get_for_user(user, team_id)
    membership = team_member_get(team, user_id)
    return member_out(member_set_role(actor=user, team=team, membership=membership,
                                      role=body.role))  # fmt: skip


@router.delete("/{team_id}/members/{user_id}", response={204: None}, summary="Remove a member")
def remove_member(request: HttpRequest, team_id: IdPath, user_id: IdPath) -> HttpResponse:
    user = current_user(request)
    team = team_get_for_user(user, team_id)
    member_remove(actor=user, team=team, membership=team_member_get(team, user_id))
    return HttpResponse(status=204)
