"""The Anthropic adapter, through the real ``anthropic`` SDK and its aiohttp transport, against
the wire-level fake upstream (tests/fakes/upstream.py). No database: the adapter reads settings.

The fake's model answers ``"[system: <system>] Echo from <model>: <last user text>"`` and counts
a token per word (tests/fakes/echo.py), so every answer and usage figure is predictable.
"""

from __future__ import annotations

import json
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
from tests.fakes.upstream import FakeUpstream

API_KEY = "sk-ant-test-SECRET-1234567890abcdef"
MODEL = "claude-fake"
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
            "deployment_id": 11,
            # A fresh name per target: a fresh adapter, built with the current settings.
            "provider_name": f"fake-anthropic-{uuid.uuid4().hex[:8]}",
            "provider_kind": "anthropic",
            "upstream_model": MODEL,
            "base_url": upstream.base_url,
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


def joined(chunks: list[ChatChunk]) -> str:
    return "".join(c.content or "" for c in chunks)


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc))):
        assert API_KEY not in text
        assert "SECRET" not in text


SYSTEM = "You are terse."
QUESTION = "What is the capital of France?"
ANSWER = f"[system: {SYSTEM}] Echo from {MODEL}: {QUESTION}"


def question(**kwargs: Any) -> ChatRequest:
    return ChatRequest(
        model="my-route",
        messages=[Message("system", SYSTEM), Message("user", QUESTION)],
        **kwargs,
    )


# -- answers -----------------------------------------------------------------------------------
async def test_chat_maps_answer_usage_and_finish_reason(adapter, target, upstream):
    response = await adapter.chat(question(), target)

    assert response.content == ANSWER
    assert response.finish_reason == "stop"
    assert response.tool_calls == []
    assert response.model == "my-route"  # the route name, not the upstream model
    assert response.id == "msg_fake1"
    assert response.usage.input_tokens == words(SYSTEM) + words(QUESTION)
    assert response.usage.output_tokens == words(ANSWER)
    assert response.served_by.provider == target.provider_name
    assert response.served_by.deployment_id == 11
    assert response.served_by.upstream_model == MODEL
    assert response.created > 0
    assert response.latency_ms > 0

    [sent] = upstream.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["anthropic-version"]
    # anthropic SDK 2.x sends the key as a bearer token (older versions used x-api-key).
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.json["model"] == MODEL
    # The system prompt travels as Anthropic's top-level field, not as a message.
    assert sent.json["system"] == SYSTEM
    assert sent.json["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]}
    ]
    # Anthropic requires max_tokens; the client did not give one, so the default is sent.
    assert sent.json["max_tokens"] == 4096
    assert "stream" not in sent.json


async def test_sampling_parameters_are_dropped_and_the_rest_is_sent(adapter, target, upstream):
    # anthropic SDK 2.x speaks API version 2026-10-21, which removed temperature and top_p:
    # passing them to messages.create() is a TypeError, sending them a 400.
    request = ask("hello", temperature=1.7, top_p=0.5, max_tokens=50, stop=["END"], user="u-1")
    response = await adapter.chat(request, target)
    assert response.content == f"Echo from {MODEL}: hello"
    sent = upstream.requests[0].json
    assert "temperature" not in sent
    assert "top_p" not in sent
    assert sent["max_tokens"] == 50
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": "u-1"}


async def test_stream_chunks_join_to_the_non_stream_answer(adapter, target, upstream):
    response = await adapter.chat(question(), target)
    chunks = await collect(adapter, question(), target)

    assert joined(chunks) == response.content == ANSWER
    assert chunks[0].role == "assistant"
    assert [c.content for c in chunks[1:3]] == ["[system:", " You"]  # one chunk per word
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None
    # input_tokens come from message_start, output_tokens from message_delta.
    assert (last.usage.input_tokens, last.usage.output_tokens) == (
        response.usage.input_tokens,
        response.usage.output_tokens,
    )
    assert last.usage.input_tokens == words(SYSTEM) + words(QUESTION)
    assert all(c.usage is None for c in chunks[:-1])

    sent = upstream.requests[1].json
    assert sent["stream"] is True
    assert sent["system"] == SYSTEM
    assert sent["max_tokens"] == 4096


async def test_max_tokens_truncates_with_finish_reason_length(adapter, target, upstream):
    response = await adapter.chat(ask("one two three four", max_tokens=3), target)
    assert response.content == f"Echo from {MODEL}:"
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 3
    assert upstream.requests[0].json["max_tokens"] == 3

    chunks = await collect(adapter, ask("one two three four", max_tokens=3), target)
    assert joined(chunks) == f"Echo from {MODEL}:"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["length"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.output_tokens == 3


# -- tools -------------------------------------------------------------------------------------
async def test_tool_call_without_streaming(adapter, target, upstream):
    response = await adapter.chat(ask("What's the weather in Paris?", tools=[WEATHER_TOOL]), target)
    assert response.content is None
    assert response.finish_reason == "tool_calls"
    [call] = response.tool_calls
    assert (call.id, call.name) == ("toolu_1", "get_weather")
    assert json.loads(call.arguments) == {"city": "Paris"}

    sent = upstream.requests[0].json
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]


async def test_tool_call_streams_as_deltas(adapter, target):
    chunks = await collect(adapter, ask("weather in Paris please", tools=[WEATHER_TOOL]), target)

    deltas = [d for c in chunks for d in c.tool_calls]
    assert len(deltas) > 2  # a header, then the arguments in pieces
    assert (deltas[0].index, deltas[0].id, deltas[0].name) == (0, "toolu_1", "get_weather")
    assert all(d.index == 0 and d.id is None and d.name is None for d in deltas[1:])
    assert all(d.arguments for d in deltas[1:])
    assert json.loads("".join(d.arguments for d in deltas)) == {"city": "Paris"}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    assert chunks[-1].finish_reason == "tool_calls"
    assert not any(c.content for c in chunks)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.input_tokens > 0


async def test_tool_results_are_sent_back_in_anthropic_shape(adapter, target, upstream):
    call = ToolCall("toolu_1", "get_weather", '{"city": "Paris"}')
    request = ChatRequest(
        model="my-route",
        messages=[
            Message("user", "What's the weather in Paris?"),
            Message("assistant", None, tool_calls=[call]),
            Message("tool", "18C and sunny", tool_call_id="toolu_1"),
        ],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    response = await adapter.chat(request, target)
    # The conversation ends with a tool result, not a user question: the fake answers in text.
    assert response.finish_reason == "stop"
    assert response.content == f"Echo from {MODEL}: What's the weather in Paris?"

    sent = upstream.requests[0].json
    assert sent["tool_choice"] == {"type": "auto"}
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"}
            ],
        },
    ]


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


async def test_context_length_is_recognised_from_anthropics_real_message(adapter, target, upstream):
    # Anthropic has no error code for it: a 400 invalid_request_error with this message.
    upstream.push_fault("context_length")
    with pytest.raises(errors.ContextTooLong) as info:
        await adapter.chat(ask("hello"), target)
    assert info.value.status_code == 400
    assert info.value.retryable is False


@pytest.mark.parametrize("retry_after", [1, 7])
async def test_rate_limit_carries_retry_after(adapter, target, upstream, retry_after):
    upstream.push_fault("429", retry_after=retry_after)
    with pytest.raises(errors.RateLimited) as info:
        await adapter.chat(ask("hello"), target)
    assert info.value.retry_after == retry_after
    assert info.value.status_code == 429
    assert len(upstream.requests) == 1


async def test_bad_request_keeps_the_upstream_message(adapter, target, upstream):
    upstream.push_fault("400", message="max_tokens: Input should be greater than 0")
    with pytest.raises(errors.BadRequest) as info:
        await adapter.chat(ask("hello"), target)
    assert str(info.value) == "max_tokens: Input should be greater than 0"


async def test_upstream_echoing_the_key_does_not_leak_it(adapter, target, upstream):
    upstream.push_fault("400", message=f"Invalid key {API_KEY} for this model")
    with pytest.raises(errors.BadRequest) as info:
        await adapter.chat(ask("hello"), target)
    assert_no_secret(info.value)
    assert str(info.value) == "Invalid key [redacted] for this model"


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_slow_upstream_times_out(short_read_timeout, connect, make_target, upstream, stream):
    target = make_target()  # a fresh provider name: an adapter built with the 0.5 s timeout
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
    target = make_target(base_url=f"http://127.0.0.1:{port}")
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
    assert_no_secret(info.value)


async def test_reset_mid_stream_raises_while_iterating(adapter, target, upstream):
    # Frames: message_start, content_block_start, ping, then a text delta per word.
    upstream.push_fault("reset_mid_stream", after=5)
    received: list[ChatChunk] = []
    with pytest.raises(errors.ProviderError) as info:
        async for chunk in adapter.chat_stream(ask("a long answer please"), target):
            received.append(chunk)
    assert isinstance(info.value, errors.ConnectionFailed)
    assert info.value.retryable is True
    assert [c.content for c in received] == ["", "Echo", " from"]
    assert received[0].role == "assistant"
    assert len(upstream.requests) == 1
    assert_no_secret(info.value)


async def test_reset_mid_body_without_streaming(adapter, target, upstream):
    upstream.push_fault("reset_mid_stream")
    with pytest.raises(errors.ConnectionFailed):
        await adapter.chat(ask("hello"), target)
    assert len(upstream.requests) == 1


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


@pytest.mark.parametrize(
    ("error", "error_class", "retryable"),
    [
        ("500", errors.ServerError, True),
        ("529", errors.Overloaded, True),
        ("429", errors.RateLimited, True),
        ("400", errors.BadRequest, False),
    ],
)
async def test_error_event_mid_stream_raises(
    adapter, target, upstream, error, error_class, retryable
):
    # The stream already answered 200: the error event's type says what went wrong.
    upstream.push_fault("error_mid_stream", error=error, after=5)
    received: list[ChatChunk] = []
    with pytest.raises(errors.ProviderError) as info:
        async for chunk in adapter.chat_stream(ask("hello"), target):
            received.append(chunk)
    assert [c.content for c in received] == ["", "Echo", " from"]
    assert type(info.value) is error_class
    assert info.value.retryable is retryable
    assert info.value.provider == target.provider_name
    assert info.value.provider_request_id == "fake-req-1"
    assert len(upstream.requests) == 1
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


# -- the same request through both protocols ---------------------------------------------------
async def test_same_request_through_openai_and_anthropic(connect, make_target, upstream):
    request = ChatRequest(
        model="my-route",
        messages=[
            Message("system", "You are a helpful assistant."),
            Message("user", "Hi there"),
            Message("assistant", "Hello! How can I help?"),
            Message("user", "Name a French city"),
        ],
        tools=[WEATHER_TOOL],
    )
    claude_target = make_target()
    openai_target = make_target(
        provider_name=f"fake-openai-{uuid.uuid4().hex[:8]}",
        provider_kind="openai",
        base_url=upstream.openai_base_url,
    )
    claude = await connect(claude_target).chat(request, claude_target)
    gpt = await connect(openai_target).chat(request, openai_target)

    for response in (claude, gpt):
        assert isinstance(response.content, str)
        assert response.content.endswith("Name a French city")
        assert response.finish_reason == "stop"
        assert response.tool_calls == []
        assert response.usage.input_tokens > 0
        assert response.usage.output_tokens > 0
        assert response.model == "my-route"
    assert claude.served_by.provider == claude_target.provider_name
    assert gpt.served_by.provider == openai_target.provider_name

    claude_sent, gpt_sent = (r.json for r in upstream.requests)
    assert [r.path for r in upstream.requests] == ["/v1/messages", "/v1/chat/completions"]
    # Anthropic: the system prompt at the top level, alternating user/assistant turns.
    assert claude_sent["system"] == "You are a helpful assistant."
    assert [m["role"] for m in claude_sent["messages"]] == ["user", "assistant", "user"]
    # OpenAI: the system prompt stays a message.
    assert [m["role"] for m in gpt_sent["messages"]] == ["system", "user", "assistant", "user"]
