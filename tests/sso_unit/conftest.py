"""Fixtures of the SSO unit tests: the cast's organisation (acme) with an IdP whose key is
tests/sso_unit/saml_support.keypair(), mapping rules, and a browser-like sign-in driver."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from auth.sso.services import idp_create, mapping_rule_create, sp_acs_url, sp_entity_id
from tests.sso_unit.saml_support import (
    IDP_ENTITY_ID,
    IDP_SSO_URL,
    Assertion,
    authn_request_id,
    build_response,
    keypair,
)

BASE_URL = "http://testserver"


@pytest.fixture(autouse=True)
def _sp_base_url(settings) -> None:
    settings.AIGATEWAY_SAML_SP_BASE_URL = BASE_URL


@pytest.fixture
def idp(cast):
    idp = idp_create(
        actor=None,
        organisation=cast.org,
        entity_id=IDP_ENTITY_ID,
        sso_url=IDP_SSO_URL,
        x509cert=keypair().cert_pem.decode(),
        name_attribute="displayName",
    )
    mapping_rule_create(actor=None, idp=idp, value="gw-admins", role="platform_admin")
    mapping_rule_create(actor=None, idp=idp, value="gw-auditors", role="auditor")
    mapping_rule_create(actor=None, idp=idp, value="research", role="member", team=cast.team)
    mapping_rule_create(
        actor=None, idp=idp, value="research-leads", role="team_admin", team=cast.team
    )
    return idp


@dataclass
class SignIn:
    client: Client
    org_slug: str = "acme"
    sso_url: str = IDP_SSO_URL

    @property
    def acs(self) -> str:
        return f"/accounts/saml/{self.org_slug}/acs/"

    def start(self) -> str:
        """Confirm form, then the redirect to the IdP: the AuthnRequest's id."""
        login = f"/accounts/saml/{self.org_slug}/login/"
        assert self.client.get(login).status_code == 200
        response = self.client.post(login)
        assert response.status_code == 302, response.content[:500]
        assert response["Location"].startswith(self.sso_url)
        return authn_request_id(response["Location"])

    def assertion(self, request_id: str | None, **changes) -> Assertion:
        values = {
            "acs_url": sp_acs_url(self.org_slug),
            "audience": sp_entity_id(self.org_slug),
            "in_response_to": request_id,
            "attributes": {
                "email": ["ada@acme.test"],
                "displayName": ["Ada Lovelace"],
                "groups": ["research", "unrelated"],
            },
        }
        values.update(changes)
        return Assertion(**values)

    def post(self, saml_response: str):
        """POST to the ACS like the IdP's auto-submit form, then follow to /acs/finish/."""
        first = self.client.post(self.acs, {"SAMLResponse": saml_response})
        assert first.status_code == 302, first.status_code
        return self.client.get(first["Location"])

    def sign_in(self, **changes):
        request_id = self.start()
        return self.post(build_response(self.assertion(request_id, **changes)))


@pytest.fixture
def sso() -> SignIn:
    # A browser always sends Host; python3-saml reads it to check the Destination.
    return SignIn(Client(HTTP_HOST="testserver"))
