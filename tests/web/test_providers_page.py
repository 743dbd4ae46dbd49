"""The Providers page (/providers/): who reads and who changes, adding and changing providers,
credentials (add, rotate with verification, activate, retire) shown masked only, connection
tests against a wire-level fake upstream, prices; every change audited, never a secret.

Roles (tests/web/gateway_config_support.py): root (superuser) and a platform admin of every
organisation edit; alice (admin of acme only, while globex exists) and dave (auditor) read;
bob, carol and eve get 403; anonymous users the login page.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aigateway.audit.models import AuditEvent
from providers.models import Credential, CredentialStatus, ModelPrice, Provider, ProviderKind
from providers.services import credential_create
from tests.factories import make_provider, make_route
from tests.fakes.upstream import FakeUpstream
from tests.web.gateway_config_support import (
    READERS,
    REFUSED,
    as_user,
    audit_entries,
    everything_audited_as_text,
    make_admin_of_every_organisation,
    make_operator,
)

OLD_KEY = "sk-providers-page-old-0001"
NEW_KEY = "sk-providers-page-new-0002"
WRONG_KEY = "sk-providers-page-wrong-0003"


@pytest.fixture
def operator(cast):
    return make_operator()


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=OLD_KEY) as fake:
        fake.extra_keys.add(NEW_KEY)
        yield fake


@pytest.fixture
def openai_provider(db, upstream) -> Provider:
    provider = make_provider("fake", ProviderKind.OPENAI_COMPATIBLE, upstream.openai_base_url)
    credential_create(provider=provider, name="primary", secret=OLD_KEY)
    return provider


def _new(**fields: object) -> dict[str, object]:
    data = {
        "name": "acme-openai",
        "kind": "openai",
        "base_url": "",
        "enabled": "on",
        "rotation_days": "90",
        "options": "",
    }
    return data | fields


# -- who may do what -----------------------------------------------------------------------
@pytest.mark.parametrize("name", READERS)
def test_platform_admins_of_one_organisation_and_auditors_read_without_edit_controls(
    client, cast, openai_provider, upstream, name
):
    as_user(client, getattr(cast, name))
    for url in ("/providers/", f"/providers/{openai_provider.pk}/"):
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert "sk-…0001" in html and OLD_KEY not in html
        assert '<form method="post" action="/providers/' not in html  # no edit control
        assert "Test connection" not in html and "Add provider" not in html
    pk = openai_provider.pk
    credential = openai_provider.credentials.get()
    posts = {
        "/providers/": _new(),
        f"/providers/{pk}/": _new(kind="openai_compatible", base_url="https://x.test"),
        f"/providers/{pk}/test/": {},
        f"/providers/{pk}/credentials/": {"name": "second", "secret": NEW_KEY},
        f"/providers/{pk}/rotate/": {"name": "next", "secret": NEW_KEY, "grace_minutes": "5"},
        f"/providers/credentials/{credential.pk}/activate/": {"grace_minutes": "5"},
        f"/providers/credentials/{credential.pk}/retire/": {"confirm": "yes"},
        f"/providers/{pk}/prices/": {
            "model": "m",
            "input_per_million": "1",
            "output_per_million": "2",
        },
    }
    before = AuditEvent.objects.count()
    for url, data in posts.items():
        assert client.post(url, data).status_code == 403, url
    assert Provider.objects.count() == 1 and Credential.objects.count() == 1
    assert Credential.objects.get().status == CredentialStatus.ACTIVE
    assert not ModelPrice.objects.exists() and AuditEvent.objects.count() == before
    assert len(upstream.requests) == 0  # no connection test was made for a reader


@pytest.mark.parametrize("name", REFUSED)
def test_team_admins_members_and_strangers_are_refused(client, cast, openai_provider, name):
    as_user(client, getattr(cast, name))
    pk = openai_provider.pk
    for url in ("/providers/", f"/providers/{pk}/"):
        response = client.get(url)
        assert response.status_code == 403
        assert "platform admins and auditors" in response.content.decode()
    assert client.post(f"/providers/{pk}/test/").status_code == 403
    assert client.post("/providers/", _new()).status_code == 403


def test_anonymous_users_are_sent_to_the_login_page(client, openai_provider):
    for url in ("/providers/", f"/providers/{openai_provider.pk}/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post(f"/providers/{openai_provider.pk}/test/").status_code == 302


def test_a_platform_admin_of_every_organisation_edits(client, cast):
    as_user(client, make_admin_of_every_organisation(cast))
    assert "Add provider" in client.get("/providers/").content.decode()
    assert client.post("/providers/", _new()).status_code == 302
    entry = audit_entries("provider.created")[-1]
    assert entry.actor_label == "alice" and entry.details["before"] is None


def test_an_unknown_provider_is_not_found(client, operator):
    as_user(client, operator)
    assert client.get("/providers/999/").status_code == 404
    assert client.post("/providers/999/test/").status_code == 404


# -- providers -----------------------------------------------------------------------------
def test_adding_a_provider_saves_it_and_audits_it(client, operator):
    as_user(client, operator)
    options = '{"api_version": "2024-10-21", "auth": "api_key"}'
    response = client.post(
        "/providers/",
        _new(
            name="azure-eu",
            kind="azure_openai",
            base_url="https://eu.openai.azure.com",
            options=options,
        ),
    )
    provider = Provider.objects.get(name="azure-eu")
    assert response.status_code == 302 and response["Location"] == f"/providers/{provider.pk}/"
    assert provider.options == {"api_version": "2024-10-21", "auth": "api_key"}
    entry = audit_entries("provider.created")[-1]
    assert entry.actor_label == "root" and entry.details["after"]["kind"] == "azure_openai"
    page = client.get(response["Location"]).content.decode()
    assert "Added the provider azure-eu" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "has space"}, "letters, digits, hyphens or underscores"),
        ({"kind": "nope"}, "Choose a kind of provider."),
        ({"kind": "azure_openai"}, "Azure OpenAI needs a base URL."),
        ({"base_url": "ftp://x"}, "Enter the base URL as http://"),
        ({"options": "{not json"}, "The options are not valid JSON"),
        ({"options": "[1, 2]"}, "must be a JSON object"),
        ({"options": '{"api_key": "sk-x"}'}, "looks like a secret"),
        ({"rotation_days": "0"}, "Rotation days must be from 1 to"),
        ({"rotation_days": "many"}, "whole number of days"),
        (
            {
                "kind": "azure_openai",
                "base_url": "https://a.test",
                "options": '{"auth": "entra_id"}',
            },
            "needs the tenant_id and client_id",
        ),
    ],
)
def test_an_invalid_provider_is_refused_with_a_sentence(client, operator, fields, message):
    as_user(client, operator)
    response = client.post("/providers/", _new(**fields))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Provider.objects.exists()


def test_a_duplicate_name_is_refused(client, operator):
    make_provider("acme-openai", ProviderKind.OPENAI)
    as_user(client, operator)
    response = client.post("/providers/", _new())
    assert response.status_code == 400
    assert "A provider named acme-openai already exists." in response.content.decode()


def test_changing_a_provider_is_audited_with_before_and_after(client, operator, openai_provider):
    as_user(client, operator)
    response = client.post(
        f"/providers/{openai_provider.pk}/",
        {
            "kind": "openai_compatible",
            "base_url": "https://llm.internal.test/v1",
            "rotation_days": "30",
            "options": "",
        },
    )  # the enabled box unticked
    assert response.status_code == 302
    openai_provider.refresh_from_db()
    assert (openai_provider.base_url, openai_provider.rotation_days) == (
        "https://llm.internal.test/v1",
        30,
    )
    assert openai_provider.enabled is False
    entry = audit_entries("provider.updated")[-1]
    assert set(entry.details["changed"]) == {"base_url", "enabled", "rotation_days"}
    bad = client.post(
        f"/providers/{openai_provider.pk}/",
        {"kind": "openai_compatible", "base_url": "", "rotation_days": "30"},
    )
    assert bad.status_code == 400 and "needs a base URL" in bad.content.decode()


def test_the_list_shows_kind_url_masked_credential_due_date_and_routes(
    client, operator, openai_provider
):
    make_route("smart", (openai_provider, "gpt-4o"))
    Credential.objects.update(rotation_due_at=timezone.now() - timedelta(days=3))
    html = as_user(client, operator).get("/providers/").content.decode()
    assert "OpenAI-compatible server" in html and openai_provider.base_url in html
    assert "sk-…0001" in html and OLD_KEY not in html
    assert "overdue by 3 days" in html and "smart" in html


def test_the_list_costs_the_same_queries_whatever_the_number_of_providers(client, operator):
    as_user(client, operator)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/providers/").status_code == 200
        return len(captured)

    provider = make_provider("one", ProviderKind.OPENAI)
    credential_create(provider=provider, name="a", secret=OLD_KEY)
    make_route("r1", (provider, "m1"))
    first = queries()
    for i in range(5):
        other = make_provider(f"more-{i}", ProviderKind.OPENAI)
        credential_create(provider=other, name="a", secret=f"{NEW_KEY}{i}")
        make_route(f"route-{i}", (other, "m"), (provider, f"m{i}"))
    assert queries() == first


# -- connection test -----------------------------------------------------------------------
def test_the_connection_test_calls_the_provider_and_says_ok(
    client, operator, openai_provider, upstream
):
    as_user(client, operator)
    response = client.post(f"/providers/{openai_provider.pk}/test/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<strong>OK</strong>" in html and " ms · Connected" in html
    assert "<h1>" not in html  # the fragment alone
    assert upstream.requests[-1].path == "/v1/models"
    assert upstream.requests[-1].headers["authorization"] == f"Bearer {OLD_KEY}"
    assert OLD_KEY not in html and "primary (sk-…0001)" in html


def test_a_refused_credential_is_told_as_a_sentence_without_the_secret(client, operator, upstream):
    provider = make_provider("fake", ProviderKind.OPENAI_COMPATIBLE, upstream.openai_base_url)
    credential_create(provider=provider, name="wrong", secret=WRONG_KEY)
    as_user(client, operator)
    html = client.post(f"/providers/{provider.pk}/test/").content.decode()  # without htmx
    assert "<h1>" in html and "Failed" in html
    assert "The provider refused the credential (authentication failed) (HTTP 401)." in html
    assert WRONG_KEY not in html


def test_an_unreachable_provider_is_told_as_a_sentence(client, operator):
    provider = make_provider("gone", ProviderKind.OPENAI_COMPATIBLE, "http://127.0.0.1:9/v1")
    as_user(client, operator)
    html = client.post(f"/providers/{provider.pk}/test/", HTTP_HX_REQUEST="true").content.decode()
    assert "Could not connect to the provider" in html and "No credential was used." in html


# -- credentials ---------------------------------------------------------------------------
def test_adding_a_credential_shows_it_masked_and_audits_its_fingerprint(
    client, operator, openai_provider
):
    as_user(client, operator)
    url = f"/providers/{openai_provider.pk}/credentials/"
    response = client.post(url, {"name": "second", "secret": NEW_KEY})
    assert response.status_code == 302
    credential = openai_provider.credentials.get(name="second")
    assert credential.reveal() == NEW_KEY and credential.status == CredentialStatus.ACTIVE
    html = client.get(response["Location"]).content.decode()
    assert "sk-…0002" in html and credential.fingerprint in html and NEW_KEY not in html
    assert audit_entries("credential.created")[-1].details["fingerprint"] == credential.fingerprint
    assert NEW_KEY not in everything_audited_as_text()
    by_env = client.post(url, {"name": "env", "env_var": "ACME_OPENAI_KEY"})
    assert by_env.status_code == 302
    assert "env:ACME_OPENAI_KEY" in client.get(response["Location"]).content.decode()
    assert openai_provider.credentials.get(name="env").env_var == "ACME_OPENAI_KEY"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x"}, "Give a secret or an environment variable: one of the two."),
        ({"name": "x", "secret": NEW_KEY, "env_var": "A"}, "one of the two"),
        ({"name": "x", "env_var": "1-bad"}, "letters, digits and underscores only"),
        ({"name": "primary", "secret": NEW_KEY}, "already has a credential named primary"),
        ({"secret": NEW_KEY}, "Enter a name for the credential."),
    ],
)
def test_an_invalid_credential_is_refused_and_the_secret_not_echoed(
    client, operator, openai_provider, data, message
):
    as_user(client, operator)
    response = client.post(f"/providers/{openai_provider.pk}/credentials/", data)
    html = response.content.decode()
    assert response.status_code == 400 and message in html
    assert NEW_KEY not in html
    assert openai_provider.credentials.count() == 1


# The rotation service runs its database steps in worker threads (as under ASGI): those
# threads need committed data.
@pytest.mark.django_db(transaction=True)
def test_rotating_verifies_the_new_secret_then_moves_traffic(client, operator, openai_provider):
    as_user(client, operator)
    url = f"/providers/{openai_provider.pk}/rotate/"
    response = client.post(url, {"name": "next", "secret": NEW_KEY, "grace_minutes": "30"})
    assert response.status_code == 302
    new = openai_provider.credentials.get(name="next")
    old = openai_provider.credentials.get(name="primary")
    assert new.status == CredentialStatus.ACTIVE and new.verified_at is not None
    assert old.status == CredentialStatus.RETIRING
    assert openai_provider.active_credential() == new
    actions = [e.action for e in AuditEvent.objects.filter(target_type="credential")]
    assert {"credential.created", "credential.activated", "credential.retiring"} <= set(actions)
    assert NEW_KEY not in everything_audited_as_text()


@pytest.mark.django_db(transaction=True)
def test_a_rotation_that_fails_verification_leaves_traffic_alone(client, operator, openai_provider):
    as_user(client, operator)
    url = f"/providers/{openai_provider.pk}/rotate/"
    response = client.post(url, {"name": "bad", "secret": WRONG_KEY, "grace_minutes": "30"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "failed verification (upstream auth failed)" in html and WRONG_KEY not in html
    assert openai_provider.active_credential().name == "primary"
    assert openai_provider.credentials.get(name="bad").status == CredentialStatus.RETIRED


def test_activating_verifies_first_and_retiring_needs_a_confirmation(
    client, operator, openai_provider
):
    as_user(client, operator)
    spare = credential_create(
        provider=openai_provider, name="spare", secret=NEW_KEY, status=CredentialStatus.PENDING
    )
    wrong = credential_create(
        provider=openai_provider, name="wrong", secret=WRONG_KEY, status=CredentialStatus.PENDING
    )
    refused = client.post(f"/providers/credentials/{wrong.pk}/activate/", {"grace_minutes": "1"})
    assert refused.status_code == 400 and "wrong was not activated" in refused.content.decode()
    assert (
        client.post(
            f"/providers/credentials/{spare.pk}/activate/", {"grace_minutes": "1"}
        ).status_code
        == 302
    )
    assert openai_provider.active_credential() == spare
    retire = f"/providers/credentials/{spare.pk}/retire/"
    assert client.post(retire).status_code == 400
    assert client.post(retire, {"confirm": "yes"}).status_code == 302
    spare.refresh_from_db()
    assert spare.status == CredentialStatus.RETIRED
    assert audit_entries("credential.retired")[-1].actor_label == "root"


# -- prices --------------------------------------------------------------------------------
def test_prices_are_set_changed_deleted_and_audited(client, operator, openai_provider):
    as_user(client, operator)
    url = f"/providers/{openai_provider.pk}/prices/"
    data = {"model": "gpt-4o", "input_per_million": "2.50", "output_per_million": "10"}
    assert client.post(url, data).status_code == 302
    first = client.get(f"/providers/{openai_provider.pk}/").content.decode()
    assert "10.00" in first and "1E+1" not in first
    assert client.post(url, data | {"output_per_million": "12.5"}).status_code == 302
    price = ModelPrice.objects.get()
    assert (price.provider, str(price.output_per_million.normalize())) == (openai_provider, "12.5")
    html = client.get(f"/providers/{openai_provider.pk}/").content.decode()
    assert "gpt-4o" in html and "12.50" in html and "2.50" in html
    priced = AuditEvent.objects.filter(target_type="model_price").order_by("id")
    assert [e.action for e in priced] == ["model_price.created", "model_price.updated"]
    assert client.post(f"/providers/prices/{price.pk}/delete/").status_code == 302
    assert not ModelPrice.objects.exists() and audit_entries("model_price.deleted")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_per_million": "-1"}, "The input price must be a number &gt;= 0."),
        ({"output_per_million": "0.1234567"}, "at most 6 decimal places"),
        ({"input_per_million": "cheap"}, "is not a decimal number"),
        ({"model": ""}, "Enter the upstream model name."),
    ],
)
def test_an_invalid_price_is_refused(client, operator, openai_provider, fields, message):
    as_user(client, operator)
    data = {"model": "gpt-4o", "input_per_million": "1", "output_per_million": "2"} | fields
    response = client.post(f"/providers/{openai_provider.pk}/prices/", data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not ModelPrice.objects.exists()
