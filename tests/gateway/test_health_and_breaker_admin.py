"""Health probes feed breakers and the health panel; admins force and reset breakers,
with a reason, audited."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from aigateway.audit.models import AuditEvent
from aigateway.routing.models import BreakerEvent, Deployment
from aigateway.routing.services import breaker_force, breakers_list
from aigateway.routing.tasks import probe_deployments
from providers.models import ProviderKind
from tests.factories import make_provider, make_route
from tests.fakes.upstream import FakeUpstream

KEY = "sk-probe-key-0000000000"


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def deployments(transactional_db, upstream):
    provider = make_provider("openai", ProviderKind.OPENAI, upstream.openai_base_url, secret=KEY)
    make_route("a", (provider, "model-a"))
    make_route("b", (provider, "model-b"))
    return list(Deployment.objects.order_by("pk"))


def test_probes_share_one_call_per_credential_and_record_health(deployments, upstream):
    assert probe_deployments() == {"probed": 2, "healthy": 2, "unhealthy": 0}
    assert [r.path for r in upstream.requests] == ["/v1/models"]  # one probe for both
    for deployment in Deployment.objects.all():
        assert deployment.last_probe_ok is True
        assert deployment.last_probe_latency_ms > 0
        assert deployment.last_probe_at is not None


def test_failed_probes_open_the_breaker(deployments, upstream, settings):
    settings.AIGATEWAY_BREAKER_FAILURES = 2
    upstream.push_fault("500", count=10)
    probe_deployments()
    assert probe_deployments() == {"probed": 2, "healthy": 0, "unhealthy": 2}
    deployment = Deployment.objects.get(pk=deployments[0].pk)
    assert (deployment.last_probe_ok, deployment.last_probe_error) == (False, "server_error")
    states = {row.deployment.pk: row.breaker.state for row in breakers_list()}
    assert states == {deployments[0].pk: "open", deployments[1].pk: "open"}


def test_forcing_a_breaker_needs_a_reason_and_is_audited(deployments, cast):
    deployment = deployments[0]
    with pytest.raises(ValueError, match="reason"):
        breaker_force(deployment=deployment, mode="open", reason=" ")
    transition = breaker_force(
        deployment=deployment, mode="open", reason="provider maintenance", actor=cast.alice
    )
    assert (transition.from_state, transition.to_state) == ("closed", "forced_open")
    event = BreakerEvent.objects.get(deployment=deployment)
    assert event.actor == cast.alice and "provider maintenance" in event.reason
    audit = AuditEvent.objects.get(action="breaker.open")
    assert audit.actor == cast.alice and audit.details["reason"] == "provider maintenance"
    reset = breaker_force(deployment=deployment, mode="reset", reason="done", actor=cast.alice)
    assert (reset.from_state, reset.to_state) == ("forced_open", "closed")


def test_the_breakers_command_lists_and_forces(deployments):
    out = StringIO()
    call_command("breakers", "close", str(deployments[1].pk), "--reason", "known good", stdout=out)
    call_command("breakers", "list", stdout=out)
    text = out.getvalue()
    assert "closed → forced_closed" in text
    assert "forced_closed" in text.splitlines()[-1]
