"""Anthropic Messages API wire format for the fake upstream: messages (plain and SSE with
Anthropic's named events), request validation and error bodies."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.echo import TOOL_CALL_ARGUMENTS, Reply, content_text, plan_reply, word_count

# kind -> (status, error type, message)
ERRORS: dict[str, tuple[int, str, str]] = {
    "429": (429, "rate_limit_error", "Number of requests has exceeded your rate limit."),
    "500": (500, "api_error", "Internal server error"),
    "503": (503, "overloaded_error", "Overloaded"),
    "529": (529, "overloaded_error", "Overloaded"),
    "401": (401, "authentication_error", "invalid x-api-key"),
    "400": (400, "invalid_request_error", "temperature: Input should be less than 1"),
    "context_length": (
        400,
        "invalid_request_error",
        "prompt is too long: 250000 tokens > 200000 maximum",
    ),
    "content_filter": (400, "invalid_request_error", "Output blocked by content filtering policy"),
}

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def error(kind: str, message: str | None = None) -> tuple[int, dict[str, Any]]:
    status, type_, default = ERRORS[kind]
    return status, error_body(type_, message or default)


def error_body(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def event(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def validate(
    headers: dict[str, str], body: dict[str, Any], api_key: str | None
) -> tuple[int, dict[str, Any]] | None:
    """The error Anthropic would answer for a malformed request, or None when it is fine.

    The key may come as ``x-api-key`` or as ``Authorization: Bearer`` (what anthropic SDK 2.x
    sends for ``api_key=``).
    """
    bearer = headers.get("authorization", "")
    sent_key = headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else "")
    if not sent_key:
        return 401, error_body("authentication_error", "x-api-key header is required")
    if api_key is not None and sent_key != api_key:
        return 401, error_body("authentication_error", "invalid x-api-key")
    if not headers.get("anthropic-version"):
        return 400, error_body("invalid_request_error", "anthropic-version: header is required")
    if not isinstance(body.get("max_tokens"), int):
        return 400, error_body("invalid_request_error", "max_tokens: Field required")
    if not body.get("messages"):
        return 400, error_body("invalid_request_error", "messages: Field required")
    return None


def _is_tool_result_turn(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(p, dict) and p.get("type") == "tool_result" for p in content
    )


def plan(body: dict[str, Any]) -> Reply:
    messages = body.get("messages") or []
    system = content_text(body.get("system") or "")
    user_texts = [
        text
        for m in messages
        if m.get("role") == "user" and (text := content_text(m.get("content"), tool_results=False))
    ]
    tools = body.get("tools") or []
    tool_name = tools[0].get("name") if tools and isinstance(tools[0], dict) else None
    last = messages[-1] if messages else {}
    return plan_reply(
        model=str(body.get("model", "")),
        last_user_text=user_texts[-1] if user_texts else "",
        prompt_tokens=word_count(system)
        + sum(word_count(content_text(m.get("content"))) for m in messages),
        max_tokens=body.get("max_tokens"),
        tool_name=tool_name,
        ends_with_user_turn=last.get("role") == "user" and not _is_tool_result_turn(last),
        prefix=f"[system: {system}] " if system else "",
    )


def _tool_block(reply: Reply, *, streaming: bool) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": "toolu_1",
        "name": reply.tool_name,
        "input": {} if streaming else json.loads(TOOL_CALL_ARGUMENTS),
    }


def _message(
    body: dict[str, Any], reply: Reply, message_id: str, *, streaming: bool
) -> dict[str, Any]:
    if streaming:
        content: list[dict[str, Any]] = []
    elif reply.tool_name:
        content = [_tool_block(reply, streaming=False)]
    else:
        content = [{"type": "text", "text": reply.text}]
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": None if streaming else STOP_REASONS[reply.finish],
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": 0 if streaming else reply.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def message(body: dict[str, Any], reply: Reply, message_id: str) -> dict[str, Any]:
    return _message(body, reply, message_id, streaming=False)


def stream_frames(body: dict[str, Any], reply: Reply, message_id: str) -> list[bytes]:
    """Every SSE event of a streamed message, from message_start to message_stop."""
    start = _message(body, reply, message_id, streaming=True)
    frames = [event({"type": "message_start", "message": start})]
    if reply.tool_name:
        block = _tool_block(reply, streaming=True)
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in reply.argument_pieces()]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in reply.text_pieces()]
    frames.append(event({"type": "content_block_start", "index": 0, "content_block": block}))
    frames.append(event({"type": "ping"}))
    frames += [event({"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas]
    frames.append(event({"type": "content_block_stop", "index": 0}))
    frames.append(
        event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": STOP_REASONS[reply.finish], "stop_sequence": None},
                "usage": {"output_tokens": reply.completion_tokens},
            }
        )
    )
    frames.append(event({"type": "message_stop"}))
    return frames


def stream_error_frame(kind: str, message: str | None = None) -> bytes:
    """An error delivered inside an already-started stream (``event: error``)."""
    _, body = error(kind, message)
    return f"event: error\ndata: {json.dumps(body)}\n\n".encode()
