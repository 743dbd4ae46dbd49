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
    # The team's policy: prompts and completions go (redacted) into its request log lines.
    log_prompts: bool = False
    # The key may ask for the call's decision trace (X-AIGateway-Debug: trace).
    debug_trace: bool = False


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
        log_prompts=key.team.log_prompts,
        debug_trace=key.debug_trace,
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


def principal_for_api_key_id(api_key_id: int) -> Principal | None:
    """The Principal of a stored key, for work that runs later without the raw key (batches
    run as the key that created them). None when the key is gone, revoked or expired.
    Synchronous (ORM): call it through ``run_db`` from async code."""
    from auth.models import ApiKey

    key_hash = (
        ApiKey.objects.filter(pk=api_key_id, revoked_at__isnull=True)
        .values_list("key_hash", flat=True)
        .first()
    )
    if key_hash is None:
        return None
    principal = _load_principal(key_hash)
    if isinstance(principal, _KeyMiss):
        return None
    if principal.expires_at is not None and principal.expires_at <= timezone.now():
        return None
    return principal


def principal_for_team_member(user_id: int, team_id: int) -> Principal | None:
    """The browser door (playground): a signed-in user acting for one of their teams, with
    the team's routes, limits and policies, and the user's own limits; usage and audit name
    both. None when the user is not a member of that team. Synchronous (ORM): call it
    through ``run_db`` from async code."""
    from auth.models import Team

    team = (
        Team.objects.filter(pk=team_id, memberships__user_id=user_id)
        .prefetch_related("allowed_routes")
        .first()
    )
    if team is None:
        return None
    return Principal(
        organisation_id=team.organisation_id,
        team_id=team.pk,
        allowed_routes=frozenset(r.name for r in team.allowed_routes.all()),
        user_id=user_id,
        log_prompts=team.log_prompts,
    )
