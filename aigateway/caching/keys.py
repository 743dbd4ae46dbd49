"""Cache keys: a canonical hash of everything that changes an answer, inside a namespace
that always contains the tenant (key, team or organisation) and the route."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from providers.types import ChatRequest, Message

# Left out of every key: they do not change what the model answers (stream, include_usage,
# user).


def _message(message: Message) -> dict[str, Any]:
    data = asdict(message)
    return {k: v for k, v in data.items() if v not in (None, [], "")}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _answer_shaping(request: ChatRequest) -> dict[str, Any]:
    """Everything besides the messages that changes what the model answers."""
    return {
        "model": request.model,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "stop": request.stop,
        "tools": request.tools,
        "tool_choice": request.tool_choice,
        "response_format": request.response_format,
        "seed": request.seed,
        "extra": request.extra,
    }


def request_fingerprint(request: ChatRequest) -> str:
    """sha256 over the normalized request: messages, sampling and output-shaping
    parameters, tools. Two requests with equal fingerprints ask for the same answer."""
    data = {**_answer_shaping(request), "messages": [_message(m) for m in request.messages]}
    return hashlib.sha256(_canonical(data).encode()).hexdigest()


def context_fingerprint(request: ChatRequest) -> str:
    """For the semantic cache: everything except the last user turn's text (system prompt,
    earlier turns, tools, model, output-shaping parameters), so a follow-up like "and in
    Python?" only matches within the same conversation context."""
    last_user = max((i for i, m in enumerate(request.messages) if m.role == "user"), default=-1)
    earlier = [_message(m) for i, m in enumerate(request.messages) if i != last_user]
    data = {**_answer_shaping(request), "earlier": earlier}
    return hashlib.sha256(_canonical(data).encode()).hexdigest()


def last_user_text(request: ChatRequest) -> str:
    return next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
