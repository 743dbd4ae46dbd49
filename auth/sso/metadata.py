"""IdP metadata and certificates: parse uploaded metadata XML or a metadata URL (fetched with a
timeout and a size cap) with python3-saml's OneLogin_Saml2_IdPMetadataParser, and normalise
an X.509 certificate. Errors are ValidationError with a sentence an admin can act on."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import requests
from cryptography import x509
from django.conf import settings
from django.core.exceptions import ValidationError
from lxml import etree
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.xmlparser import DTDForbidden, EntitiesForbidden, NotSupportedError

MAX_METADATA_BYTES = 1024 * 1024
_PEM_LINES = re.compile(r"-----(BEGIN|END) CERTIFICATE-----")


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_url: str
    slo_url: str
    x509cert: str


def normalise_certificate(text: str) -> str:
    """The base64 body of a PEM or bare certificate, on one line; ValidationError if it is not
    an X.509 certificate."""
    body = "".join(_PEM_LINES.sub("", text or "").split())
    if not body:
        raise ValidationError({"x509cert": "Paste the IdP's signing certificate."})
    try:
        x509.load_der_x509_certificate(base64.b64decode(body, validate=True))
    except (ValueError, binascii.Error):
        raise ValidationError(
            {"x509cert": "This is not an X.509 certificate (PEM or base64 expected)."}
        ) from None
    return body


def parse_metadata_xml(xml: str | bytes, *, entity_id: str | None = None) -> IdpMetadata:
    """The IdP's entity id, HTTP-Redirect SSO/SLO URLs and signing certificate."""
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(xml, entity_id=entity_id or None)
    except (DTDForbidden, EntitiesForbidden, NotSupportedError):
        raise ValidationError(
            {"metadata_xml": "Metadata with a DTD or entities is refused."}
        ) from None
    except (etree.XMLSyntaxError, ValueError, TypeError):
        raise ValidationError({"metadata_xml": "The metadata is not well-formed XML."}) from None
    idp = parsed.get("idp") or {}
    sso = (idp.get("singleSignOnService") or {}).get("url", "")
    if not idp.get("entityId") or not sso:
        raise ValidationError(
            {
                "metadata_xml": "No IdP with an HTTP-Redirect single sign-on service was found "
                "in the metadata."
            }
        )
    cert = idp.get("x509cert") or ""
    multi = idp.get("x509certMulti") or {}
    if not cert and multi.get("signing"):
        cert = multi["signing"][0]
    if not cert:
        raise ValidationError({"metadata_xml": "The metadata holds no signing certificate."})
    slo = (idp.get("singleLogoutService") or {}).get("url", "")
    return IdpMetadata(
        entity_id=idp["entityId"],
        sso_url=sso,
        slo_url=slo,
        x509cert=normalise_certificate(cert),
    )


def fetch_metadata_url(url: str) -> str:
    """The metadata document at ``url`` (http/https, AIGATEWAY_SAML_METADATA_TIMEOUT, 1 MiB)."""
    if not url.startswith(("https://", "http://")):
        raise ValidationError(
            {"metadata_url": "The metadata URL must be an https:// (or http://) URL."}
        )
    try:
        with requests.get(
            url, timeout=settings.AIGATEWAY_SAML_METADATA_TIMEOUT, stream=True
        ) as response:
            if response.status_code != 200:
                raise ValidationError(
                    {"metadata_url": f"The metadata URL answered HTTP {response.status_code}."}
                )
            body = b""
            for chunk in response.iter_content(65536):
                body += chunk
                if len(body) > MAX_METADATA_BYTES:
                    raise ValidationError({"metadata_url": "The metadata is larger than 1 MiB."})
    except requests.Timeout:
        raise ValidationError(
            {"metadata_url": "The metadata URL did not answer in time."}
        ) from None
    except requests.RequestException:
        raise ValidationError({"metadata_url": "The metadata URL could not be fetched."}) from None
    return body.decode("utf-8", errors="replace")
