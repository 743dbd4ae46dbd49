"""SSO sign-in through our SP with signed responses built in the test (tests/sso/ drives a
real pysaml2 IdP): JIT creation, re-sync at every sign-in, refusals and their audit."""

from __future__ import annotations

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model

from aigateway.audit.models import AuditEvent
from auth.models import OrgMembership, TeamMembership
from tests.sso_unit.saml_support import IDP_ENTITY_ID

pytestmark = pytest.mark.django_db


def test_first_sign_in_creates_the_user_with_mapped_roles(sso, idp, cast) -> None:
    response = sso.sign_in()
    assert response.status_code == 302, response.content[:800]
    assert response["Location"] == "/"
    account = SocialAccount.objects.get(provider=IDP_ENTITY_ID, uid="user-1")
    user = account.user
    assert (user.email, user.first_name, user.last_name) == ("ada@acme.test", "Ada", "Lovelace")
    assert TeamMembership.objects.get(user=user).team == cast.team
    assert not OrgMembership.objects.filter(user=user).exists()
    assert sso.client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="sso.login", target_id=str(user.pk)).exists()


def test_every_later_sign_in_resyncs_profile_and_roles(sso, idp, cast) -> None:
    assert sso.sign_in().status_code == 302
    sso.client.logout()
    changed = {
        "email": ["ada@new.test"],
        "displayName": ["Ada King"],
        "groups": ["research-leads", "gw-auditors"],
    }
    assert sso.sign_in(attributes=changed).status_code == 302
    user = SocialAccount.objects.get(provider=IDP_ENTITY_ID, uid="user-1").user
    assert (user.email, user.last_name) == ("ada@new.test", "King")
    assert TeamMembership.objects.get(user=user).role == "team_admin"
    assert OrgMembership.objects.get(user=user, organisation=cast.org).role == "auditor"
    assert get_user_model().objects.filter(socialaccount__uid="user-1").count() == 1


def test_groups_that_map_to_nothing_are_refused_and_no_account_is_made(sso, idp) -> None:
    response = sso.sign_in(attributes={"email": ["x@acme.test"], "groups": ["cafeteria"]})
    assert response.status_code == 403
    assert b"No access" in response.content
    assert not SocialAccount.objects.exists()
    assert not get_user_model().objects.filter(email="x@acme.test").exists()
    event = AuditEvent.objects.get(action="sso.denied")
    assert event.details["groups"] == ["cafeteria"]
    assert "_auth_user_id" not in sso.client.session


def test_an_existing_user_whose_groups_went_away_loses_access(sso, idp) -> None:
    assert sso.sign_in().status_code == 302
    sso.client.logout()
    assert sso.sign_in(attributes={"groups": []}).status_code == 403
    user = SocialAccount.objects.get(uid="user-1").user
    assert not TeamMembership.objects.filter(user=user).exists()


def test_the_same_uid_from_two_idps_gives_two_accounts(sso, idp, cast) -> None:
    from auth.sso.services import idp_create, mapping_rule_create
    from tests.sso_unit.saml_support import keypair

    other = idp_create(
        actor=None,
        organisation=cast.other_org,
        entity_id="https://other-idp.example.test/",
        sso_url="https://other-idp.example.test/sso",
        x509cert=keypair().cert_body,
    )
    mapping_rule_create(actor=None, idp=other, value="research", role="member")
    assert sso.sign_in().status_code == 302
    sso.client.logout()
    globex = type(sso)(sso.client, org_slug="globex", sso_url="https://other-idp.example.test/sso")
    assert globex.sign_in(issuer="https://other-idp.example.test/").status_code == 302
    accounts = SocialAccount.objects.filter(uid="user-1")
    assert {a.provider for a in accounts} == {IDP_ENTITY_ID, "https://other-idp.example.test/"}
    assert len({a.user_id for a in accounts}) == 2


def test_sso_events_show_on_the_audit_page(sso, idp, cast) -> None:
    from django.test import Client

    assert sso.sign_in().status_code == 302
    sso.client.logout()
    assert sso.sign_in(attributes={"groups": ["nothing"]}).status_code == 403
    auditor = Client()
    auditor.force_login(cast.dave)
    html = auditor.get("/audit/").content.decode()
    assert "sso.login" in html and "sso.denied" in html


def test_next_survives_the_round_trip_through_the_idp(sso, idp) -> None:
    from tests.sso_unit.saml_support import authn_request_id, build_response

    login = "/accounts/saml/acme/login/?next=/guardrails/"
    assert sso.client.get(login).status_code == 200
    request_id = authn_request_id(sso.client.post(login)["Location"])
    response = sso.post(build_response(sso.assertion(request_id)))
    assert response.status_code == 302 and response["Location"] == "/guardrails/"


def test_an_offsite_next_is_ignored(sso, idp) -> None:
    from tests.sso_unit.saml_support import authn_request_id, build_response

    login = "/accounts/saml/acme/login/?next=https://evil.example/"
    sso.client.get(login)
    request_id = authn_request_id(sso.client.post(login)["Location"])
    response = sso.post(build_response(sso.assertion(request_id)))
    assert response.status_code == 302 and response["Location"] == "/"
