"""Plain helpers for the adapter tests (tests/providers): the keys and models each adapter kind
is tested with, building requests, collecting streams, the table of status faults and the
checks every error path makes (exactly one HTTP request, no secret in the exception).

The fixtures that use them (the fake upstream, targets per kind, adapters) are in conftest.py.
"""

from __future__ import annotations

import socket
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from providers import errors
from providers.base import DeploymentTarget, ProviderAdapter
from providers.types import ChatChunk, ChatRequest, ChatResponse, Message, ToolCall
from tests.fakes.upstream import FakeUpstream, RecordedRequest

MakeTarget = Callable[..., DeploymentTarget]  # the conftest's make_target(**fields)
Connect = Callable[[DeploymentTarget], ProviderAdapter]  # the conftest's connect(target)

# -- what each adapter kind is tested with -------------------------------------------------------
OPENAI_KEY = "sk-test-SECRET-1234567890abcdef"
ANTHROPIC_KEY = "sk-ant-test-SECRET-1234567890abcdef"
AZURE_KEY = "azure-resource-key"
OPENAI_MODEL = "fake-model"
ANTHROPIC_MODEL = "claude-fake"
AZURE_DEPLOYMENT = "gpt4o-prod"
LOCAL_MODEL = "llama-3.1-8b-instruct"
API_VERSION = "2024-10-21"

# Entra ID (Azure AD): the fake upstream's token endpoint for this tenant.
TENANT = "contoso"
CLIENT_ID = "app-123"
TOKEN_PATH = f"/{TENANT}/oauth2/v2.0/token"

# DeploymentTarget fields per adapter kind (the provider name and base URL are added per target).
TARGET_FIELDS: dict[str, dict[str, Any]] = {
    "openai": {
        "deployment_id": 7,
        "upstream_model": OPENAI_MODEL,
        "api_key": OPENAI_KEY,
        "credential_fingerprint": "fp-test",
    },
    "anthropic": {
        "deployment_id": 11,
        "upstream_model": ANTHROPIC_MODEL,
        "api_key": ANTHROPIC_KEY,
        "credential_fingerprint": "fp-test",
    },
    "azure_openai": {
        "deployment_id": 11,
        "upstream_model": AZURE_DEPLOYMENT,  # Azure calls a deployment by its name
        "api_key": AZURE_KEY,
        "credential_fingerprint": "fp-azure",
        "options": (("api_version", API_VERSION),),
    },
    "openai_compatible": {
        "deployment_id": 21,
        "upstream_model": LOCAL_MODEL,
        "api_key": "",  # a local server with no authentication
        "credential_fingerprint": "",
    },
}
# Kinds whose base URL ends in /v1 (the SDK appends /chat/completions); the others take the
# server's root (Anthropic appends /v1/messages, Azure /openai/deployments/…).
V1_KINDS = frozenset({"openai", "openai_compatible"})


def fresh_name(prefix: str) -> str:
    """A provider name never used before: a fresh adapter, built with the current settings."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def build_target(kind: str, upstream: FakeUpstream, **overrides: Any) -> DeploymentTarget:
    fields: dict[str, Any] = {
        "provider_name": fresh_name("fake-" + kind.replace("_", "-")),
        "provider_kind": kind,
        "base_url": upstream.openai_base_url if kind in V1_KINDS else upstream.base_url,
        **TARGET_FIELDS[kind],
    }
    fields.update(overrides)
    return DeploymentTarget(**fields)


# -- requests and answers ------------------------------------------------------------------------
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def ask(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="my-route", messages=[Message("user", text)], **kwargs)


def tool_result_conversation(call_id: str) -> ChatRequest:
    """The weather question, the assistant's tool call and the tool's answer, in our shape."""
    call = ToolCall(call_id, "get_weather", '{"city": "Paris"}')
    return ChatRequest(
        model="my-route",
        messages=[
            Message("user", "What's the weather in Paris?"),
            Message("assistant", None, tool_calls=[call]),
            Message("tool", "18C and sunny", tool_call_id=call_id),
        ],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )


def words(text: str) -> int:
    """The fake upstream counts a token per word (tests/fakes/echo.py)."""
    return len(text.split())


def joined(chunks: list[ChatChunk]) -> str:
    return "".join(c.content or "" for c in chunks)


def finish_reasons(chunks: list[ChatChunk]) -> list[str]:
    return [c.finish_reason for c in chunks if c.finish_reason]


def assert_answered(
    response: ChatResponse, target: DeploymentTarget, answer: str, usage: tuple[int, int]
) -> None:
    """The upstream's ``answer``, finished ("stop"), with this (input, output) ``usage``, under
    the route's name and credited to the target that served it."""
    assert response.content == answer
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == usage
    assert response.model == "my-route"  # the route name, not the upstream model
    assert response.served_by.provider == target.provider_name
    assert response.served_by.deployment_id == target.deployment_id
    assert response.served_by.upstream_model == target.upstream_model


def assert_streamed_answer(chunks: list[ChatChunk], answer: str, input_tokens: int) -> None:
    """A role chunk first, the answer's text across the chunks, one finish reason ("stop") and
    the usage in the last chunk."""
    assert chunks[0].role == "assistant"
    assert joined(chunks) == answer
    assert finish_reasons(chunks) == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.input_tokens == input_tokens


async def collect_stream(
    adapter: ProviderAdapter, request: ChatRequest, target: DeploymentTarget
) -> list[ChatChunk]:
    return [chunk async for chunk in adapter.chat_stream(request, target)]


async def chat_or_stream(
    adapter: ProviderAdapter, request: ChatRequest, target: DeploymentTarget, *, stream: bool
) -> ChatResponse | list[ChatChunk]:
    """One call, streamed or not: error paths must fail the same way both ways."""
    if stream:
        return await collect_stream(adapter, request, target)
    return await adapter.chat(request, target)


# Parametrizes a test over a plain call and a streamed one (argument ``stream``).
CHAT_AND_STREAM = pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])


# -- faults and the checks every error makes -----------------------------------------------------
STATUS_FAULTS: list[tuple[str, type[errors.ProviderError], bool, int]] = [
    # fault kind (tests/fakes/upstream.py), our error class, retryable, upstream status
    ("429", errors.RateLimited, True, 429),
    ("500", errors.ServerError, True, 500),
    ("503", errors.Overloaded, True, 503),
    ("529", errors.Overloaded, True, 529),
    ("401", errors.AuthFailed, False, 401),
    ("400", errors.BadRequest, False, 400),
    ("context_length", errors.ContextTooLong, False, 400),
    ("content_filter", errors.ContentFiltered, False, 400),
]
STATUS_FAULT_ARGS = ("fault", "error_class", "retryable", "status")
# Faults on the wire before any answer: fault kind, our (retryable) error class.
WIRE_FAULTS: list[tuple[str, type[errors.ProviderError]]] = [
    ("reset", errors.ConnectionFailed),
    ("malformed", errors.ServerError),
]


def status_faults(*kinds: str) -> list[tuple[str, type[errors.ProviderError], bool, int]]:
    """Rows of STATUS_FAULTS (the named fault kinds, in that order), to parametrize with."""
    rows = {row[0]: row for row in STATUS_FAULTS}
    return [rows[kind] for kind in kinds]


def assert_one_request(upstream: FakeUpstream, fault: str | None = None) -> RecordedRequest:
    """max_retries=0: the SDK made exactly one HTTP request; retries are the resilience
    layer's. With ``fault``: that request was served this fault."""
    requests = upstream.requests
    assert len(requests) == 1, [(r.method, r.path) for r in requests]
    if fault is not None:
        assert requests[0].fault == fault
    return requests[0]


def assert_secret_absent(exc: BaseException, *secrets: str) -> None:
    """None of ``secrets`` appears in the exception's str, repr or formatted traceback."""
    for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc))):
        for secret in secrets:
            assert secret not in text


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
