"""Personal admin tokens for the management API: issue (shown once), revoke, authenticate.

A token acts as its user, with exactly the user's roles. Like team keys (auth/keys.py) they
are 256-bit random strings, so one SHA-256 is the right hash. The ``agw-pat-`` prefix tells
them apart from team inference keys (``agw-…``), which never open the management API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.utils import timezone

from aigateway.audit.services import audit_record
from auth.models import AdminToken

TOKEN_PREFIX = "agw-pat-"
DISPLAY_PREFIX_LENGTH = 16  # "agw-pat-" + 8 characters
MAX_LIFETIME_DAYS = 365
# Writing last_used_at on every call would turn each read into a write; a minute is enough
# to tell a live token from an abandoned one.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRejected(Exception):
    """Why a presented token does not authenticate: ``code`` is machine-readable."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class IssuedAdminToken:
    """A fresh token. ``raw_token`` exists only here: show it once, never store it."""

    token: AdminToken
    raw_token: str


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def is_admin_token(raw: str) -> bool:
    return raw.startswith(TOKEN_PREFIX)


@transaction.atomic
def admin_token_create(
    *, user: AbstractBaseUser, name: str, lifetime_days: int
) -> IssuedAdminToken:
    """Issue a token for ``user`` expiring after ``lifetime_days`` (1 to 365). Audited as
    ``admin_token.created`` (name and prefix, never the token)."""
    name = name.strip()
    errors = {}
    if not name or len(name) > 200:
        errors["name"] = "Give the token a name of 1 to 200 characters."
    if not 1 <= lifetime_days <= MAX_LIFETIME_DAYS:
        errors["expires_in_days"] = f"A token lives 1 to {MAX_LIFETIME_DAYS} days."
    if errors:
        raise ValidationError(errors)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AdminToken.objects.create(
        user_id=user.pk,
        name=name,
        prefix=raw[:DISPLAY_PREFIX_LENGTH],
        token_hash=hash_token(raw),
        expires_at=timezone.now() + timedelta(days=lifetime_days),
    )
    audit_record(
        action="admin_token.created",
        target_type="admin_token",
        target_id=token.pk,
        target_label=f"{name} ({token.prefix}…)",
        actor=user,
        details={"expires_at": token.expires_at.isoformat()},
    )
    return IssuedAdminToken(token=token, raw_token=raw)


def admin_tokens_of(user: AbstractBaseUser) -> list[AdminToken]:
    return list(AdminToken.objects.filter(user_id=user.pk))


def admin_token_get_for_user(user: AbstractBaseUser, token_id: int) -> AdminToken:
    """One of the user's own tokens; AdminToken.DoesNotExist for anyone else's."""
    return AdminToken.objects.get(pk=token_id, user_id=user.pk)


@transaction.atomic
def admin_token_revoke(*, actor: AbstractBaseUser, token: AdminToken) -> AdminToken:
    """Revoke at once (the next call with it fails). Revoking twice changes nothing."""
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        action="admin_token.revoked",
        target_type="admin_token",
        target_id=token.pk,
        target_label=f"{token.name} ({token.prefix}…)",
        actor=actor,
    )
    return token


def admin_token_authenticate(raw: str) -> tuple[AbstractBaseUser, AdminToken]:
    """The active user a token belongs to, or TokenRejected saying why not."""
    token_hash = hash_token(raw)
    token = AdminToken.objects.filter(token_hash=token_hash).first()
    if token is None or not hmac.compare_digest(token.token_hash, token_hash):
        raise TokenRejected("Incorrect admin token provided.", "invalid_token")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRejected("This admin token has been revoked.", "revoked_token")
    if token.expires_at <= now:
        raise TokenRejected("This admin token has expired.", "expired_token")
    try:
        user = get_user_model().objects.get(pk=token.user_id, is_active=True)
    except ObjectDoesNotExist:
        raise TokenRejected("The token's user is deactivated.", "inactive_user") from None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        AdminToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return user, token
