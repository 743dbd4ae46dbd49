"""Normalized (OpenAI-shaped) requests → Anthropic Messages API parameters, and Anthropic stop
reasons → our finish reasons (providers/anthropic_mapping.py). Pure functions: no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from providers.anthropic_mapping import (
    DEFAULT_MAX_TOKENS,
    build_anthropic_params,
    finish_reason,
    to_anthropic_messages,
)
from providers.types import ChatRequest, Message, ToolCall
from tests.providers.support import WEATHER_TOOL

MODEL = "claude-test"


def params(*messages: Message, **kwargs: Any) -> dict[str, Any]:
    request = ChatRequest(model="my-route", messages=list(messages), **kwargs)
    return build_anthropic_params(request, MODEL)


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


# -- system prompt and turns -------------------------------------------------------------------
def test_system_and_developer_messages_go_to_the_top_level_system_field():
    built = params(
        Message("system", "You are terse."),
        Message("developer", [text("Answer in French.")]),
        Message("user", "Hello"),
    )
    assert built["system"] == "You are terse.\n\nAnswer in French."
    assert built["messages"] == [{"role": "user", "content": [text("Hello")]}]
    assert all(m["role"] in ("user", "assistant") for m in built["messages"])
    assert built["model"] == MODEL


def test_no_system_field_without_a_system_message():
    assert "system" not in params(Message("user", "Hello"))


def test_multi_turn_conversation_keeps_its_order():
    messages = to_anthropic_messages(
        [
            Message("system", "Be nice."),
            Message("user", "Hi"),
            Message("assistant", "Hello! How can I help?"),
            Message("user", "Tell me a joke"),
        ]
    )
    assert messages == [
        {"role": "user", "content": [text("Hi")]},
        {"role": "assistant", "content": [text("Hello! How can I help?")]},
        {"role": "user", "content": [text("Tell me a joke")]},
    ]


def test_consecutive_turns_of_one_role_are_merged():
    messages = to_anthropic_messages(
        [
            Message("user", "First"),
            Message("user", [text("Second"), text("Third")]),
            Message("system", "ignored here"),
            Message("user", "Fourth"),
            Message("assistant", "A"),
            Message("assistant", "B"),
        ]
    )
    assert messages == [
        {
            "role": "user",
            "content": [text("First"), text("Second"), text("Third"), text("Fourth")],
        },
        {"role": "assistant", "content": [text("A"), text("B")]},
    ]


def test_a_message_without_content_is_not_sent_as_an_empty_turn():
    # Anthropic refuses a turn whose content is empty.
    messages = to_anthropic_messages(
        [Message("user", "Hi"), Message("assistant", None), Message("user", "Again")]
    )
    assert messages == [{"role": "user", "content": [text("Hi"), text("Again")]}]


# -- tools ---------------------------------------------------------------------------------------
def test_assistant_tool_calls_become_tool_use_blocks_with_parsed_input():
    messages = to_anthropic_messages(
        [
            Message("user", "Weather in Paris and Rome?"),
            Message(
                "assistant",
                "Let me check.",
                tool_calls=[
                    ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
                    ToolCall("call_2", "get_weather", '{"city": "Rome", "unit": "C"}'),
                ],
            ),
        ]
    )
    assert messages[1] == {
        "role": "assistant",
        "content": [
            text("Let me check."),
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {
                "type": "tool_use",
                "id": "call_2",
                "name": "get_weather",
                "input": {"city": "Rome", "unit": "C"},
            },
        ],
    }


def test_tool_call_without_text_and_with_empty_arguments():
    [message] = to_anthropic_messages(
        [Message("assistant", None, tool_calls=[ToolCall("call_1", "now", "")])]
    )
    assert message == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "call_1", "name": "now", "input": {}}],
    }


def test_tool_results_become_user_turns_and_consecutive_results_merge():
    messages = to_anthropic_messages(
        [
            Message("user", "Weather in Paris and Rome?"),
            Message(
                "assistant",
                None,
                tool_calls=[
                    ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
                    ToolCall("call_2", "get_weather", '{"city": "Rome"}'),
                ],
            ),
            Message("tool", "18C and sunny", tool_call_id="call_1"),
            Message("tool", [text("21C, clouds")], tool_call_id="call_2"),
        ]
    )
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C and sunny"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "21C, clouds"},
        ],
    }


def test_a_user_message_after_tool_results_joins_their_turn_after_them():
    messages = to_anthropic_messages(
        [
            Message("user", "Weather?"),
            Message("assistant", None, tool_calls=[ToolCall("call_1", "get_weather", "{}")]),
            Message("tool", "sunny", tool_call_id="call_1"),
            Message("user", "Thanks, and tomorrow?"),
        ]
    )
    assert messages[-1] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
            text("Thanks, and tomorrow?"),
        ],
    }


def test_openai_tools_become_anthropic_tools():
    built = params(
        Message("user", "hi"),
        tools=[
            WEATHER_TOOL,
            {"type": "function", "function": {"name": "now"}},  # no description, no parameters
        ],
    )
    assert built["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        },
        {"name": "now", "description": "", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in built


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice_mapping(choice, expected):
    built = params(Message("user", "hi"), tools=[WEATHER_TOOL], tool_choice=choice)
    assert built["tool_choice"] == expected


def test_no_tools_no_tool_fields():
    built = params(Message("user", "hi"), tool_choice="auto")
    assert "tools" not in built
    assert "tool_choice" not in built
    # Only function tools translate; with none left, no tool_choice for absent tools either.
    built = params(Message("user", "hi"), tools=[{"type": "web_search"}], tool_choice="required")
    assert "tools" not in built
    assert "tool_choice" not in built


# -- sampling parameters -----------------------------------------------------------------------
def test_max_tokens_defaults_to_4096_when_absent():
    assert DEFAULT_MAX_TOKENS == 4096
    assert params(Message("user", "hi"))["max_tokens"] == 4096


def test_max_tokens_is_kept_when_given():
    assert params(Message("user", "hi"), max_tokens=123)["max_tokens"] == 123


@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.0, 1.8])
def test_sampling_parameters_are_not_sent(temperature):
    # API version 2026-10-21 (anthropic SDK 2.x) removed temperature/top_p/top_k: sending
    # any of them is a 400, and messages.create() no longer takes them (TypeError).
    built = params(Message("user", "hi"), temperature=temperature, top_p=0.9, seed=7)
    assert not {"temperature", "top_p", "top_k", "seed"} & set(built)


def test_unset_optional_parameters_are_not_sent():
    built = params(Message("user", "hi"))
    assert set(built) == {"model", "messages", "max_tokens"}


def test_stop_and_user():
    built = params(Message("user", "hi"), stop=["\n\n", "END"], user="user-42")
    assert built["stop_sequences"] == ["\n\n", "END"]
    assert "stop" not in built
    assert built["metadata"] == {"user_id": "user-42"}
    assert "user" not in built


# -- images ----------------------------------------------------------------------------------
def test_data_url_image_becomes_a_base64_image_block():
    data_url = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="
    [message] = to_anthropic_messages(
        [
            Message(
                "user",
                [text("What is this?"), {"type": "image_url", "image_url": {"url": data_url}}],
            )
        ]
    )
    assert message["content"] == [
        text("What is this?"),
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/png",
                "data": "iVBORw0KGgoAAAANSUhEUg==",
            },
        },
    ]


def test_http_image_url_becomes_a_url_image_source():
    url = "https://example.test/cat.jpg"
    [message] = to_anthropic_messages(
        [Message("user", [{"type": "image_url", "image_url": {"url": url, "detail": "low"}}])]
    )
    assert message["content"] == [{"type": "image", "source": {"type": "url", "url": url}}]


# -- stop reasons ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, None),
    ],
)
def test_stop_reasons(stop_reason, expected):
    assert finish_reason(stop_reason) == expected
