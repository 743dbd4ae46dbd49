"""The OpenAI door's rules for chat parameters beyond the ones it models: size limits, the
values it cannot relay faithfully, and type checks for what it passes through.

The rule for every request argument (docs/api.md, "OpenAI-compatible"):

* modelled (``model``, ``messages``, ``temperature``, ``max_tokens``, ``tools``, ...):
  normalized into ChatRequest, and each adapter maps what its provider supports;
* pass-through (``PASS_THROUGH`` in parsing.py): sent verbatim to OpenAI-family upstreams
  (OpenAI, Azure OpenAI, OpenAI-compatible servers); Anthropic and the demo provider have no
  equivalent and drop them;
* unsupported (below): a value the gateway would silently lose (a second choice, log
  probabilities, audio, citations) is refused with a 400 naming it, rather than answered
  differently from what was asked;
* anything else: 400 "Unrecognized request argument supplied: <name>", as OpenAI answers.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from aigateway.gateway.errors import InvalidRequest


def _unsupported(name: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{name}' is not supported by this gateway: {why}", param=name,
                          code="unsupported_parameter")  # fmt: skip


def refuse_unsupported(body: dict[str, Any]) -> None:
    """400 for arguments whose effect the gateway cannot relay to the client."""
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        raise InvalidRequest("'n' must be an integer.", param="n")
    if n is not None and n != 1:
        raise _unsupported("n", "it returns one choice per request; send n=1 or leave it out.")
    if body.get("logprobs") not in (None, False):
        raise _unsupported("logprobs", "log probabilities are not relayed.")
    if body.get("top_logprobs") not in (None, 0):
        raise _unsupported("top_logprobs", "log probabilities are not relayed.")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise _unsupported("modalities", "only text output is relayed.")
    for name, why in (
        ("audio", "audio output is not relayed."),
        ("web_search_options", "search annotations are not relayed."),
        ("moderation", "moderation results are not relayed."),
        ("functions", "it is deprecated; send 'tools' instead."),
        ("function_call", "it is deprecated; send 'tool_choice' instead."),
    ):
        if name in body:
            raise _unsupported(name, why)


def check_pass_through_types(body: dict[str, Any]) -> None:
    """Wrong types in pass-through arguments are the caller's error: answer 400 here rather
    than spend an upstream call (and a retry budget) on it."""
    for name in ("frequency_penalty", "presence_penalty"):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not -2 <= value <= 2
        ):
            raise InvalidRequest(f"'{name}' must be a number between -2 and 2.", param=name)
    for name in ("parallel_tool_calls", "store"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise InvalidRequest(f"'{name}' must be a boolean.", param=name)
    for name in ("logit_bias", "metadata", "prediction", "prompt_cache_options"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise InvalidRequest(f"'{name}' must be an object.", param=name)
    for name in ("reasoning_effort", "service_tier", "verbosity", "prompt_cache_key",
                 "prompt_cache_retention", "safety_identifier"):  # fmt: skip
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidRequest(f"'{name}' must be a string.", param=name)


def check_message_count(messages: list[Any]) -> None:
    ceiling = settings.AIGATEWAY_MAX_MESSAGES
    if len(messages) > ceiling:
        raise InvalidRequest(
            f"Invalid 'messages': array too long. Expected an array with maximum length "
            f"{ceiling}, but got an array with length {len(messages)} instead.",
            param="messages",
            code="array_above_max_length",
        )


def check_output_tokens(name: str, value: int | None) -> None:
    ceiling = settings.AIGATEWAY_MAX_OUTPUT_TOKENS
    if value is not None and value > ceiling:
        raise InvalidRequest(
            f"'{name}' is too large: {value}. This gateway allows at most {ceiling}.",
            param=name,
            code="invalid_value",
        )
