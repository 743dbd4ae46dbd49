"""SP-initiated sign-in against real IdPs: JIT creation, group mapping, re-sync, refusal.

Every test runs the whole flow: the gateway's confirm form, a redirect to the IdP, the IdP's
sign-in form, the signed response posted back to the gateway's ACS.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.sso.conftest import UID_ANN, SsoWorld
from tests.sso.support import Snapshot, audit_actions, memberships, sso_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_new_acme_user_is_created_in_acme_with_every_mapped_group(sso: SsoWorld) -> None:
    driver, result = sso.sign_in(sso.acme, "ann")
    assert result.status == 200 and result.acs_response.url == sso.gateway.base_url + "/"
    user = sso_user(sso.acme.idp.entity_id, UID_ANN)
    assert user is not None, "no account linked to the IdP's uid"
    assert driver.session_user_pk() == user.pk
    assert driver.is_signed_in()
    # "zz-not-mapped" comes first: acme-staff and acme-research are the 2nd and 3rd values.
    assert memberships(user) == {"org": {("acme", "member")}, "team": {("acme/research", "member")}}
    assert user.email == "ann@acme.test"
    assert user.get_full_name() == "Ann Acme"
    assert not user.has_usable_password()  # an SSO account has no password to guess
    logins = audit_actions("sso.login")
    assert [e.actor_id for e in logins] == [user.pk]
    assert logins[0].organisation_id == sso.acme.org.pk


def test_two_mapped_roles_of_one_user_are_both_granted(sso: SsoWorld) -> None:
    _, result = sso.sign_in(sso.acme, "ben")
    assert result.status == 200
    user = sso_user(sso.acme.idp.entity_id, "ben")
    assert memberships(user) == {
        "org": {("acme", "auditor")},
        "team": {("acme/research", "team_admin")},
    }


def test_a_globex_user_signs_in_through_globex_idp_into_globex_only(sso: SsoWorld) -> None:
    driver, result = sso.sign_in(sso.globex, "ann")
    assert result.status == 200 and driver.is_signed_in()
    user = sso_user(sso.globex.idp.entity_id, UID_ANN)
    found = memberships(user)
    assert found["team"] == {("globex/sales", "member")}
    assert found["org"] <= {("globex", "member")}  # a plain org membership may come with it
    assert user.email == "ann@globex.test"


def test_the_same_uid_at_two_idps_gives_two_separate_accounts(sso: SsoWorld) -> None:
    acme_driver, first = sso.sign_in(sso.acme, "ann")
    globex_driver, second = sso.sign_in(sso.globex, "ann")
    assert first.status == second.status == 200
    acme_user = sso_user(sso.acme.idp.entity_id, UID_ANN)
    globex_user = sso_user(sso.globex.idp.entity_id, UID_ANN)
    assert acme_user is not None and globex_user is not None
    assert acme_user.pk != globex_user.pk
    assert acme_driver.session_user_pk() == acme_user.pk
    assert globex_driver.session_user_pk() == globex_user.pk
    assert {org for org, _ in memberships(acme_user)["org"]} <= {"acme"}
    assert all(team.startswith("acme/") for team, _ in memberships(acme_user)["team"])
    assert {org for org, _ in memberships(globex_user)["org"]} <= {"globex"}
    assert all(team.startswith("globex/") for team, _ in memberships(globex_user)["team"])
    # Signing in again at acme returns to the acme account, not the newest one.
    again, _ = sso.sign_in(sso.acme, "ann")
    assert again.session_user_pk() == acme_user.pk


def test_a_role_change_at_the_idp_applies_at_the_next_sign_in(sso: SsoWorld) -> None:
    sso.sign_in(sso.acme, "ben")
    user = sso_user(sso.acme.idp.entity_id, "ben")
    sso.acme.idp.users["ben"].attributes["groups"] = ["acme-admins"]
    _, result = sso.sign_in(sso.acme, "ben")
    assert result.status == 200
    # The mapping is authoritative: the lost research-lead group takes the team role away.
    assert memberships(user) == {"org": {("acme", "platform_admin")}, "team": set()}


def test_losing_every_mapped_group_at_the_idp_refuses_the_next_sign_in_and_drops_roles(
    sso: SsoWorld,
) -> None:
    sso.sign_in(sso.acme, "ben")
    user = sso_user(sso.acme.idp.entity_id, "ben")
    sso.acme.idp.users["ben"].attributes["groups"] = ["zz-not-mapped"]
    driver, result = sso.sign_in(sso.acme, "ben")
    assert result.status == 403 and "no access" in result.acs_response.text.lower()
    assert driver.session_user_pk() is None
    assert memberships(user) == {"org": set(), "team": set()}
    assert audit_actions("sso.denied")


def test_a_deactivated_user_cannot_sign_in_through_sso(sso: SsoWorld) -> None:
    first, _ = sso.sign_in(sso.acme, "ann")
    user = sso_user(sso.acme.idp.entity_id, UID_ANN)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert not first.is_signed_in()  # the open session ends at its next request
    driver, result = sso.sign_in(sso.acme, "ann")
    assert 400 <= result.status < 500
    assert driver.session_user_pk() is None and not driver.is_signed_in()


def test_name_and_email_are_re_synced_at_every_sign_in(sso: SsoWorld) -> None:
    sso.sign_in(sso.acme, "ann")
    attributes = sso.acme.idp.users["ann"].attributes
    attributes["email"] = ["ann.new@acme.test"]
    attributes["displayName"] = ["Ann Renamed"]
    driver, result = sso.sign_in(sso.acme, "ann")
    assert result.status == 200
    user = get_user_model().objects.get(pk=driver.session_user_pk())
    assert user.email == "ann.new@acme.test"
    assert user.get_full_name() == "Ann Renamed"
    assert get_user_model().objects.filter(email__startswith="ann").count() == 1


def test_a_user_whose_groups_map_to_nothing_is_refused_with_a_clear_page(sso: SsoWorld) -> None:
    before = Snapshot()
    driver, result = sso.sign_in(sso.acme, "oscar")
    assert result.status == 403, result.acs_response.text[:500]
    assert "no access" in result.acs_response.text.lower()
    assert driver.session_user_pk() is None and not driver.is_signed_in()
    assert before.unchanged()
    assert sso_user(sso.acme.idp.entity_id, "oscar") is None
    assert not get_user_model().objects.filter(email="oscar@acme.test").exists()
    denied = audit_actions("sso.denied")
    assert len(denied) == 1 and denied[0].organisation_id == sso.acme.org.pk


def test_roles_removed_by_an_admin_apply_at_the_next_request(sso: SsoWorld) -> None:
    from auth.models import OrgMembership

    driver, _ = sso.sign_in(sso.acme, "ben")
    assert driver.http.get(driver.url("/audit/"), timeout=10).status_code == 200  # auditor
    user = sso_user(sso.acme.idp.entity_id, "ben")
    OrgMembership.objects.filter(user=user, organisation=sso.acme.org).delete()
    # Same session, no new sign-in: the next request already lacks the auditor role.
    assert driver.http.get(driver.url("/audit/"), timeout=10).status_code == 403
    assert driver.session_user_pk() == user.pk


@pytest.mark.parametrize(
    "next_url", ["/audit/", "http://evil.example/steal", "//evil.example/steal"]
)
def test_sign_in_returns_to_a_local_next_url_and_never_leaves_the_site(
    sso: SsoWorld, next_url: str
) -> None:
    driver = sso.driver()
    result = driver.sign_in(sso.acme.slug, "ann", sso.acme.password("ann"), next_url=next_url)
    final = result.acs_response
    assert not final.is_redirect, f"sent off-site to {final.headers.get('Location')}"
    assert driver.session_user_pk() is not None
    if next_url.startswith("/") and not next_url.startswith("//"):
        assert result.acs_response.url == driver.url(next_url)


def test_signing_out_ends_the_session(sso: SsoWorld) -> None:
    driver, _ = sso.sign_in(sso.acme, "ann")
    assert driver.is_signed_in()
    reply = driver.logout()
    assert reply.status_code < 500
    assert driver.session_user_pk() is None and not driver.is_signed_in()


def test_signing_out_goes_through_the_idps_single_logout_when_it_has_one(sso: SsoWorld) -> None:
    from tests.sso.conftest import configure_tenant

    configure_tenant(sso.acme.org, sso.acme.idp, [], slo=True)  # updates acme's IdP in place
    driver, _ = sso.sign_in(sso.acme, "ann")
    reply = driver.logout()
    trail = " -> ".join(f"{r.status_code} {r.url}" for r in [*reply.history, reply])
    assert sso.acme.idp.logged_out == [UID_ANN], trail
    assert reply.status_code == 200 and reply.url.startswith(driver.url("/login/")), trail
    assert any("/accounts/saml/acme/sls/" in r.url for r in reply.history), trail
    assert driver.session_user_pk() is None and not driver.is_signed_in()


def test_the_sp_metadata_names_the_configured_urls_whatever_the_host_header(
    sso: SsoWorld,
) -> None:
    driver = sso.driver()
    url = driver.url(f"/accounts/saml/{sso.acme.slug}/metadata/")
    genuine = driver.http.get(url, timeout=10)
    assert genuine.status_code == 200
    assert sso.acme.sp_entity_id in genuine.text and sso.acme.acs_url in genuine.text
    forged = driver.http.get(url, headers={"Host": "evil.example"}, timeout=10)
    assert forged.status_code < 500 and "evil.example" not in forged.text


def test_an_unknown_organisation_slug_is_a_404(sso: SsoWorld) -> None:
    driver = sso.driver()
    reply = driver.http.get(driver.url("/accounts/saml/initech/login/"), timeout=10)
    assert reply.status_code == 404
