"""The python3-saml settings of an IdP: what we store in its allauth SocialApp, and what every
request uses (the stored copy is overlaid with the strict values, so a hand-edited SocialApp
row cannot weaken validation).

Strict always: signed assertions (SHA-256 or better), strict mode (audience, destination,
issuer, time window), IdP-initiated SSO off unless the IdP allows it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C

from auth.sso.models import IdentityProvider
from auth.sso.urls_sp import sp_acs_url, sp_entity_id, sp_sls_url

# Values no stored setting may change.
STRICT_ADVANCED: dict[str, Any] = {
    "strict": True,
    "want_assertion_signed": True,
    "reject_deprecated_algorithm": True,
    "digest_algorithm": C.SHA256,
    "signature_algorithm": C.RSA_SHA256,
    # Our groups may come without an AttributeStatement only if the IdP sends none at all,
    # which a mapping could never match: keep python3-saml's requirement.
    "want_attribute_statement": True,
    # URL syntax only: lets http://localhost:8000 or http://idp:8080 (compose) be used.
    "allow_single_label_domains": True,
}


def social_app_settings(idp: IdentityProvider) -> dict[str, Any]:
    """What goes into SocialApp.settings (JSON)."""
    mapping: dict[str, list[str]] = {}
    if idp.uid_attribute:
        mapping["uid"] = [idp.uid_attribute]
    if idp.email_attribute:
        mapping["email"] = [idp.email_attribute]
    idp_block: dict[str, str] = {
        "entity_id": idp.entity_id,
        "sso_url": idp.sso_url,
        "x509cert": idp.x509cert,
    }
    if idp.slo_url:
        idp_block["slo_url"] = idp.slo_url
    return {
        "idp": idp_block,
        "attribute_mapping": mapping,
        "advanced": {**STRICT_ADVANCED, "reject_idp_initiated_sso": not idp.allow_idp_initiated},
        # Keys allauth ignores; kept for whoever reads the row.
        "aigateway_idp_id": idp.pk,
    }


def sp_key_pair() -> tuple[str, str] | None:
    """(private key, certificate) PEM when both are configured."""
    key = settings.AIGATEWAY_SAML_SP_PRIVATE_KEY
    cert = settings.AIGATEWAY_SAML_SP_CERTIFICATE
    return (key, cert) if key and cert else None


def runtime_settings(stored: dict[str, Any], org_slug: str) -> dict[str, Any]:
    """The stored settings with the strict values and the explicit SP entity id on top (what
    allauth's finish and SLS views use)."""
    advanced = {**stored.get("advanced", {}), **STRICT_ADVANCED}
    pair = sp_key_pair()
    if pair:
        advanced.update(
            private_key=pair[0], x509cert=pair[1], logout_request_signed=True,
            logout_response_signed=True,
        )  # fmt: skip
    return {**stored, "advanced": advanced, "sp": {"entity_id": sp_entity_id(org_slug)}}


def onelogin_settings(idp: IdentityProvider) -> dict[str, Any]:
    """Full python3-saml settings with the SP's URLs from AIGATEWAY_SAML_SP_BASE_URL (used for
    the AuthnRequest, our metadata and the logout request)."""
    slug = idp.organisation.slug
    security = {
        "authnRequestsSigned": False,
        "logoutRequestSigned": False,
        "logoutResponseSigned": False,
        "wantAssertionsSigned": True,
        "wantMessagesSigned": False,
        "rejectDeprecatedAlgorithm": True,
        "digestAlgorithm": C.SHA256,
        "signatureAlgorithm": C.RSA_SHA256,
        "requestedAuthnContext": False,
        "wantAttributeStatement": True,
        "wantNameId": True,
        "allowSingleLabelDomains": True,
    }
    idp_block: dict[str, Any] = {
        "entityId": idp.entity_id,
        "singleSignOnService": {"url": idp.sso_url, "binding": C.BINDING_HTTP_REDIRECT},
        "x509cert": idp.x509cert,
    }
    if idp.slo_url:
        idp_block["singleLogoutService"] = {"url": idp.slo_url, "binding": C.BINDING_HTTP_REDIRECT}
    sp: dict[str, Any] = {
        "entityId": sp_entity_id(slug),
        "assertionConsumerService": {"url": sp_acs_url(slug), "binding": C.BINDING_HTTP_POST},
        "singleLogoutService": {"url": sp_sls_url(slug), "binding": C.BINDING_HTTP_REDIRECT},
        "NameIDFormat": C.NAMEID_UNSPECIFIED,
    }
    pair = sp_key_pair()
    if pair:
        sp.update(privateKey=pair[0], x509cert=pair[1])
        security.update(
            authnRequestsSigned=True, logoutRequestSigned=True, logoutResponseSigned=True
        )
    return {"strict": True, "debug": False, "security": security, "idp": idp_block, "sp": sp}


def request_data(request: HttpRequest) -> dict[str, Any]:
    """python3-saml's view of a request we build a message in (AuthnRequest, LogoutRequest):
    only the query matters there, our URLs come from the settings above."""
    return {
        "https": "on" if request.is_secure() else "off",
        "http_host": request.get_host(),
        "script_name": request.META.get("SCRIPT_NAME", ""),
        "path_info": request.path_info,
        "get_data": request.GET.copy(),
        "post_data": {},
    }
