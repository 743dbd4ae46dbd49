"""Kind ``openai_compatible`` (vLLM, Ollama, LM Studio, …): the OpenAI adapter against a
server that needs no key (chat through the lean wire client, models through the real ``openai``
SDK), against the wire-level fake upstream."""

from __future__ import annotations

import pytest

from providers import errors
from providers.openai_adapter import PLACEHOLDER_KEY, OpenAIAdapter
from tests.fakes.upstream import FakeUpstream
from tests.providers.support import (
    LOCAL_MODEL,
    ask,
    assert_answered,
    assert_one_request,
    assert_streamed_answer,
    collect_stream,
)


@pytest.fixture
def kind() -> str:
    return "openai_compatible"  # the upstream fixture needs no key: any (or none) is accepted


async def test_the_kind_uses_the_openai_adapter(adapter):
    assert type(adapter) is OpenAIAdapter


async def test_chat_without_a_key(adapter, target, upstream):
    response = await adapter.chat(ask("hello there", max_tokens=50), target)

    assert_answered(response, target, f"Echo from {LOCAL_MODEL}: hello there", (2, 5))
    assert response.served_by.upstream_model == LOCAL_MODEL

    sent = assert_one_request(upstream)
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.json["model"] == LOCAL_MODEL
    assert sent.json["max_tokens"] == 50
    # The SDK insists on a key; the adapter sends a placeholder the server ignores.
    assert sent.headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}"


async def test_stream_without_a_key(adapter, target, upstream):
    chunks = await collect_stream(adapter, ask("stream me please"), target)

    assert_streamed_answer(chunks, f"Echo from {LOCAL_MODEL}: stream me please", 3)

    sent = assert_one_request(upstream)
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
    await collect_stream(adapter, ask("hello"), target)
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
        assert response.content == f"Echo from {LOCAL_MODEL}: hello"
