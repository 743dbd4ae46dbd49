"""OpenTelemetry spans of gateway calls, recorded with the SDK's in-memory exporter: one
request span with a child per stage and per upstream attempt; nothing when disabled; never a
prompt or a key in an attribute."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aigateway.observability import otel
from tests.api.resilience_support import (
    MESSAGES,
    PRIMARY_KEY,
    SECONDARY_KEY,
    build_gateway,
)
from tests.fakes.upstream import FakeUpstream


@pytest.fixture
def spans(settings) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.install(provider)
    settings.AIGATEWAY_OTEL_ENABLED = True
    yield exporter
    otel.shutdown()


@pytest.fixture
def gateway(cast, live_gateway):
    with FakeUpstream(api_key=PRIMARY_KEY) as a, FakeUpstream(api_key=SECONDARY_KEY) as b:
        built = build_gateway(
            team=cast.team, base_url=live_gateway.openai_base_url, primary_upstream=a,
            secondary_upstream=b,
        )  # fmt: skip
        yield built, a
        built.close()


def test_a_call_is_one_request_span_with_a_child_per_stage_and_attempt(spans, gateway):
    built, primary_upstream = gateway
    primary_upstream.push_fault("500")
    built.sdk().chat.completions.create(
        model="smart", messages=[{"role": "user", "content": "secret words jane@example.com"}]
    )
    finished = spans.get_finished_spans()
    [root] = [s for s in finished if s.parent is None]
    assert root.name == "gateway.request" and root.kind is SpanKind.SERVER
    children = [s for s in finished if s.parent is not None]
    assert {s.parent.span_id for s in children} == {root.context.span_id}
    assert {s.context.trace_id for s in finished} == {root.context.trace_id}
    assert [s.name for s in children if s.name != "gateway.upstream"] == [
        "gateway.auth",
        "gateway.route",
        "gateway.limits",
        "gateway.cache",
        "gateway.record",
    ]
    attempts = [s for s in children if s.name == "gateway.upstream"]
    assert [a.attributes["aigateway.outcome"] for a in attempts] == ["server_error", "ok"]
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert attempts[1].attributes["aigateway.deployment_id"] == built.secondary.pk
    assert all(s.start_time <= s.end_time for s in finished)
    assert all(root.start_time <= s.start_time and s.end_time <= root.end_time for s in children)
    attributes = dict(root.attributes)
    assert attributes["aigateway.route"] == "smart"
    assert attributes["http.response.status_code"] == 200
    assert attributes["aigateway.deployment_id"] == built.secondary.pk
    assert attributes["aigateway.failovers"] == 1
    assert attributes["gen_ai.usage.input_tokens"] == 3
    assert attributes["gen_ai.usage.output_tokens"] > 0
    values = " ".join(str(v) for s in finished for v in s.attributes.values())
    for forbidden in ("secret words", "jane@example.com", PRIMARY_KEY, SECONDARY_KEY,
                      built.raw_key):  # fmt: skip
        assert forbidden not in values


def test_a_failed_call_marks_its_request_span_as_an_error(spans, gateway, settings):
    built, primary_upstream = gateway
    built.route.max_retries = 0
    built.route.save()
    primary_upstream.push_fault("500")
    built.route.deployments.filter(pk=built.secondary.pk).update(enabled=False)
    built.route.save()  # bumps the config version: the route is reloaded without it
    with pytest.raises(openai.APIStatusError):
        built.sdk().chat.completions.create(model="smart", messages=MESSAGES)
    [root] = [s for s in spans.get_finished_spans() if s.parent is None]
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes["error.type"] == "server_error"
    assert root.attributes["http.response.status_code"] == 502


def test_nothing_is_recorded_when_disabled(spans, gateway, settings):
    settings.AIGATEWAY_OTEL_ENABLED = False
    built, _ = gateway
    built.sdk().chat.completions.create(model="smart", messages=MESSAGES)
    assert spans.get_finished_spans() == ()
