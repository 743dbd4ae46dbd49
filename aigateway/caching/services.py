"""Changing the cache from the dashboard: purging a team's cached answers (audited)."""

from __future__ import annotations

import re

from asgiref.sync import async_to_sync
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError

from aigateway.audit.services import audit_record
from aigateway.gateway.cache import cache_purge
from auth.models import Team
from auth.roles import roles_of

# A route name goes into a Redis SCAN pattern: glob characters would widen the purge.
_GLOB = re.compile(r"[*?\[\]\\]")


def can_purge_team(user: AbstractBaseUser | AnonymousUser, team: Team) -> bool:
    """Superusers, and platform admins of the team's organisation."""
    roles = roles_of(user)
    return roles.superuser or team.organisation_id in roles.admin_orgs


def cache_purge_team(
    *, actor: AbstractBaseUser | AnonymousUser, team: Team, route: str = ""
) -> int:
    """Drop the answers cached in the team's namespace (one route, or every route) and
    return how many were dropped. With Redis this applies to every process; without, to
    the store of the process it runs in."""
    if not can_purge_team(actor, team):
        raise PermissionDenied("Only platform admins of the team's organisation can purge.")
    route = route.strip()
    if len(route) > 200 or _GLOB.search(route):
        raise ValidationError({"route": "This is not a route name."})
    removed = async_to_sync(cache_purge)(scope="team", owner_id=team.pk, route=route)
    audit_record(
        action="cache.purged",
        target_type="team",
        target_id=team.pk,
        target_label=str(team),
        actor=actor if isinstance(actor, AbstractBaseUser) else None,
        details={"scope": "team", "route": route, "count": removed},
        organisation_id=team.organisation_id,
    )
    return removed
