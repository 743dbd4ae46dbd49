"""Changes to teams, memberships and team API keys made by a person (dashboard, management
API). Each checks the actor's rights (auth/permissions.py), validates, and writes one audit
entry. Configuration as code (``manage.py gateway apply``) uses auth/services.py directly.

Input problems raise ValidationError (field → sentence; a duplicate has code ``conflict``),
forbidden changes PermissionDenied.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone

from aigateway.audit.services import audit_record
from auth.models import ApiKey, Organisation, OrgMembership, Team, TeamMembership, TeamRole
from auth.permissions import require_organisation_admin, require_team_change, require_team_people
from auth.services import IssuedApiKey, api_key_create, api_key_revoke

logger = logging.getLogger(__name__)


def _conflict(field: str, message: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code="conflict")})


def _audit(action: str, actor: AbstractBaseUser, team: Team, target_type: str, target: Any,
           label: str, details: dict[str, Any]) -> None:  # fmt: skip
    audit_record(
        action=action,
        target_type=target_type,
        target_id=target,
        target_label=label,
        actor=actor,
        details=details,
        organisation_id=team.organisation_id,
    )


# -- teams --------------------------------------------------------------------------------------
def _routes(names: Iterable[str], field: str = "allowed_routes") -> list[Any]:
    from aigateway.routing.models import Route

    wanted = set(names)
    routes = list(Route.objects.filter(name__in=wanted).order_by("name"))
    missing = wanted - {r.name for r in routes}
    if missing:
        raise ValidationError({field: f"Unknown route(s): {', '.join(sorted(missing))}."})
    return routes


def _validate_team(name: str | None, slug: str | None) -> None:
    errors = {}
    if name is not None and not 1 <= len(name.strip()) <= 200:
        errors["name"] = "The name must have 1 to 200 characters."
    if slug is not None:
        try:
            validate_slug(slug)
            if len(slug) > 50:
                raise ValidationError("too long")
        except ValidationError:
            errors["slug"] = "The slug must be 1 to 50 letters, digits, hyphens or underscores."
    if errors:
        raise ValidationError(errors)


def team_snapshot(team: Team) -> dict[str, Any]:
    return {
        "slug": team.slug,
        "name": team.name,
        "allowed_routes": sorted(r.name for r in team.allowed_routes.all()),
    }


@transaction.atomic
def team_create(
    *,
    actor: AbstractBaseUser,
    organisation: Organisation,
    slug: str,
    name: str,
    route_names: Iterable[str] = (),
) -> Team:
    require_organisation_admin(actor, organisation)
    _validate_team(name, slug)
    routes = _routes(route_names)
    if Team.objects.filter(organisation=organisation, slug=slug).exists():
        raise _conflict("slug", f"The organisation already has a team '{slug}'.")
    team = Team.objects.create(organisation=organisation, slug=slug, name=name.strip())
    team.allowed_routes.set(routes)
    _audit("team.created", actor, team, "team", team.pk, str(team),
           {"before": None, "after": team_snapshot(team)})  # fmt: skip
    return team


@transaction.atomic
def team_update(
    *,
    actor: AbstractBaseUser,
    team: Team,
    name: str | None = None,
    slug: str | None = None,
    route_names: Iterable[str] | None = None,
) -> Team:
    """Change what is given (None: unchanged). A change that changes nothing is not audited."""
    require_team_change(actor, team)
    _validate_team(name, slug)
    before = team_snapshot(team)
    if slug is not None and slug != team.slug:
        if Team.objects.filter(organisation_id=team.organisation_id, slug=slug).exists():
            raise _conflict("slug", f"The organisation already has a team '{slug}'.")
        team.slug = slug
    if name is not None:
        team.name = name.strip()
    team.save()
    if route_names is not None:
        team.allowed_routes.set(_routes(route_names))
    after = team_snapshot(team)
    if after != before:
        _audit("team.updated", actor, team, "team", team.pk, str(team),
               {"before": before, "after": after})  # fmt: skip
    return team


def _purge_cache(team: Team, key_ids: list[int]) -> None:
    """Cached answers of a deleted team (and its keys) go with it: ids can be reused."""
    from aigateway.gateway.cache import cache_purge

    async def purge() -> None:
        await cache_purge(scope="team", owner_id=team.pk)
        for key_id in key_ids:
            await cache_purge(scope="key", owner_id=key_id)

    try:
        async_to_sync(purge)()
    except Exception:  # noqa: BLE001 - entries expire on their own; the delete must not fail
        logger.warning("could not purge the cache of deleted team %s", team.pk)


@transaction.atomic
def team_delete(*, actor: AbstractBaseUser, team: Team) -> None:
    """Delete the team with its memberships and keys (calls with them fail at once)."""
    require_team_change(actor, team)
    before = team_snapshot(team)
    pk, label = team.pk, str(team)
    key_ids = list(team.api_keys.values_list("pk", flat=True))
    team.delete()
    team.pk = pk  # for the audit entry
    _audit("team.deleted", actor, team, "team", pk, label, {"before": before, "after": None})
    transaction.on_commit(lambda: _purge_cache(team, key_ids))


# -- members ------------------------------------------------------------------------------------
def _user_addable(actor: AbstractBaseUser, team: Team, username: str) -> Any:
    """A user who may join the team: one already in the organisation, or one in none yet
    (a fresh sign-in). Users of other organisations look exactly like unknown ones."""
    user = get_user_model().objects.filter(username=username).first()
    if user is not None and not getattr(actor, "is_superuser", False):
        org = team.organisation_id
        in_org = (
            OrgMembership.objects.filter(user=user, organisation_id=org).exists()
            or TeamMembership.objects.filter(user=user, team__organisation_id=org).exists()
        )
        in_none = not (
            OrgMembership.objects.filter(user=user).exists()
            or TeamMembership.objects.filter(user=user).exists()
        )
        if not (in_org or in_none):
            user = None
    if user is None:
        raise ValidationError({"username": f"There is no user '{username}' you can add."})
    return user


def _validate_role(role: str) -> None:
    if role not in TeamRole.values:
        raise ValidationError({"role": f"The role must be one of {', '.join(TeamRole.values)}."})


def _member_label(team: Team, membership: TeamMembership) -> str:
    return f"{membership.user.get_username()} in {team}"


@transaction.atomic
def member_add(*, actor: AbstractBaseUser, team: Team, username: str, role: str) -> TeamMembership:
    require_team_people(actor, team)
    _validate_role(role)
    user = _user_addable(actor, team, username)
    if TeamMembership.objects.filter(team=team, user=user).exists():
        raise _conflict("username", f"'{username}' is already a member; change the role instead.")
    membership = TeamMembership.objects.create(team=team, user=user, role=role)
    _audit("team_member.added", actor, team, "team_membership", membership.pk,
           _member_label(team, membership), {"team_id": team.pk, "user_id": user.pk,
                                             "before": None, "after": {"role": role}})  # fmt: skip
    return membership


@transaction.atomic
def member_set_role(
    *, actor: AbstractBaseUser, team: Team, membership: TeamMembership, role: str
) -> TeamMembership:
    require_team_people(actor, team)
    _validate_role(role)
    before = membership.role
    if before == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    _audit("team_member.role_changed", actor, team, "team_membership", membership.pk,
           _member_label(team, membership), {"team_id": team.pk, "user_id": membership.user_id,
                                             "before": {"role": before},
                                             "after": {"role": role}})  # fmt: skip
    return membership


@transaction.atomic
def member_remove(*, actor: AbstractBaseUser, team: Team, membership: TeamMembership) -> None:
    require_team_people(actor, team)
    label, pk = _member_label(team, membership), membership.pk
    before = {"role": membership.role}
    membership.delete()
    _audit("team_member.removed", actor, team, "team_membership", pk, label,
           {"team_id": team.pk, "user_id": membership.user_id, "before": before,
            "after": None})  # fmt: skip


# -- keys ---------------------------------------------------------------------------------------
def key_snapshot(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "allowed_routes": sorted(r.name for r in key.allowed_routes.all()),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@transaction.atomic
def team_key_issue(
    *,
    actor: AbstractBaseUser,
    team: Team,
    name: str,
    route_names: Iterable[str] = (),
    expires_at: datetime | None = None,
) -> IssuedApiKey:
    """A new random key for the team, optionally narrowed to some of the team's routes.
    The secret is in the result only: the audit entry has the name and prefix."""
    require_team_people(actor, team)
    name = name.strip()
    errors = {}
    if not 1 <= len(name) <= 200:
        errors["name"] = "The name must have 1 to 200 characters."
    names = set(route_names)
    team_routes = set(team.allowed_routes.values_list("name", flat=True))
    if names - team_routes:
        unknown = ", ".join(sorted(names - team_routes))
        errors["allowed_routes"] = f"The team may not use: {unknown}."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "The expiry must be in the future."
    if errors:
        raise ValidationError(errors)
    if ApiKey.objects.filter(team=team, name=name).exists():
        raise _conflict("name", f"The team already has a key named '{name}'.")
    issued = api_key_create(
        team=team, name=name, route_names=names, expires_at=expires_at, created_by=actor
    )
    key = issued.api_key
    _audit("api_key.created", actor, team, "api_key", key.pk, f"{team}/{key.name} ({key.prefix}…)",
           {"team_id": team.pk, "before": None, "after": key_snapshot(key)})  # fmt: skip
    return issued


@transaction.atomic
def team_key_revoke(*, actor: AbstractBaseUser, team: Team, key: ApiKey) -> ApiKey:
    """Revoke at once (every process drops it within the config cache's lifetime)."""
    require_team_people(actor, team)
    if key.revoked_at is not None:
        return key
    before = key_snapshot(key)
    api_key_revoke(api_key=key)
    _audit("api_key.revoked", actor, team, "api_key", key.pk, f"{team}/{key.name} ({key.prefix}…)",
           {"team_id": team.pk, "before": before, "after": key_snapshot(key)})  # fmt: skip
    return key
