"""Kind ``openai_compatible`` (vLLM, Ollama, LM Studio, …): the OpenAI adapter against a
server that needs no key, through the real ``openai`` SDK and the wire-level fake upstream."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from providers import errors
from providers.base import DeploymentTarget, ProviderAdapter, get_adapter
from providers.openai_adapter import PLACEHOLDER_KEY, OpenAIAdapter
from providers.types import ChatChunk, ChatRequest, Message
from tests.fakes.upstream import FakeUpstream

MODEL = "llama-3.1-8b-instruct"


@pytest.fixture(scope="module")
def running_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:  # no api_key: any (or no) credential is accepted
        yield upstream


@pytest.fixture
def upstream(running_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    running_upstream.reset()
    yield running_upstream
    running_upstream.reset()


MakeTarget = Callable[..., DeploymentTarget]


@pytest.fixture
def make_target(upstream: FakeUpstream) -> MakeTarget:
    def make(**overrides: Any) -> DeploymentTarget:
        fields: dict[str, Any] = {
            "deployment_id": 21,
            "provider_name": f"fake-vllm-{uuid.uuid4().hex[:8]}",
            "provider_kind": "openai_compatible",
            "upstream_model": MODEL,
            "base_url": upstream.openai_base_url,
            "api_key": "",  # a local server with no authentication
            "credential_fingerprint": "",
        }
        fields.update(overrides)
        return DeploymentTarget(**fields)

    return make


@pytest.fixture
async def adapters() -> AsyncIterator[list[ProviderAdapter]]:
    built: list[ProviderAdapter] = []
    yield built
    for adapter in built:
        await adapter.client.close()  # type: ignore[attr-defined]


@pytest.fixture
def connect(adapters: list[ProviderAdapter]) -> Callable[[DeploymentTarget], ProviderAdapter]:
    def connect(target: DeploymentTarget) -> ProviderAdapter:
        adapter = get_adapter(target)
        if adapter not in adapters:
            adapters.append(adapter)
        return adapter

    return connect


@pytest.fixture
def target(make_target: MakeTarget) -> DeploymentTarget:
    return make_target()


@pytest.fixture
async def adapter(
    connect: Callable[[DeploymentTarget], ProviderAdapter], target: DeploymentTarget
) -> ProviderAdapter:
    return connect(target)


def ask(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="local-route", messages=[Message("user", text)], **kwargs)


async def collect(
    adapter: ProviderAdapter, request: ChatRequest, target: DeploymentTarget
) -> list[ChatChunk]:
    return [chunk async for chunk in adapter.chat_stream(request, target)]


async def test_the_kind_uses_the_openai_adapter(adapter):
    assert type(adapter) is OpenAIAdapter


async def test_chat_without_a_key(adapter, target, upstream):
    response = await adapter.chat(ask("hello there", max_tokens=50), target)

    assert response.content == f"Echo from {MODEL}: hello there"
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (2, 5)
    assert response.model == "local-route"
    assert response.served_by.provider == target.provider_name
    assert response.served_by.upstream_model == MODEL

    [sent] = upstream.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.json["model"] == MODEL
    assert sent.json["max_tokens"] == 50
    # The SDK insists on a key; the adapter sends a placeholder the server ignores.
    assert sent.headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}"


async def test_stream_without_a_key(adapter, target, upstream):
    chunks = await collect(adapter, ask("stream me please"), target)

    assert chunks[0].role == "assistant"
    assert "".join(c.content or "" for c in chunks) == f"Echo from {MODEL}: stream me please"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.input_tokens == 3

    [sent] = upstream.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.json["stream"] is True
    assert sent.headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}"


async def test_list_models_and_health_check(adapter, target, upstream):
    assert await adapter.list_models(target) == ["fake-model"]
    await adapter.health_check(target)
    assert [(r.method, r.path) for r in upstream.requests] == [("GET", "/v1/models")] * 2
    assert all(r.headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}" for r in upstream.requests)


async def test_health_check_fails_when_the_server_is_down(connect, make_target, upstream):
    upstream.push_fault("503")
    target = make_target()
    with pytest.raises(errors.Overloaded):
        await connect(target).health_check(target)


async def test_a_configured_key_is_sent(connect, make_target, upstream):
    key = "vllm-key-0123456789"
    target = make_target(api_key=key, credential_fingerprint="fp-vllm")
    adapter = connect(target)

    await adapter.chat(ask("hello"), target)
    await collect(adapter, ask("hello"), target)
    await adapter.list_models(target)

    assert [r.headers["authorization"] for r in upstream.requests] == [f"Bearer {key}"] * 3


async def test_a_server_that_wants_a_key_refuses_the_placeholder(connect, make_target):
    with FakeUpstream(api_key="vllm-required-key-0123") as guarded:
        anonymous = make_target(base_url=guarded.openai_base_url)
        with pytest.raises(errors.AuthFailed):
            await connect(anonymous).chat(ask("hello"), anonymous)

        keyed = make_target(
            base_url=guarded.openai_base_url,
            api_key="vllm-required-key-0123",
            credential_fingerprint="fp-guarded",
        )
        response = await connect(keyed).chat(ask("hello"), keyed)
        assert response.content == f"Echo from {MODEL}: hello"
