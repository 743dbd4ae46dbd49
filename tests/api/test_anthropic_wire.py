"""The Anthropic wire format on its own: normalized answers and stream chunks in, Anthropic
Messages and SSE events out, for the shapes the fake upstream does not produce (text then
tool calls, calls without ids or with invalid JSON, stop sequences, no usage reported)."""

from __future__ import annotations

import json

from aigateway.api.anthropic_serializers import message_to_anthropic
from aigateway.api.anthropic_stream import AnthropicStreamWriter
from providers.types import ChatChunk, ChatResponse, ServedBy, ToolCall, ToolCallDelta, Usage


def _events(data: bytes) -> list[dict]:
    """Parse SSE frames, checking each ``event:`` name matches its data's type."""
    events = []
    for frame in data.decode().split("\n\n"):
        if not frame:
            continue
        name_line, data_line = frame.split("\n")
        payload = json.loads(data_line.removeprefix("data: "))
        assert name_line == f"event: {payload['type']}"
        events.append(payload)
    return events


def _run(*chunks: ChatChunk) -> list[dict]:
    writer = AnthropicStreamWriter(message_id="msg_1", model="smart", input_tokens=9)
    data = writer.start() + b"".join(writer.add(c) for c in chunks) + writer.end()
    return _events(data)


def test_text_then_two_tool_calls_become_three_blocks_in_order():
    events = _run(
        ChatChunk(role="assistant", content=""),
        ChatChunk(content="Let me look."),
        ChatChunk(tool_calls=[ToolCallDelta(0, "call_a", "get_weather", '{"ci')]),
        ChatChunk(tool_calls=[ToolCallDelta(0, None, None, 'ty": "Paris"}')]),
        ChatChunk(tool_calls=[ToolCallDelta(1, "call_b", "get_time", "{}")]),
        ChatChunk(finish_reason="tool_calls"),
        ChatChunk(usage=Usage(input_tokens=12, output_tokens=20)),
    )
    kinds = [e["type"] for e in events]
    assert kinds == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2]
    assert starts[1]["content_block"] == {
        "type": "tool_use", "id": "call_a", "name": "get_weather", "input": {},
    }  # fmt: skip
    json_parts = [
        e["delta"]["partial_json"] for e in events
        if e["type"] == "content_block_delta" and e["index"] == 1
    ]  # fmt: skip
    assert json.loads("".join(json_parts)) == {"city": "Paris"}
    assert events[0]["message"]["usage"] == {"input_tokens": 9, "output_tokens": 0}
    final = events[-2]
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert final["usage"] == {"input_tokens": 12, "output_tokens": 20}


def test_a_tool_call_without_an_id_gets_one():
    events = _run(ChatChunk(tool_calls=[ToolCallDelta(0, None, "lookup", "{}")]))
    block = next(e for e in events if e["type"] == "content_block_start")["content_block"]
    assert block["id"].startswith("toolu_") and block["name"] == "lookup"


def test_a_stop_sequence_and_a_length_finish_are_reported():
    by_sequence = _run(ChatChunk(content="a"), ChatChunk(finish_reason="stop", stop_sequence="END"))
    assert by_sequence[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    cut = _run(ChatChunk(content="a"), ChatChunk(finish_reason="length"))
    assert cut[-2]["delta"]["stop_reason"] == "max_tokens"


def test_without_upstream_usage_the_output_is_estimated():
    events = _run(ChatChunk(content="x" * 40), ChatChunk(finish_reason="stop"))
    assert events[-2]["usage"] == {"input_tokens": 9, "output_tokens": 10}


def test_an_empty_answer_still_ends_properly():
    events = _run(ChatChunk(role="assistant", content=""), ChatChunk(finish_reason="stop"))
    assert [e["type"] for e in events] == ["message_start", "ping", "message_delta", "message_stop"]


def _answer(**fields) -> ChatResponse:
    defaults = {
        "id": "chatcmpl-1",
        "model": "smart",
        "content": "Hi",
        "finish_reason": "stop",
        "usage": Usage(3, 4),
        "served_by": ServedBy("openai-main", 1, "gpt"),
    }
    return ChatResponse(**{**defaults, **fields})  # fmt: skip


def test_a_message_carries_text_then_tool_uses_and_the_route_name():
    message = message_to_anthropic(
        _answer(content="Checking.", finish_reason="tool_calls",
                tool_calls=[ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
                            ToolCall("call_2", "broken", '{"city": ')]),
        request_id="req_abc",
    )  # fmt: skip
    assert message["id"] == "msg_abc" and message["model"] == "smart"
    assert message["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        # Anthropic's input must be an object: invalid JSON from a model is kept, wrapped.
        {"type": "tool_use", "id": "call_2", "name": "broken", "input": {"_raw": '{"city": '}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 3, "output_tokens": 4}


def test_a_message_reports_the_stop_sequence_that_ended_it():
    message = message_to_anthropic(_answer(stop_sequence="END"), request_id="req_1")
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")
    plain = message_to_anthropic(_answer(content=None, finish_reason=None), request_id="req_1")
    assert (plain["content"], plain["stop_reason"]) == ([], "end_turn")
