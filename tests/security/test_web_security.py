"""The browser-facing side under hostile use: CSRF on every form of the site, the security
headers on every kind of response (pages, sign-in, API, error pages), and next= redirects that
never leave the site. XSS: test_xss.py; sign-in throttling: test_login_throttle.py."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from django.apps import apps
from django.test import Client

from auth.sso.session import SESSION_KEY
from tests.security.web_support import build_hostile_world, site_urls

# csrf_exempt views outside the management API, and why they may be.
EXPECTED_EXEMPT = {
    "saml_acs": "the IdP's auto-posting form: the signed SAML response is the proof",
    "sso_sls": "the IdP's logout message, checked by python3-saml",
}


def _rows() -> dict[str, list[dict[str, Any]]]:
    return {m._meta.label: list(m.objects.order_by("pk").values()) for m in apps.get_models()}


def _is_csrf_refusal(response: Any) -> bool:
    return response.status_code == 403 and b"CSRF verification failed" in response.content


@pytest.mark.django_db
def test_every_post_without_a_csrf_token_is_refused_and_changes_nothing(cast):
    world = build_hostile_world(cast)
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)
    before = _rows()
    forms, exempt, management, wrong = [], set(), 0, []
    for path, url in site_urls(world.values):
        is_management = url.name.startswith("management:")
        if url.csrf_exempt and not is_management:
            exempt.add(url.name.split(":")[-1])
            continue
        response = client.post(path, {"name": "changed", "value": "1", "action": "open"})
        if is_management:  # ninja checks the session's CSRF token itself (SessionAuth)
            management += 1
            if response.status_code not in (401, 403, 405):
                wrong.append(f"{path}: {response.status_code}")
            continue
        if url.methods is None or "POST" in url.methods:
            forms.append(url.name)
        if not _is_csrf_refusal(response):
            wrong.append(f"{path} ({url.name}): {response.status_code}")
    assert wrong == [], "POSTs without a CSRF token that were not refused"
    assert exempt == set(EXPECTED_EXEMPT), "a new csrf_exempt view: say why, or protect it"
    assert _rows() == before
    # The walk found the site's forms (a broken walk would pass the checks above vacuously).
    assert len(forms) >= 40 and management >= 20, (len(forms), management)
    assert {
        "web:team_key_issue",
        "web:login",
        "web:logout",
        "sso:rule_add",
        "playground:stream",
    } <= set(forms)


@pytest.mark.django_db
def test_the_same_post_with_the_token_gets_past_the_csrf_check(cast):
    build_hostile_world(cast)
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)
    client.get("/teams/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/guardrails/try/", {"text": "hello"}, headers={"X-CSRFToken": token})
    assert response.status_code != 403 and not _is_csrf_refusal(response)


# -- headers ---------------------------------------------------------------------------------
def _assert_page_headers(response: Any) -> None:
    csp = response["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp, (directive, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response  # plain http


@pytest.mark.django_db
def test_pages_and_the_login_page_carry_the_security_headers(cast):
    _assert_page_headers(Client().get("/login/"))
    client = Client()
    client.force_login(cast.alice)
    for path in ("/", "/teams/", "/playground/", "/sso/", "/api/docs"):
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_page_headers(response)


@pytest.mark.django_db
@pytest.mark.urls("tests.security.error_urls")
def test_error_pages_carry_the_headers_and_no_debug_output(cast, settings):
    assert settings.DEBUG is False
    client = Client(raise_request_exception=False)
    client.force_login(cast.eve)
    answers = {
        404: client.get("/no-such-page/"),
        400: client.get("/login/", headers={"Host": "evil.example"}),
        403: Client(enforce_csrf_checks=True).post("/login/", {"username": "x"}),
        500: client.get("/boom/"),
    }
    for status, response in answers.items():
        assert response.status_code == status
        _assert_page_headers(response)
        body = response.content.decode()
        for debug in (
            "Traceback",
            "secret-boom-detail",
            "Request Method:",
            "Django Version",
            "settings.py",
            "/work/",
        ):
            assert debug not in body, (status, debug)


@pytest.mark.django_db(transaction=True)
def test_api_door_responses_get_nosniff_and_a_constant_deny_all_policy(live_gateway):
    for path in ("/v1/models", "/v1/no-such-endpoint"):
        reply = requests.get(live_gateway.base_url + path, timeout=10)
        assert reply.status_code in (401, 404) and reply.headers["Content-Type"].startswith(
            "application/json"
        )
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert (
            reply.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        )
    page = requests.get(live_gateway.base_url + "/login/", timeout=10)
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]


@pytest.mark.django_db
def test_hsts_is_sent_only_over_tls(settings):
    assert "Strict-Transport-Security" not in Client().get("/login/")
    assert Client().get("/login/", secure=True)["Strict-Transport-Security"] == "max-age=31536000"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = Client().get("/login/", headers={"X-Forwarded-Proto": "https"})
    assert proxied["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.django_db
def test_session_and_csrf_cookies_are_http_only_and_same_site_lax(cast, settings):
    client = Client()
    client.get("/login/")
    signed_in = client.post("/login/", {"username": "alice", "password": "pw-alice-secret"})
    assert signed_in.status_code == 302
    for name in ("sessionid", "csrftoken"):
        cookie = client.cookies[name]
        assert cookie["httponly"] and cookie["samesite"] == "Lax", name
        assert not cookie["secure"]  # plain http in tests
    settings.SESSION_COOKIE_SECURE = True
    over_tls = Client()
    over_tls.post("/login/", {"username": "alice", "password": "pw-alice-secret"})
    assert over_tls.cookies["sessionid"]["secure"]


@pytest.mark.parametrize(
    ("env", "secure"),
    [
        ({}, "False"),
        ({"CSRF_TRUSTED_ORIGINS": "https://gw.example"}, "True"),
        ({"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"}, "True"),
        (
            {
                "CSRF_TRUSTED_ORIGINS": "https://gw.example",
                "SESSION_COOKIE_SECURE": "false",
                "CSRF_COOKIE_SECURE": "false",
            },
            "False",
        ),
    ],
)
def test_cookies_are_secure_by_default_once_the_gateway_is_served_over_https(env, secure):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "CSRF_TRUSTED_ORIGINS",
            "SECURE_PROXY_SSL_HEADER",
            "SESSION_COOKIE_SECURE",
            "AIGATEWAY_SAML_SP_BASE_URL",
        )
    }
    code = (
        "from aigateway import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env, "AIGATEWAY_ALLOW_INSECURE_DEFAULTS": "true"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.split() == [secure, secure]


@pytest.mark.django_db
def test_only_sso_pages_let_a_form_reach_the_idp(cast):
    world = build_hostile_world(cast)
    idp = cast.org.identity_provider
    confirm = Client().get(f"/accounts/saml/{cast.org.slug}/login/")
    assert confirm.status_code == 200
    assert "form-action 'self' https://idp.hostile.test;" in confirm["Content-Security-Policy"]
    idp.slo_url = "https://slo.hostile.test:8443/logout"
    idp.save()
    client = Client()
    client.force_login(cast.alice)
    assert "form-action 'self';" in client.get("/teams/")["Content-Security-Policy"]
    session = client.session
    session[SESSION_KEY] = {"idp": idp.pk, "org": cast.org.pk}
    session.save()
    page = client.get("/teams/")
    assert "form-action 'self' https://slo.hostile.test:8443;" in page["Content-Security-Policy"]
    assert world.tags  # the world was built


# -- redirects -------------------------------------------------------------------------------
EVIL_NEXT = [
    "https://evil.example/steal",
    "//evil.example/steal",
    "/\\evil.example/steal",
    "\\\\evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "http://testserver@evil.example/",
]


def _stays_on_site(response: Any) -> None:
    location = response["Location"]
    parts = urlsplit(location)
    assert parts.scheme == "" and parts.netloc == "", location
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", EVIL_NEXT)
def test_password_sign_in_never_follows_an_off_site_next(cast, next_url):
    client = Client()
    page = client.get(f"/login/?next={quote(next_url)}")
    assert page.status_code == 200
    response = client.post(
        f"/login/?next={quote(next_url)}",
        {"username": "alice", "password": "pw-alice-secret", "next": next_url},
    )
    assert response.status_code == 302
    _stays_on_site(response)
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_password_sign_in_follows_a_local_next(cast):
    response = Client().post(
        "/login/", {"username": "alice", "password": "pw-alice-secret", "next": "/audit/"}
    )
    assert response["Location"] == "/audit/"


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", EVIL_NEXT)
def test_sign_out_and_allauth_names_never_redirect_off_site(cast, next_url):
    client = Client()
    client.force_login(cast.alice)
    response = client.post(f"/logout/?next={quote(next_url)}", {"next": next_url})
    assert response.status_code == 302
    _stays_on_site(response)
    _stays_on_site(Client().get(f"/accounts/login/?next={quote(next_url)}"))
