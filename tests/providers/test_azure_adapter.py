"""The Azure OpenAI adapter, through the real ``openai`` SDK (``AsyncAzureOpenAI``) and its
aiohttp transport, against the wire-level fake upstream (tests/fakes/upstream.py), which maps
Azure's deployment paths onto its OpenAI handlers and serves an Entra ID token endpoint.

Two ways to authenticate: the resource key (``api-key`` header) or Entra ID (a client secret
exchanged for a bearer token by the client-credentials flow, cached and refreshed early).
Error mapping, as for OpenAI, is tested for Azure too in test_adapter_contract.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from providers import errors
from providers.base import DeploymentTarget, ProviderAdapter
from tests.fakes.upstream import FakeUpstream, RecordedRequest
from tests.providers.support import (
    API_VERSION,
    AZURE_DEPLOYMENT,
    AZURE_KEY,
    CHAT_AND_STREAM,
    CLIENT_ID,
    TENANT,
    TOKEN_PATH,
    Connect,
    MakeTarget,
    ask,
    assert_answered,
    assert_one_request,
    assert_secret_absent,
    assert_streamed_answer,
    chat_or_stream,
    collect_stream,
    joined,
)

CHAT_PATH = f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"


@pytest.fixture
def kind() -> str:
    return "azure_openai"


@pytest.fixture
def upstream(upstream: FakeUpstream) -> FakeUpstream:
    upstream.api_key = AZURE_KEY  # any other key is refused (the shared fixture resets it)
    return upstream


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
def entra_target(make_entra_target: MakeTarget) -> DeploymentTarget:
    return make_entra_target()


@pytest.fixture
async def entra_adapter(connect: Connect, entra_target: DeploymentTarget) -> ProviderAdapter:
    return connect(entra_target)


def chat_requests(upstream: FakeUpstream) -> list[RecordedRequest]:
    return [r for r in upstream.requests if r.path != TOKEN_PATH]


# -- api-key auth ------------------------------------------------------------------------------
async def test_chat_through_the_deployment_url(adapter, target, upstream):
    response = await adapter.chat(ask("hello there"), target)

    assert_answered(response, target, f"Echo from {AZURE_DEPLOYMENT}: hello there", (2, 5))
    assert response.served_by.upstream_model == AZURE_DEPLOYMENT

    sent = assert_one_request(upstream)
    assert (sent.method, sent.path) == ("POST", CHAT_PATH)
    assert sent.query == {"api-version": API_VERSION}
    assert sent.headers["api-key"] == AZURE_KEY
    assert "authorization" not in sent.headers
    assert sent.json["model"] == AZURE_DEPLOYMENT


async def test_stream_through_the_deployment_url(adapter, target, upstream):
    chunks = await collect_stream(adapter, ask("stream me please"), target)

    assert_streamed_answer(chunks, f"Echo from {AZURE_DEPLOYMENT}: stream me please", 3)

    sent = assert_one_request(upstream)
    assert sent.path == CHAT_PATH
    assert sent.query == {"api-version": API_VERSION}
    assert sent.headers["api-key"] == AZURE_KEY
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


@CHAT_AND_STREAM
async def test_wrong_resource_key_is_auth_failed(connect, make_target, upstream, stream):
    target = make_target(api_key="wrong-azure-key-0123456789")
    with pytest.raises(errors.AuthFailed) as info:
        await chat_or_stream(connect(target), ask("hello"), target, stream=stream)
    assert info.value.upstream_status == 401
    assert info.value.retryable is False
    assert info.value.provider == target.provider_name
    assert_secret_absent(info.value, "wrong-azure-key-0123456789")
    assert_one_request(upstream)


# -- Entra ID auth -----------------------------------------------------------------------------
async def test_entra_id_chat_and_stream_use_a_bearer_token(entra_adapter, entra_target, upstream):
    response = await entra_adapter.chat(ask("hello"), entra_target)
    assert response.content == f"Echo from {AZURE_DEPLOYMENT}: hello"
    chunks = await collect_stream(entra_adapter, ask("stream me"), entra_target)
    assert joined(chunks) == f"Echo from {AZURE_DEPLOYMENT}: stream me"

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
        if call == "list_models":
            await adapter.list_models(target)
        else:
            await chat_or_stream(adapter, ask("hello"), target, stream=call == "stream")

    exc = info.value
    assert exc.upstream_status == 401
    assert exc.retryable is False
    assert exc.provider == target.provider_name
    assert "invalid_client" in str(exc)
    assert_secret_absent(exc, secret)
    # The token fetch failed, so no call reached the model endpoint.
    assert [r.path for r in upstream.requests] == [TOKEN_PATH]
    assert upstream.issued_tokens == []


async def test_entra_id_upstream_errors_still_map(entra_adapter, entra_target, upstream):
    await entra_adapter.chat(ask("warm the token cache"), entra_target)
    upstream.push_fault("429", retry_after=3, path=CHAT_PATH)
    with pytest.raises(errors.RateLimited) as info:
        await entra_adapter.chat(ask("hello"), entra_target)
    assert info.value.retry_after == 3
    assert_secret_absent(info.value, upstream.entra_client_secret, "fake-entra-token-1")
