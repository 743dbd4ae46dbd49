"""The SSO admin pages: every view and fragment for platform admin (alice), team admin (bob),
member (carol), auditor (dave), outsider (eve) and anonymous; edits audited; the preview."""

from __future__ import annotations

import pytest
from django.test import Client

from aigateway.audit.models import AuditEvent
from auth.sso.models import IdentityProvider, MappingRule
from tests.sso_unit.saml_support import IDP_ENTITY_ID, IDP_SSO_URL, keypair

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _pages(idp, rule) -> list[tuple[str, str, dict]]:
    return [
        ("get", "/sso/", {}),
        ("get", f"/sso/{idp.pk}/", {}),
        ("post", f"/sso/{idp.pk}/preview/", {"groups": "research"}),
        ("post", f"/sso/{idp.pk}/", {"entity_id": IDP_ENTITY_ID, "sso_url": IDP_SSO_URL,
                                      "x509cert": keypair().cert_body, "enabled": "on"}),
        ("post", f"/sso/{idp.pk}/rules/", {"value": "new", "role": "member"}),
        ("post", f"/sso/{idp.pk}/rules/{rule.pk}/delete/", {}),
        ("post", "/sso/orgs/acme/local-login/", {}),
        ("get", "/sso/new/acme/", {}),
        ("post", f"/sso/{idp.pk}/delete/", {}),
    ]  # fmt: skip


# What each role gets on the pages above, in order.
EXPECTED = {
    "alice": [200, 200, 200, 302, 302, 302, 302, 302, 302],
    "dave": [200, 200, 200, 403, 403, 403, 403, 403, 403],
    "bob": [403] * 9,
    "carol": [403] * 9,
    "eve": [403] * 9,
}


@pytest.mark.parametrize("who", ["alice", "dave", "bob", "carol", "eve", None])
def test_each_role_gets_what_it_may_on_every_sso_view(cast, idp, who) -> None:
    rule = MappingRule.objects.filter(idp=idp).first()
    client = _client(getattr(cast, who) if who else None)
    statuses = []
    for method, url, data in _pages(idp, rule):
        statuses.append(getattr(client, method)(url, data).status_code)
    if who is None:
        assert all(s == 302 for s in statuses), statuses  # to the sign-in page
        assert IdentityProvider.objects.filter(pk=idp.pk).exists()
    else:
        assert statuses == EXPECTED[who]


def test_an_idp_of_another_organisation_is_404_for_its_outsiders(cast, idp) -> None:
    from auth.models import OrgMembership, OrgRole

    OrgMembership.objects.create(
        user=cast.eve, organisation=cast.other_org, role=OrgRole.PLATFORM_ADMIN
    )
    client = _client(cast.eve)
    assert client.get("/sso/").status_code == 200
    assert client.get(f"/sso/{idp.pk}/").status_code == 404
    assert client.post(f"/sso/{idp.pk}/preview/", {"groups": "x"}).status_code == 404
    assert client.post(f"/sso/{idp.pk}/delete/").status_code == 404
    assert client.get("/sso/new/acme/").status_code == 404


def test_the_page_shows_the_sp_values_to_copy(cast, idp) -> None:
    html = _client(cast.alice).get(f"/sso/{idp.pk}/").content.decode()
    assert "http://testserver/accounts/saml/acme/metadata/" in html
    assert "http://testserver/accounts/saml/acme/acs/" in html


def test_preview_shows_what_groups_yield(cast, idp) -> None:
    client = _client(cast.dave)
    response = client.post(
        f"/sso/{idp.pk}/preview/",
        {"groups": "research-leads\ngw-auditors, other"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="preview-result"' in html and "<html" not in html
    assert "Auditor" in html and "Team admin" in html and "Research" in html
    nothing = client.post(
        f"/sso/{idp.pk}/preview/", {"groups": "cafeteria"}, HTTP_HX_REQUEST="true"
    )
    assert "No access" in nothing.content.decode()


def test_creating_an_idp_from_metadata_xml_and_adding_rules_is_audited(cast) -> None:
    from tests.sso_unit.test_services import metadata_xml

    client = _client(cast.alice)
    response = client.post("/sso/new/acme/", {"metadata_xml": metadata_xml(), "enabled": "on",
                                              "groups_attribute": "groups"})  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    idp = IdentityProvider.objects.get(organisation=cast.org)
    assert idp.entity_id == IDP_ENTITY_ID and idp.social_app.provider_id == IDP_ENTITY_ID
    response = client.post(f"/sso/{idp.pk}/rules/", {"value": "leads", "role": "team_admin",
                                                      "team": str(cast.team.pk)})  # fmt: skip
    assert response.status_code == 302
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"sso.idp_created", "sso.rule_created"} <= actions


def test_bad_input_is_a_400_with_the_reason(cast, idp) -> None:
    client = _client(cast.alice)
    bad_cert = client.post(f"/sso/{idp.pk}/", {"entity_id": "x", "sso_url": IDP_SSO_URL,
                                                "x509cert": "not a cert"})  # fmt: skip
    assert bad_cert.status_code == 400
    assert "not an X.509 certificate" in bad_cert.content.decode()
    no_team = client.post(f"/sso/{idp.pk}/rules/", {"value": "x", "role": "team_admin"})
    assert no_team.status_code == 400
    assert "needs a team" in no_team.content.decode()
    dtd = client.post(
        f"/sso/{idp.pk}/", {"metadata_xml": "<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"}
    )
    assert dtd.status_code == 400


def test_the_nav_links_to_sso(cast) -> None:
    assert 'href="/sso/"' in _client(cast.alice).get("/").content.decode()


def test_the_list_page_query_count_does_not_grow_with_organisations(cast, idp) -> None:
    from auth.models import Organisation

    cast.alice.is_superuser = True  # sees every organisation
    cast.alice.save()
    client = _client(cast.alice)
    client.get("/sso/")

    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get("/sso/").status_code == 200
        return len(queries.captured_queries)

    before = count()
    for n in range(5):
        Organisation.objects.create(slug=f"org{n}", name=f"Org {n}")
    assert count() == before


def test_renaming_an_organisation_moves_its_sso_urls(cast, idp, client) -> None:
    cast.org.slug = "acme-corp"
    cast.org.save()
    assert client.get("/accounts/saml/acme-corp/metadata/").status_code == 200
    assert client.get("/accounts/saml/acme/metadata/").status_code == 404


def test_django_admin_does_not_edit_sso_behind_the_pages(cast, idp) -> None:
    cast.alice.is_superuser = cast.alice.is_staff = True
    cast.alice.save()
    client = _client(cast.alice)
    assert client.get("/admin/socialaccount/socialapp/").status_code == 404
    assert client.get("/admin/sso/identityprovider/").status_code == 200
    assert client.get(f"/admin/sso/identityprovider/{idp.pk}/delete/").status_code == 403


def test_the_idp_page_lists_recent_refusals(cast, idp, sso) -> None:
    assert sso.sign_in(audience=None).status_code == 403
    assert sso.sign_in(attributes={"groups": ["cafeteria"]}).status_code == 403
    html = _client(cast.dave).get(f"/sso/{idp.pk}/").content.decode()
    assert "no_audience" in html and "no_mapped_role" in html and "cafeteria" in html
