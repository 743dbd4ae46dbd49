"""A team's API keys: list (prefixes only), issue (the secret is in that answer only),
revoke. Issuing and revoking: team admins and platform admins."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from aigateway.api.management.common import IdPath, Name, RouteName, aware_utc
from aigateway.api.management.security import current_user
from auth.models import ApiKey
from auth.permissions import team_get_for_user
from auth.selectors import team_key_get, team_keys
from auth.team_services import team_key_issue, team_key_revoke

router = Router(tags=["keys"])


class KeyOut(Schema):
    id: int
    team_id: int
    name: str
    prefix: str = Field(description="The first characters of the key, for recognising it.")
    allowed_routes: list[str] = Field(description="Empty: every route the team may use.")
    active: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None


class KeyList(Schema):
    data: list[KeyOut]


class KeyCreate(Schema):
    name: Name
    allowed_routes: list[RouteName] = Field(default_factory=list, max_length=500)
    expires_at: datetime | None = None


class IssuedKeyOut(KeyOut):
    key: str = Field(description="The secret. Shown in this answer only: store it now.")


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.pk,
        team_id=key.team_id,
        name=key.name,
        prefix=key.prefix,
        allowed_routes=sorted(r.name for r in key.allowed_routes.all()),
        active=key.is_active(),
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        created_at=key.created_at,
        created_by=key.created_by.get_username() if key.created_by else None,
        last_used_at=key.last_used_at,
    )


@router.get("/{team_id}/keys", response=KeyList, summary="A team's keys (prefixes only)")
def list_keys(request: HttpRequest, team_id: IdPath) -> KeyList:
    team = team_get_for_user(current_user(request), team_id)
    return KeyList(data=[key_out(k) for k in team_keys(team)])


@router.post("/{team_id}/keys", response={201: IssuedKeyOut}, summary="Issue a key")
def create_key(request: HttpRequest, team_id: IdPath, body: KeyCreate) -> Status[IssuedKeyOut]:
    user = current_user(request)
    team = team_get_for_user(user, team_id)
    issued = team_key_issue(actor=user, team=team, name=body.name, route_names=body.allowed_routes,
                            expires_at=aware_utc(body.expires_at, "expires_at"))  # fmt: skip
    out = key_out(issued.api_key)
    return Status(201, IssuedKeyOut(**out.model_dump(), key=issued.raw_key))


@router.get("/{team_id}/keys/{key_id}", response=KeyOut, summary="One key")
def get_key(request: HttpRequest, team_id: IdPath, key_id: IdPath) -> KeyOut:
    team = team_get_for_user(current_user(request), team_id)
    return key_out(team_key_get(team, key_id))


@router.delete("/{team_id}/keys/{key_id}", response=KeyOut, summary="Revoke a key")
def revoke_key(request: HttpRequest, team_id: IdPath, key_id: IdPath) -> KeyOut:
    """The key stops working at once and stays listed as revoked (its usage keeps its name)."""
    user = current_user(request)
    team = team_get_for_user(user, team_id)
    return key_out(team_key_revoke(actor=user, team=team, key=team_key_get(team, key_id)))
