"""Your personal admin tokens: list, create (from a browser session; the token is in that
answer only), revoke."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from aigateway.api.management.common import IdPath, Name
from aigateway.api.management.errors import ApiError
from aigateway.api.management.security import current_token, current_user
from auth.admin_tokens import (
    MAX_LIFETIME_DAYS,
    admin_token_create,
    admin_token_get_for_user,
    admin_token_revoke,
    admin_tokens_of,
)
from auth.models import AdminToken

router = Router(tags=["tokens"])


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    active: bool
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenList(Schema):
    data: list[TokenOut]


class TokenCreate(Schema):
    name: Name
    expires_in_days: int = Field(30, ge=1, le=MAX_LIFETIME_DAYS)


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret (agw-pat-…). Shown in this answer only.")


def token_out(token: AdminToken) -> TokenOut:
    return TokenOut(
        id=token.pk, name=token.name, prefix=token.prefix, active=token.is_active(),
        created_at=token.created_at, expires_at=token.expires_at, revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )  # fmt: skip


@router.get("/tokens", response=TokenList, summary="Your admin tokens")
def list_tokens(request: HttpRequest) -> TokenList:
    return TokenList(data=[token_out(t) for t in admin_tokens_of(current_user(request))])


@router.post("/tokens", response={201: IssuedTokenOut}, summary="Create an admin token")
def create_token(request: HttpRequest, body: TokenCreate) -> Status[IssuedTokenOut]:
    """From a browser session only: a leaked token must not be able to mint successors that
    outlive its revocation."""
    if current_token(request) is not None:
        raise ApiError(403, "Create admin tokens from a signed-in browser session, not with a "
                       "token.", code="session_required")  # fmt: skip
    issued = admin_token_create(user=current_user(request), name=body.name,
                                lifetime_days=body.expires_in_days)  # fmt: skip
    return Status(
        201, IssuedTokenOut(**token_out(issued.token).model_dump(), token=issued.raw_token)
    )


@router.delete("/tokens/{token_id}", response=TokenOut, summary="Revoke one of your tokens")
def revoke_token(request: HttpRequest, token_id: IdPath) -> TokenOut:
    user = current_user(request)
    token = admin_token_get_for_user(user, token_id)
    return token_out(admin_token_revoke(actor=user, token=token))
