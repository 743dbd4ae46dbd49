"""The Anthropic adapter, through the real ``anthropic`` SDK and its aiohttp transport, against
the wire-level fake upstream (tests/fakes/upstream.py). No database: the adapter reads settings.

The fake's model answers ``"[system: <system>] Echo from <model>: <last user text>"`` and counts
a token per word (tests/fakes/echo.py), so every answer and usage figure is predictable.

What it shares with the other adapters (error mapping, timeouts, resets, max_tokens, streamed
tool calls) is in test_adapter_contract.py; here is the Anthropic wire format and what only
Anthropic does (its in-stream error events).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers import errors
from providers.types import ChatChunk, ChatRequest, Message
from tests.providers.support import (
    ANTHROPIC_KEY,
    ANTHROPIC_MODEL,
    STATUS_FAULT_ARGS,
    WEATHER_TOOL,
    ask,
    assert_answered,
    assert_one_request,
    assert_secret_absent,
    assert_streamed_answer,
    collect_stream,
    status_faults,
    tool_result_conversation,
    words,
)


@pytest.fixture
def kind() -> str:
    return "anthropic"


SYSTEM = "You are terse."
QUESTION = "What is the capital of France?"
ANSWER = f"[system: {SYSTEM}] Echo from {ANTHROPIC_MODEL}: {QUESTION}"


def question(**kwargs: Any) -> ChatRequest:
    return ChatRequest(
        model="my-route",
        messages=[Message("system", SYSTEM), Message("user", QUESTION)],
        **kwargs,
    )


# -- answers -----------------------------------------------------------------------------------
async def test_chat_maps_answer_usage_and_finish_reason(adapter, target, upstream):
    response = await adapter.chat(question(), target)

    assert_answered(response, target, ANSWER, (words(SYSTEM) + words(QUESTION), words(ANSWER)))
    assert response.tool_calls == []
    assert response.id == "msg_fake1"
    assert response.served_by.deployment_id == 11
    assert response.created > 0
    assert response.latency_ms > 0

    sent = assert_one_request(upstream)
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["anthropic-version"]
    # anthropic SDK 2.x sends the key as a bearer token (older versions used x-api-key).
    assert sent.headers["authorization"] == f"Bearer {ANTHROPIC_KEY}"
    assert sent.json["model"] == ANTHROPIC_MODEL
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
    assert response.content == f"Echo from {ANTHROPIC_MODEL}: hello"
    sent = upstream.requests[0].json
    assert "temperature" not in sent
    assert "top_p" not in sent
    assert sent["max_tokens"] == 50
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": "u-1"}


async def test_stream_chunks_join_to_the_non_stream_answer(adapter, target, upstream):
    response = await adapter.chat(question(), target)
    chunks = await collect_stream(adapter, question(), target)

    assert response.content == ANSWER
    # input_tokens come from message_start, output_tokens from message_delta.
    assert_streamed_answer(chunks, ANSWER, words(SYSTEM) + words(QUESTION))
    assert [c.content for c in chunks[1:3]] == ["[system:", " You"]  # one chunk per word
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert (last.usage.input_tokens, last.usage.output_tokens) == (
        response.usage.input_tokens,
        response.usage.output_tokens,
    )
    assert all(c.usage is None for c in chunks[:-1])

    sent = upstream.requests[1].json
    assert sent["stream"] is True
    assert sent["system"] == SYSTEM
    assert sent["max_tokens"] == 4096


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


async def test_tool_results_are_sent_back_in_anthropic_shape(adapter, target, upstream):
    response = await adapter.chat(tool_result_conversation("toolu_1"), target)
    # The conversation ends with a tool result, not a user question: the fake answers in text.
    assert response.finish_reason == "stop"
    assert response.content == f"Echo from {ANTHROPIC_MODEL}: What's the weather in Paris?"

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
async def test_context_length_is_recognised_from_anthropics_real_message(adapter, target, upstream):
    # Anthropic has no error code for it: a 400 invalid_request_error with this message.
    upstream.push_fault("context_length")
    with pytest.raises(errors.ContextTooLong) as info:
        await adapter.chat(ask("hello"), target)
    assert info.value.status_code == 400
    assert info.value.retryable is False


@pytest.mark.parametrize(STATUS_FAULT_ARGS, status_faults("500", "529", "429", "400"))
async def test_error_event_mid_stream_raises(
    adapter, target, upstream, fault, error_class, retryable, status
):
    # The stream already answered 200: the error event's type says what went wrong.
    upstream.push_fault("error_mid_stream", error=fault, after=5)
    received: list[ChatChunk] = []
    with pytest.raises(errors.ProviderError) as info:
        async for chunk in adapter.chat_stream(ask("hello"), target):
            received.append(chunk)
    assert [c.content for c in received] == ["", "Echo", " from"]
    assert type(info.value) is error_class
    assert info.value.retryable is retryable
    assert info.value.provider == target.provider_name
    assert info.value.provider_request_id == "fake-req-1"
    assert_one_request(upstream, "error_mid_stream")
    assert_secret_absent(info.value, ANTHROPIC_KEY, "SECRET")


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
    openai_target = make_target(kind="openai")
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
