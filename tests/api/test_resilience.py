"""Resilience end to end: the official `openai` SDK (its own retries off) → the live gateway →
the adapters → wire-level fake upstreams that fail on purpose.

Retries, retry-after, deadlines (the route's and the caller's), failover across providers
and its reasons (errors, rate limits, context window, content filter), the circuit breaker,
the error trail when everything failed, and a stream cut after its first token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import openai
import pytest

from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from tests.api.resilience_support import (
    MESSAGES,
    PRIMARY,
    PRIMARY_KEY,
    SECONDARY,
    SECONDARY_KEY,
    Gateway,
    add_deployment,
    breaker_transition_stored,
    build_gateway,
    chat_paths,
    sse_events,
)
from tests.conftest import SECRET_PATTERNS

SERVED_BY_PRIMARY = "/".join(PRIMARY)
SERVED_BY_SECONDARY = "/".join(SECONDARY)
MANY = 1000  # a fault count no test exhausts
RECOVERY = 1.0  # seconds an open breaker waits before its probe


@pytest.fixture(autouse=True)
def _quick_breaker(settings) -> None:
    # The live server runs in this process, so these overrides apply to it.
    settings.AIGATEWAY_BREAKER_FAILURES = 3
    settings.AIGATEWAY_BREAKER_RECOVERY_SECONDS = RECOVERY
    settings.AIGATEWAY_BREAKER_PROBE_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def make_gateway(cast, live_gateway, upstream_a, upstream_b) -> Iterator[Callable[..., Gateway]]:
    """``make_gateway(secondary=True, **route_fields)``: route "smart" = primary (OpenAI kind
    on upstream A), then secondary (Anthropic kind on upstream B)."""
    built: list[Gateway] = []

    def make(*, secondary: bool = True, **fields) -> Gateway:
        gateway = build_gateway(
            team=cast.team,
            base_url=live_gateway.openai_base_url,
            primary_upstream=upstream_a,
            secondary_upstream=upstream_b if secondary else None,
            **fields,
        )
        built.append(gateway)
        return gateway

    yield make
    for gateway in built:
        gateway.close()


def _create(client: openai.OpenAI, **kwargs):
    return client.chat.completions.with_raw_response.create(
        model="smart", messages=MESSAGES, **kwargs
    )


def _text(raw) -> str:
    return raw.parse().choices[0].message.content


# -- retries on one deployment -----------------------------------------------------------------
def test_a_server_error_is_retried_and_the_call_succeeds(make_gateway, upstream_a):
    gateway = make_gateway(secondary=False)
    upstream_a.push_fault("500")

    raw = _create(gateway.sdk())

    assert raw.status_code == 200
    assert _text(raw).endswith("Hello resilience")
    assert [r.fault for r in upstream_a.requests] == ["500", None]
    assert "x-aigateway-failovers" not in raw.headers  # a retry on the same deployment
    assert raw.headers["x-aigateway-served-by"] == SERVED_BY_PRIMARY
    usage_recorder.flush()
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert (record.status_code, record.error_type) == (200, "")
    assert (record.provider, record.deployment_id) == (PRIMARY[0], gateway.primary.pk)


def test_retry_after_is_honoured_before_the_retry(make_gateway, upstream_a):
    gateway = make_gateway(secondary=False)
    upstream_a.push_fault("429", retry_after=1)

    started = time.monotonic()
    raw = _create(gateway.sdk())
    elapsed = time.monotonic() - started

    assert raw.status_code == 200
    assert elapsed >= 1.0, f"retried after {elapsed:.3f} s, before the upstream's retry-after"
    assert [r.fault for r in upstream_a.requests] == ["429", None]


# -- deadlines ---------------------------------------------------------------------------------
def test_the_route_timeout_bounds_the_whole_call(make_gateway, upstream_a):
    gateway = make_gateway(secondary=False, timeout_seconds=0.5)
    upstream_a.push_fault("slow", delay=3)

    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        _create(gateway.sdk())
    elapsed = time.monotonic() - started

    assert caught.value.status_code == 504
    assert caught.value.code == "timeout"
    assert elapsed < 1.5, f"the gateway answered after {elapsed:.3f} s"
    assert len(upstream_a.requests) == 1  # no retry can start past the deadline


def test_the_callers_timeout_header_bounds_the_call(make_gateway, upstream_a):
    """The caller says how long it waits (X-Stainless-Timeout, as the anthropic SDK sends it);
    the gateway answers with its own 504 before the caller gives up, not after."""
    gateway = make_gateway(secondary=False, timeout_seconds=30)
    _create(gateway.sdk())  # warm-up: a fresh process's first call pays imports and connects
    upstream_a.push_fault("slow", delay=5)
    client = gateway.sdk(timeout=2.0, default_headers={"X-Stainless-Timeout": "2.0"})

    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        _create(client)
    elapsed = time.monotonic() - started

    assert not isinstance(caught.value, openai.APITimeoutError), "the client gave up first"
    assert isinstance(caught.value, openai.APIStatusError)
    assert (caught.value.status_code, caught.value.code) == (504, "timeout")
    assert elapsed < 2.0


def test_the_openai_sdks_own_timeout_bounds_the_call(make_gateway, upstream_a):
    gateway = make_gateway(secondary=False, timeout_seconds=30)
    _create(gateway.sdk())  # warm-up: a fresh process's first call pays imports and connects
    upstream_a.push_fault("slow", delay=5)

    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        _create(gateway.sdk(timeout=2.0))
    elapsed = time.monotonic() - started

    assert not isinstance(caught.value, openai.APITimeoutError), "the client gave up first"
    assert isinstance(caught.value, openai.APIStatusError)
    assert (caught.value.status_code, caught.value.code) == (504, "timeout")
    assert elapsed < 2.0


# -- failover across providers -----------------------------------------------------------------
def test_a_failing_primary_fails_over_to_another_provider(make_gateway, upstream_a, upstream_b):
    gateway = make_gateway()
    upstream_a.push_fault("500", count=MANY)

    raw = _create(gateway.sdk())

    assert raw.status_code == 200
    assert raw.headers["x-aigateway-failovers"] == "1"
    assert raw.headers["x-aigateway-served-by"] == SERVED_BY_SECONDARY
    assert _text(raw).endswith(f"Echo from {SECONDARY[1]}: Hello resilience")
    assert chat_paths(upstream_a) == ["/v1/chat/completions"]
    assert chat_paths(upstream_b) == ["/v1/messages"]  # the Anthropic protocol, really
    usage_recorder.flush()
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert (record.status_code, record.provider) == (200, SECONDARY[0])
    assert record.deployment_id == gateway.secondary.pk


def test_a_stream_fails_over_before_its_first_token(make_gateway, upstream_a, upstream_b):
    gateway = make_gateway()
    upstream_a.push_fault("500", count=MANY)

    raw = _create(gateway.sdk(), stream=True)
    text = "".join(choice.delta.content or "" for chunk in raw.parse() for choice in chunk.choices)

    assert raw.headers["x-aigateway-failovers"] == "1"
    assert raw.headers["x-aigateway-served-by"] == SERVED_BY_SECONDARY
    assert text == f"Echo from {SECONDARY[1]}: Hello resilience"
    assert len(chat_paths(upstream_a)) == 1 and len(chat_paths(upstream_b)) == 1


def test_a_bad_request_is_neither_retried_nor_failed_over(make_gateway, upstream_a, upstream_b):
    gateway = make_gateway()
    upstream_a.push_fault("400", count=MANY)

    with pytest.raises(openai.BadRequestError) as caught:
        _create(gateway.sdk())

    assert caught.value.status_code == 400
    assert len(upstream_a.requests) == 1
    assert upstream_b.requests == []


# -- rate limits -------------------------------------------------------------------------------
def test_a_rate_limited_primary_gives_way_to_the_secondary_at_once(
    make_gateway, upstream_a, upstream_b
):
    gateway = make_gateway()
    upstream_a.push_fault("429", retry_after=3)

    started = time.monotonic()
    raw = _create(gateway.sdk())
    elapsed = time.monotonic() - started

    assert raw.status_code == 200
    assert raw.headers["x-aigateway-served-by"] == SERVED_BY_SECONDARY
    assert raw.headers["x-aigateway-failovers"] == "1"
    assert elapsed < 2.0, f"failover waited ({elapsed:.3f} s) for the primary's retry-after"
    assert len(upstream_a.requests) == 1


def test_without_rate_limit_fallback_the_primary_is_retried_after_retry_after(
    make_gateway, upstream_a, upstream_b
):
    gateway = make_gateway(fallback_on_rate_limit=False)
    upstream_a.push_fault("429", retry_after=1)

    started = time.monotonic()
    raw = _create(gateway.sdk())
    elapsed = time.monotonic() - started

    assert raw.status_code == 200
    assert raw.headers["x-aigateway-served-by"] == SERVED_BY_PRIMARY
    assert "x-aigateway-failovers" not in raw.headers
    assert elapsed >= 1.0, f"retried after {elapsed:.3f} s, before the upstream's retry-after"
    assert [r.fault for r in upstream_a.requests] == ["429", None]
    assert upstream_b.requests == []


# -- context window ----------------------------------------------------------------------------
def test_a_context_overflow_moves_to_a_larger_window_only(make_gateway, upstream_a, upstream_b):
    """Primary (8k) overflows; the next two deployments have an equal and a smaller window
    and are skipped; the 128k one serves."""
    gateway = make_gateway(
        primary_fields={"max_context_tokens": 8000},
        secondary_fields={"max_context_tokens": 128_000},
    )
    provider = gateway.primary.provider
    equal = add_deployment(gateway.route, provider, "gpt-equal", max_context_tokens=8000)
    smaller = add_deployment(gateway.route, provider, "gpt-smaller", max_context_tokens=4000)
    # Tried before the 128k secondary, were they not skipped.
    for position, deployment in enumerate((gateway.primary, equal, smaller, gateway.secondary)):
        deployment.priority = position
        deployment.save(update_fields=["priority"])
    upstream_a.push_fault("context_length")

    raw = _create(gateway.sdk())

    assert raw.status_code == 200
    assert raw.headers["x-aigateway-served-by"] == SERVED_BY_SECONDARY
    assert [r.json["model"] for r in upstream_a.requests] == [PRIMARY[1]]
    assert [r.json["model"] for r in upstream_b.requests] == [SECONDARY[1]]


def test_a_context_overflow_without_a_larger_window_reaches_the_caller(
    make_gateway, upstream_a, upstream_b
):
    gateway = make_gateway(
        primary_fields={"max_context_tokens": 8000},
        secondary_fields={"max_context_tokens": 8000},
    )
    upstream_a.push_fault("context_length")

    with pytest.raises(openai.BadRequestError) as caught:
        _create(gateway.sdk())

    assert caught.value.code == "context_length_exceeded"
    assert upstream_b.requests == []


# -- content filter ----------------------------------------------------------------------------
def test_a_content_filter_refusal_is_not_failed_over_by_default(
    make_gateway, upstream_a, upstream_b
):
    gateway = make_gateway()
    upstream_a.push_fault("content_filter", count=MANY)

    with pytest.raises(openai.BadRequestError) as caught:
        _create(gateway.sdk())

    assert (caught.value.status_code, caught.value.code) == (400, "content_filter")
    assert len(upstream_a.requests) == 1
    assert upstream_b.requests == []


def test_a_content_filter_refusal_fails_over_when_the_route_says_so(
    make_gateway, upstream_a, upstream_b
):
    gateway = make_gateway(fallback_on_content_filter=True)
    upstream_a.push_fault("content_filter", count=MANY)

    raw = _create(gateway.sdk())

    assert raw.status_code == 200
    assert raw.headers["x-aigateway-served-by"] == SERVED_BY_SECONDARY
    assert raw.headers["x-aigateway-failovers"] == "1"


# -- circuit breaker ---------------------------------------------------------------------------
def test_the_breaker_opens_skips_the_primary_then_probes_and_closes(
    backend, make_gateway, upstream_a, upstream_b
):
    gateway = make_gateway()
    client = gateway.sdk()
    upstream_a.push_fault("500", count=3)

    for _ in range(3):  # each call: the primary fails, the secondary serves
        third_started = time.monotonic()  # the breaker opens during the third call
        raw = _create(client)
        assert raw.headers["x-aigateway-served-by"] == SERVED_BY_SECONDARY
    opened_by = time.monotonic()
    assert len(chat_paths(upstream_a)) == 3

    for _ in range(2):  # open: straight to the secondary, the primary is left alone
        raw = _create(client)
        assert raw.headers["x-aigateway-served-by"] == SERVED_BY_SECONDARY
    assert time.monotonic() < third_started + RECOVERY, "too slow to see the open state"
    assert len(chat_paths(upstream_a)) == 3
    assert len(chat_paths(upstream_b)) == 5
    assert breaker_transition_stored(gateway.primary, "closed", "open")

    # Past the recovery time, one probe goes to the primary (its faults are used up).
    time.sleep(max(0.0, opened_by + RECOVERY + 0.05 - time.monotonic()))
    raw = _create(client)
    assert raw.headers["x-aigateway-served-by"] == SERVED_BY_PRIMARY
    assert len(chat_paths(upstream_a)) == 4
    assert breaker_transition_stored(gateway.primary, "open", "half_open")
    assert breaker_transition_stored(gateway.primary, "half_open", "closed")

    raw = _create(client)  # closed again: the primary serves
    assert raw.headers["x-aigateway-served-by"] == SERVED_BY_PRIMARY
    assert len(chat_paths(upstream_b)) == 5


# -- when everything fails ---------------------------------------------------------------------
def test_when_every_deployment_fails_the_error_lists_each_attempt(
    make_gateway, upstream_a, upstream_b
):
    gateway = make_gateway(max_retries=1)
    upstream_a.push_fault("500", count=MANY)
    upstream_b.push_fault("500", count=MANY)

    with pytest.raises(openai.APIStatusError) as caught:
        _create(gateway.sdk())

    error = caught.value
    assert (error.status_code, error.code) == (502, "server_error")
    primary = f"{SERVED_BY_PRIMARY} (deployment {gateway.primary.pk}): server_error"
    secondary = f"{SERVED_BY_SECONDARY} (deployment {gateway.secondary.pk}): server_error"
    message = error.body["message"]
    assert message.startswith("All attempts failed: ")
    trail = message.removeprefix("All attempts failed: ").split("; ")
    assert trail[:4] == [primary, secondary, primary, secondary]  # two rounds
    assert trail[4:] == ["last upstream request id fake-req-2"]
    assert len(chat_paths(upstream_a)) == 2 and len(chat_paths(upstream_b)) == 2
    body = error.response.text
    for secret in (PRIMARY_KEY, SECONDARY_KEY, gateway.raw_key):
        assert secret not in body
    assert not SECRET_PATTERNS.search(body)
    usage_recorder.flush()
    record = UsageRecord.objects.get(request_id=error.response.headers["x-request-id"])
    assert (record.status_code, record.error_type) == (502, "server_error")


# -- a stream cut after its first token --------------------------------------------------------
def test_a_stream_cut_after_the_first_token_ends_with_an_error_event(
    make_gateway, upstream_a, upstream_b
):
    gateway = make_gateway()
    upstream_a.push_fault("reset_mid_stream", after=3)

    response = gateway.raw_stream()
    assert response.status_code == 200
    events = sse_events(response)

    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["type"] == "api_error" and error["code"]
    chunks = [json.loads(e) for e in events[:-2]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text.startswith("Echo")  # some content arrived before the cut
    assert "x-aigateway-failovers" not in response.headers
    assert len(chat_paths(upstream_a)) == 1
    assert upstream_b.requests == []  # too late to fail over: the client has tokens
    usage_recorder.flush()
    record = UsageRecord.objects.get(request_id=response.headers["x-request-id"])
    assert record.status_code == 502 and record.error_type == error["code"]


def test_the_sdk_raises_on_an_in_stream_error_after_content(make_gateway, upstream_a, upstream_b):
    gateway = make_gateway()
    upstream_a.push_fault("reset_mid_stream", after=3)

    stream = gateway.sdk().chat.completions.create(model="smart", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.extend(choice.delta.content or "" for choice in chunk.choices)

    assert "".join(received).startswith("Echo")
    assert upstream_b.requests == []
