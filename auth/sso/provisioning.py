"""JIT provisioning and re-sync at every SSO sign-in: the user's name, e-mail, organisation
role and team memberships in the IdP's organisation follow the assertion's groups through
the mapping rules. Memberships in other organisations are never touched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from aigateway.audit.services import audit_record
from auth.models import OrgMembership, TeamMembership
from auth.sso.mapping import MappingResult
from auth.sso.models import IdentityProvider


def _first(attributes: Mapping[str, Any], name: str) -> str:
    if not name:
        return ""
    values = attributes.get(name) or []
    values = values if isinstance(values, list | tuple) else [values]
    return str(values[0]).strip() if values else ""


def profile_from_attributes(idp: IdentityProvider, attributes: Mapping[str, Any]) -> dict[str, str]:
    """first_name/last_name/email the assertion gives (only the keys it gives)."""
    profile: dict[str, str] = {}
    email = _first(attributes, idp.email_attribute)
    if email:
        profile["email"] = email[:254]
    name = _first(attributes, idp.name_attribute)
    if name:
        first, _, last = name.partition(" ")
        profile["first_name"], profile["last_name"] = first[:150], last[:150]
    return profile


def _memberships(user: AbstractBaseUser, idp: IdentityProvider) -> dict[str, Any]:
    org = OrgMembership.objects.filter(user_id=user.pk, organisation_id=idp.organisation_id)
    teams = TeamMembership.objects.filter(
        user_id=user.pk, team__organisation_id=idp.organisation_id
    )
    return {
        "org_role": org.values_list("role", flat=True).first(),
        "team_roles": {str(t): r for t, r in teams.values_list("team_id", "role")},
    }


@transaction.atomic
def user_sync(
    *,
    user: AbstractBaseUser,
    idp: IdentityProvider,
    result: MappingResult,
    attributes: Mapping[str, Any],
) -> None:
    """Apply the assertion to a saved user: profile fields, the organisation role and the team
    memberships of the IdP's organisation (added, changed, removed). Audited when it changed."""
    changed_fields = []
    for name, value in profile_from_attributes(idp, attributes).items():
        if getattr(user, name, None) != value:
            setattr(user, name, value)
            changed_fields.append(name)
    if changed_fields:
        user.save(update_fields=changed_fields)
    before = _memberships(user, idp)
    org_id = idp.organisation_id
    if result.org_role is None:
        OrgMembership.objects.filter(user_id=user.pk, organisation_id=org_id).delete()
    else:
        OrgMembership.objects.update_or_create(
            user_id=user.pk, organisation_id=org_id, defaults={"role": result.org_role}
        )
    TeamMembership.objects.filter(user_id=user.pk, team__organisation_id=org_id).exclude(
        team_id__in=list(result.team_roles)
    ).delete()
    for team_id, role in result.team_roles.items():
        TeamMembership.objects.update_or_create(
            user_id=user.pk, team_id=team_id, defaults={"role": role}
        )
    after = _memberships(user, idp)
    if before != after or changed_fields:
        audit_record(
            action="sso.user_synced",
            target_type="user",
            target_id=user.pk,
            target_label=user.get_username(),
            actor_label="sso",
            organisation_id=org_id,
            details={
                "idp": idp.entity_id,
                "before": before,
                "after": after,
                "profile_changed": sorted(changed_fields),
                "rules": [str(r) for r in result.matched],
            },
        )


def user_deprovision(*, user: AbstractBaseUser, idp: IdentityProvider) -> None:
    """The IdP no longer grants anything: remove the user's roles in its organisation."""
    user_sync(user=user, idp=idp, result=MappingResult(org_role=None), attributes={})
