"""Services and validation units: IdP create/update (SocialApp row, strict settings), metadata
parsing, mapping rules and their resolution, the SP URLs."""

from __future__ import annotations

import pytest
from allauth.socialaccount.models import SocialApp
from django.core.exceptions import ValidationError

from auth.sso.mapping import resolve, rules_of
from auth.sso.metadata import parse_metadata_xml
from auth.sso.services import (
    idp_create,
    mapping_rule_create,
    sp_acs_url,
    sp_entity_id,
    sp_metadata_url,
)
from tests.sso_unit.saml_support import IDP_ENTITY_ID, IDP_SSO_URL, keypair

pytestmark = pytest.mark.django_db


def metadata_xml(entity_id: str = IDP_ENTITY_ID) -> str:
    return f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
      <ds:X509Certificate>{keypair().cert_body}</ds:X509Certificate>
    </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://idp.example.test/saml/slo"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="{IDP_SSO_URL}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""


def test_sp_urls_come_from_the_base_url_setting(cast, settings) -> None:
    settings.AIGATEWAY_SAML_SP_BASE_URL = "https://gw.example.com/"
    assert sp_entity_id(cast.org) == "https://gw.example.com/accounts/saml/acme/metadata/"
    assert sp_metadata_url(cast.org) == sp_entity_id(cast.org)
    assert sp_acs_url(cast.org) == "https://gw.example.com/accounts/saml/acme/acs/"


def test_idp_create_writes_a_strict_social_app_usable_at_once(cast, client) -> None:
    idp = idp_create(actor=None, organisation=cast.org, entity_id=IDP_ENTITY_ID,
                     sso_url=IDP_SSO_URL, x509cert=keypair().cert_pem.decode())  # fmt: skip
    app = SocialApp.objects.get(provider="saml", client_id="acme")
    assert app.provider_id == IDP_ENTITY_ID
    advanced = app.settings["advanced"]
    assert advanced["want_assertion_signed"] and advanced["strict"]
    assert advanced["reject_deprecated_algorithm"] and advanced["reject_idp_initiated_sso"]
    assert "BEGIN" not in idp.x509cert and idp.x509cert == keypair().cert_body
    metadata = client.get("/accounts/saml/acme/metadata/")
    assert metadata.status_code == 200
    assert b'entityID="http://testserver/accounts/saml/acme/metadata/"' in metadata.content
    assert b'Location="http://testserver/accounts/saml/acme/acs/"' in metadata.content


def test_a_long_organisation_name_fits_allauths_app_label(cast) -> None:
    """Organisation names hold 200 characters, allauth's SocialApp.name 40: PostgreSQL
    refused the longer one (a 500 when such an organisation set up SSO)."""
    cast.org.name = "A very long organisation name, Incorporated, Europe Division"
    cast.org.save()
    idp = idp_create(actor=None, organisation=cast.org, entity_id=IDP_ENTITY_ID,
                     sso_url=IDP_SSO_URL, x509cert=keypair().cert_pem.decode())  # fmt: skip
    app = SocialApp.objects.get(provider="saml", client_id="acme")
    limit = SocialApp._meta.get_field("name").max_length
    assert app.name == cast.org.name[:limit] and idp.name == cast.org.name


def test_calling_idp_create_again_updates_the_one_idp(cast) -> None:
    idp_create(actor=None, organisation=cast.org, entity_id=IDP_ENTITY_ID, sso_url=IDP_SSO_URL,
               x509cert=keypair().cert_body)  # fmt: skip
    idp = idp_create(actor=None, organisation=cast.org, entity_id=IDP_ENTITY_ID,
                     sso_url=IDP_SSO_URL + "2", x509cert=keypair().cert_body,
                     allow_idp_initiated=True)  # fmt: skip
    app = SocialApp.objects.get(provider="saml")
    assert app.settings["idp"]["sso_url"] == IDP_SSO_URL + "2"
    assert app.settings["advanced"]["reject_idp_initiated_sso"] is False
    assert idp.allow_idp_initiated


def test_two_organisations_cannot_share_an_entity_id(cast) -> None:
    idp_create(actor=None, organisation=cast.org, entity_id=IDP_ENTITY_ID, sso_url=IDP_SSO_URL,
               x509cert=keypair().cert_body)  # fmt: skip
    with pytest.raises(ValidationError) as info:
        idp_create(actor=None, organisation=cast.other_org, entity_id=IDP_ENTITY_ID,
                   sso_url=IDP_SSO_URL, x509cert=keypair().cert_body)  # fmt: skip
    assert "entity_id" in info.value.message_dict


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"entity_id": " "}, "entity_id"),
        ({"sso_url": ""}, "sso_url"),
        ({"sso_url": "javascript:alert(1)"}, "sso_url"),
        ({"x509cert": "hello"}, "x509cert"),
    ],
)
def test_idp_values_are_validated(cast, kwargs, field) -> None:
    values = {"entity_id": IDP_ENTITY_ID, "sso_url": IDP_SSO_URL, "x509cert": keypair().cert_body}
    with pytest.raises(ValidationError) as info:
        idp_create(actor=None, organisation=cast.org, **(values | kwargs))
    assert field in info.value.message_dict


def test_metadata_xml_fills_entity_id_urls_and_certificate(cast) -> None:
    parsed = parse_metadata_xml(metadata_xml())
    assert (parsed.entity_id, parsed.sso_url) == (IDP_ENTITY_ID, IDP_SSO_URL)
    assert parsed.slo_url == "https://idp.example.test/saml/slo"
    idp = idp_create(actor=None, organisation=cast.org, entity_id="", sso_url="", x509cert="",
                     metadata_xml=metadata_xml())  # fmt: skip
    assert idp.entity_id == IDP_ENTITY_ID and idp.x509cert == keypair().cert_body


@pytest.mark.parametrize(
    "xml",
    ["<md:EntityDescriptor", "<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", "<x/>"],
)
def test_bad_metadata_is_a_validation_error(xml) -> None:
    with pytest.raises(ValidationError):
        parse_metadata_xml(xml)


def test_rules_are_validated(cast) -> None:
    idp = idp_create(actor=None, organisation=cast.org, entity_id=IDP_ENTITY_ID,
                     sso_url=IDP_SSO_URL, x509cert=keypair().cert_body)  # fmt: skip
    for kwargs in (
        {"value": "", "role": "member"},
        {"value": "x", "role": "owner"},
        {"value": "x", "role": "team_admin"},
        {"value": "x", "role": "platform_admin", "team": cast.team},
        {"value": "x", "role": "member", "team": cast.other_team},
    ):
        with pytest.raises(ValidationError):
            mapping_rule_create(actor=None, idp=idp, **kwargs)


def test_resolution_takes_the_highest_role_per_scope(cast) -> None:
    idp = idp_create(actor=None, organisation=cast.org, entity_id=IDP_ENTITY_ID,
                     sso_url=IDP_SSO_URL, x509cert=keypair().cert_body)  # fmt: skip
    for value, role, team in [
        ("all", "member", None), ("audit", "auditor", None), ("admins", "platform_admin", None),
        ("r", "member", cast.team), ("r-lead", "team_admin", cast.team),
    ]:  # fmt: skip
        mapping_rule_create(actor=None, idp=idp, value=value, role=role, team=team)
    rules = rules_of(idp)
    assert resolve(rules, ["all", "audit"]).org_role == "auditor"
    assert resolve(rules, ["audit", "admins"]).org_role == "platform_admin"
    both = resolve(rules, ["r", "r-lead"])
    assert both.org_role is None and both.team_roles == {cast.team.pk: "team_admin"}
    assert not resolve(rules, ["ALL", "Admins"]).grants_anything  # exact, case-sensitive
