"""Alter a real IdP response and, where a case needs it, re-sign it with python-xmlsec.

A test takes the SAMLResponse the IdP produced (tests/sso/idp.py), changes one thing, and
re-signs with the IdP's own key so that the signature is valid and only the change is under
test. Signatures are made the way IdPs make them: enveloped + exclusive c14n, RSA-SHA256 over a
SHA-256 digest, the ``ds:Signature`` placed right after ``saml:Issuer``, the certificate in
KeyInfo. The Assertion is signed first, then the Response (whose digest covers the Assertion's
signature).
"""

from __future__ import annotations

import base64
import copy
import datetime
import secrets
from collections.abc import Iterable

import xmlsec
from lxml import etree

from tests.sso.keys import KeyPair

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
SAMLP = "{{{}}}".format(NS["samlp"])
SAML = "{{{}}}".format(NS["saml"])
DS = "{{{}}}".format(NS["ds"])

RSA_SHA256 = (xmlsec.Transform.RSA_SHA256, xmlsec.Transform.SHA256)
RSA_SHA1 = (xmlsec.Transform.RSA_SHA1, xmlsec.Transform.SHA1)


# -- (de)serialising --------------------------------------------------------------------------
def decode(saml_response: str) -> etree._Element:
    """The Response element of a base64 SAMLResponse."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
    return etree.fromstring(base64.b64decode(saml_response), parser)


def encode(root: etree._Element) -> str:
    return base64.b64encode(etree.tostring(root, xml_declaration=True, encoding="UTF-8")).decode()


def one(root: etree._Element, xpath: str) -> etree._Element:
    found = root.xpath(xpath, namespaces=NS)
    assert len(found) == 1, f"{xpath}: {len(found)} matches"
    return found[0]


def assertion(root: etree._Element) -> etree._Element:
    return one(root, "saml:Assertion")


def new_id() -> str:
    return "id-" + secrets.token_hex(12)


# -- signatures ---------------------------------------------------------------------------
def strip_signatures(element: etree._Element) -> etree._Element:
    """Remove every ds:Signature at or under ``element`` (returns it, changed in place)."""
    for signature in element.xpath(".//ds:Signature", namespaces=NS):
        signature.getparent().remove(signature)
    return element


def sign(
    element: etree._Element,
    keys: KeyPair,
    *,
    algorithm: tuple[object, object] = RSA_SHA256,
) -> etree._Element:
    """Enveloped signature over ``element`` (referenced by its ID), right after its Issuer."""
    sign_method, digest_method = algorithm
    signature = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N, sign_method, ns="ds")
    issuer = element.find(f"{SAML}Issuer")
    # Schema order: the signature follows Issuer in both Response and Assertion.
    if issuer is not None:
        issuer.addnext(signature)
    else:
        element.insert(0, signature)
    reference = xmlsec.template.add_reference(signature, digest_method, uri="#" + element.get("ID"))
    xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    x509_data = xmlsec.template.add_x509_data(key_info)
    xmlsec.template.x509_data_add_certificate(x509_data)
    # xmlsec resolves "#ID" through attributes registered as XML ids in the whole document.
    xmlsec.tree.add_ids(element.getroottree().getroot(), ["ID"])
    context = xmlsec.SignatureContext()
    key = xmlsec.Key.from_memory(keys.key_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(keys.cert_pem, xmlsec.constants.KeyDataFormatPem)
    context.key = key
    context.sign(signature)
    return signature


def resign(
    root: etree._Element,
    keys: KeyPair,
    *,
    assertion_signed: bool = True,
    response_signed: bool = True,
    algorithm: tuple[object, object] = RSA_SHA256,
) -> etree._Element:
    """Drop all signatures, then sign the Assertion and then the Response."""
    strip_signatures(root)
    if assertion_signed:
        for node in root.findall(f"{SAML}Assertion"):
            sign(node, keys, algorithm=algorithm)
    if response_signed:
        sign(root, keys, algorithm=algorithm)
    return root


def verify(element: etree._Element, cert_pem: bytes) -> bool:
    """Whether ``element``'s own enveloped signature is valid under ``cert_pem``."""
    signature = element.find(f"{DS}Signature")
    if signature is None:
        return False
    xmlsec.tree.add_ids(element.getroottree().getroot(), ["ID"])
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    try:
        context.verify(signature)
    except xmlsec.Error:
        return False
    return True


# -- content changes ------------------------------------------------------------------------
def set_attribute(root: etree._Element, name: str, values: Iterable[str]) -> None:
    """Replace the values of attribute ``name`` in every assertion of the response."""
    for attribute in root.xpath(f".//saml:Attribute[@Name='{name}']", namespaces=NS):
        template = attribute.find(f"{SAML}AttributeValue")
        for value in attribute.findall(f"{SAML}AttributeValue"):
            attribute.remove(value)
        for text in values:
            value = copy.deepcopy(template)
            value.text = text
            attribute.append(value)


def set_subject(root: etree._Element, uid: str) -> None:
    """Point every assertion at another subject (NameID and the uid attribute)."""
    for name_id in root.xpath(".//saml:Subject/saml:NameID", namespaces=NS):
        name_id.text = uid
    set_attribute(root, "uid", [uid])


# -- signature wrapping (XSW) ---------------------------------------------------------------
# The attacker holds a genuine response for their own account (signed Assertion) and wants the
# SP to read an assertion they wrote. They cannot sign, so the Response signature is dropped
# (an IdP that signs only assertions is a normal configuration) and the genuine signed
# assertion is kept somewhere the signature check may still find it.
def _evil_copy(original: etree._Element, victim_uid: str) -> etree._Element:
    evil = strip_signatures(copy.deepcopy(original))
    evil.set("ID", new_id())
    set_subject(evil, victim_uid)
    return evil


def wrap_extra_assertion(root: etree._Element, victim_uid: str) -> etree._Element:
    """Shape 1: an unsigned evil assertion placed before the genuine signed one."""
    strip_response_signature(root)
    original = assertion(root)
    original.addprevious(_evil_copy(original, victim_uid))
    return root


def wrap_in_extensions(root: etree._Element, victim_uid: str) -> etree._Element:
    """Shape 2: the genuine signed assertion moved into samlp:Extensions; the evil copy (same
    ID, so a reference resolver that takes the first match lands on either) takes its place."""
    strip_response_signature(root)
    original = assertion(root)
    evil = _evil_copy(original, victim_uid)
    evil.set("ID", original.get("ID"))
    original.addprevious(evil)
    extensions = etree.Element(f"{SAMLP}Extensions")
    root.find(f"{SAML}Issuer").addnext(extensions)
    extensions.append(original)  # moves it
    return root


def wrap_in_object(root: etree._Element, victim_uid: str) -> etree._Element:
    """Shape 3: the evil assertion carries the genuine Signature, whose ds:Object holds the
    genuine assertion (signature removed, so its digest still matches)."""
    strip_response_signature(root)
    original = assertion(root)
    evil = _evil_copy(original, victim_uid)
    signature = original.find(f"{DS}Signature")
    original.remove(signature)
    evil.find(f"{SAML}Issuer").addnext(signature)
    holder = etree.SubElement(signature, f"{DS}Object")
    original.addprevious(evil)
    holder.append(original)  # moves it out of the Response
    return root


def strip_response_signature(root: etree._Element) -> None:
    signature = root.find(f"{DS}Signature")
    if signature is not None:
        root.remove(signature)


TIME_ATTRIBUTES = (
    "IssueInstant",
    "NotBefore",
    "NotOnOrAfter",
    "AuthnInstant",
    "SessionNotOnOrAfter",
)


def shift_times(root: etree._Element, seconds: int) -> None:
    """Move every instant in the response by ``seconds`` (a response from the past/future)."""
    for node in root.iter():
        for name in TIME_ATTRIBUTES:
            value = node.get(name)
            if value:
                instant = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
                shifted = instant + datetime.timedelta(seconds=seconds)
                node.set(name, shifted.strftime("%Y-%m-%dT%H:%M:%SZ"))


def set_in_response_to(root: etree._Element, value: str) -> None:
    for node in root.iter():
        if node.get("InResponseTo") is not None:
            node.set("InResponseTo", value)


def set_issuer(root: etree._Element, entity_id: str) -> None:
    for issuer in root.iter(f"{SAML}Issuer"):
        issuer.text = entity_id
