"""Anthropic request bodies → the normalized request every adapter serves."""

from __future__ import annotations

from aigateway.api.anthropic_parsing import parse_messages_request
from providers.types import Message, ToolCall

BASE = {"model": "smart", "max_tokens": 10}


def test_a_user_turn_with_tool_results_and_text_becomes_tool_messages_then_a_user_message():
    request = parse_messages_request({
        **BASE,
        "system": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}],
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "two calls", "signature": "sig"},
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "w", "input": {"city": "Rome"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1",
                 "content": [{"type": "text", "text": "Sunny"}]},
                {"type": "tool_result", "tool_use_id": "t2", "content": "no data",
                 "is_error": True},
                {"type": "text", "text": "Thanks!"},
            ]},
        ],
    })  # fmt: skip
    assert request.messages == [
        Message(role="system", content="One.\n\nTwo."),
        Message(role="user", content="Weather in Paris and Rome?"),
        Message(
            role="assistant",
            content="Looking.",  # the echoed thinking block is dropped
            tool_calls=[
                ToolCall("t1", "w", '{"city": "Paris"}'),
                ToolCall("t2", "w", '{"city": "Rome"}'),
            ],
        ),
        Message(role="tool", content="Sunny", tool_call_id="t1"),
        Message(role="tool", content="Error: no data", tool_call_id="t2"),
        Message(role="user", content="Thanks!"),
    ]


def test_sampling_stop_metadata_and_structured_output_are_mapped():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    request = parse_messages_request({
        **BASE,
        "messages": [{"role": "user", "content": "Count"}],
        "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"}, "stream": True,
        "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": schema}},
    })  # fmt: skip
    assert (request.temperature, request.top_p, request.stop) == (0.2, 0.9, ["END"])
    assert (request.user, request.stream, request.max_tokens) == ("u-1", True, 10)
    assert request.response_format == {
        "type": "json_schema", "json_schema": {"name": "output", "schema": schema},
    }  # fmt: skip
    assert request.extra == {}  # top_k and effort have no portable equivalent: dropped


def test_tool_choice_maps_to_openai_and_auto_without_tools_is_dropped():
    tool = {"name": "w", "description": "Weather", "input_schema": {"type": "object"}}
    any_tool = parse_messages_request({
        **BASE, "messages": [{"role": "user", "content": "x"}], "tools": [tool],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    })  # fmt: skip
    assert any_tool.tools == [{"type": "function", "function": {
        "name": "w", "description": "Weather", "parameters": {"type": "object"}}}]  # fmt: skip
    assert any_tool.tool_choice == "required"
    assert any_tool.extra == {"parallel_tool_calls": False}
    no_tools = parse_messages_request(
        {**BASE, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "auto"}}
    )
    assert (no_tools.tool_choice, no_tools.tools) == (None, [])


def test_count_tokens_needs_no_max_tokens():
    request = parse_messages_request(
        {"model": "smart", "messages": [{"role": "user", "content": "x"}]}, count_only=True
    )
    assert request.max_tokens is None
