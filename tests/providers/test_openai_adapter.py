"""The OpenAI adapter, through the real ``openai`` SDK and its aiohttp transport, against the
wire-level fake upstream (tests/fakes/upstream.py). No database: the adapter reads settings."""

from __future__ import annotations

import socket
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from providers import errors
from providers.base import DeploymentTarget, ProviderAdapter, get_adapter
from providers.types import ChatChunk, ChatRequest, Message, ToolCall
from tests.fakes.openai_protocol import CREATED
from tests.fakes.upstream import FakeUpstream

API_KEY = "sk-test-SECRET-1234567890abcdef"
MODEL = "fake-model"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def running_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def upstream(running_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    running_upstream.reset()
    yield running_upstream
    running_upstream.reset()


MakeTarget = Callable[..., DeploymentTarget]


@pytest.fixture
def make_target(upstream: FakeUpstream) -> MakeTarget:
    def make(**overrides: Any) -> DeploymentTarget:
        fields: dict[str, Any] = {
            "deployment_id": 7,
            # A fresh name per target: a fresh adapter, built with the current settings.
            "provider_name": f"fake-openai-{uuid.uuid4().hex[:8]}",
            "provider_kind": "openai",
            "upstream_model": MODEL,
            "base_url": upstream.openai_base_url,
            "api_key": API_KEY,
            "credential_fingerprint": "fp-test",
        }
        fields.update(overrides)
        return DeploymentTarget(**fields)

    return make


@pytest.fixture
async def adapters() -> AsyncIterator[list[ProviderAdapter]]:
    """Adapters the test built; their HTTP pools are closed afterwards."""
    built: list[ProviderAdapter] = []
    yield built
    for adapter in built:
        await adapter.client.close()  # type: ignore[attr-defined]


@pytest.fixture
def connect(adapters: list[ProviderAdapter]) -> Callable[[DeploymentTarget], ProviderAdapter]:
    def connect(target: DeploymentTarget) -> ProviderAdapter:
        adapter = get_adapter(target)
        if adapter not in adapters:
            adapters.append(adapter)
        return adapter

    return connect


@pytest.fixture
def target(make_target: MakeTarget) -> DeploymentTarget:
    return make_target()


@pytest.fixture
async def adapter(
    connect: Callable[[DeploymentTarget], ProviderAdapter], target: DeploymentTarget
) -> ProviderAdapter:
    return connect(target)  # async: adapters are cached per running event loop


@pytest.fixture
def short_read_timeout(settings: Any) -> float:
    settings.AIGATEWAY_UPSTREAM_READ_TIMEOUT = 0.5
    return 0.5


def ask(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="my-route", messages=[Message("user", text)], **kwargs)


def words(text: str) -> int:
    return len(text.split())


async def collect(
    adapter: ProviderAdapter, request: ChatRequest, target: DeploymentTarget
) -> list[ChatChunk]:
    return [chunk async for chunk in adapter.chat_stream(request, target)]


# -- answers -----------------------------------------------------------------------------------
async def test_chat_maps_answer_and_usage(adapter, target, upstream):
    request = ChatRequest(
        model="my-route",
        messages=[
            Message("system", "You are terse."),
            Message("user", "What is the capital of France?"),
        ],
        temperature=0.2,
    )
    response = await adapter.chat(request, target)

    answer = f"Echo from {MODEL}: What is the capital of France?"
    assert response.content == answer
    assert response.finish_reason == "stop"
    assert response.tool_calls == []
    assert response.model == "my-route"  # the route name, not the upstream model
    assert response.id == "chatcmpl-fake1"
    assert response.created == CREATED
    assert response.usage.input_tokens == words("You are terse.") + words(
        "What is the capital of France?"
    )
    assert response.usage.output_tokens == words(answer)
    assert response.served_by.provider == target.provider_name
    assert response.served_by.deployment_id == 7
    assert response.served_by.upstream_model == MODEL
    assert response.latency_ms > 0

    [sent] = upstream.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.json["model"] == MODEL
    assert sent.json["temperature"] == 0.2
    assert sent.json["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert "stream" not in sent.json


async def test_stream_chunks_join_to_the_answer_with_final_usage(adapter, target, upstream):
    chunks = await collect(adapter, ask("Tell me a story"), target)

    answer = f"Echo from {MODEL}: Tell me a story"
    assert chunks[0].role == "assistant"
    assert "".join(c.content or "" for c in chunks) == answer
    assert [c.content for c in chunks[1:3]] == ["Echo", " from"]  # one chunk per word
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.input_tokens, chunks[-1].usage.output_tokens) == (4, words(answer))
    assert all(c.usage is None for c in chunks[:-1])

    [sent] = upstream.requests
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.json["stream"] is True
    # Asked for even though the client did not ask to see usage: we always record it.
    assert sent.json["stream_options"] == {"include_usage": True}


async def test_max_tokens_truncates_with_finish_reason_length(adapter, target, upstream):
    response = await adapter.chat(ask("one two three four", max_tokens=3), target)
    assert response.content == f"Echo from {MODEL}:"
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 3
    assert upstream.requests[0].json["max_tokens"] == 3

    chunks = await collect(adapter, ask("one two three four", max_tokens=3), target)
    assert "".join(c.content or "" for c in chunks) == f"Echo from {MODEL}:"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["length"]


async def test_tool_call_without_streaming(adapter, target):
    response = await adapter.chat(ask("What's the weather in Paris?", tools=[WEATHER_TOOL]), target)
    assert response.content is None
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == [ToolCall("call_1", "get_weather", '{"city": "Paris"}')]


async def test_tool_call_streams_as_deltas(adapter, target):
    chunks = await collect(adapter, ask("weather in Paris please", tools=[WEATHER_TOOL]), target)

    deltas = [d for c in chunks for d in c.tool_calls]
    assert len(deltas) > 2  # a header, then the arguments in pieces
    assert (deltas[0].index, deltas[0].id, deltas[0].name) == (0, "call_1", "get_weather")
    assert all(d.index == 0 and d.id is None and d.name is None for d in deltas[1:])
    assert "".join(d.arguments for d in deltas) == '{"city": "Paris"}'
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    assert not any(c.content for c in chunks)
    assert chunks[-1].usage is not None


async def test_tool_results_are_sent_back_in_openai_shape(adapter, target, upstream):
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    request = ChatRequest(
        model="my-route",
        messages=[
            Message("user", "What's the weather in Paris?"),
            Message("assistant", None, tool_calls=[call]),
            Message("tool", "18C and sunny", tool_call_id="call_1"),
        ],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    response = await adapter.chat(request, target)
    # The conversation no longer ends with the user, so the fake answers in text.
    assert response.finish_reason == "stop"
    assert response.content == f"Echo from {MODEL}: What's the weather in Paris?"

    sent = upstream.requests[0].json
    assert sent["tool_choice"] == "auto"
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert sent["messages"][2] == {
        "role": "tool",
        "content": "18C and sunny",
        "tool_call_id": "call_1",
    }


async def test_list_models_and_health_check(adapter, target, upstream):
    assert await adapter.list_models(target) == ["fake-model"]
    await adapter.health_check(target)
    upstream.push_fault("503")
    with pytest.raises(errors.Overloaded):
        await adapter.health_check(target)
    assert [r.path for r in upstream.requests] == ["/v1/models"] * 3


# -- errors ------------------------------------------------------------------------------------
STATUS_FAULTS = [
    # fault, error class, retryable, upstream status
    ("429", errors.RateLimited, True, 429),
    ("500", errors.ServerError, True, 500),
    ("503", errors.Overloaded, True, 503),
    ("529", errors.Overloaded, True, 529),
    ("401", errors.AuthFailed, False, 401),
    ("400", errors.BadRequest, False, 400),
    ("context_length", errors.ContextTooLong, False, 400),
    ("content_filter", errors.ContentFiltered, False, 400),
]


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc))):
        assert API_KEY not in text
        assert "SECRET" not in text


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(("fault", "error_class", "retryable", "status"), STATUS_FAULTS)
async def test_status_faults_map_to_our_errors(
    adapter, target, upstream, fault, error_class, retryable, status, stream
):
    upstream.push_fault(fault)
    with pytest.raises(errors.ProviderError) as info:
        if stream:
            await collect(adapter, ask("hello"), target)
        else:
            await adapter.chat(ask("hello"), target)

    exc = info.value
    assert type(exc) is error_class
    assert exc.retryable is retryable
    assert exc.upstream_status == status
    assert exc.provider == target.provider_name
    assert exc.provider_request_id == "fake-req-1"
    assert_no_secret(exc)
    # max_retries=0: the SDK made exactly one HTTP request; retries are the resilience layer's.
    assert len(upstream.requests) == 1
    assert upstream.requests[0].fault == fault


@pytest.mark.parametrize("retry_after", [1, 7])
async def test_rate_limit_carries_retry_after(adapter, target, upstream, retry_after):
    upstream.push_fault("429", retry_after=retry_after)
    with pytest.raises(errors.RateLimited) as info:
        await adapter.chat(ask("hello"), target)
    assert info.value.retry_after == retry_after
    assert info.value.status_code == 429


async def test_bad_request_keeps_the_upstream_message(adapter, target, upstream):
    upstream.push_fault("400", message="Unknown parameter: 'frobnicate'.")
    with pytest.raises(errors.BadRequest) as info:
        await adapter.chat(ask("hello"), target)
    assert str(info.value) == "Unknown parameter: 'frobnicate'."


async def test_upstream_echoing_the_key_does_not_leak_it(adapter, target, upstream):
    upstream.push_fault("400", message=f"Invalid key {API_KEY} for this model")
    with pytest.raises(errors.BadRequest) as info:
        await adapter.chat(ask("hello"), target)
    assert_no_secret(info.value)
    assert str(info.value) == "Invalid key [redacted] for this model"


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_slow_upstream_times_out(short_read_timeout, connect, make_target, upstream, stream):
    target = make_target()
    adapter = connect(target)
    upstream.push_fault("slow", delay=3)
    started = time.monotonic()
    with pytest.raises(errors.UpstreamTimeout) as info:
        if stream:
            await collect(adapter, ask("hello"), target)
        else:
            await adapter.chat(ask("hello"), target)
    assert time.monotonic() - started < 2.5
    assert info.value.retryable is True
    assert info.value.status_code == 504
    assert len(upstream.requests) == 1
    assert_no_secret(info.value)


async def test_slow_upstream_within_the_timeout_answers(adapter, target, upstream):
    upstream.push_fault("slow", delay=0.2)
    response = await adapter.chat(ask("hello"), target)
    assert response.content == f"Echo from {MODEL}: hello"


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_connection_reset_is_a_connection_failure(adapter, target, upstream, stream):
    upstream.push_fault("reset")
    with pytest.raises(errors.ConnectionFailed) as info:
        if stream:
            await collect(adapter, ask("hello"), target)
        else:
            await adapter.chat(ask("hello"), target)
    assert info.value.retryable is True
    assert len(upstream.requests) == 1
    assert_no_secret(info.value)


async def test_refused_connection_is_a_connection_failure(connect, make_target):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = make_target(base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(errors.ConnectionFailed) as info:
        await connect(target).chat(ask("hello"), target)
    assert info.value.retryable is True


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_malformed_body_is_a_server_error(adapter, target, upstream, stream):
    upstream.push_fault("malformed")
    with pytest.raises(errors.ServerError) as info:
        if stream:
            await collect(adapter, ask("hello"), target)
        else:
            await adapter.chat(ask("hello"), target)
    assert info.value.retryable is True
    assert len(upstream.requests) == 1


async def test_reset_mid_stream_raises_while_iterating(adapter, target, upstream):
    upstream.push_fault("reset_mid_stream", after=3)
    received: list[ChatChunk] = []
    with pytest.raises(errors.ProviderError) as info:
        async for chunk in adapter.chat_stream(ask("a long answer please"), target):
            received.append(chunk)
    assert isinstance(info.value, errors.ConnectionFailed)
    assert info.value.retryable is True
    assert [c.content for c in received] == ["", "Echo", " from"]
    assert_no_secret(info.value)


async def test_reset_mid_body_without_streaming(adapter, target, upstream):
    upstream.push_fault("reset_mid_stream")
    with pytest.raises(errors.ConnectionFailed):
        await adapter.chat(ask("hello"), target)


async def test_stalled_stream_times_out(short_read_timeout, connect, make_target, upstream):
    target = make_target()
    adapter = connect(target)
    upstream.push_fault("stall", delay=3)
    received: list[ChatChunk] = []
    started = time.monotonic()
    with pytest.raises(errors.UpstreamTimeout):
        async for chunk in adapter.chat_stream(ask("hello"), target):
            received.append(chunk)
    assert time.monotonic() - started < 2.5
    assert [c.role for c in received] == ["assistant"]


async def test_error_event_mid_stream_raises(adapter, target, upstream):
    upstream.push_fault("error_mid_stream", error="500")
    received: list[ChatChunk] = []
    with pytest.raises(errors.ProviderError) as info:
        async for chunk in adapter.chat_stream(ask("hello"), target):
            received.append(chunk)
    assert len(received) == 2
    assert info.value.retryable is True
    assert_no_secret(info.value)


async def test_adapter_recovers_after_faults(adapter, target, upstream):
    """A reset or a half-sent body must not poison the pooled connection for the next call."""
    for fault in ("reset", "reset_mid_stream", "malformed", "500"):
        upstream.push_fault(fault)
        with pytest.raises(errors.ProviderError):
            await adapter.chat(ask("hello"), target)
        response = await adapter.chat(ask("hello again"), target)
        assert response.content == f"Echo from {MODEL}: hello again"
    assert len(upstream.requests) == 8
