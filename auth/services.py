"""Writes to tenancy: organisations, teams, memberships and API keys."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from auth.keys import display_prefix, generate_api_key, hash_api_key
from auth.models import ApiKey, Team


@dataclass(frozen=True)
class IssuedApiKey:
    """A freshly created key. ``raw_key`` exists only here: show it once, never store it."""

    api_key: ApiKey
    raw_key: str


@transaction.atomic
def api_key_create(
    *,
    team: Team,
    name: str,
    raw_key: str | None = None,
    route_names: Iterable[str] = (),
    expires_at: datetime | None = None,
    created_by: AbstractBaseUser | None = None,
) -> IssuedApiKey:
    """Create a team key. ``raw_key`` imports an existing secret (migrations from another
    gateway); otherwise a new random key is generated."""
    raw = raw_key or generate_api_key()
    key = ApiKey.objects.create(
        team=team,
        name=name,
        prefix=display_prefix(raw),
        key_hash=hash_api_key(raw),
        expires_at=expires_at,
        created_by=created_by if created_by and created_by.pk else None,  # type: ignore[misc]
    )
    api_key_set_routes(api_key=key, route_names=route_names)
    return IssuedApiKey(api_key=key, raw_key=raw)


def api_key_set_routes(*, api_key: ApiKey, route_names: Iterable[str]) -> None:
    from aigateway.routing.models import Route

    names = set(route_names)
    routes = list(Route.objects.filter(name__in=names))
    missing = names - {r.name for r in routes}
    if missing:
        raise ValueError(f"unknown route(s): {', '.join(sorted(missing))}")
    api_key.allowed_routes.set(routes)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
