"""What goes into a cache key, and what does not."""

from __future__ import annotations

import dataclasses

from aigateway.caching.keys import context_fingerprint, last_user_text, request_fingerprint
from providers.types import ChatRequest, Message


def ask(text: str = "What is Redis?", **changes: object) -> ChatRequest:
    request = ChatRequest(
        model="smart",
        messages=[Message("system", "Be brief."), Message("user", text)],
        temperature=0,
    )
    return dataclasses.replace(request, **changes)  # type: ignore[arg-type]


def test_transport_details_do_not_change_the_key():
    base = request_fingerprint(ask())
    assert request_fingerprint(ask(stream=True, include_usage=True, user="u-1")) == base


def test_everything_that_shapes_the_answer_does():
    base = request_fingerprint(ask())
    for change in ({"temperature": 0.5}, {"max_tokens": 10}, {"stop": ["\n"]}, {"seed": 7},
                   {"model": "other"}, {"response_format": {"type": "json_object"}},
                   {"tools": [{"type": "function", "function": {"name": "f"}}]}):  # fmt: skip
        assert request_fingerprint(ask(**change)) != base, change
    assert request_fingerprint(ask("What is Postgres?")) != base


def test_the_semantic_context_leaves_out_only_the_last_user_turn():
    assert context_fingerprint(ask("What is Redis?")) == context_fingerprint(ask("Explain Redis"))
    other_system = ask()
    other_system.messages[0] = Message("system", "Answer in French.")
    assert context_fingerprint(other_system) != context_fingerprint(ask())
    assert last_user_text(ask("and in Python?")) == "and in Python?"
