"""Semantic cache through the API with the real embedding model: paraphrases hit above the
route's threshold, unrelated and near-miss prompts do not, tenants and conversation
contexts never share, and entries persist in Redis across processes."""

from __future__ import annotations

import json

import pytest
from django.test import AsyncClient

from aigateway.caching import semantic
from aigateway.routing.models import Route
from providers.models import ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "sk-semantic-upstream-0000000"
ORIGINAL = "How do I reverse a list in Python?"
PARAPHRASE = "How can I reverse a Python list?"  # cosine 0.979 with ORIGINAL
NEAR_MISS = "How do I reverse a list in JavaScript?"  # cosine 0.76: a different question


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def keys(cast, upstream, backend):
    provider = make_provider("openai", ProviderKind.OPENAI, upstream.openai_base_url, secret=KEY)
    route = make_route("smart", (provider, "up-model"))
    Route.objects.filter(pk=route.pk).update(semantic_cache=True, semantic_threshold=0.9)
    return {
        "a": make_key(cast.team, route, name="a").raw_key,
        "b": make_key(cast.other_team, route, name="b").raw_key,
    }


async def ask(key: str, text: str, system: str = "Be brief."):
    body = {"model": "smart", "temperature": 0, "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": text}]}  # fmt: skip
    return await AsyncClient().post(
        "/v1/chat/completions", data=json.dumps(body), content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip


def upstream_calls(upstream: FakeUpstream) -> int:
    return sum(1 for r in upstream.requests if r.path == "/v1/chat/completions")


async def test_a_paraphrase_is_answered_from_the_semantic_cache(keys, upstream):
    first = await ask(keys["a"], ORIGINAL)
    second = await ask(keys["a"], PARAPHRASE)
    assert second["x-aigateway-cache"] == "SEMANTIC-HIT"
    assert float(second["x-aigateway-cache-similarity"]) > 0.9
    assert second.json()["choices"][0]["message"] == first.json()["choices"][0]["message"]
    assert upstream_calls(upstream) == 1


async def test_unrelated_and_near_miss_prompts_go_upstream(keys, upstream):
    await ask(keys["a"], ORIGINAL)
    assert (await ask(keys["a"], "What is the capital of France?"))["x-aigateway-cache"] == "MISS"
    assert (await ask(keys["a"], NEAR_MISS))["x-aigateway-cache"] == "MISS"
    assert upstream_calls(upstream) == 3


async def test_another_team_never_gets_the_answer(keys, upstream):
    await ask(keys["a"], ORIGINAL)
    assert (await ask(keys["b"], ORIGINAL))["x-aigateway-cache"] == "MISS"  # not even exact
    assert upstream_calls(upstream) == 2


async def test_a_different_conversation_context_never_matches(keys, upstream):
    await ask(keys["a"], ORIGINAL)
    other = await ask(keys["a"], PARAPHRASE, system="Answer only in French.")
    assert other["x-aigateway-cache"] == "MISS"


async def test_entries_live_in_redis_for_every_process(keys, upstream, backend):
    await ask(keys["a"], ORIGINAL)
    semantic._indexes.clear()  # what a second process (or a restart) starts with
    expected = "SEMANTIC-HIT" if backend == "redis" else "MISS"
    assert (await ask(keys["a"], PARAPHRASE))["x-aigateway-cache"] == expected


async def test_capacity_per_namespace_drops_the_oldest(keys, upstream, settings):
    settings.AIGATEWAY_SEMANTIC_MAX_ENTRIES = 1
    await ask(keys["a"], ORIGINAL)
    await ask(keys["a"], "What is the capital of France?")  # pushes ORIGINAL out
    assert (await ask(keys["a"], PARAPHRASE))["x-aigateway-cache"] == "MISS"


def test_the_index_finds_the_nearest_row_and_survives_removals():
    import numpy as np

    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(100, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = semantic.NamespaceIndex()
    for number, vector in enumerate(vectors):
        index.add(f"e{number}", vector)
    assert index.search(vectors[42]) == ("e42", pytest.approx(1.0, abs=1e-5))
    index.remove("e42")
    index.remove("e99")  # the last row, moved nowhere
    assert len(index.matrix) == 98
    assert index.search(vectors[42])[0] != "e42"
    assert index.search(vectors[10]) == ("e10", pytest.approx(1.0, abs=1e-5))
    index.trim(50)
    assert len(index.ids) == 50 and index.search(vectors[98])[0] == "e98"


async def test_purging_a_team_drops_its_semantic_entries(keys, upstream, cast):
    from aigateway.gateway.cache import cache_purge

    await ask(keys["a"], ORIGINAL)
    assert await cache_purge(scope="team", owner_id=cast.team.pk) == 2  # exact + semantic
    assert (await ask(keys["a"], PARAPHRASE))["x-aigateway-cache"] == "MISS"
    assert (await ask(keys["a"], ORIGINAL))["x-aigateway-cache"] == "SEMANTIC-HIT"  # re-stored
