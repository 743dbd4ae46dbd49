"""Teams: list, create, read, change, delete (auth/permissions.py says who may)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema, Status
from pydantic import Field

from aigateway.api.management.common import IdPath, Name, RouteName, Slug
from aigateway.api.management.security import current_user
from auth.models import OrgRole, Team
from auth.permissions import organisation_get_for_user, team_get_for_user, teams_visible_to
from auth.roles import Roles, roles_of
from auth.team_services import team_create, team_delete, team_update

router = Router(tags=["teams"])


class TeamOut(Schema):
    id: int
    organisation: str = Field(description="The organisation's slug.")
    slug: str
    name: str
    allowed_routes: list[str] = Field(description="Route (model) names the team may call.")
    your_role: str | None = Field(description="platform_admin, auditor, team_admin or member.")
    created_at: datetime


class TeamList(Schema):
    data: list[TeamOut]


class TeamCreate(Schema):
    organisation: Slug = Field(description="Slug of an organisation you administer.")
    slug: Slug
    name: Name
    allowed_routes: list[RouteName] = Field(default_factory=list, max_length=500)


class TeamUpdate(Schema):
    slug: Slug | None = None
    name: Name | None = None
    allowed_routes: list[RouteName] | None = Field(default=None, max_length=500)


def team_out(roles: Roles, team: Team) -> TeamOut:
    org_role = roles.org_roles.get(team.organisation_id)
    wide = org_role in (OrgRole.PLATFORM_ADMIN, OrgRole.AUDITOR)
    role = org_role if wide else roles.team_roles.get(team.pk, org_role)
    return TeamOut(
        id=team.pk,
        organisation=team.organisation.slug,
        slug=team.slug,
        name=team.name,
        allowed_routes=sorted(r.name for r in team.allowed_routes.all()),
        your_role=role,
        created_at=team.created_at,
    )


@router.get("", response=TeamList, summary="Teams you can see")
def list_teams(request: HttpRequest) -> TeamList:
    user = current_user(request)
    roles = roles_of(user)
    return TeamList(data=[team_out(roles, t) for t in teams_visible_to(user)])


@router.post("", response={201: TeamOut}, summary="Create a team (platform admins)")
def create_team(request: HttpRequest, body: TeamCreate) -> Status[TeamOut]:
    user = current_user(request)
    organisation = organisation_get_for_user(user, body.organisation)
    team = team_create(actor=user, organisation=organisation, slug=body.slug, name=body.name,
                       route_names=body.allowed_routes)  # fmt: skip
    return Status(201, team_out(roles_of(user), team))


@router.get("/{team_id}", response=TeamOut, summary="One team")
def get_team(request: HttpRequest, team_id: IdPath) -> TeamOut:
    user = current_user(request)
    return team_out(roles_of(user), team_get_for_user(user, team_id))


@router.patch("/{team_id}", response=TeamOut, summary="Rename or re-route a team")
def update_team(request: HttpRequest, team_id: IdPath, body: TeamUpdate) -> TeamOut:
    user = current_user(request)
    team = team_get_for_user(user, team_id)
    team = team_update(actor=user, team=team, name=body.name, slug=body.slug,
                       route_names=body.allowed_routes)  # fmt: skip
    return team_out(roles_of(user), team)


@router.delete("/{team_id}", response={204: None}, summary="Delete a team, its members and keys")
def delete_team(request: HttpRequest, team_id: IdPath) -> HttpResponse:
    user = current_user(request)
    team_delete(actor=user, team=team_get_for_user(user, team_id))
    return HttpResponse(status=204)
