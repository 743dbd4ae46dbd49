"""OpenAI wire format for the fake upstream: chat completions (plain and SSE), models,
embeddings and error bodies. Pure functions from request JSON to response JSON/bytes."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.echo import (
    Reply,
    content_text,
    embedding_base64,
    embedding_vector,
    plan_reply,
    word_count,
)

CREATED = 1_700_000_000
FINGERPRINT = "fp_fake"

# kind -> (status, error type, error code, message)
ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    "429": (429, "rate_limit_error", "rate_limit_exceeded", "Rate limit reached for requests."),
    "500": (500, "server_error", None, "The server had an error while processing your request."),
    "503": (503, "server_error", None, "The engine is currently overloaded, try again later."),
    "529": (529, "overloaded_error", "overloaded", "The upstream is overloaded."),
    "401": (401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    "400": (400, "invalid_request_error", None, "Invalid value for 'temperature'."),
    "context_length": (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 200000 tokens. Please reduce the length of the messages.",
    ),
    "content_filter": (
        400,
        "invalid_request_error",
        "content_filter",
        "The response was filtered due to the prompt triggering content management policy.",
    ),
}


def error(kind: str, message: str | None = None) -> tuple[int, dict[str, Any]]:
    status, type_, code, default = ERRORS[kind]
    body = {"error": {"message": message or default, "type": type_, "param": None, "code": code}}
    return status, body


def sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


# -- chat completions ------------------------------------------------------------------------
def plan(body: dict[str, Any]) -> Reply:
    messages = body.get("messages") or []
    user_texts = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    tools = body.get("tools") or []
    tool_name = None
    if tools and isinstance(tools[0], dict):
        tool_name = (tools[0].get("function") or {}).get("name")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return plan_reply(
        model=str(body.get("model", "")),
        last_user_text=user_texts[-1] if user_texts else "",
        prompt_tokens=sum(word_count(content_text(m.get("content"))) for m in messages),
        max_tokens=max_tokens,
        tool_name=tool_name,
        ends_with_user_turn=bool(messages) and messages[-1].get("role") == "user",
    )


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def completion(body: dict[str, Any], reply: Reply, response_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_name:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": reply.tool_name, "arguments": reply.tool_arguments},
            }
        ]
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": body.get("model"),
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}
        ],
        "usage": _usage(reply),
    }


def stream_frames(body: dict[str, Any], reply: Reply, response_id: str) -> list[bytes]:
    """Every SSE frame of a streamed answer, ``data: [DONE]`` included."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": body.get("model"),
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return sse(data)

    frames = []
    if reply.tool_name:
        header = {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": reply.tool_name, "arguments": ""},
        }
        frames.append(chunk({"role": "assistant", "content": None, "tool_calls": [header]}))
        frames += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in reply.argument_pieces()
        ]
    else:
        frames.append(chunk({"role": "assistant", "content": ""}))
        frames += [chunk({"content": piece}) for piece in reply.text_pieces()]
    frames.append(chunk({}, reply.finish))
    if include_usage:
        frames.append(
            sse(
                {
                    "id": response_id,
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": body.get("model"),
                    "system_fingerprint": FINGERPRINT,
                    "choices": [],
                    "usage": _usage(reply),
                }
            )
        )
    frames.append(sse("[DONE]"))
    return frames


def stream_error_frame(kind: str, message: str | None = None) -> bytes:
    """An error delivered inside an already-started stream, as OpenAI does."""
    return sse(error(kind, message)[1])


# -- models and embeddings ---------------------------------------------------------------------
def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}],
    }


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input", "")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        inputs = [raw]  # one string, or one pre-tokenised input
    else:
        inputs = list(raw)
    texts = [item if isinstance(item, str) else " ".join(map(str, item)) for item in inputs]
    as_base64 = body.get("encoding_format") == "base64"  # the SDK's default
    data = []
    for index, text in enumerate(texts):
        vector = embedding_vector(text)
        data.append(
            {
                "object": "embedding",
                "index": index,
                "embedding": embedding_base64(vector) if as_base64 else vector,
            }
        )
    tokens = sum(word_count(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
