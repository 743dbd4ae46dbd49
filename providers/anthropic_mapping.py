"""Normalized (OpenAI-shaped) requests ↔ Anthropic Messages API. Pure functions, no I/O.

Anthropic differs from OpenAI in ways a gateway must bridge: the system prompt is a top-level
field, max_tokens is required, tool calls are content blocks (tool_use / tool_result), tool
results are user turns, and stop reasons have other names.

Sampling parameters are not sent: API version 2026-10-21 (what anthropic SDK 2.x speaks)
removed ``temperature``, ``top_p`` and ``top_k`` (the API answers 400 even for default values,
and the SDK's ``messages.create`` has no such arguments), so an OpenAI client's
``temperature``/``top_p`` is dropped for Anthropic upstreams, like other parameters Anthropic
has no equivalent for (``seed``, ``response_format``).
"""

from __future__ import annotations

import json
from typing import Any

from providers.types import ChatRequest, FinishReason, Message

DEFAULT_MAX_TOKENS = 4096
STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None) -> FinishReason | None:
    return STOP_REASONS.get(stop_reason, "stop") if stop_reason else None


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(message: Message) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = []
    for part in message.content or []:
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image_block(part))
    return blocks


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as Anthropic's ``input`` object (which must be an object,
    even when a model produced invalid JSON or another type)."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


def to_anthropic_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """System messages are dropped here (they go to the top-level ``system``); consecutive
    turns of one role are merged, as Anthropic expects alternating user/assistant turns; a
    message with no content at all is skipped (Anthropic refuses empty turns)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        blocks: list[dict[str, Any]]
        if message.role in ("system", "developer"):
            continue
        if message.role == "tool":
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": message.text(),
                }
            ]
        else:
            role = message.role
            blocks = _content_blocks(message)
            for call in message.tool_calls:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": tool_input(call.arguments),
                    }
                )
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function", tool)
    return {
        "name": function.get("name", ""),
        "description": function.get("description", ""),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    return None


def build_anthropic_params(request: ChatRequest, upstream_model: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": upstream_model,
        "messages": to_anthropic_messages(request.messages),
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if request.system_prompt:
        params["system"] = request.system_prompt
    if request.stop:
        params["stop_sequences"] = request.stop
    tools = [_tool(t) for t in request.tools if t.get("type", "function") == "function"]
    if tools:
        params["tools"] = tools
        choice = _tool_choice(request.tool_choice)
        if choice is not None:
            params["tool_choice"] = choice
    if request.user:
        params["metadata"] = {"user_id": request.user}
    return params
