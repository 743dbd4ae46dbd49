"""Exact response cache through the API: hits, tenant isolation, bypass rules, streaming
replay, no-store/no-cache, TTL and eviction, and never caching errors or partial streams.
Runs on both backends (in process and Redis)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from aigateway.routing.models import Route
from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from auth.models import Team
from providers.models import ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v1/chat/completions"
KEY = "sk-cache-upstream-00000000"
ASK = {"model": "cached", "temperature": 0, "messages": [{"role": "user", "content": "Hi there"}]}


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def keys(cast, upstream, backend):
    provider = make_provider("openai", ProviderKind.OPENAI, upstream.openai_base_url, secret=KEY)
    route = make_route("cached", (provider, "up-model"))
    return {
        "a": make_key(cast.team, route, name="a").raw_key,
        "a2": make_key(cast.team, route, name="a2").raw_key,
        "b": make_key(cast.other_team, route, name="b").raw_key,
    }


async def post(key: str, body: dict, **headers: str):
    sent = {"Authorization": f"Bearer {key}", **headers}
    return await AsyncClient().post(
        URL, data=json.dumps(body), content_type="application/json", headers=sent
    )


def chat_requests(upstream: FakeUpstream) -> int:
    return sum(1 for r in upstream.requests if r.path == "/v1/chat/completions")


async def test_a_repeated_deterministic_request_is_served_from_the_cache(keys, upstream):
    first = await post(keys["a"], ASK)
    second = await post(keys["a"], ASK)
    assert (first["x-aigateway-cache"], second["x-aigateway-cache"]) == ("MISS", "HIT")
    assert second.json()["choices"] == first.json()["choices"]
    assert chat_requests(upstream) == 1
    await sync_to_async(usage_recorder.flush)()
    hit = await UsageRecord.objects.aget(request_id=second["x-request-id"])
    assert hit.cache_status == "HIT" and hit.input_tokens == hit.output_tokens == 0
    assert hit.saved_tokens == first.json()["usage"]["total_tokens"]
    assert second["x-aigateway-cost-usd"] == "0.00000000"


async def test_keys_of_one_team_share_answers_and_other_teams_never_do(keys, upstream):
    await post(keys["a"], ASK)
    assert (await post(keys["a2"], ASK))["x-aigateway-cache"] == "HIT"  # same team
    other = await post(keys["b"], ASK)  # identical prompt, another team
    assert other["x-aigateway-cache"] == "MISS"
    assert chat_requests(upstream) == 2


async def test_key_scope_keeps_keys_of_one_team_apart(keys, upstream):
    await Route.objects.filter(name="cached").aupdate(cache_scope="key")
    await post(keys["a"], ASK)
    assert (await post(keys["a2"], ASK))["x-aigateway-cache"] == "MISS"


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.7},
        {"temperature": None},
        {
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
            ]
        },
    ],
)
async def test_non_deterministic_requests_bypass_the_cache(keys, upstream, change):
    body = {k: v for k, v in {**ASK, **change}.items() if v is not None}
    first, second = await post(keys["a"], body), await post(keys["a"], body)
    assert first["x-aigateway-cache"] == second["x-aigateway-cache"] == "BYPASS"
    assert chat_requests(upstream) == 2


async def test_a_route_may_opt_in_to_cache_everything(keys, upstream):
    await Route.objects.filter(name="cached").aupdate(cache_mode="always")
    body = {**ASK, "temperature": 0.7}
    await post(keys["a"], body)
    assert (await post(keys["a"], body))["x-aigateway-cache"] == "HIT"


async def test_cache_control_no_store_and_no_cache(keys, upstream):
    await post(keys["a"], ASK, **{"Cache-Control": "no-store"})
    assert (await post(keys["a"], ASK))["x-aigateway-cache"] == "MISS"  # nothing was stored
    assert (await post(keys["a"], ASK, **{"Cache-Control": "no-cache"}))[
        "x-aigateway-cache"
    ] == "BYPASS"
    assert chat_requests(upstream) == 3
    assert (await post(keys["a"], ASK))["x-aigateway-cache"] == "HIT"


async def test_a_cached_answer_replays_as_a_stream(keys, upstream):
    original = (await post(keys["a"], ASK)).json()["choices"][0]["message"]["content"]
    response = await post(
        keys["a"], {**ASK, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert response["x-aigateway-cache"] == "HIT"
    events = b"".join([chunk async for chunk in response.streaming_content]).decode()
    payloads = [json.loads(line[6:]) for line in events.split("\n\n") if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in payloads if c["choices"])
    assert text == original
    assert len([p for p in payloads if p["choices"]]) > 3  # really in pieces
    assert payloads[-1]["usage"]["completion_tokens"] > 0
    assert events.endswith("data: [DONE]\n\n")
    assert chat_requests(upstream) == 1


async def test_a_completed_stream_is_stored_and_a_cut_one_is_not(keys, upstream):
    stream_body = {**ASK, "stream": True}
    response = await post(keys["a"], stream_body)
    _ = [c async for c in response.streaming_content]
    assert (await post(keys["a"], ASK))["x-aigateway-cache"] == "HIT"

    other = {**ASK, "messages": [{"role": "user", "content": "Another question"}]}
    upstream.push_fault("reset_mid_stream", after=3)
    cut = await post(keys["a"], {**other, "stream": True})
    _ = [c async for c in cut.streaming_content]
    assert (await post(keys["a"], other))["x-aigateway-cache"] == "MISS"


async def test_errors_are_never_cached(keys, upstream):
    upstream.push_fault("400")
    assert (await post(keys["a"], ASK)).status_code == 400
    assert (await post(keys["a"], ASK)).status_code == 200
    assert chat_requests(upstream) == 2


async def test_entries_expire_after_their_ttl(keys, upstream):
    await Route.objects.filter(name="cached").aupdate(cache_ttl_seconds=1)
    await post(keys["a"], ASK)
    assert (await post(keys["a"], ASK))["x-aigateway-cache"] == "HIT"
    await asyncio.sleep(1.2)
    assert (await post(keys["a"], ASK))["x-aigateway-cache"] == "MISS"


async def test_purging_a_team_drops_its_entries_only(keys, upstream):
    from aigateway.gateway.cache import cache_purge

    await post(keys["a"], ASK)
    await post(keys["b"], ASK)
    team = await Team.objects.aget(slug="research")
    assert await cache_purge(scope="team", owner_id=team.pk) == 1
    assert (await post(keys["a"], ASK))["x-aigateway-cache"] == "MISS"
    assert (await post(keys["b"], ASK))["x-aigateway-cache"] == "HIT"


# Redis evicts by its own maxmemory policy (docs/caching.md), not by an entry count.
@pytest.mark.parametrize("backend", ["inprocess"], indirect=True)
async def test_the_in_process_store_evicts_the_least_recently_used(keys, upstream, settings):
    settings.AIGATEWAY_CACHE_MAX_ENTRIES = 2
    asks = [{**ASK, "messages": [{"role": "user", "content": f"q{i}"}]} for i in range(3)]
    for body in asks:
        await post(keys["a"], body)
    assert (await post(keys["a"], asks[0]))["x-aigateway-cache"] == "MISS"  # evicted
    assert (await post(keys["a"], asks[2]))["x-aigateway-cache"] == "HIT"
