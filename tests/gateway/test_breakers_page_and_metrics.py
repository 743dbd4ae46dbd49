"""Breakers in the dashboard (live state, history, audited force/reset) and in /metrics."""

from __future__ import annotations

import pytest

from aigateway.audit.models import AuditEvent
from aigateway.routing.models import BreakerEvent
from aigateway.routing.services import breaker_force
from tests.factories import make_provider, make_route

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


def test_the_fragment_refreshes_the_live_table(client, cast, deployment):
    client.force_login(cast.alice)
    fragment = client.get("/breakers/fragment/").content.decode()
    assert 'id="breaker-table"' in fragment and "<h1>" not in fragment
    assert "closed" in fragment


def test_forcing_from_the_page_needs_a_reason_and_confirmation(
    client, cast, deployment, django_user_model
):
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-123")
    client.force_login(cast.alice)  # an organisation's platform admin reads, cannot change
    assert "Force open" not in client.get("/breakers/").content.decode()
    assert (
        client.post(
            f"/breakers/{deployment.pk}/open/", {"reason": "x", "confirm": "yes"}
        ).status_code
        == 403
    )
    client.force_login(root)
    url = f"/breakers/{deployment.pk}/open/"
    client.post(url, {"reason": "", "confirm": "yes"})
    client.post(url, {"reason": "upstream incident"})
    assert not BreakerEvent.objects.exists()
    response = client.post(url, {"reason": "upstream incident", "confirm": "yes"}, follow=True)
    assert "closed → forced_open" in response.content.decode()
    assert BreakerEvent.objects.get().actor == root
    assert AuditEvent.objects.filter(action="breaker.open", actor=root).exists()
    client.force_login(cast.dave)
    assert (
        client.post(
            f"/breakers/{deployment.pk}/reset/", {"reason": "x", "confirm": "yes"}
        ).status_code
        == 403
    )


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
