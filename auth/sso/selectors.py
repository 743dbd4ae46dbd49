"""Reads for the SSO pages (callers check permissions: auth/sso/permissions.py)."""

from __future__ import annotations

from dataclasses import dataclass

from aigateway.audit.models import AuditEvent
from auth.models import Organisation, OrgRole, Team
from auth.roles import Roles
from auth.sso.models import IdentityProvider, MappingRule, TotpDevice
from auth.sso.permissions import sso_can_change
from auth.sso.urls_sp import sp_acs_url, sp_entity_id, sp_metadata_url, sp_sls_url


@dataclass(frozen=True)
class SpUrls:
    """What an admin copies into the IdP."""

    entity_id: str
    acs_url: str
    metadata_url: str
    sls_url: str


def sp_urls(organisation: Organisation) -> SpUrls:
    return SpUrls(
        entity_id=sp_entity_id(organisation),
        acs_url=sp_acs_url(organisation),
        metadata_url=sp_metadata_url(organisation),
        sls_url=sp_sls_url(organisation),
    )


@dataclass(frozen=True)
class OrgRow:
    organisation: Organisation
    idp: IdentityProvider | None
    can_change: bool
    rule_count: int
    sp: SpUrls


def sso_overview(roles: Roles) -> list[OrgRow]:
    """Every organisation the user reads SSO settings of, with its IdP (three queries)."""
    orgs = Organisation.objects.order_by("slug")
    if not roles.superuser:
        orgs = orgs.filter(pk__in=roles.wide_orgs)
    organisations = list(orgs)
    idps = {
        idp.organisation_id: idp
        for idp in IdentityProvider.objects.filter(organisation__in=organisations)
    }
    counts: dict[int, int] = {}
    for idp_id in MappingRule.objects.filter(idp__in=list(idps.values())).values_list(
        "idp_id", flat=True
    ):
        counts[idp_id] = counts.get(idp_id, 0) + 1
    rows = []
    for org in organisations:
        idp: IdentityProvider | None = idps.get(org.pk)
        rows.append(
            OrgRow(
                organisation=org,
                idp=idp,
                can_change=sso_can_change(roles, org.pk),
                rule_count=counts.get(idp.pk, 0) if idp else 0,
                sp=sp_urls(org),
            )
        )
    return rows


def teams_of(organisation_id: int) -> list[Team]:
    return list(Team.objects.filter(organisation_id=organisation_id).order_by("slug"))


def recent_refusals(idp: IdentityProvider, limit: int = 10) -> list[AuditEvent]:
    """The IdP's latest refused sign-ins (from the audit log): what an admin checks first when
    people cannot get in (wrong audience, clock skew, unmapped groups, ...)."""
    return list(
        AuditEvent.objects.filter(
            action__in=("sso.rejected", "sso.denied"),
            target_type="identity_provider",
            target_id=str(idp.pk),
        ).order_by("-created_at", "-id")[:limit]
    )


def has_break_glass_admin(organisation: Organisation) -> bool:
    """Whether a platform admin of the organisation (or a gateway operator) has a TOTP factor:
    who can get in when password sign-in is off and the IdP is down."""
    admins = TotpDevice.objects.filter(
        user__org_memberships__organisation=organisation,
        user__org_memberships__role=OrgRole.PLATFORM_ADMIN,
    )
    return admins.exists() or TotpDevice.objects.filter(user__is_superuser=True).exists()
