"""The Routes page (/routes/): who reads and who changes, creating routes, adding, changing,
moving and removing deployments (validated, audited, priorities kept 0, 1, … as gateway.yaml
has them), the live health fragment, and the API using a change at once.

Roles as on the Providers page (tests/web/gateway_config_support.py). Team admins and
members get 403 here too: their teams' route names are on the overview page, while
deployments, providers and health are operator information.
"""

from __future__ import annotations

import openai
import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aigateway.audit.models import AuditEvent
from aigateway.gateway.latency import latency_record
from aigateway.routing.models import Deployment, Route
from aigateway.routing.services import breaker_force
from providers.models import CredentialStatus, ProviderKind
from providers.services import credential_create
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream
from tests.web.gateway_config_support import (
    READERS,
    REFUSED,
    as_user,
    audit_entries,
    make_operator,
)

KEY = "sk-routes-page-upstream-0001"


@pytest.fixture
def operator(cast):
    return make_operator()


@pytest.fixture
def smart(cast) -> Route:
    demo = make_provider()
    other = make_provider("other", ProviderKind.OPENAI, secret=KEY)
    return make_route("smart", (demo, "demo"), (other, "gpt-4o"))


def _route(**fields: object) -> dict[str, object]:
    data = {
        "name": "fast",
        "description": "",
        "strategy": "ordered",
        "max_retries": "2",
        "backoff_base_seconds": "0.5",
        "backoff_cap_seconds": "10",
        "timeout_seconds": "60",
        "fallback_on_errors": "on",
        "fallback_on_rate_limit": "on",
        "cache_mode": "off",
        "cache_scope": "team",
        "cache_ttl_seconds": "600",
        "semantic_threshold": "0.97",
    }
    return data | fields


def _deployment(provider, model: str, **fields: object) -> dict[str, object]:
    return {
        "provider": provider.pk,
        "upstream_model": model,
        "weight": "1",
        "enabled": "on",
    } | fields


def _order(route: Route) -> list[tuple[int, str]]:
    return [(d.priority, d.upstream_model) for d in route.deployments.order_by("priority")]


# -- who may do what -----------------------------------------------------------------------
@pytest.mark.parametrize("name", READERS)
def test_readers_see_routes_and_health_without_edit_controls(client, cast, smart, name):
    as_user(client, getattr(cast, name))
    deployment = smart.deployments.first()
    for url in ("/routes/", f"/routes/{smart.pk}/"):
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 200
        assert "smart" in html and "gpt-4o" in html and f'id="health-{deployment.pk}"' in html
        assert "Create route" not in html and "Add deployment" not in html
        assert "/edit/" not in html and "Save settings" not in html
    assert client.get("/routes/health/").status_code == 200
    posts = {
        "/routes/": _route(),
        f"/routes/{smart.pk}/": _route(),
        f"/routes/{smart.pk}/deployments/": _deployment(deployment.provider, "x"),
        f"/routes/deployments/{deployment.pk}/edit/": _deployment(deployment.provider, "y"),
        f"/routes/deployments/{deployment.pk}/remove/": {},
    }
    before = AuditEvent.objects.count()
    for url, data in posts.items():
        assert client.post(url, data).status_code == 403, url
    assert client.get(f"/routes/deployments/{deployment.pk}/edit/").status_code == 403
    assert Route.objects.count() == 1 and _order(smart) == [(0, "demo"), (1, "gpt-4o")]
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("name", REFUSED)
def test_team_admins_members_and_strangers_are_refused_everywhere(client, cast, smart, name):
    as_user(client, getattr(cast, name))
    deployment = smart.deployments.first()
    for url in (
        "/routes/",
        f"/routes/{smart.pk}/",
        "/routes/health/",
        f"/routes/deployments/{deployment.pk}/edit/",
    ):
        assert client.get(url).status_code == 403, url
    assert client.post("/routes/", _route()).status_code == 403
    assert not Route.objects.filter(name="fast").exists()


def test_anonymous_users_are_sent_to_the_login_page(client, smart):
    for url in ("/routes/", f"/routes/{smart.pk}/", "/routes/health/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_unknown_routes_are_not_found_and_bad_health_ids_refused(client, operator):
    as_user(client, operator)
    assert client.get("/routes/999/").status_code == 404
    assert client.get("/routes/deployments/999/edit/").status_code == 404
    assert client.get("/routes/health/?ids=abc").status_code == 400
    assert client.get("/routes/health/?ids=" + ",".join(["1"] * 1001)).status_code == 400
    assert client.get("/routes/health/?ids=999").content.decode().strip() == ""


# -- routes --------------------------------------------------------------------------------
def test_creating_a_route_saves_every_setting_and_audits_it(client, operator):
    as_user(client, operator)
    response = client.post(
        "/routes/",
        _route(
            strategy="weighted", semantic_cache="on", cache_mode="always", semantic_threshold="0.9"
        ),
    )
    route = Route.objects.get(name="fast")
    assert response.status_code == 302 and response["Location"] == f"/routes/{route.pk}/"
    assert (route.strategy, route.max_retries, route.backoff_base_seconds) == ("weighted", 2, 0.5)
    assert (route.fallback_on_context_window, route.fallback_on_rate_limit) == (False, True)
    assert (route.cache_mode, route.semantic_cache, route.semantic_threshold) == (
        "always",
        True,
        0.9,
    )
    entry = audit_entries("route.created")[-1]
    assert entry.actor_label == "root" and entry.details["after"]["strategy"] == "weighted"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "two words"}, "no spaces"),
        ({"name": "smart"}, "A route named smart already exists."),
        ({"max_retries": "11"}, "Retries must be a whole number from 0 to 10."),
        ({"max_retries": "x"}, "The retries must be a whole number."),
        ({"backoff_cap_seconds": "0.1"}, "at least the first backoff"),
        ({"timeout_seconds": "0"}, "The deadline must be more than 0"),
        ({"cache_ttl_seconds": "0"}, "The cache lifetime must be from 1 to"),
        ({"semantic_threshold": "0.2"}, "The similarity threshold must be from 0.5 to 1.0."),
        ({"strategy": "random"}, "Choose a strategy."),
    ],
)
def test_an_invalid_route_is_refused_with_a_sentence(client, operator, smart, fields, message):
    as_user(client, operator)
    response = client.post("/routes/", _route(**fields))
    assert response.status_code == 400 and message in response.content.decode()
    assert Route.objects.count() == 1


def test_changing_a_routes_settings_is_audited_with_before_and_after(client, operator, smart):
    as_user(client, operator)
    response = client.post(f"/routes/{smart.pk}/", _route(strategy="lowest_latency"))
    assert response.status_code == 302
    smart.refresh_from_db()
    assert (smart.strategy, smart.max_retries, smart.cache_mode) == ("lowest_latency", 2, "off")
    changed = audit_entries("route.updated")[-1].details["changed"]
    assert {"strategy", "max_retries", "cache_mode"} <= set(changed) and "name" not in changed
    bad = client.post(f"/routes/{smart.pk}/", _route(max_retries="99"))
    assert bad.status_code == 400 and "from 0 to 10" in bad.content.decode()


# -- deployments ---------------------------------------------------------------------------
def test_deployments_are_added_moved_changed_and_removed_in_order(client, operator, smart):
    as_user(client, operator)
    demo = make_provider()
    url = f"/routes/{smart.pk}/deployments/"
    assert client.post(url, _deployment(demo, "first", position="0")).status_code == 302
    assert client.post(url, _deployment(demo, "last")).status_code == 302
    assert _order(smart) == [(0, "first"), (1, "demo"), (2, "gpt-4o"), (3, "last")]
    created = audit_entries("deployment.created")[-1]
    assert created.details["after"]["upstream_model"] == "last"
    moved = smart.deployments.get(upstream_model="last")
    edit = f"/routes/deployments/{moved.pk}/edit/"
    assert client.get(edit).status_code == 200
    response = client.post(
        edit, _deployment(demo, "last", position="1", weight="5", max_context_tokens="32000")
    )
    assert response.status_code == 302
    assert _order(smart) == [(0, "first"), (1, "last"), (2, "demo"), (3, "gpt-4o")]
    moved.refresh_from_db()
    assert (moved.weight, moved.max_context_tokens) == (5, 32000)
    entry = [e for e in audit_entries("deployment.updated") if e.target_id == str(moved.pk)][-1]
    assert entry.details["before"]["priority"] == 3 and entry.details["after"]["priority"] == 1
    remove = f"/routes/deployments/{moved.pk}/remove/"
    assert "Remove the deployment" in client.get(remove).content.decode()
    assert client.post(remove).status_code == 302
    assert _order(smart) == [(0, "first"), (1, "demo"), (2, "gpt-4o")]
    assert audit_entries("deployment.deleted")[-1].details["before"]["upstream_model"] == "last"


def test_a_credential_can_be_pinned_only_if_active_and_the_providers(client, operator, smart):
    as_user(client, operator)
    other = smart.deployments.get(upstream_model="gpt-4o").provider
    pinned = other.credentials.get()
    url = f"/routes/{smart.pk}/deployments/"
    ok = client.post(url, _deployment(other, "gpt-4o-mini", credential=pinned.pk))
    assert ok.status_code == 302
    assert smart.deployments.get(upstream_model="gpt-4o-mini").credential == pinned
    wrong = client.post(url, _deployment(make_provider(), "x", credential=pinned.pk))
    assert wrong.status_code == 400 and "not one of demo" in wrong.content.decode()
    pending = credential_create(
        provider=other, name="later", secret=KEY + "x", status=CredentialStatus.PENDING
    )
    refused = client.post(url, _deployment(other, "y", credential=pending.pk))
    assert refused.status_code == 400 and "active credential" in refused.content.decode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"upstream_model": "gpt-4o"}, "other:gpt-4o already serves this route."),
        ({"upstream_model": ""}, "Enter the upstream model name."),
        ({"weight": "-1"}, "The weight must be a whole number of 0 or more."),
        ({"max_context_tokens": "0"}, "The context window must be a positive whole number."),
        ({"position": "-2"}, "The position must be 0"),
        ({"provider": "999"}, "Choose a provider."),
    ],
)
def test_an_invalid_deployment_is_refused(client, operator, smart, fields, message):
    as_user(client, operator)
    other = smart.deployments.get(upstream_model="gpt-4o").provider
    data = _deployment(other, "gpt-4o") | {"upstream_model": "new-model"} | fields
    response = client.post(f"/routes/{smart.pk}/deployments/", data)
    assert response.status_code == 400 and message in response.content.decode()
    assert smart.deployments.count() == 2


def test_the_list_costs_the_same_queries_whatever_the_number_of_routes(
    client, cast, operator, smart
):
    as_user(client, operator)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/routes/").status_code == 200
        return len(captured)

    smart.teams.add(cast.team)
    first = queries()
    demo = make_provider()
    for i in range(5):
        make_route(f"more-{i}", (demo, f"m{i}"), (demo, f"n{i}")).teams.add(cast.other_team)
    assert queries() == first


# -- live health ---------------------------------------------------------------------------
def test_the_health_fragment_swaps_each_deployments_breaker_and_latency(client, operator, smart):
    first, second = smart.deployments.order_by("priority")
    breaker_force(deployment=second, mode="open", reason="maintenance")
    async_to_sync(latency_record)(first.pk, 123.4)
    as_user(client, operator)
    html = client.get(f"/routes/health/?ids={first.pk},{second.pk}").content.decode()
    assert f'<span id="health-{first.pk}" hx-swap-oob="true">' in html
    assert "123 ms recent" in html and "forced open" in html and "no probe yet" in html
    page = client.get("/routes/").content.decode()
    poll = f'hx-get="/routes/health/?ids={first.pk},{second.pk}" hx-trigger="every 5s"'
    assert poll in page


# -- the API uses a change at once ---------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_api_serves_a_route_changed_in_the_dashboard_at_once(client, cast, live_gateway):
    with FakeUpstream(api_key=KEY) as upstream:
        demo = make_provider()
        fake = make_provider(
            "fake", ProviderKind.OPENAI_COMPATIBLE, upstream.openai_base_url, secret=KEY
        )
        route = make_route("switch", (demo, "demo"))
        sdk = openai.OpenAI(
            base_url=live_gateway.openai_base_url,
            max_retries=0,
            timeout=10,
            api_key=make_key(cast.team, route).raw_key,
        )
        ask = lambda: sdk.chat.completions.with_raw_response.create(  # noqa: E731
            model="switch", messages=[{"role": "user", "content": "Hi"}]
        )
        assert ask().headers["x-aigateway-served-by"] == "demo/demo"  # now cached in process
        as_user(client, make_operator())
        add = client.post(
            f"/routes/{route.pk}/deployments/", _deployment(fake, "gpt-fake", position="0")
        )
        assert add.status_code == 302
        assert ask().headers["x-aigateway-served-by"] == "fake/gpt-fake"
        assert upstream.requests[-1].json["model"] == "gpt-fake"
        served = Deployment.objects.get(upstream_model="gpt-fake")
        disabled = _deployment(fake, "gpt-fake")
        del disabled["enabled"]  # the box unticked
        edit = client.post(f"/routes/deployments/{served.pk}/edit/", disabled)
        assert edit.status_code == 302
        assert ask().headers["x-aigateway-served-by"] == "demo/demo"
        sdk.close()
