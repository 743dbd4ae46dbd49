"""What every adapter does the same way, each test run once per adapter kind: the OpenAI and
the Anthropic adapter (the status-fault tests also Azure OpenAI), through their real SDKs and
aiohttp transports, against the wire-level fake upstream. No database: adapters read settings.

Each kind's own wire format (paths, headers, request and answer shapes, Anthropic's in-stream
error events, Azure's deployments and Entra ID) is tested in its own module.
"""

from __future__ import annotations

import json
import time

import pytest

from providers import errors
from providers.base import DeploymentTarget
from providers.types import ChatChunk
from tests.providers.support import (
    CHAT_AND_STREAM,
    STATUS_FAULT_ARGS,
    STATUS_FAULTS,
    WEATHER_TOOL,
    WIRE_FAULTS,
    ask,
    assert_one_request,
    assert_secret_absent,
    chat_or_stream,
    closed_port,
    collect_stream,
    finish_reasons,
    joined,
)

WITH_AZURE = pytest.mark.parametrize("kind", ["openai", "anthropic", "azure_openai"])
# Stream frames before the answer's second word: OpenAI sends a role chunk first; Anthropic
# message_start, content_block_start and a ping (each word is one frame after those).
FRAMES_BEFORE_TWO_WORDS = {"openai": 3, "anthropic": 5}
TOOL_CALL_IDS = {"openai": "call_1", "anthropic": "toolu_1"}


@pytest.fixture(params=["openai", "anthropic"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def assert_key_absent(exc: BaseException, target: DeploymentTarget) -> None:
    assert_secret_absent(exc, target.api_key, "SECRET")


# -- answers -----------------------------------------------------------------------------------
async def test_max_tokens_truncates_with_finish_reason_length(adapter, target, upstream):
    response = await adapter.chat(ask("one two three four", max_tokens=3), target)
    assert response.content == f"Echo from {target.upstream_model}:"
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 3
    assert upstream.requests[0].json["max_tokens"] == 3

    chunks = await collect_stream(adapter, ask("one two three four", max_tokens=3), target)
    assert joined(chunks) == f"Echo from {target.upstream_model}:"
    assert finish_reasons(chunks) == ["length"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.output_tokens == 3


async def test_tool_call_streams_as_deltas(adapter, target, kind):
    request = ask("weather in Paris please", tools=[WEATHER_TOOL])
    chunks = await collect_stream(adapter, request, target)

    deltas = [d for c in chunks for d in c.tool_calls]
    assert len(deltas) > 2  # a header, then the arguments in pieces
    header = deltas[0]
    assert (header.index, header.id, header.name) == (0, TOOL_CALL_IDS[kind], "get_weather")
    assert all(d.index == 0 and d.id is None and d.name is None for d in deltas[1:])
    assert all(d.arguments for d in deltas[1:])
    assert "".join(d.arguments for d in deltas) == '{"city": "Paris"}'
    assert json.loads("".join(d.arguments for d in deltas)) == {"city": "Paris"}
    assert finish_reasons(chunks) == ["tool_calls"]
    if kind == "anthropic":  # message_delta: the finish reason comes with the usage
        assert chunks[-1].finish_reason == "tool_calls"
    assert not any(c.content for c in chunks)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.input_tokens > 0


# -- errors ------------------------------------------------------------------------------------
@WITH_AZURE
@CHAT_AND_STREAM
@pytest.mark.parametrize(STATUS_FAULT_ARGS, STATUS_FAULTS)
async def test_status_faults_map_to_our_errors(
    adapter, target, upstream, fault, error_class, retryable, status, stream
):
    upstream.push_fault(fault)
    with pytest.raises(errors.ProviderError) as info:
        await chat_or_stream(adapter, ask("hello"), target, stream=stream)

    exc = info.value
    assert type(exc) is error_class
    assert exc.retryable is retryable
    assert exc.upstream_status == status
    assert exc.provider == target.provider_name
    assert exc.provider_request_id == "fake-req-1"
    assert_key_absent(exc, target)
    assert_one_request(upstream, fault)


@WITH_AZURE
@pytest.mark.parametrize("retry_after", [1, 7])
async def test_rate_limit_carries_retry_after(adapter, target, upstream, retry_after):
    upstream.push_fault("429", retry_after=retry_after)
    with pytest.raises(errors.RateLimited) as info:
        await adapter.chat(ask("hello"), target)
    exc = info.value
    assert exc.retry_after == retry_after
    assert exc.status_code == 429
    assert exc.retryable is True
    assert exc.upstream_status == 429
    assert exc.provider_request_id == "fake-req-1"
    assert exc.provider == target.provider_name
    assert_key_absent(exc, target)
    assert_one_request(upstream)


@pytest.mark.parametrize(
    "message", ["Unknown parameter: 'frobnicate'.", "max_tokens: Input should be greater than 0"]
)
async def test_bad_request_keeps_the_upstream_message(adapter, target, upstream, message):
    upstream.push_fault("400", message=message)
    with pytest.raises(errors.BadRequest) as info:
        await adapter.chat(ask("hello"), target)
    assert str(info.value) == message


async def test_upstream_echoing_the_key_does_not_leak_it(adapter, target, upstream):
    upstream.push_fault("400", message=f"Invalid key {target.api_key} for this model")
    with pytest.raises(errors.BadRequest) as info:
        await adapter.chat(ask("hello"), target)
    assert_key_absent(info.value, target)
    assert str(info.value) == "Invalid key [redacted] for this model"


@CHAT_AND_STREAM
async def test_slow_upstream_times_out(short_read_timeout, connect, make_target, upstream, stream):
    target = make_target()  # a fresh provider name: an adapter built with the 0.5 s timeout
    upstream.push_fault("slow", delay=3)
    started = time.monotonic()
    with pytest.raises(errors.UpstreamTimeout) as info:
        await chat_or_stream(connect(target), ask("hello"), target, stream=stream)
    assert time.monotonic() - started < 2.5
    assert info.value.retryable is True
    assert info.value.status_code == 504
    assert_one_request(upstream)
    assert_key_absent(info.value, target)


async def test_slow_upstream_within_the_timeout_answers(adapter, target, upstream):
    upstream.push_fault("slow", delay=0.2)
    response = await adapter.chat(ask("hello"), target)
    assert response.content == f"Echo from {target.upstream_model}: hello"


@CHAT_AND_STREAM
@pytest.mark.parametrize(("fault", "error_class"), WIRE_FAULTS)
async def test_wire_faults_map_to_retryable_errors(
    adapter, target, upstream, fault, error_class, stream
):
    # A connection reset is a connection failure; a body that is not JSON a server error.
    upstream.push_fault(fault)
    with pytest.raises(error_class) as info:
        await chat_or_stream(adapter, ask("hello"), target, stream=stream)
    assert info.value.retryable is True
    assert_one_request(upstream, fault)
    assert_key_absent(info.value, target)


async def test_refused_connection_is_a_connection_failure(connect, make_target, upstream):
    base_url = make_target().base_url.replace(f":{upstream.port}", f":{closed_port()}")
    target = make_target(base_url=base_url)
    with pytest.raises(errors.ConnectionFailed) as info:
        await connect(target).chat(ask("hello"), target)
    assert info.value.retryable is True


async def test_reset_mid_stream_raises_while_iterating(adapter, target, upstream, kind):
    upstream.push_fault("reset_mid_stream", after=FRAMES_BEFORE_TWO_WORDS[kind])
    received: list[ChatChunk] = []
    with pytest.raises(errors.ProviderError) as info:
        async for chunk in adapter.chat_stream(ask("a long answer please"), target):
            received.append(chunk)
    assert isinstance(info.value, errors.ConnectionFailed)
    assert info.value.retryable is True
    assert [c.content for c in received] == ["", "Echo", " from"]
    assert received[0].role == "assistant"
    assert_one_request(upstream)
    assert_key_absent(info.value, target)


async def test_reset_mid_body_without_streaming(adapter, target, upstream):
    upstream.push_fault("reset_mid_stream")
    with pytest.raises(errors.ConnectionFailed):
        await adapter.chat(ask("hello"), target)
    assert_one_request(upstream)


async def test_stalled_stream_times_out(short_read_timeout, connect, make_target, upstream):
    target = make_target()
    upstream.push_fault("stall", delay=3)
    received: list[ChatChunk] = []
    started = time.monotonic()
    with pytest.raises(errors.UpstreamTimeout):
        async for chunk in connect(target).chat_stream(ask("hello"), target):
            received.append(chunk)
    assert time.monotonic() - started < 2.5
    assert [c.role for c in received] == ["assistant"]


async def test_adapter_recovers_after_faults(adapter, target, upstream):
    """A reset or a half-sent body must not poison the pooled connection for the next call."""
    for fault in ("reset", "reset_mid_stream", "malformed", "500"):
        upstream.push_fault(fault)
        with pytest.raises(errors.ProviderError):
            await adapter.chat(ask("hello"), target)
        response = await adapter.chat(ask("hello again"), target)
        assert response.content == f"Echo from {target.upstream_model}: hello again"
    assert len(upstream.requests) == 8
