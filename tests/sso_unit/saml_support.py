"""A minimal in-test IdP for unit tests: an RSA key and self-signed certificate, and signed
SAML responses built from parts a test can change (python-xmlsec: enveloped, exclusive c14n,
RSA-SHA256, the signature after Issuer). The full real-IdP suite (pysaml2) is tests/sso/."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qs, urlparse

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

IDP_ENTITY_ID = "https://idp.example.test/saml/metadata"
IDP_SSO_URL = "https://idp.example.test/saml/sso"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


@dataclass(frozen=True)
class KeyPair:
    key_pem: bytes
    cert_pem: bytes

    @property
    def cert_body(self) -> str:
        return "".join(self.cert_pem.decode().splitlines()[1:-1])


@lru_cache(maxsize=4)
def keypair(name: str = "idp") -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
    )


def _instant(delta_seconds: int = 0) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delta_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Assertion:
    """What goes into a response; None leaves an element or attribute out."""

    acs_url: str
    audience: str | None
    in_response_to: str | None
    name_id: str = "user-1"
    issuer: str = IDP_ENTITY_ID
    destination: str | None = "same-as-acs"
    recipient: str | None = "same-as-acs"
    scd_not_on_or_after: int | None = 300
    attributes: dict[str, list[str]] = field(default_factory=dict)
    sign: bool = True
    response_id: str = field(default_factory=lambda: "_r" + uuid.uuid4().hex)
    assertion_id: str = field(default_factory=lambda: "_a" + uuid.uuid4().hex)


def _sign(element: etree._Element, element_id: str, pair: KeyPair) -> None:
    signature = xmlsec.template.create(
        element, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds"
    )
    element.insert(1, signature)  # right after Issuer
    ref = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri="#" + element_id
    )
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    key = xmlsec.Key.from_memory(pair.key_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(pair.cert_pem, xmlsec.constants.KeyDataFormatPem)
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    xmlsec.tree.add_ids(element, ["ID"])
    ctx.sign(signature)


def build_response(a: Assertion, pair: KeyPair | None = None) -> str:
    """A base64 SAMLResponse with the assertion signed by ``pair`` (the IdP's by default)."""
    pair = pair or keypair()
    nsmap = {"samlp": SAMLP, "saml": SAML}
    response = etree.Element(f"{{{SAMLP}}}Response", nsmap=nsmap)
    response.set("ID", a.response_id)
    response.set("Version", "2.0")
    response.set("IssueInstant", _instant())
    if a.destination is not None:
        response.set("Destination", a.acs_url if a.destination == "same-as-acs" else a.destination)
    if a.in_response_to:
        response.set("InResponseTo", a.in_response_to)
    etree.SubElement(response, f"{{{SAML}}}Issuer").text = a.issuer
    status = etree.SubElement(response, f"{{{SAMLP}}}Status")
    etree.SubElement(status, f"{{{SAMLP}}}StatusCode").set(
        "Value", "urn:oasis:names:tc:SAML:2.0:status:Success"
    )
    assertion = etree.SubElement(response, f"{{{SAML}}}Assertion")
    assertion.set("ID", a.assertion_id)
    assertion.set("Version", "2.0")
    assertion.set("IssueInstant", _instant())
    etree.SubElement(assertion, f"{{{SAML}}}Issuer").text = a.issuer
    subject = etree.SubElement(assertion, f"{{{SAML}}}Subject")
    name_id = etree.SubElement(subject, f"{{{SAML}}}NameID")
    name_id.set("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
    name_id.text = a.name_id
    confirmation = etree.SubElement(subject, f"{{{SAML}}}SubjectConfirmation")
    confirmation.set("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
    data = etree.SubElement(confirmation, f"{{{SAML}}}SubjectConfirmationData")
    if a.scd_not_on_or_after is not None:
        data.set("NotOnOrAfter", _instant(a.scd_not_on_or_after))
    if a.recipient is not None:
        data.set("Recipient", a.acs_url if a.recipient == "same-as-acs" else a.recipient)
    if a.in_response_to:
        data.set("InResponseTo", a.in_response_to)
    conditions = etree.SubElement(assertion, f"{{{SAML}}}Conditions")
    conditions.set("NotBefore", _instant(-60))
    conditions.set("NotOnOrAfter", _instant(300))
    if a.audience is not None:
        restriction = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
        etree.SubElement(restriction, f"{{{SAML}}}Audience").text = a.audience
    statement = etree.SubElement(assertion, f"{{{SAML}}}AuthnStatement")
    statement.set("AuthnInstant", _instant())
    statement.set("SessionIndex", "_s" + uuid.uuid4().hex)
    context = etree.SubElement(statement, f"{{{SAML}}}AuthnContext")
    etree.SubElement(
        context, f"{{{SAML}}}AuthnContextClassRef"
    ).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
    attributes = etree.SubElement(assertion, f"{{{SAML}}}AttributeStatement")
    for name, values in (a.attributes or {"email": ["x@example.test"]}).items():
        attribute = etree.SubElement(attributes, f"{{{SAML}}}Attribute")
        attribute.set("Name", name)
        for value in values:
            etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = value
    if a.sign:
        _sign(assertion, a.assertion_id, pair)
    return base64.b64encode(etree.tostring(response)).decode()


def authn_request_id(location: str) -> str:
    """The ID of the AuthnRequest in an HTTP-Redirect URL to the IdP."""
    encoded = parse_qs(urlparse(location).query)["SAMLRequest"][0]
    xml = zlib.decompress(base64.b64decode(encoded), -15)
    return etree.fromstring(xml).get("ID")
