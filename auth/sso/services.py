"""Writes of SSO configuration: identity providers (and their allauth SocialApp rows) and
mapping rules. Every change is audited with the object before and after. See INTERFACE.md
for the functions the real-IdP test suite relies on.

A SocialApp row is read by allauth at every request, so a created or edited IdP works at once,
without a restart."""

from __future__ import annotations

from dataclasses import dataclass

from allauth.socialaccount.models import SocialApp
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from aigateway.audit.changes import audit_change, model_snapshot
from aigateway.core.rows import fit_text
from auth.models import Organisation, Team
from auth.sso.metadata import fetch_metadata_url, normalise_certificate, parse_metadata_xml
from auth.sso.models import IdentityProvider, MappedRole, MappingRule
from auth.sso.saml_config import social_app_settings
from auth.sso.urls_sp import sp_acs_url, sp_entity_id, sp_metadata_url

__all__ = [
    "IdpValues",
    "idp_create",
    "idp_delete",
    "idp_save",
    "mapping_rule_create",
    "mapping_rule_delete",
    "sp_acs_url",
    "sp_entity_id",
    "sp_metadata_url",
]

SAML = "saml"
_Actor = AbstractBaseUser | None
# Large and derived: the fields parsed from it are in the snapshot.
_SNAPSHOT_EXCLUDE = ("metadata_xml",)


@dataclass(frozen=True)
class IdpValues:
    """An IdP's settings as an admin enters them. With ``metadata_xml`` (or
    ``metadata_url``, fetched), entity id, SSO/SLO URLs and certificate come from it."""

    entity_id: str = ""
    sso_url: str = ""
    x509cert: str = ""
    slo_url: str = ""
    name: str = ""
    groups_attribute: str = "groups"
    uid_attribute: str = ""
    email_attribute: str = "email"
    name_attribute: str = ""
    allow_idp_initiated: bool = False
    enabled: bool = True
    metadata_xml: str = ""
    metadata_url: str = ""


def _resolved(values: IdpValues) -> IdpValues:
    """Fill entity id, URLs and certificate from metadata, check and normalise them."""
    data = values.__dict__.copy()
    xml = values.metadata_xml.strip()
    if not xml and values.metadata_url:
        xml = fetch_metadata_url(values.metadata_url)
    if xml:
        meta = parse_metadata_xml(xml, entity_id=values.entity_id.strip() or None)
        data.update(
            entity_id=meta.entity_id,
            sso_url=meta.sso_url,
            slo_url=values.slo_url or meta.slo_url,
            x509cert=meta.x509cert,
            metadata_xml=xml,
        )
    errors: dict[str, str] = {}
    data["entity_id"] = data["entity_id"].strip()
    if not data["entity_id"]:
        errors["entity_id"] = "The IdP's entity id is required (it keeps IdPs' users apart)."
    for name in ("sso_url", "slo_url"):
        url = data[name].strip()
        data[name] = url
        if url and not url.startswith(("https://", "http://")):
            errors[name] = "Enter an http(s) URL."
    if not data["sso_url"]:
        errors["sso_url"] = "The IdP's single sign-on URL is required."
    if not data["groups_attribute"].strip():
        errors["groups_attribute"] = "Name the attribute that carries the groups."
    if errors:
        raise ValidationError(errors)
    data["x509cert"] = normalise_certificate(data["x509cert"])
    for name in ("groups_attribute", "uid_attribute", "email_attribute", "name_attribute"):
        data[name] = data[name].strip()
    return IdpValues(**data)


def _check_entity_id_free(entity_id: str, idp_pk: int | None) -> None:
    taken = IdentityProvider.objects.filter(entity_id=entity_id)
    other_apps = SocialApp.objects.filter(provider=SAML, provider_id=entity_id)
    if idp_pk is not None:
        taken = taken.exclude(pk=idp_pk)
        other_apps = other_apps.exclude(gateway_idp__pk=idp_pk)
    if taken.exists() or other_apps.exists():
        raise ValidationError(
            {"entity_id": "Another organisation already uses this IdP entity id."}
        )


def _app_name(name: str) -> str:
    """allauth's SocialApp.name holds 40 characters (ours 200): it is only a label there, so
    it is cut rather than refused (PostgreSQL refuses a longer value outright)."""
    return fit_text(SocialApp, {"name": name})["name"]


def _sync_social_app(idp: IdentityProvider) -> None:
    app = idp.social_app
    app.provider = SAML
    app.provider_id = idp.entity_id  # never empty: see _resolved
    app.client_id = idp.organisation.slug
    app.name = _app_name(idp.name)
    app.settings = social_app_settings(idp)
    app.save()


@transaction.atomic
def idp_save(*, actor: _Actor, organisation: Organisation, values: IdpValues) -> IdentityProvider:
    """Create or update the organisation's IdP (one per organisation) and its SocialApp."""
    resolved = _resolved(values)
    idp = (
        IdentityProvider.objects.select_for_update()
        .select_related("social_app", "organisation")
        .filter(organisation=organisation)
        .first()
    )
    _check_entity_id_free(resolved.entity_id, idp.pk if idp else None)
    before = model_snapshot(idp, exclude=_SNAPSHOT_EXCLUDE) if idp else None
    if idp is None:
        stray = SocialApp.objects.filter(provider=SAML, client_id=organisation.slug)
        stray.delete()  # a row left by hand would shadow ours (same URL slug)
        app = SocialApp.objects.create(provider=SAML, name=_app_name(organisation.name))
        idp = IdentityProvider(organisation=organisation, social_app=app)
    fields = resolved.__dict__.copy()
    fields.pop("name")
    for name, value in fields.items():
        setattr(idp, name, value)
    idp.name = resolved.name.strip() or organisation.name
    idp.save()
    _sync_social_app(idp)
    audit_change(
        actor=actor,
        action="sso.idp_created" if before is None else "sso.idp_updated",
        target=idp,
        before=before,
        after=model_snapshot(idp, exclude=_SNAPSHOT_EXCLUDE),
    )
    return idp


def idp_create(
    *,
    actor: _Actor,
    organisation: Organisation,
    entity_id: str,
    sso_url: str,
    x509cert: str,
    slo_url: str = "",
    groups_attribute: str = "groups",
    uid_attribute: str = "",
    email_attribute: str = "email",
    name_attribute: str = "",
    allow_idp_initiated: bool = False,
    metadata_xml: str = "",
) -> IdentityProvider:
    """Create (or update) the organisation's IdP. See auth/sso/INTERFACE.md."""
    values = IdpValues(
        entity_id=entity_id,
        sso_url=sso_url,
        x509cert=x509cert,
        slo_url=slo_url,
        groups_attribute=groups_attribute,
        uid_attribute=uid_attribute,
        email_attribute=email_attribute,
        name_attribute=name_attribute,
        allow_idp_initiated=allow_idp_initiated,
        metadata_xml=metadata_xml,
    )
    return idp_save(actor=actor, organisation=organisation, values=values)


@transaction.atomic
def idp_delete(*, actor: _Actor, idp: IdentityProvider) -> None:
    """Remove the IdP, its rules and its SocialApp. Accounts it created stay (with their
    roles) until an admin removes them; they can no longer sign in through it."""
    before = model_snapshot(idp, exclude=_SNAPSHOT_EXCLUDE)
    app = idp.social_app
    idp.delete()
    app.delete()
    audit_change(actor=actor, action="sso.idp_deleted", target=idp, before=before, after=None,
                 organisation_id=idp.organisation_id)  # fmt: skip


def mapping_rule_create(
    *, actor: _Actor, idp: IdentityProvider, value: str, role: str, team: Team | None = None
) -> MappingRule:
    """A group value → role (and team). See auth/sso/INTERFACE.md."""
    value = (value or "").strip()
    errors: dict[str, str] = {}
    if not value:
        errors["value"] = "Enter the group (or attribute value) to match."
    if role not in MappedRole.values:
        errors["role"] = "Choose platform admin, auditor, team admin or member."
    elif role == MappedRole.TEAM_ADMIN and team is None:
        errors["team"] = "A team admin rule needs a team."
    elif role in (MappedRole.PLATFORM_ADMIN, MappedRole.AUDITOR) and team is not None:
        errors["team"] = "Platform admins and auditors are organisation-wide: leave the team empty."
    if team is not None and team.organisation_id != idp.organisation_id:
        errors["team"] = "The team must belong to the IdP's organisation."
    if (
        not errors
        and MappingRule.objects.filter(idp=idp, value=value, role=role, team=team).exists()
    ):
        errors["value"] = "This rule exists already."
    if errors:
        raise ValidationError(errors)
    rule = MappingRule.objects.create(idp=idp, value=value, role=role, team=team)
    audit_change(
        actor=actor, action="sso.rule_created", target=rule, before=None,
        after=model_snapshot(rule), organisation_id=idp.organisation_id,
    )  # fmt: skip
    return rule


def mapping_rule_delete(*, actor: _Actor, rule: MappingRule) -> None:
    before = model_snapshot(rule)
    org_id = rule.idp.organisation_id
    rule.delete()
    audit_change(actor=actor, action="sso.rule_deleted", target=rule, before=before, after=None,
                 organisation_id=org_id)  # fmt: skip


def organisation_set_local_login(
    *, actor: _Actor, organisation: Organisation, enabled: bool
) -> Organisation:
    """Switch password sign-in for the organisation's users (break-glass accounts keep it)."""
    before = model_snapshot(organisation)
    organisation.local_login_enabled = enabled
    organisation.save(update_fields=["local_login_enabled"])
    audit_change(
        actor=actor,
        action="organisation.local_login_changed",
        target=organisation,
        before=before,
        after=model_snapshot(organisation),
    )
    return organisation
