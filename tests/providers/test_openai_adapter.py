"""The OpenAI adapter (chat through its lean wire client, providers/openai_wire.py; models
through the real ``openai`` SDK) against the wire-level fake upstream (tests/fakes/upstream.py).
No database: the adapter reads settings.

What it shares with the other adapters (error mapping, timeouts, resets, max_tokens, streamed
tool calls) is in test_adapter_contract.py; here is the OpenAI wire format."""

from __future__ import annotations

import pytest

from providers import errors
from providers.types import ChatChunk, ChatRequest, Message, ToolCall
from tests.fakes.openai_protocol import CREATED
from tests.providers.support import (
    OPENAI_KEY,
    OPENAI_MODEL,
    WEATHER_TOOL,
    ask,
    assert_answered,
    assert_one_request,
    assert_secret_absent,
    assert_streamed_answer,
    collect_stream,
    tool_result_conversation,
    words,
)


@pytest.fixture
def kind() -> str:
    return "openai"


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

    answer = f"Echo from {OPENAI_MODEL}: What is the capital of France?"
    question = words("You are terse.") + words("What is the capital of France?")
    assert_answered(response, target, answer, (question, words(answer)))
    assert response.tool_calls == []
    assert response.id == "chatcmpl-fake1"
    assert response.created == CREATED
    assert response.served_by.deployment_id == 7
    assert response.latency_ms > 0

    sent = assert_one_request(upstream)
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.json["model"] == OPENAI_MODEL
    assert sent.json["temperature"] == 0.2
    assert sent.json["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert "stream" not in sent.json


async def test_stream_chunks_join_to_the_answer_with_final_usage(adapter, target, upstream):
    chunks = await collect_stream(adapter, ask("Tell me a story"), target)

    answer = f"Echo from {OPENAI_MODEL}: Tell me a story"
    assert_streamed_answer(chunks, answer, 4)
    assert [c.content for c in chunks[1:3]] == ["Echo", " from"]  # one chunk per word
    assert chunks[-1].usage.output_tokens == words(answer)
    assert all(c.usage is None for c in chunks[:-1])

    sent = assert_one_request(upstream)
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.json["stream"] is True
    # Asked for even though the client did not ask to see usage: we always record it.
    assert sent.json["stream_options"] == {"include_usage": True}


async def test_tool_call_without_streaming(adapter, target):
    response = await adapter.chat(ask("What's the weather in Paris?", tools=[WEATHER_TOOL]), target)
    assert response.content is None
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == [ToolCall("call_1", "get_weather", '{"city": "Paris"}')]


async def test_tool_results_are_sent_back_in_openai_shape(adapter, target, upstream):
    response = await adapter.chat(tool_result_conversation("call_1"), target)
    # The conversation no longer ends with the user, so the fake answers in text.
    assert response.finish_reason == "stop"
    assert response.content == f"Echo from {OPENAI_MODEL}: What's the weather in Paris?"

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
async def test_error_event_mid_stream_raises(adapter, target, upstream):
    upstream.push_fault("error_mid_stream", error="500")
    received: list[ChatChunk] = []
    with pytest.raises(errors.ProviderError) as info:
        async for chunk in adapter.chat_stream(ask("hello"), target):
            received.append(chunk)
    assert len(received) == 2
    assert info.value.retryable is True
    assert_secret_absent(info.value, OPENAI_KEY, "SECRET")
