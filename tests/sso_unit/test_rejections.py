"""Responses our SP refuses beyond python3-saml's own checks, replays, IdP-initiated sign-in
and malformed input: a clear page, an audit entry, never a session and never a 500."""

from __future__ import annotations

import base64

import pytest
from allauth.socialaccount.models import SocialAccount

from aigateway.audit.models import AuditEvent
from tests.sso_unit.saml_support import build_response, keypair

pytestmark = pytest.mark.django_db


def _refused(response, code: str, status: int = 403) -> None:
    assert response.status_code == status, response.content[:600]
    assert not SocialAccount.objects.exists()
    events = AuditEvent.objects.filter(action__in=["sso.rejected", "sso.denied"])
    assert [e.details["code"] for e in events] == [code]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"audience": None}, "no_audience"),
        ({"destination": None}, "no_destination"),
        ({"scd_not_on_or_after": None}, "no_subject_confirmation_expiry"),
        ({"scd_not_on_or_after": 3 * 24 * 3600}, "validity_too_long"),
    ],
)
def test_it_requires_what_python3_saml_lets_pass(sso, idp, change, code) -> None:
    _refused(sso.sign_in(**change), code)


@pytest.mark.parametrize(
    "change",
    [
        {"audience": "http://testserver/accounts/saml/globex/metadata/"},
        {"destination": "http://testserver/accounts/saml/globex/acs/"},
        {"issuer": "https://evil.example.test/"},
        {"recipient": "http://evil.example.test/acs/"},
        {"scd_not_on_or_after": -3600},
    ],
)
def test_python3_saml_refusals_get_our_page_and_audit(sso, idp, change) -> None:
    _refused(sso.sign_in(**change), "saml_error")


def test_a_response_signed_by_another_key_is_refused(sso, idp) -> None:
    request_id = sso.start()
    forged = build_response(sso.assertion(request_id), keypair("attacker"))
    _refused(sso.post(forged), "saml_error")


def test_it_rejects_a_replayed_assertion_in_a_fresh_session(sso, idp) -> None:
    from django.test import Client

    request_id = sso.start()
    response = build_response(sso.assertion(request_id))
    assert sso.post(response).status_code == 302
    # Another browser that started its own sign-in, fed the captured response.
    thief = type(sso)(Client(HTTP_HOST="testserver"))
    thief.start()
    refused = thief.post(response)
    assert refused.status_code == 403
    codes = list(
        AuditEvent.objects.filter(action="sso.rejected").values_list("details__code", flat=True)
    )
    assert codes and codes[-1] in ("replayed", "unknown_in_response_to")


def test_replay_cache_refuses_a_reused_assertion_even_when_idp_initiated_is_on(sso, idp) -> None:
    idp.allow_idp_initiated = True
    idp.save()
    from auth.sso.services import _sync_social_app

    _sync_social_app(idp)
    response = build_response(sso.assertion(None))
    assert sso.post(response).status_code == 302
    sso.client.logout()
    _refused_codes = sso.post(response)
    assert _refused_codes.status_code == 403
    assert AuditEvent.objects.filter(action="sso.rejected", details__code="replayed").exists()


def test_idp_initiated_sign_in_is_off_by_default(sso, idp) -> None:
    _refused(sso.post(build_response(sso.assertion(None))), "idp_initiated")


def test_an_unknown_in_response_to_is_refused(sso, idp) -> None:
    sso.start()
    _refused(sso.post(build_response(sso.assertion("_not-ours"))), "unknown_in_response_to")


@pytest.mark.parametrize(
    "payload",
    [
        b"<samlp:Response xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'",  # truncated
        b"<?xml version='1.0'?><!DOCTYPE r [<!ENTITY x 'y'>]><r>&x;</r>",  # DTD
        b"not xml at all",
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_responses_get_a_400_page_never_a_500(sso, idp, payload) -> None:
    sso.start()
    response = sso.post(base64.b64encode(payload).decode())
    assert response.status_code == 400, response.content[:500]
    assert b"Bad sign-in response" in response.content
    assert AuditEvent.objects.filter(action="sso.rejected", details__code="malformed").exists()


@pytest.mark.parametrize("posted", ["%%%not-base64%%%", "", base64.b64encode(b"<x/>").decode()])
def test_non_saml_posts_are_a_400(sso, idp, posted) -> None:
    sso.start()
    response = sso.post(posted)
    assert response.status_code == 400
    assert AuditEvent.objects.filter(action="sso.rejected", details__code="malformed").exists()
    # The stored post is gone: finishing again is refused, not re-read.
    assert sso.client.get("/accounts/saml/acme/acs/finish/").status_code == 403


def test_finish_without_a_posted_response_is_refused(sso, idp) -> None:
    response = sso.client.get("/accounts/saml/acme/acs/finish/")
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="sso.rejected").exists()


def test_a_disabled_idp_signs_nobody_in(sso, idp) -> None:
    idp.enabled = False
    idp.save()
    response = sso.client.post("/accounts/saml/acme/login/")
    assert response.status_code == 403
    assert sso.client.get("/accounts/saml/acme/metadata/").status_code == 404


def test_unknown_organisation_is_404(sso, idp) -> None:
    assert sso.client.get("/accounts/saml/nope/login/").status_code == 404
