"""Normalized responses → OpenAI wire format (JSON bodies and SSE events)."""

from __future__ import annotations

from typing import Any

from providers import fastjson
from providers.types import ChatChunk, ChatResponse, Usage


def usage_to_openai(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def chat_response_to_openai(response: ChatResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.content}
    if response.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls
        ]
    return {
        "id": response.id,
        "object": "chat.completion",
        "created": response.created,
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": response.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage_to_openai(response.usage),
    }


def sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + fastjson.dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


def chunk_to_openai(
    chunk: ChatChunk, *, completion_id: str, model: str, created: int
) -> dict[str, Any] | None:
    """The OpenAI chunk for ``chunk``'s delta, or None when it carries only usage."""
    delta: dict[str, Any] = {}
    if chunk.role:
        delta["role"] = chunk.role
    if chunk.content is not None:
        delta["content"] = chunk.content
    if chunk.tool_calls:
        delta["tool_calls"] = [
            {
                "index": d.index,
                **({"id": d.id, "type": "function"} if d.id else {}),
                "function": {
                    **({"name": d.name} if d.name else {}),
                    "arguments": d.arguments,
                },
            }
            for d in chunk.tool_calls
        ]
    if not delta and chunk.finish_reason is None:
        return None
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "delta": delta, "finish_reason": chunk.finish_reason, "logprobs": None}
        ],
    }


def usage_chunk(usage: Usage, *, completion_id: str, model: str, created: int) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_to_openai(usage),
    }
