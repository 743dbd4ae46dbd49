"""Who the caller is: user, roles per organisation and team, and how they signed in."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema

from aigateway.api.management.security import current_token, current_user
from auth.models import Organisation, Team
from auth.roles import roles_of

router = Router(tags=["me"])


class OrgRoleOut(Schema):
    id: int
    slug: str
    role: str


class TeamRoleOut(Schema):
    id: int
    organisation: str
    slug: str
    role: str


class MeOut(Schema):
    id: int
    username: str
    superuser: bool
    authenticated_by: Literal["session", "admin_token"]
    organisations: list[OrgRoleOut]
    teams: list[TeamRoleOut]


@router.get("/me", response=MeOut, summary="Who you are")
def me(request: HttpRequest) -> MeOut:
    user = current_user(request)
    roles = roles_of(user)
    orgs = Organisation.objects.filter(pk__in=list(roles.org_roles)).order_by("slug")
    teams = Team.objects.filter(pk__in=list(roles.team_roles)).select_related("organisation")
    return MeOut(
        id=user.pk,
        username=user.get_username(),
        superuser=roles.superuser,
        authenticated_by="admin_token" if current_token(request) else "session",
        organisations=[OrgRoleOut(id=o.pk, slug=o.slug, role=roles.org_roles[o.pk]) for o in orgs],
        teams=[
            TeamRoleOut(id=t.pk, organisation=t.organisation.slug, slug=t.slug,
                        role=roles.team_roles[t.pk])
            for t in teams.order_by("organisation__slug", "slug")
        ],
    )  # fmt: skip
