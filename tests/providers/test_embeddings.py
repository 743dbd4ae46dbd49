"""Embeddings through each adapter that has them (real SDK, wire-level fake upstream)."""

from __future__ import annotations

import math

import pytest

from providers.base import DeploymentTarget, get_adapter
from providers.errors import BadRequest
from providers.types import EmbeddingRequest
from tests.fakes.upstream import FakeUpstream


@pytest.fixture
def upstream():
    with FakeUpstream(api_key="sk-embed-key-000000") as fake:
        yield fake


def _target(kind: str, base_url: str, name: str) -> DeploymentTarget:
    return DeploymentTarget(
        deployment_id=1,
        provider_name=name,
        provider_kind=kind,
        upstream_model="embed-model",
        base_url=base_url,
        api_key="sk-embed-key-000000",
        options=(("api_version", "2024-10-21"),) if kind == "azure_openai" else (),
    )


@pytest.mark.parametrize("kind", ["openai", "openai_compatible", "azure_openai"])
async def test_embeddings_come_back_in_input_order(kind, upstream):
    base = upstream.base_url if kind == "azure_openai" else upstream.openai_base_url
    target = _target(kind, base, f"embed-{kind}")
    request = EmbeddingRequest(model="emb", inputs=["alpha beta", "gamma"])
    result = await get_adapter(target).embeddings(request, target)
    assert len(result.vectors) == 2 and len(result.vectors[0]) == 8
    assert result.vectors[0] != result.vectors[1]
    assert result.usage.input_tokens == 3
    assert result.served_by.provider == f"embed-{kind}"
    assert upstream.requests[-1].json["encoding_format"] == "float"


async def test_anthropic_says_clearly_it_has_no_embeddings(upstream):
    target = _target("anthropic", upstream.base_url, "embed-anthropic")
    with pytest.raises(BadRequest, match="no embeddings API"):
        await get_adapter(target).embeddings(EmbeddingRequest(model="e", inputs=["x"]), target)


async def test_the_demo_provider_embeds_deterministically():
    target = DeploymentTarget(None, "demo", "demo", "demo")
    adapter = get_adapter(target)
    one = await adapter.embeddings(EmbeddingRequest(model="d", inputs=["same"]), target)
    two = await adapter.embeddings(EmbeddingRequest(model="d", inputs=["same"]), target)
    assert one.vectors == two.vectors
    assert math.isclose(sum(v * v for v in one.vectors[0]), 1.0)
