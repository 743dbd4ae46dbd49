"""Who is calling: authenticate a team API key into a Principal, from the config cache."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from aigateway.core.config_cache import config_cache
from aigateway.gateway.errors import AuthenticationFailed
from auth.keys import hash_api_key


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, whichever door it came in by (API key, browser session, batch)."""

    organisation_id: int
    team_id: int
    allowed_routes: frozenset[str]
    api_key_id: int | None = None
    key_prefix: str = ""
    user_id: int | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _KeyMiss:
    """Cached negative answer, so floods of bad keys do not reach the database."""


_MISS = _KeyMiss()


def _load_principal(key_hash: str) -> Principal | _KeyMiss:
    from auth.models import ApiKey

    key = (
        ApiKey.objects.select_related("team")
        .prefetch_related("allowed_routes", "team__allowed_routes")
        .filter(key_hash=key_hash, revoked_at__isnull=True)
        .first()
    )
    if key is None or not hmac.compare_digest(key.key_hash, key_hash):
        return _MISS
    team_routes = {r.name for r in key.team.allowed_routes.all()}
    key_routes = {r.name for r in key.allowed_routes.all()}
    allowed = team_routes & key_routes if key_routes else team_routes
    return Principal(
        organisation_id=key.team.organisation_id,
        team_id=key.team_id,
        allowed_routes=frozenset(allowed),
        api_key_id=key.pk,
        key_prefix=key.prefix,
        expires_at=key.expires_at,
    )


async def authenticate_api_key(raw_key: str) -> Principal:
    if not raw_key:
        raise AuthenticationFailed(
            "No API key provided. Send it as 'Authorization: Bearer <key>' or 'x-api-key'."
        )
    key_hash = hash_api_key(raw_key)
    principal = await config_cache.get_or_load(("api-key", key_hash), _load_principal, key_hash)
    if isinstance(principal, _KeyMiss):
        raise AuthenticationFailed("Incorrect API key provided.")
    if principal.expires_at is not None and principal.expires_at <= timezone.now():
        raise AuthenticationFailed("This API key has expired.", code="expired_api_key")
    return principal
