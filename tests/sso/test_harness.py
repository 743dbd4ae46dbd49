"""The test IdP and the tamper helper on their own, checked by python3-saml (no gateway).

python3-saml is the library the SP uses underneath; here it plays a strict SP with the IdP's
certificate, so the harness is known to be right before any SP test relies on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from tests.sso import tamper
from tests.sso.driver import form_with
from tests.sso.idp import TestIdp
from tests.sso.keys import make_key_pair

SP = "http://127.0.0.1:9/accounts/saml/acme/metadata/"
ACS = "http://127.0.0.1:9/accounts/saml/acme/acs/"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestIdp]:
    with TestIdp(name="harness", workdir=Path(tmp_path_factory.mktemp("harness"))) as server:
        server.add_user("ann", email="ann@acme.test", display_name="Ann",
                        groups=["zz", "engineers", "admins"])  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def sp(idp: TestIdp) -> OneLogin_Saml2_Settings:
    settings = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {"entityId": SP, "assertionConsumerService": {"url": ACS}},
            "idp": {
                "entityId": idp.entity_id,
                "singleSignOnService": {"url": idp.sso_url},
                "x509cert": idp.keys.cert_b64,
            },
            "security": {"wantAssertionsSigned": True, "rejectDeprecatedAlgorithm": True},
        },
        sp_validation_only=True,
    )
    idp.trust_sp_metadata(settings.get_sp_metadata(), replace=True)
    return settings


def _validate(
    sp: OneLogin_Saml2_Settings, saml_response: str, request_id: str
) -> OneLogin_Saml2_Response:
    response = OneLogin_Saml2_Response(sp, saml_response)
    request_data = {
        "https": "off",
        "http_host": "127.0.0.1:9",
        "script_name": "/accounts/saml/acme/acs/",
        "post_data": {"SAMLResponse": saml_response},
    }
    response.is_valid(request_data, request_id=request_id, raise_exceptions=True)
    return response


def _login(idp: TestIdp, sp: OneLogin_Saml2_Settings) -> tuple[str, str]:
    """An HTTP-Redirect AuthnRequest in, the IdP's form filled, the posted SAMLResponse out."""
    request = OneLogin_Saml2_Authn_Request(sp)
    http = requests.Session()
    page = http.get(idp.sso_url, params={"SAMLRequest": request.get_request(), "RelayState": "r"})
    form = form_with(page, "username")
    form.fields.update(username="ann", password=idp.users["ann"].password)
    auto_post = form_with(http.post(form.action, data=form.fields), "SAMLResponse")
    assert auto_post.action == ACS and auto_post.fields["RelayState"] == "r"
    return auto_post.fields["SAMLResponse"], request.get_id()


def test_the_idp_answers_a_redirect_request_with_a_signed_sha256_response(idp, sp) -> None:
    saml_response, request_id = _login(idp, sp)
    response = _validate(sp, saml_response, request_id)
    assert response.get_nameid() == "ann"
    assert response.get_attributes()["groups"] == ["zz", "engineers", "admins"]
    xml = tamper.decode(saml_response)
    methods = xml.xpath("//ds:SignatureMethod/@Algorithm", namespaces=tamper.NS)
    digests = xml.xpath("//ds:DigestMethod/@Algorithm", namespaces=tamper.NS)
    assert methods == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"] * 2
    assert digests == ["http://www.w3.org/2001/04/xmlenc#sha256"] * 2


def test_the_idp_refuses_a_wrong_password(idp, sp) -> None:
    request = OneLogin_Saml2_Authn_Request(sp)
    http = requests.Session()
    form = form_with(
        http.get(idp.sso_url, params={"SAMLRequest": request.get_request()}), "username"
    )
    form.fields.update(username="ann", password="nope")
    page = http.post(form.action, data=form.fields)
    assert "Wrong username or password" in page.text and "SAMLResponse" not in page.text


def test_a_re_signed_response_is_as_valid_as_the_original(idp, sp) -> None:
    saml_response, request_id = _login(idp, sp)
    root = tamper.resign(tamper.decode(saml_response), idp.keys)
    assert tamper.verify(root, idp.keys.cert_pem)
    assert tamper.verify(tamper.assertion(root), idp.keys.cert_pem)
    _validate(sp, tamper.encode(root), request_id)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda root, idp: tamper.strip_signatures(root), id="unsigned"),
        pytest.param(
            lambda root, idp: tamper.set_attribute(root, "groups", ["admins"]), id="edited"
        ),
        pytest.param(lambda root, idp: tamper.resign(root, make_key_pair("evil")), id="other-key"),
        pytest.param(
            lambda root, idp: tamper.resign(root, idp.keys, algorithm=tamper.RSA_SHA1),
            id="rsa-sha1",
        ),
        pytest.param(lambda root, idp: tamper.wrap_in_object(root, "victim"), id="xsw-object"),
    ],
)
def test_the_tampered_variants_are_invalid_for_a_strict_sp(idp, sp, change) -> None:
    saml_response, request_id = _login(idp, sp)
    root = tamper.decode(saml_response)
    change(root, idp)
    with pytest.raises(OneLogin_Saml2_ValidationError):
        _validate(sp, tamper.encode(root), request_id)


def test_the_idp_can_answer_unsolicited(idp, sp) -> None:
    issued = idp.unsolicited_response("ann", sp_entity_id=SP, acs_url=ACS)
    root = tamper.decode(issued.saml_response)
    assert root.get("InResponseTo") is None
    assert tamper.verify(tamper.assertion(root), idp.keys.cert_pem)
