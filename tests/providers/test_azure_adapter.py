"""The Azure OpenAI adapter, through the real ``openai`` SDK (``AsyncAzureOpenAI``) and its
aiohttp transport, against the wire-level fake upstream (tests/fakes/upstream.py), which maps
Azure's deployment paths onto its OpenAI handlers and serves an Entra ID token endpoint.

Two ways to authenticate: the resource key (``api-key`` header) or Entra ID (a client secret
exchanged for a bearer token by the client-credentials flow, cached and refreshed early)."""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from providers import errors
from providers.base import DeploymentTarget, ProviderAdapter, get_adapter
from providers.types import ChatChunk, ChatRequest, Message
from tests.fakes.upstream import FakeUpstream, RecordedRequest

RESOURCE_KEY = "azure-resource-key"
DEPLOYMENT = "gpt4o-prod"
API_VERSION = "2024-10-21"
TENANT = "contoso"
CLIENT_ID = "app-123"
CHAT_PATH = f"/openai/deployments/{DEPLOYMENT}/chat/completions"
TOKEN_PATH = f"/{TENANT}/oauth2/v2.0/token"


@pytest.fixture(scope="module")
def running_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=RESOURCE_KEY) as upstream:
        yield upstream


def _forget(upstream: FakeUpstream) -> None:
    upstream.reset()
    upstream.issued_tokens.clear()
    upstream.token_requests.clear()
    upstream.entra_token_lifetime = 3600


@pytest.fixture
def upstream(running_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    _forget(running_upstream)
    yield running_upstream
    _forget(running_upstream)


MakeTarget = Callable[..., DeploymentTarget]


@pytest.fixture
def make_target(upstream: FakeUpstream) -> MakeTarget:
    def make(**overrides: Any) -> DeploymentTarget:
        fields: dict[str, Any] = {
            "deployment_id": 11,
            # A fresh name per target: a fresh adapter (and token cache) per test.
            "provider_name": f"fake-azure-{uuid.uuid4().hex[:8]}",
            "provider_kind": "azure_openai",
            "upstream_model": DEPLOYMENT,
            "base_url": upstream.base_url,  # the Azure endpoint, https://<resource>.openai…
            "api_key": RESOURCE_KEY,
            "credential_fingerprint": "fp-azure",
            "options": (("api_version", API_VERSION),),
        }
        fields.update(overrides)
        return DeploymentTarget(**fields)

    return make


@pytest.fixture
def make_entra_target(make_target: MakeTarget, upstream: FakeUpstream) -> MakeTarget:
    def make(**overrides: Any) -> DeploymentTarget:
        fields: dict[str, Any] = {
            "api_key": upstream.entra_client_secret,
            "options": tuple(
                sorted(
                    {
                        "auth": "entra_id",
                        "tenant_id": TENANT,
                        "client_id": CLIENT_ID,
                        "authority_url": upstream.base_url,
                        "api_version": API_VERSION,
                    }.items()
                )
            ),
        }
        fields.update(overrides)
        return make_target(**fields)

    return make


@pytest.fixture
async def adapters() -> AsyncIterator[list[ProviderAdapter]]:
    """Adapters the test built; their HTTP pools are closed afterwards."""
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
    return connect(target)  # async: adapters are cached per running event loop


@pytest.fixture
def entra_target(make_entra_target: MakeTarget) -> DeploymentTarget:
    return make_entra_target()


@pytest.fixture
async def entra_adapter(
    connect: Callable[[DeploymentTarget], ProviderAdapter], entra_target: DeploymentTarget
) -> ProviderAdapter:
    return connect(entra_target)


def ask(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="my-route", messages=[Message("user", text)], **kwargs)


async def collect(
    adapter: ProviderAdapter, request: ChatRequest, target: DeploymentTarget
) -> list[ChatChunk]:
    return [chunk async for chunk in adapter.chat_stream(request, target)]


def chat_requests(upstream: FakeUpstream) -> list[RecordedRequest]:
    return [r for r in upstream.requests if r.path != TOKEN_PATH]


def assert_not_in(exc: BaseException, *secrets: str) -> None:
    for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc))):
        for secret in secrets:
            assert secret not in text


# -- api-key auth ------------------------------------------------------------------------------
async def test_chat_through_the_deployment_url(adapter, target, upstream):
    response = await adapter.chat(ask("hello there"), target)

    assert response.content == f"Echo from {DEPLOYMENT}: hello there"
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (2, 5)
    assert response.model == "my-route"
    assert response.served_by.provider == target.provider_name
    assert response.served_by.upstream_model == DEPLOYMENT

    [sent] = upstream.requests
    assert (sent.method, sent.path) == ("POST", CHAT_PATH)
    assert sent.query == {"api-version": API_VERSION}
    assert sent.headers["api-key"] == RESOURCE_KEY
    assert "authorization" not in sent.headers
    assert sent.json["model"] == DEPLOYMENT


async def test_stream_through_the_deployment_url(adapter, target, upstream):
    chunks = await collect(adapter, ask("stream me please"), target)

    assert chunks[0].role == "assistant"
    text = "".join(c.content or "" for c in chunks)
    assert text == f"Echo from {DEPLOYMENT}: stream me please"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.input_tokens == 3

    [sent] = upstream.requests
    assert sent.path == CHAT_PATH
    assert sent.query == {"api-version": API_VERSION}
    assert sent.headers["api-key"] == RESOURCE_KEY
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}


async def test_api_version_defaults_when_not_configured(connect, make_target, upstream):
    from providers.azure_adapter import DEFAULT_API_VERSION

    target = make_target(options=())
    await connect(target).chat(ask("hello"), target)
    assert upstream.requests[0].query == {"api-version": DEFAULT_API_VERSION}


async def test_another_api_version_is_sent(connect, make_target, upstream):
    target = make_target(options=(("api_version", "2025-01-01-preview"),))
    await connect(target).chat(ask("hello"), target)
    assert upstream.requests[0].query == {"api-version": "2025-01-01-preview"}


async def test_list_models_and_health_check(adapter, target, upstream):
    assert await adapter.list_models(target) == ["fake-model"]
    await adapter.health_check(target)
    assert [(r.path, r.query) for r in upstream.requests] == [
        ("/openai/models", {"api-version": API_VERSION})
    ] * 2


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_wrong_resource_key_is_auth_failed(connect, make_target, upstream, stream):
    target = make_target(api_key="wrong-azure-key-0123456789")
    adapter = connect(target)
    with pytest.raises(errors.AuthFailed) as info:
        if stream:
            await collect(adapter, ask("hello"), target)
        else:
            await adapter.chat(ask("hello"), target)
    assert info.value.upstream_status == 401
    assert info.value.retryable is False
    assert info.value.provider == target.provider_name
    assert_not_in(info.value, "wrong-azure-key-0123456789")
    assert len(upstream.requests) == 1


# -- error mapping (as for OpenAI) -------------------------------------------------------------
async def test_rate_limit_carries_retry_after(adapter, target, upstream):
    upstream.push_fault("429", retry_after=7)
    with pytest.raises(errors.RateLimited) as info:
        await adapter.chat(ask("hello"), target)
    exc = info.value
    assert exc.retry_after == 7
    assert exc.retryable is True
    assert exc.upstream_status == 429
    assert exc.provider_request_id == "fake-req-1"
    assert exc.provider == target.provider_name
    assert_not_in(exc, RESOURCE_KEY)
    assert len(upstream.requests) == 1  # max_retries=0


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_server_error(adapter, target, upstream, stream):
    upstream.push_fault("500")
    with pytest.raises(errors.ServerError) as info:
        if stream:
            await collect(adapter, ask("hello"), target)
        else:
            await adapter.chat(ask("hello"), target)
    assert info.value.retryable is True
    assert info.value.upstream_status == 500
    assert info.value.provider_request_id == "fake-req-1"
    assert_not_in(info.value, RESOURCE_KEY)
    assert len(upstream.requests) == 1


# -- Entra ID auth -----------------------------------------------------------------------------
async def test_entra_id_chat_and_stream_use_a_bearer_token(entra_adapter, entra_target, upstream):
    response = await entra_adapter.chat(ask("hello"), entra_target)
    assert response.content == f"Echo from {DEPLOYMENT}: hello"
    chunks = await collect(entra_adapter, ask("stream me"), entra_target)
    assert "".join(c.content or "" for c in chunks) == f"Echo from {DEPLOYMENT}: stream me"

    token_request, *sent = upstream.requests
    assert (token_request.method, token_request.path) == ("POST", TOKEN_PATH)
    assert [r.path for r in sent] == [CHAT_PATH, CHAT_PATH]
    for request in sent:
        assert request.headers["authorization"] == "Bearer fake-entra-token-1"
        assert request.query == {"api-version": API_VERSION}
        assert "api-key" not in request.headers
        # The client secret goes to the token endpoint only, never to the model endpoint.
        assert upstream.entra_client_secret not in str(request.headers)
        assert upstream.entra_client_secret.encode() not in request.raw
    assert upstream.token_requests == [
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": upstream.entra_client_secret,
            "scope": "https://cognitiveservices.azure.com/.default",
        }
    ]


async def test_entra_id_token_is_cached_across_calls(entra_adapter, entra_target, upstream):
    for n in range(4):
        await entra_adapter.chat(ask(f"call {n}"), entra_target)
    await entra_adapter.list_models(entra_target)
    await asyncio.gather(*(entra_adapter.chat(ask("together"), entra_target) for _ in range(5)))

    assert [r.path for r in upstream.requests].count(TOKEN_PATH) == 1
    assert upstream.issued_tokens == ["fake-entra-token-1"]
    assert {r.headers["authorization"] for r in chat_requests(upstream)} == {
        "Bearer fake-entra-token-1"
    }
    assert len(chat_requests(upstream)) == 10


async def test_entra_id_token_is_refreshed_before_expiry(connect, make_entra_target, upstream):
    # A 2 s token is refreshed at half-life: max(2 / 2, 2 - 300) = 1 s after it was issued.
    upstream.entra_token_lifetime = 2
    target = make_entra_target()
    adapter = connect(target)

    await adapter.chat(ask("first"), target)
    await adapter.chat(ask("second"), target)
    await asyncio.sleep(1.1)
    await adapter.chat(ask("third"), target)
    await adapter.chat(ask("fourth"), target)

    assert upstream.issued_tokens == ["fake-entra-token-1", "fake-entra-token-2"]
    assert [r.headers["authorization"] for r in chat_requests(upstream)] == [
        "Bearer fake-entra-token-1",
        "Bearer fake-entra-token-1",
        "Bearer fake-entra-token-2",
        "Bearer fake-entra-token-2",
    ]


@pytest.mark.parametrize("call", ["chat", "stream", "list_models"])
async def test_wrong_client_secret_fails_at_the_token_endpoint(
    connect, make_entra_target, upstream, call
):
    secret = "wrong-client-secret-0123456789"
    target = make_entra_target(api_key=secret)
    adapter = connect(target)
    with pytest.raises(errors.AuthFailed) as info:
        if call == "stream":
            await collect(adapter, ask("hello"), target)
        elif call == "chat":
            await adapter.chat(ask("hello"), target)
        else:
            await adapter.list_models(target)

    exc = info.value
    assert exc.upstream_status == 401
    assert exc.retryable is False
    assert exc.provider == target.provider_name
    assert "invalid_client" in str(exc)
    assert_not_in(exc, secret)
    # The token fetch failed, so no call reached the model endpoint.
    assert [r.path for r in upstream.requests] == [TOKEN_PATH]
    assert upstream.issued_tokens == []


async def test_entra_id_upstream_errors_still_map(entra_adapter, entra_target, upstream):
    await entra_adapter.chat(ask("warm the token cache"), entra_target)
    upstream.push_fault("429", retry_after=3, path=CHAT_PATH)
    with pytest.raises(errors.RateLimited) as info:
        await entra_adapter.chat(ask("hello"), entra_target)
    assert info.value.retry_after == 3
    assert_not_in(info.value, upstream.entra_client_secret, "fake-entra-token-1")
