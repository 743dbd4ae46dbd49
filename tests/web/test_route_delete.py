"""Deleting a route from the dashboard (/routes/<id>/delete/): a confirmation that shows what
goes with it, the rights of the Routes page, one audit entry per object touched, no key
widened, the API answering 404 model_not_found at once, and config as code in step."""

from __future__ import annotations

import openai
import pytest

from aigateway.audit.models import AuditEvent
from aigateway.config_as_code.applier import plan
from aigateway.config_as_code.exporter import export_yaml
from aigateway.config_as_code.schema import parse_config
from aigateway.routing.models import BreakerEvent, Deployment, Route
from aigateway.routing.services import breaker_force
from auth.services import api_key_create, api_key_revoke
from providers.models import ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream
from tests.web.gateway_config_support import (
    READERS,
    REFUSED,
    as_user,
    audit_entries,
    make_admin_of_every_organisation,
    make_operator,
)

KEY = "sk-route-delete-upstream-0001"


@pytest.fixture
def routes(cast) -> tuple[Route, Route]:
    demo = make_provider()
    other = make_provider("other", ProviderKind.OPENAI, secret=KEY)
    smart = make_route("smart", (demo, "demo"), (other, "gpt-4o"))
    fast = make_route("fast", (demo, "demo-fast"))
    cast.team.allowed_routes.add(smart, fast)
    return smart, fast


def test_the_confirmation_shows_what_goes_and_deleting_is_audited_per_object(
    client, cast, routes
) -> None:
    smart, _ = routes
    both = api_key_create(team=cast.team, name="both", route_names=["smart", "fast"])
    breaker_force(deployment=smart.deployments.first(), mode="open", reason="drill")
    ids = list(smart.deployments.values_list("pk", flat=True))
    as_user(client, make_admin_of_every_organisation(cast))

    page = client.get(f"/routes/{smart.pk}/")
    assert f'href="/routes/{smart.pk}/delete/"' in page.content.decode()
    confirm = client.get(f"/routes/{smart.pk}/delete/")
    html = confirm.content.decode()
    assert confirm.status_code == 200 and "Delete the route smart?" in html
    assert "demo:demo, other:gpt-4o" in html and str(cast.team) in html
    assert f"({both.api_key.prefix}…)" in html  # keeps "fast"
    assert Route.objects.filter(pk=smart.pk).exists()  # GET changes nothing

    response = client.post(f"/routes/{smart.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/routes/"
    assert "Deleted the route smart." in client.get("/routes/").content.decode()
    assert not Route.objects.filter(name="smart").exists()
    assert not Deployment.objects.filter(pk__in=ids).exists()
    assert not BreakerEvent.objects.filter(deployment_id__in=ids).exists()
    assert list(cast.team.allowed_routes.values_list("name", flat=True)) == ["fast"]
    assert list(both.api_key.allowed_routes.values_list("name", flat=True)) == ["fast"]

    (route_entry,) = audit_entries("route.deleted")
    assert (route_entry.actor, route_entry.target_label) == (cast.alice, "smart")
    assert route_entry.details["deployments"] == ["demo:demo", "other:gpt-4o"]
    assert route_entry.details["before"]["name"] == "smart"
    removed = audit_entries("deployment.deleted")
    assert sorted(int(e.target_id) for e in removed) == sorted(ids)
    (team_entry,) = audit_entries("team.updated")
    assert team_entry.organisation_id == cast.org.pk  # acme's admins see their team changed
    assert team_entry.details["before"]["allowed_routes"] == ["fast", "smart"]
    assert team_entry.details["after"]["allowed_routes"] == ["fast"]
    (key_entry,) = audit_entries("api_key.updated")
    assert key_entry.details["after"]["allowed_routes"] == ["fast"]


def test_a_key_that_could_call_only_this_route_blocks_the_deletion(client, cast, routes) -> None:
    smart, _ = routes
    only = api_key_create(team=cast.team, name="only", route_names=["smart"])
    old = api_key_create(team=cast.team, name="old", route_names=["smart"])
    api_key_revoke(api_key=old.api_key)  # revoked keys widen nothing
    as_user(client, make_operator())
    before = AuditEvent.objects.count()

    confirm = client.get(f"/routes/{smart.pk}/delete/").content.decode()
    assert f"only ({only.api_key.prefix}…)" in confirm and "disabled" in confirm
    assert f"old ({old.api_key.prefix}…)" not in confirm
    response = client.post(f"/routes/{smart.pk}/delete/")
    assert response.status_code == 400
    assert "could call every route of their team" in response.content.decode()
    assert Route.objects.filter(pk=smart.pk).exists() and smart.deployments.count() == 2
    assert AuditEvent.objects.count() == before

    api_key_revoke(api_key=only.api_key)
    assert client.post(f"/routes/{smart.pk}/delete/").status_code == 302
    assert not Route.objects.filter(pk=smart.pk).exists()


@pytest.mark.parametrize("name", READERS + REFUSED)
def test_only_editors_of_gateway_config_may_delete_a_route(client, cast, routes, name) -> None:
    smart, _ = routes
    as_user(client, getattr(cast, name))
    assert client.get(f"/routes/{smart.pk}/delete/").status_code == 403
    assert client.post(f"/routes/{smart.pk}/delete/").status_code == 403
    assert Route.objects.filter(pk=smart.pk).exists()
    assert not audit_entries("route.deleted")
    if name in READERS:
        assert "/delete/" not in client.get(f"/routes/{smart.pk}/").content.decode()


def test_anonymous_users_log_in_and_unknown_routes_are_not_found(client, cast, routes) -> None:
    smart, _ = routes
    response = client.post(f"/routes/{smart.pk}/delete/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    as_user(client, make_operator())
    assert client.get("/routes/999/delete/").status_code == 404
    assert client.post("/routes/999/delete/").status_code == 404


def test_a_deleted_route_leaves_the_export_and_the_export_still_applies(
    client, cast, routes
) -> None:
    smart, _ = routes
    before_text = export_yaml()
    assert "name: smart" in before_text
    as_user(client, make_operator())
    assert client.post(f"/routes/{smart.pk}/delete/").status_code == 302

    text = export_yaml()
    assert "smart" not in text and "name: fast" in text
    assert plan(parse_config(text)) == []  # the file describes exactly what is left
    # An older file still declares it: applying that would create the route again.
    again = [c for c in plan(parse_config(before_text)) if c.kind == "route"]
    assert [(c.action, c.name) for c in again] == [("create", "smart")]


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_model_not_found_once_the_route_is_deleted(
    client, cast, live_gateway
) -> None:
    with FakeUpstream(api_key=KEY) as upstream:
        fake = make_provider(
            "fake", ProviderKind.OPENAI_COMPATIBLE, upstream.openai_base_url, secret=KEY
        )
        going = make_route("going", (fake, "gpt-fake"))
        staying = make_route("staying", (fake, "gpt-stay"))
        key = make_key(cast.team, going, staying).raw_key
        with openai.OpenAI(
            base_url=live_gateway.openai_base_url, api_key=key, max_retries=0, timeout=10
        ) as sdk:

            def ask(model: str) -> str:
                answer = sdk.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "Hi"}]
                )
                return answer.choices[0].message.content or ""

            assert ask("going") == "Echo from gpt-fake: Hi"  # now cached in the gateway
            as_user(client, make_operator())
            assert client.post(f"/routes/{going.pk}/delete/").status_code == 302
            calls = len(upstream.requests)
            with pytest.raises(openai.NotFoundError) as refused:
                ask("going")
            assert refused.value.code == "model_not_found"
            assert len(upstream.requests) == calls  # refused before any upstream call
            assert "going" not in [m.id for m in sdk.models.list()]
            assert ask("staying") == "Echo from gpt-stay: Hi"
