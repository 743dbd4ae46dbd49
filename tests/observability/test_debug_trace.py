"""The decision trace on request (X-AIGateway-Debug: trace): for keys allowed to see it, in a
header (answers, errors) or a final SSE comment (streams); ignored for every other key. Real
calls: the official SDK → the live gateway → fake upstreams that fail on purpose."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal

import openai
import pytest
import requests

from aigateway.quotas.models import Limit
from auth.keys import hash_api_key
from auth.models import ApiKey
from providers.crypto import fingerprint
from tests.api.resilience_support import (
    MESSAGES,
    PRIMARY_KEY,
    SECONDARY_KEY,
    Gateway,
    build_gateway,
)

ASK = {"X-AIGateway-Debug": "trace"}


@pytest.fixture
def make_gateway(cast, live_gateway, upstream_a, upstream_b) -> Iterator[Callable[..., Gateway]]:
    built: list[Gateway] = []

    def make(*, allowed: bool = True, secondary: bool = True, **fields) -> Gateway:
        gateway = build_gateway(
            team=cast.team, base_url=live_gateway.openai_base_url, primary_upstream=upstream_a,
            secondary_upstream=upstream_b if secondary else None, **fields,
        )  # fmt: skip
        key = api_key(gateway)
        key.debug_trace = allowed
        key.save()
        built.append(gateway)
        return gateway

    yield make
    for gateway in built:
        gateway.close()


def api_key(gateway: Gateway) -> ApiKey:
    return ApiKey.objects.get(key_hash=hash_api_key(gateway.raw_key))


def test_an_allowed_key_gets_the_trace_of_a_failover(make_gateway, upstream_a):
    gateway = make_gateway()
    key = api_key(gateway)
    Limit.objects.create(scope="key", scope_id=key.pk, kind="rpm", value=Decimal(100))
    upstream_a.push_fault("500")
    raw = gateway.sdk().chat.completions.with_raw_response.create(
        model="smart", messages=MESSAGES, extra_headers=ASK
    )
    assert raw.parse().choices[0].message.content  # the answer itself is unchanged
    header = raw.headers["x-aigateway-trace"]
    trace = json.loads(header)
    primary, secondary = gateway.primary.pk, gateway.secondary.pk
    assert [s["name"] for s in trace["stages"]] == ["auth", "route", "limits", "cache", "record"]
    assert all(s["duration_ms"] >= 0 for s in trace["stages"])
    assert trace["limits"] == [
        {"scope": "key", "scope_id": key.pk, "kind": "rpm", "limit": 100.0, "remaining": 99.0,
         "allowed": True}
    ]  # fmt: skip
    assert trace["cache"] == {"status": "BYPASS", "similarity": None}
    assert trace["breakers"] == [
        {"deployment_id": primary, "decision": "allow"},
        {"deployment_id": secondary, "decision": "allow"},
    ]
    first, second = trace["attempts"]
    assert (first["deployment_id"], first["outcome"]) == (primary, "server_error")
    assert (second["deployment_id"], second["outcome"]) == (secondary, "ok")
    assert first["credential_fingerprint"] == fingerprint(PRIMARY_KEY)
    assert second["duration_ms"] > 0 and second["start_ms"] >= first["start_ms"]
    assert trace["failovers"] == [
        {"from_deployment_id": primary, "to_deployment_id": secondary, "reason": "server_error"}
    ]
    assert trace["retries"] == []
    assert trace["served_by"] == {
        "deployment_id": secondary, "provider": "anthropic-secondary",
        "upstream_model": "claude-secondary", "credential_fingerprint": fingerprint(SECONDARY_KEY),
    }  # fmt: skip
    assert PRIMARY_KEY not in header and SECONDARY_KEY not in header


def test_a_retry_round_and_its_wait_are_in_the_trace(make_gateway, upstream_a):
    # A wait long enough to measure: full jitter draws it from [0, base), and uvloop's timers
    # have a 1 ms granularity (a 0.4 ms wait fired at once and failed this test now and then).
    gateway = make_gateway(secondary=False, backoff_base_seconds=0.2, backoff_cap_seconds=0.2)
    upstream_a.push_fault("503")
    raw = gateway.sdk().chat.completions.with_raw_response.create(
        model="smart", messages=MESSAGES, extra_headers=ASK
    )
    trace = json.loads(raw.headers["x-aigateway-trace"])
    [retry] = trace["retries"]
    assert (retry["round"], retry["reason"]) == (0, "overloaded")
    [backoff] = [s for s in trace["stages"] if s["name"] == "backoff"]
    assert backoff["duration_ms"] >= retry["wait_ms"] * 0.9 - 1.0  # timer granularity
    assert [a["outcome"] for a in trace["attempts"]] == ["overloaded", "ok"]
    assert trace["failovers"] == []  # the same deployment twice is a retry, not a failover


def test_other_keys_asking_for_it_get_a_plain_answer(make_gateway):
    gateway = make_gateway(allowed=False)
    raw = gateway.sdk().chat.completions.with_raw_response.create(
        model="smart", messages=MESSAGES, extra_headers=ASK
    )
    assert raw.status_code == 200
    assert "x-aigateway-trace" not in raw.headers


def test_an_allowed_key_that_does_not_ask_gets_no_trace(make_gateway):
    gateway = make_gateway()
    raw = gateway.sdk().chat.completions.with_raw_response.create(model="smart", messages=MESSAGES)
    assert "x-aigateway-trace" not in raw.headers


def test_a_refusal_carries_the_trace_of_the_limit_that_refused(make_gateway):
    gateway = make_gateway()
    key = api_key(gateway)
    Limit.objects.create(scope="key", scope_id=key.pk, kind="rpm", value=Decimal(1))
    client = gateway.sdk()
    client.chat.completions.create(model="smart", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="smart", messages=MESSAGES, extra_headers=ASK)
    trace = json.loads(refused.value.response.headers["x-aigateway-trace"])
    assert trace["limits"] == [
        {"scope": "key", "scope_id": key.pk, "kind": "rpm", "limit": 1.0, "remaining": 0.0,
         "allowed": False}
    ]  # fmt: skip
    assert trace["attempts"] == [] and trace["served_by"] is None
    assert "cache" not in [s["name"] for s in trace["stages"]]  # it never got that far


def test_a_cache_hit_is_in_the_trace(make_gateway):
    gateway = make_gateway(secondary=False)
    client = gateway.sdk()
    client.chat.completions.create(model="smart", messages=MESSAGES, temperature=0)
    raw = client.chat.completions.with_raw_response.create(
        model="smart", messages=MESSAGES, temperature=0, extra_headers=ASK
    )
    trace = json.loads(raw.headers["x-aigateway-trace"])
    assert trace["cache"]["status"] == "HIT"
    assert trace["attempts"] == [] and trace["breakers"] == []


def test_a_stream_ends_with_the_trace_as_an_sse_comment(make_gateway):
    gateway = make_gateway(secondary=False)
    response = requests.post(
        gateway.base_url + "/chat/completions",
        json={"model": "smart", "messages": MESSAGES, "stream": True},
        headers={"Authorization": f"Bearer {gateway.raw_key}", **ASK},
        stream=True,
        timeout=10,
    )
    lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert "x-aigateway-trace" not in response.headers
    assert lines[-2] == "data: [DONE]"
    prefix = ": x-aigateway-trace "
    assert lines[-1].startswith(prefix)
    trace = json.loads(lines[-1].removeprefix(prefix))
    names = [s["name"] for s in trace["stages"]]
    assert names == ["auth", "route", "limits", "cache", "stream", "record"]
    assert trace["served_by"]["deployment_id"] == gateway.primary.pk


def test_the_sdk_ignores_the_trace_comment(make_gateway):
    gateway = make_gateway(secondary=False)
    stream = gateway.sdk().chat.completions.create(
        model="smart", messages=MESSAGES, stream=True, extra_headers=ASK
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Echo from gpt-primary: Hello resilience"


def test_the_anthropic_door_streams_the_trace_after_message_stop(make_gateway, live_gateway):
    import anthropic

    gateway = make_gateway(secondary=False)
    client = anthropic.Anthropic(
        api_key=gateway.raw_key, base_url=live_gateway.base_url, max_retries=0, timeout=10
    )
    with client.messages.stream(
        model="smart", max_tokens=50, messages=MESSAGES, extra_headers=ASK
    ) as stream:
        text = stream.get_final_text()  # the SDK skips the comment line
    client.close()
    assert text == "Echo from gpt-primary: Hello resilience"
    raw = requests.post(
        live_gateway.base_url + "/v1/messages",
        json={"model": "smart", "max_tokens": 50, "messages": MESSAGES, "stream": True},
        headers={"x-api-key": gateway.raw_key, "anthropic-version": "2023-06-01", **ASK},
        stream=True,
        timeout=10,
    )
    lines = [line for line in raw.iter_lines(decode_unicode=True) if line]
    assert lines[-3:-1] == ["event: message_stop", 'data: {"type":"message_stop"}']
    trace = json.loads(lines[-1].removeprefix(": x-aigateway-trace "))
    assert trace["served_by"]["deployment_id"] == gateway.primary.pk
