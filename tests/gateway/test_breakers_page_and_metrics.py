"""Breakers in the dashboard (live state, history, audited force/reset) and in /metrics."""

from __future__ import annotations

import pytest

from aigateway.audit.models import AuditEvent
from aigateway.routing.models import BreakerEvent
from aigateway.routing.services import breaker_force, breakers_list
from tests.factories import make_provider, make_route
from tests.web.gateway_config_support import make_admin_of_every_organisation

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(cast):
    route = make_route("smart", (make_provider(), "demo"))
    return route.deployments.get()


def test_admins_and_auditors_see_breakers_members_do_not(client, cast, deployment):
    breaker_force(deployment=deployment, mode="open", reason="maintenance window", actor=cast.alice)
    for user in (cast.alice, cast.dave):
        client.force_login(user)
        page = client.get("/breakers/").content.decode()
        assert "forced_open" in page and "maintenance window" in page
    assert "Force open" not in page  # dave audits, he cannot change breakers
    client.force_login(cast.carol)
    assert client.get("/breakers/").status_code == 403
    assert client.get("/breakers/fragment/").status_code == 403


def test_the_fragment_swaps_the_live_cells_and_the_history_not_the_forms(client, cast, deployment):
    client.force_login(cast.alice)
    page = client.get("/breakers/").content.decode()
    assert f'hx-get="/breakers/fragment/?ids={deployment.pk}"' in page
    breaker_force(deployment=deployment, mode="open", reason="drill", actor=cast.alice)
    fragment = client.get(f"/breakers/fragment/?ids={deployment.pk}").content.decode()
    for cell in ("state", "failures", "probe"):
        assert f'<span id="breaker-{cell}-{deployment.pk}" hx-swap-oob="true">' in fragment
    assert '<div id="breaker-history" hx-swap-oob="true">' in fragment
    assert "forced_open" in fragment and "drill" in fragment
    assert "<h1>" not in fragment and "<form" not in fragment  # typed reasons stay put
    # Only the cells the page has (htmx reports a swap without a target as an error).
    assert "breaker-state" not in client.get("/breakers/fragment/?ids=999").content.decode()
    assert client.get("/breakers/fragment/?ids=abc").status_code == 400
    assert client.get("/breakers/fragment/?ids=²").status_code == 400  # isdigit, not int


def test_the_page_shows_failure_counts_and_each_deployments_history(client, cast, deployment):
    other = make_route("fast", (deployment.provider, "demo-fast")).deployments.get()
    breaker_force(deployment=deployment, mode="open", reason="smart maintenance")
    breaker_force(deployment=other, mode="open", reason="fast maintenance")
    client.force_login(cast.dave)
    page = client.get("/breakers/").content.decode()
    assert "Failures (in a row / in the window)" in page and "0 / 0 of 0" in page
    assert "smart maintenance" in page and "fast maintenance" in page
    assert f'href="/breakers/?deployment={deployment.pk}#history-heading"' in page
    only = client.get(f"/breakers/?deployment={deployment.pk}").content.decode()
    assert f"Transitions of {deployment}" in only
    assert "smart maintenance" in only and "fast maintenance" not in only
    assert client.get("/breakers/?deployment=999").status_code == 404
    assert client.get("/breakers/?deployment=²").status_code == 404
    assert client.get("/breakers/?deployment=x").status_code == 404


def test_forcing_from_the_page_needs_a_reason_and_confirmation(client, cast, deployment):
    """Breakers follow the Routes page's rule: a platform admin of one organisation among
    several (alice, admin of acme, not globex) reads; one of every organisation changes."""
    client.force_login(cast.alice)
    assert "Force open" not in client.get("/breakers/").content.decode()
    url = f"/breakers/{deployment.pk}/open/"
    assert client.post(url, {"reason": "x", "confirm": "yes"}).status_code == 403
    assert not BreakerEvent.objects.exists()

    make_admin_of_every_organisation(cast)
    assert "Force open" in client.get("/breakers/").content.decode()
    blank = client.post(url, {"reason": " ", "confirm": "yes"}, follow=True).content.decode()
    assert "Nothing changed. Give a reason" in blank
    unconfirmed = client.post(url, {"reason": "upstream incident"}, follow=True)
    assert "please tick the confirmation box" in unconfirmed.content.decode()
    too_long = client.post(url, {"reason": "x" * 301, "confirm": "yes"}, follow=True)
    assert "at most 300 characters" in too_long.content.decode()
    assert client.post(f"/breakers/{deployment.pk}/explode/", {}).status_code == 404
    assert not BreakerEvent.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="breaker.").exists()

    response = client.post(url, {"reason": "upstream incident", "confirm": "yes"}, follow=True)
    assert "closed → forced_open" in response.content.decode()
    assert BreakerEvent.objects.get().actor == cast.alice
    audit = AuditEvent.objects.get(action="breaker.open")
    assert (audit.actor, audit.details["reason"]) == (cast.alice, "upstream incident")
    reset = f"/breakers/{deployment.pk}/reset/"
    client.post(reset, {"reason": "incident over", "confirm": "yes"})
    assert breakers_list()[0].breaker.state == "closed"
    client.force_login(cast.dave)  # an auditor reads only
    assert client.post(reset, {"reason": "x", "confirm": "yes"}).status_code == 403


def test_a_gateway_operator_forces_breakers_too(client, cast, deployment, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-123")
    client.force_login(root)
    url = f"/breakers/{deployment.pk}/close/"
    client.post(url, {"reason": "known good", "confirm": "yes"})
    assert breakers_list()[0].breaker.state == "forced_closed"
    assert AuditEvent.objects.filter(action="breaker.closed", actor=root).exists()


def test_metrics_report_breaker_state_for_loopback_or_token(client, cast, deployment, settings):
    breaker_force(deployment=deployment, mode="open", reason="drill", actor=cast.alice)
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    labels = f'deployment="{deployment.pk}",route="smart",provider="demo",model="demo"'
    assert f'aigateway_breaker_state{{{labels},state="forced_open"}} 1' in text
    assert f'aigateway_breaker_state{{{labels},state="closed"}} 0' in text
    transitions = f'deployment="{deployment.pk}",to_state="forced_open"'
    assert f"aigateway_breaker_transitions_total{{{transitions}}} 1" in text
    assert "aigateway_credentials_rotation_overdue 0" in text
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    settings.AIGATEWAY_METRICS_TOKEN = "scrape-token-123"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    authorised = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    assert authorised.status_code == 200


def test_metrics_say_when_the_rate_limiter_is_degraded(client, settings):
    from aigateway.core.redis import reset_clients

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    reset_clients()
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert "aigateway_redis_up 0" in text
    assert 'aigateway_rate_limiter_degraded{redis_failure="open"} 1' in text
    settings.REDIS_URL = ""  # single-process mode: in-process limits are the design
    reset_clients()
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'aigateway_rate_limiter_degraded{redis_failure="open"} 0' in text
