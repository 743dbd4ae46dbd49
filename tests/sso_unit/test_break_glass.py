"""Break-glass: password + RFC 6238 TOTP; local password sign-in switched off per
organisation; deprovisioning of SSO sessions at the next request."""

from __future__ import annotations

import io
import re
import time

import pytest
from django.core.management import call_command
from django.test import Client

from aigateway.audit.models import AuditEvent
from auth.models import OrgMembership, TeamMembership
from auth.sso.models import TotpDevice
from auth.sso.totp import hotp, totp, totp_enrol, totp_verify

pytestmark = pytest.mark.django_db

RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # b32 of "12345678901234567890" (RFC 6238)


@pytest.mark.parametrize(
    ("at", "code"),
    [(59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")],
)
def test_totp_matches_the_rfc_6238_test_vectors(at, code) -> None:
    assert totp(RFC_SECRET, at=at) == code


def test_hotp_matches_rfc_4226() -> None:
    assert [hotp(RFC_SECRET, i) for i in range(3)] == ["755224", "287082", "359152"]


def _login(client: Client, username: str, otp: str = "") -> object:
    return client.post(
        "/login/", {"username": username, "password": f"pw-{username}-secret", "otp": otp}
    )


def test_right_code_signs_in_wrong_and_replayed_codes_do_not(cast) -> None:
    secret = totp_enrol(user=cast.alice)
    client = Client()
    assert _login(client, "alice").status_code == 200  # no code: refused
    assert (
        _login(client, "alice", "000000" if totp(secret) != "000000" else "111111").status_code
        == 200
    )
    code = totp(secret)
    assert _login(client, "alice", code).status_code == 302
    again = Client()
    refused = _login(again, "alice", code)  # same code, same time step: replay
    assert refused.status_code == 200
    assert "already used" in refused.content.decode()
    failures = AuditEvent.objects.filter(action="auth.login_failed", target_label="alice")
    assert failures.count() == 3


def test_wrong_codes_are_throttled(cast) -> None:
    secret = totp_enrol(user=cast.alice)
    device = TotpDevice.objects.get(user=cast.alice)
    wrong = f"{(int(totp(secret)) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert not totp_verify(device, wrong)
    assert not totp_verify(device, totp(secret))  # locked for a while, even the right code


def test_drift_of_one_step_is_accepted_and_older_steps_are_not(cast) -> None:
    secret = totp_enrol(user=cast.alice)
    device = TotpDevice.objects.get(user=cast.alice)
    now = time.time()
    assert totp_verify(device, totp(secret, at=now - 30), at=now)
    assert not totp_verify(device, totp(secret, at=now - 90), at=now)


def test_local_login_off_refuses_members_but_allows_break_glass(cast) -> None:
    cast.org.local_login_enabled = False
    cast.org.save()
    refused = _login(Client(), "carol")
    assert refused.status_code == 200
    assert "Password sign-in is off" in refused.content.decode()
    assert _login(Client(), "eve").status_code == 302  # globex still allows passwords
    secret = totp_enrol(user=cast.alice)
    assert _login(Client(), "alice", totp(secret)).status_code == 302


def test_the_login_page_lists_sso_and_folds_the_password_form(cast, idp) -> None:
    cast.org.local_login_enabled = False
    cast.org.save()
    html = Client().get("/login/?org=acme").content.decode()
    assert "Sign in with Acme SSO" in html
    assert 'href="/accounts/saml/acme/login/"' in html
    assert "<summary>Break-glass sign-in</summary>" in html
    assert "<summary>" not in Client().get("/login/").content.decode()


def test_enrolment_command_shows_the_secret_once_and_it_works(cast) -> None:
    out = io.StringIO()
    call_command("breakglass", "enrol", "alice", stdout=out)
    secret = re.search(r"secret : ([A-Z2-7]+)", out.getvalue()).group(1)
    assert _login(Client(), "alice", totp(secret)).status_code == 302
    assert TotpDevice.objects.get(user=cast.alice).secret_ciphertext != secret
    listing = io.StringIO()
    call_command("breakglass", "list", stdout=listing)
    assert "alice" in listing.getvalue() and secret not in listing.getvalue()


def test_removing_every_role_ends_an_sso_session_at_the_next_request(sso, idp, cast) -> None:
    assert sso.sign_in().status_code == 302
    assert sso.client.get("/").status_code == 200
    user = TeamMembership.objects.get(team=cast.team, user__socialaccount__uid="user-1").user
    TeamMembership.objects.filter(user=user).delete()  # an admin removes the role
    response = sso.client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert AuditEvent.objects.filter(action="sso.session_ended", target_id=str(user.pk)).exists()


def test_a_remaining_role_keeps_the_session(sso, idp, cast) -> None:
    assert sso.sign_in().status_code == 302
    user = TeamMembership.objects.get(team=cast.team).user if False else None
    user = TeamMembership.objects.get(user__socialaccount__uid="user-1").user
    OrgMembership.objects.create(user=user, organisation=cast.org, role="member")
    TeamMembership.objects.filter(user=user).delete()
    assert sso.client.get("/").status_code == 200


def test_disabling_the_idp_ends_its_sessions(sso, idp) -> None:
    assert sso.sign_in().status_code == 302
    idp.enabled = False
    idp.save()
    assert sso.client.get("/").status_code == 302


def test_local_sessions_cost_no_extra_query(cast, django_assert_max_num_queries) -> None:
    client = Client()
    client.force_login(cast.alice)
    client.get("/sso/")  # warm up
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get("/healthz")
    assert not any("sso_identityprovider" in q["sql"] for q in queries.captured_queries)


def test_sign_out_without_slo_is_local(sso, idp) -> None:
    assert sso.sign_in().status_code == 302
    response = sso.client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert sso.client.get("/").status_code == 302


def test_sign_out_with_slo_redirects_to_the_idp(sso, idp) -> None:
    from auth.sso.services import _sync_social_app

    idp.slo_url = "https://idp.example.test/saml/slo"
    idp.save()
    _sync_social_app(idp)
    assert sso.sign_in().status_code == 302
    response = sso.client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://idp.example.test/saml/slo?SAMLRequest=")
    assert sso.client.get("/").status_code == 302  # signed out locally already


def test_session_lifetime_follows_the_setting(sso, idp, settings) -> None:
    settings.SESSION_COOKIE_AGE = 3600
    assert sso.sign_in().status_code == 302
    assert 3500 < sso.client.session.get_expiry_age() <= 3600


def test_wrong_codes_are_throttled_across_processes_with_redis(cast, redis_url) -> None:
    import redis as redis_lib

    secret = totp_enrol(user=cast.alice)
    device = TotpDevice.objects.get(user=cast.alice)
    wrong = f"{(int(totp(secret)) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert not totp_verify(device, wrong)
    keys = redis_lib.Redis.from_url(redis_url).keys("aigateway:totp:failures:*")
    assert len(keys) == 1  # shared by every process, not in this one's memory
    assert not totp_verify(device, totp(secret))


def test_switching_password_sign_in_off_warns_without_a_break_glass_admin(cast) -> None:
    client = Client()
    client.force_login(cast.alice)
    page = client.post("/sso/orgs/acme/local-login/", follow=True).content.decode()
    assert "nobody can sign in to fix it" in page
    cast.org.refresh_from_db()
    assert not cast.org.local_login_enabled
    assert AuditEvent.objects.filter(action="organisation.local_login_changed").exists()
    totp_enrol(user=cast.alice)
    client.post("/sso/orgs/acme/local-login/", {"local_login_enabled": "on"})
    page = client.post("/sso/orgs/acme/local-login/", follow=True).content.decode()
    assert "nobody can sign in to fix it" not in page
