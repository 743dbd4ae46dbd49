"""Every API call leaves one audit entry with its metadata (never the prompt, the answer or a
key), written in batches off the request path and chained like every other event."""

from __future__ import annotations

import io
import json
import time
from decimal import Decimal

import openai
import pytest
from django.core.management import call_command

from aigateway.audit.models import AuditEvent
from aigateway.audit.writer import audit_writer
from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from providers.models import ModelPrice, ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

UPSTREAM_KEY = "sk-audit-upstream-000000"
PROMPT = "The secret launch code is PLUTO-7781"


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def gateway_client(cast, upstream, live_gateway):
    provider = make_provider("fake", ProviderKind.OPENAI, upstream.openai_base_url, UPSTREAM_KEY)
    route = make_route("gpt-audit", (provider, "gpt-4o-mini"))
    ModelPrice.objects.create(model="gpt-4o-mini", input_per_million=Decimal("150"),
                              output_per_million=Decimal("600"))  # fmt: skip
    issued = make_key(cast.team, route)
    client = openai.OpenAI(
        base_url=live_gateway.openai_base_url, api_key=issued.raw_key, max_retries=0, timeout=10
    )
    yield client, issued
    client.close()


def _verify() -> str:
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue().strip()


def _all_ok() -> str:
    return f"audit chain OK: {AuditEvent.objects.count()} records"


def test_a_call_is_audited_with_metadata_and_no_prompt_answer_or_key(gateway_client, cast):
    client, issued = gateway_client
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-audit", messages=[{"role": "user", "content": PROMPT}]
    )
    answer = raw.parse().choices[0].message.content
    request_id = raw.headers["x-request-id"]
    assert not AuditEvent.objects.filter(action="api.call").exists()  # buffered, not written
    assert audit_writer.flush() == 1
    usage_recorder.flush()

    event = AuditEvent.objects.get(action="api.call")
    usage = UsageRecord.objects.get(request_id=request_id)
    assert (event.target_type, event.target_id, event.target_label) == (
        "api_call", request_id, "gpt-audit"
    )  # fmt: skip
    assert event.organisation_id == cast.org.pk
    assert event.actor_label == f"key {issued.api_key.prefix}" and event.actor is None
    d = event.details
    assert d["request_id"] == request_id
    assert (d["team_id"], d["api_key_id"], d["key_prefix"]) == (
        cast.team.pk, issued.api_key.pk, issued.api_key.prefix
    )  # fmt: skip
    assert d["source"] == "api" and d["client_ip"] == "127.0.0.1"
    assert (d["route"], d["provider"], d["upstream_model"]) == ("gpt-audit", "fake", "gpt-4o-mini")
    assert d["deployment_id"] == usage.deployment_id is not None
    assert (d["status"], d["error_type"], d["stream"]) == (200, "", False)
    assert (d["input_tokens"], d["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert d["input_tokens"] > 0 and d["output_tokens"] > 0
    assert Decimal(d["cost_usd"]) == usage.cost_usd > 0
    assert d["latency_ms"] > 0 and d["cache_status"] == usage.cache_status
    assert (d["attempts"], d["retries"], d["failovers"]) == (1, 0, 0)
    assert isinstance(d.get("trace"), dict)  # the call's decision trace, hashed with the rest
    stored = json.dumps(
        [event.details, event.target_label, event.actor_label], ensure_ascii=False
    )  # fmt: skip
    for secret in ("PLUTO-7781", PROMPT, issued.raw_key, UPSTREAM_KEY, answer):
        assert secret not in stored
    assert _verify() == _all_ok()


def test_failed_and_streamed_calls_are_audited_too(gateway_client, upstream):
    client, _ = gateway_client
    upstream.push_fault("400", message="bad thing")
    with pytest.raises(openai.BadRequestError) as failed:
        client.chat.completions.create(
            model="gpt-audit", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-route", messages=[{"role": "user", "content": "x"}]
        )
    stream = client.chat.completions.create(
        model="gpt-audit", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed
    assert audit_writer.flush() == 3

    events = list(AuditEvent.objects.filter(action="api.call").order_by("sequence"))
    bad, unknown, streamed_call = (e.details for e in events)
    assert bad["status"] == 400 and bad["error_type"] and bad["request_id"] == (
        failed.value.response.headers["x-request-id"]
    )  # fmt: skip
    assert unknown["status"] == 404 and unknown["error_type"] == "model_not_found"
    assert unknown["deployment_id"] is None and unknown["output_tokens"] == 0
    assert streamed_call["status"] == 200 and streamed_call["stream"] is True
    assert streamed_call["output_tokens"] > 0
    assert "PLUTO" not in json.dumps([e.details for e in events])
    assert _verify() == _all_ok()


def test_api_calls_and_admin_events_share_one_chain(gateway_client):
    from aigateway.audit.services import audit_record

    client, _ = gateway_client
    setup = AuditEvent.objects.count()  # the fixture's credential.created
    for _ in range(3):
        client.chat.completions.create(
            model="gpt-audit", messages=[{"role": "user", "content": "hi"}]
        )
    audit_record(action="thing.changed", target_type="thing")  # written at once
    assert audit_writer.pending() == 3
    audit_writer.flush()
    actions = list(
        AuditEvent.objects.filter(sequence__gt=setup)
        .order_by("sequence")
        .values_list("sequence", "action")
    )
    n = setup
    assert actions == [(n + 1, "thing.changed"), (n + 2, "api.call"), (n + 3, "api.call"),
                       (n + 4, "api.call")]  # fmt: skip
    assert _verify() == _all_ok()


def test_a_failed_flush_keeps_the_batch_while_the_database_is_down(gateway_client, monkeypatch):
    from django.db import OperationalError

    from aigateway.audit import services
    from aigateway.core import buffered

    client, _ = gateway_client
    client.chat.completions.create(model="gpt-audit", messages=[{"role": "user", "content": "hi"}])

    # A database outage, as the writer sees one: the insert fails and so does a SELECT 1.
    def insert_fails(events: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "chain_append_rows", insert_fails)
    monkeypatch.setattr(buffered, "database_up", lambda: False)
    dropped = audit_writer.dropped
    assert audit_writer.flush() == 0
    assert audit_writer.pending() == 1 and audit_writer.dropped == dropped
    monkeypatch.undo()
    assert audit_writer.flush() == 1
    assert AuditEvent.objects.filter(action="api.call").count() == 1


def test_an_unserialisable_trace_does_not_block_the_batch(cast, transactional_db):
    from django.utils import timezone

    from aigateway.audit.writer import PendingCall
    from aigateway.usage.recorder import UsageEntry

    class BrokenTrace:
        def as_dict(self) -> dict[str, object]:
            cycle: dict[str, object] = {}
            cycle["self"] = cycle  # no JSON form at all
            return cycle

    class NaNTrace:
        def as_dict(self) -> dict[str, object]:
            return {"wait_s": float("nan"), "ok": 1}

    entry = UsageEntry(
        request_id="req_nan", created_at=timezone.now(), source="batch", status_code=200,
        organisation_id=cast.org.pk, cost_usd=Decimal("0.5"),
    )  # fmt: skip
    audit_writer.record(PendingCall(entry, 1, 0, 0, "", BrokenTrace()))
    audit_writer.record(PendingCall(entry, 1, 0, 0, "", NaNTrace()))
    audit_writer.record(PendingCall(entry, 1, 0, 0, "", None))
    assert audit_writer.flush() == 3
    first, nan, _ = AuditEvent.objects.order_by("sequence")
    assert first.details["trace_error"] == "unserialisable" and "trace" not in first.details
    assert first.details["source"] == "batch" and first.details["cost_usd"] == "0.5"
    # NaN has no JSON form: stored (and hashed) as null, the rest of the trace kept.
    assert nan.details["trace"] == {"wait_s": None, "ok": 1}
    assert _verify() == "audit chain OK: 3 records"


def test_the_background_task_writes_entries_without_being_asked(gateway_client, settings):
    settings.AIGATEWAY_AUDIT_FLUSH_SECONDS = 0.2
    client, _ = gateway_client
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-audit", messages=[{"role": "user", "content": "hi"}]
    )
    request_id = raw.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while not AuditEvent.objects.filter(target_id=request_id).exists():
        assert time.monotonic() < deadline, "the periodic flush never wrote the entry"
        time.sleep(0.05)
    assert audit_writer.pending() == 0


def test_a_route_name_with_a_nul_character_cannot_block_the_batch(gateway_client):
    client, _ = gateway_client
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gpt\x00audit", messages=[{"role": "user", "content": "x"}]
        )
    client.chat.completions.create(model="gpt-audit", messages=[{"role": "user", "content": "x"}])
    assert audit_writer.flush() == 2
    labels = set(
        AuditEvent.objects.filter(action="api.call").values_list("target_label", flat=True)
    )
    assert labels == {"gptaudit", "gpt-audit"}
    assert _verify() == _all_ok()


def test_an_entry_the_database_refuses_is_dropped_alone(cast, transactional_db):
    from django.utils import timezone

    from aigateway.audit.writer import PendingCall
    from aigateway.usage.recorder import UsageEntry

    def call(request_id: str, organisation_id: int) -> PendingCall:
        entry = UsageEntry(request_id=request_id, created_at=timezone.now(), source="api",
                           status_code=200, organisation_id=organisation_id)  # fmt: skip
        return PendingCall(entry, 1, 0, 0, "", None)

    dropped = audit_writer.dropped
    audit_writer.record(call("req_ok_1", cast.org.pk))
    audit_writer.record(call("req_poison", 2**70))  # beyond any BIGINT column
    audit_writer.record(call("req_ok_2", cast.org.pk))
    assert audit_writer.flush() == 2
    assert audit_writer.pending() == 0 and audit_writer.dropped == dropped + 1
    ids = list(AuditEvent.objects.order_by("sequence").values_list("target_id", flat=True))
    assert ids == ["req_ok_1", "req_ok_2"]
    assert _verify() == "audit chain OK: 2 records"
