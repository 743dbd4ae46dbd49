"""Details of the SP: strictness that a stored SocialApp cannot weaken, the uid attribute,
IdP-initiated sign-in when allowed, metadata URL fetching (timeout, errors)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest
from allauth.socialaccount.models import SocialAccount, SocialApp
from django.core.exceptions import ValidationError

from aigateway.audit.models import AuditEvent
from auth.models import OrgMembership
from auth.sso.metadata import fetch_metadata_url
from auth.sso.services import _sync_social_app, idp_create
from tests.sso_unit.saml_support import build_response
from tests.sso_unit.test_services import metadata_xml

pytestmark = pytest.mark.django_db


def test_a_weakened_social_app_row_is_still_validated_strictly(sso, idp) -> None:
    app = SocialApp.objects.get(provider="saml")
    app.settings["advanced"].update(
        {"want_assertion_signed": False, "strict": False, "reject_idp_initiated_sso": True}
    )
    app.save()
    response = sso.sign_in(sign=False)
    assert response.status_code == 403
    assert not SocialAccount.objects.exists()
    event = AuditEvent.objects.get(action="sso.rejected")
    assert "Signature" in event.details["reason"] or "signed" in event.details["reason"]


def test_the_uid_attribute_is_used_and_required_when_configured(sso, idp) -> None:
    oid = "http://schemas.microsoft.com/identity/claims/objectidentifier"
    idp.uid_attribute = oid
    idp.save()
    _sync_social_app(idp)
    attributes = {"groups": ["research"], oid: ["0f1e-guid"], "email": ["a@acme.test"]}
    assert sso.sign_in(attributes=attributes).status_code == 302
    assert SocialAccount.objects.get().uid == "0f1e-guid"
    sso.client.logout()
    missing = sso.sign_in(attributes={"groups": ["research"]})
    assert missing.status_code == 403
    assert AuditEvent.objects.filter(action="sso.rejected", details__code="no_uid").exists()


def test_idp_initiated_sign_in_works_once_allowed(sso, idp) -> None:
    idp.allow_idp_initiated = True
    idp.save()
    _sync_social_app(idp)
    response = sso.post(build_response(sso.assertion(None, attributes={"groups": ["gw-admins"]})))
    assert response.status_code == 302
    user = SocialAccount.objects.get().user
    assert OrgMembership.objects.get(user=user).role == "platform_admin"
    assert sso.client.get("/sso/").status_code == 200  # the mapped role opens admin pages


def test_the_idp_page_explains_the_idp_initiated_risk(cast, idp, client) -> None:
    client.force_login(cast.alice)
    html = client.get(f"/sso/{idp.pk}/").content.decode()
    assert "Risk:" in html and "replay cache" in html


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(2)
        if self.path == "/missing":
            self.send_response(404)
            self.end_headers()
            return
        body = metadata_xml().encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metadata_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_metadata_url_is_fetched_and_parsed(cast, metadata_server) -> None:
    from auth.sso.services import IdpValues, idp_save

    idp = idp_save(
        actor=None,
        organisation=cast.org,
        values=IdpValues(metadata_url=metadata_server + "/metadata"),
    )
    assert idp.sso_url == "https://idp.example.test/saml/sso"
    assert idp.metadata_url.endswith("/metadata")


def test_metadata_fetch_errors_are_sentences(metadata_server, settings) -> None:
    settings.AIGATEWAY_SAML_METADATA_TIMEOUT = 0.3
    with pytest.raises(ValidationError, match="in time"):
        fetch_metadata_url(metadata_server + "/slow")
    with pytest.raises(ValidationError, match="HTTP 404"):
        fetch_metadata_url(metadata_server + "/missing")
    with pytest.raises(ValidationError, match="must be an https://"):
        fetch_metadata_url("file:///etc/passwd")


def test_idp_create_accepts_metadata_xml_only(cast) -> None:
    idp = idp_create(
        actor=None, organisation=cast.org, entity_id="", sso_url="", x509cert="",
        metadata_xml=metadata_xml(),
    )  # fmt: skip
    assert idp.slo_url == "https://idp.example.test/saml/slo"


def test_an_sp_key_pair_signs_requests_and_is_published(sso, idp, settings) -> None:
    from urllib.parse import parse_qs, urlparse

    from auth.sso.services import _sync_social_app
    from tests.sso_unit.saml_support import keypair

    sp = keypair("sp")
    settings.AIGATEWAY_SAML_SP_PRIVATE_KEY = sp.key_pem.decode()
    settings.AIGATEWAY_SAML_SP_CERTIFICATE = sp.cert_pem.decode()
    metadata = sso.client.get("/accounts/saml/acme/metadata/").content.decode()
    assert sp.cert_body in metadata and 'AuthnRequestsSigned="true"' in metadata
    sso.client.get("/accounts/saml/acme/login/")
    location = sso.client.post("/accounts/saml/acme/login/")["Location"]
    query = parse_qs(urlparse(location).query)
    assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    assert query["Signature"]
    idp.slo_url = "https://idp.example.test/saml/slo"
    idp.save()
    _sync_social_app(idp)
    assert sso.sign_in().status_code == 302
    logout = parse_qs(urlparse(sso.client.post("/logout/")["Location"]).query)
    assert logout["Signature"] and logout["SAMLRequest"]


def test_the_authn_request_names_the_configured_acs_not_the_host(sso, idp, settings) -> None:
    import base64
    import zlib
    from urllib.parse import parse_qs, urlparse

    from lxml import etree

    settings.AIGATEWAY_SAML_SP_BASE_URL = "https://gw.example.com"
    sso.client.get("/accounts/saml/acme/login/", HTTP_HOST="evil.example")
    location = sso.client.post("/accounts/saml/acme/login/")["Location"]
    encoded = parse_qs(urlparse(location).query)["SAMLRequest"][0]
    request = etree.fromstring(zlib.decompress(base64.b64decode(encoded), -15))
    assert (
        request.get("AssertionConsumerServiceURL")
        == "https://gw.example.com/accounts/saml/acme/acs/"
    )
    issuer = request.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer").text
    assert issuer == "https://gw.example.com/accounts/saml/acme/metadata/"


@pytest.mark.parametrize("message", ["garbage", "PHg+PC94Pg=="])  # not base64; <x></x>
def test_an_invalid_logout_message_is_a_400_page_and_signs_nobody_out(sso, idp, message) -> None:
    assert sso.sign_in().status_code == 302
    response = sso.client.get("/accounts/saml/acme/sls/", {"SAMLResponse": message})
    assert response.status_code == 400
    codes = AuditEvent.objects.filter(action="sso.rejected").values_list("details__code", flat=True)
    assert list(codes) in (["slo_invalid"], ["malformed"])
    assert sso.client.get("/").status_code == 200  # a forged message does not end sessions
