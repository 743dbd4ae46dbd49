"""Our checks on top of python3-saml's, run on a response it has already accepted (signature,
issuer, time window, the audience and destination it found).

python3-saml accepts a response without an AudienceRestriction, without Response@Destination
and without SubjectConfirmationData@NotOnOrAfter: it checks each only when present. We require
them. And python3-saml keeps no record of what it accepted: the replay cache refuses an
assertion id (and a response id) seen once, across sessions and processes (Redis when
REDIS_URL is set, else the process's Django cache)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.core.cache import cache
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from aigateway.core.redis import get_sync_redis

NS = {"samlp": C.NS_SAMLP, "saml": C.NS_SAML}


class SAMLRejected(Exception):
    """A response python3-saml accepted that we refuse; ``reason`` is shown and audited."""

    def __init__(self, reason: str, code: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def _norm(url: str) -> str:
    return OneLogin_Saml2_Utils.normalize_url(url.strip()).rstrip("/")


def check_response(auth: OneLogin_Saml2_Auth, *, acs_url: str, entity_id: str) -> int:
    """Raise SAMLRejected unless the accepted response names our ACS as Destination, restricts
    its audience to us, and bounds its subject confirmation in time with our ACS as Recipient.
    Returns the seconds until the assertion expires (for the replay cache)."""
    document = OneLogin_Saml2_XML.to_etree(auth.get_last_response_xml())
    destination = document.get("Destination") or ""
    if not destination:
        raise SAMLRejected("The response names no Destination.", "no_destination")
    if _norm(destination) != _norm(acs_url):
        raise SAMLRejected("The response was meant for another address.", "wrong_destination")
    # python3-saml has made sure there is exactly one assertion, and that it is signed.
    assertions = document.findall("saml:Assertion", NS)
    if len(assertions) != 1:
        raise SAMLRejected("The response must hold exactly one assertion.", "assertions")
    assertion = assertions[0]
    audiences = [
        (a.text or "").strip()
        for a in assertion.findall("saml:Conditions/saml:AudienceRestriction/saml:Audience", NS)
    ]
    if not audiences:
        raise SAMLRejected("The assertion has no audience restriction.", "no_audience")
    if entity_id not in audiences:
        raise SAMLRejected("The assertion is meant for another service.", "wrong_audience")
    expiries = []
    for confirmation in assertion.findall("saml:Subject/saml:SubjectConfirmation", NS):
        if confirmation.get("Method") != C.CM_BEARER:
            continue
        data = confirmation.find("saml:SubjectConfirmationData", NS)
        if data is None:
            continue
        if _norm(data.get("Recipient") or "") != _norm(acs_url):
            continue
        not_after = data.get("NotOnOrAfter")
        if not_after:
            expiries.append(OneLogin_Saml2_Utils.parse_SAML_to_time(not_after))
    if not expiries:
        raise SAMLRejected(
            "The assertion has no time-limited bearer confirmation for this service.",
            "no_subject_confirmation_expiry",
        )
    remaining = int(max(expiries) - datetime.now(UTC).timestamp())
    if remaining > settings.AIGATEWAY_SAML_REPLAY_SECONDS:
        # We remember ids this long: an assertion valid for longer could be replayed later.
        raise SAMLRejected("The assertion is valid for too long.", "validity_too_long")
    return remaining


def _cache_key(issuer: str, kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{issuer}\x00{kind}\x00{value}".encode()).hexdigest()
    return f"aigateway:sso:seen:{digest}"


def remember_once(*, issuer: str, ids: dict[str, str], ttl_seconds: int) -> None:
    """Record the response and assertion ids; SAMLRejected if one was seen before. Atomic
    (SET NX / cache.add), so two concurrent posts of one response cannot both pass."""
    # Kept a little beyond expiry: python3-saml allows 300 s of clock drift.
    ttl = max(int(ttl_seconds) + 600, 600)
    client = get_sync_redis()
    for kind, value in ids.items():
        if not value:
            continue
        key = _cache_key(issuer, kind, value)
        if client is not None:
            try:
                fresh = bool(client.set(key, b"1", nx=True, ex=ttl))
            except redis.RedisError:
                # Fail closed: without the cache a replay could not be told apart.
                raise SAMLRejected(
                    "Sign-in is unavailable (replay cache unreachable).", "replay_cache_down"
                ) from None
        else:
            fresh = cache.add(key, 1, timeout=ttl)
        if not fresh:
            raise SAMLRejected("This sign-in response was used before.", "replayed")
