"""Tenancy through the other doors (issue #13): exports hold only the rows a role may see;
a team key reaches only its own team's files and batches and routes (the official openai
SDK against the live gateway); the response cache, exact and semantic, is per team; the
playground's stream acts only for members of the team it names; and neither credential
opens the other's API. The world is tests/security/matrix_support.py's.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client

from aigateway.batches.models import Batch, BatchFile
from aigateway.playground.models import PlaygroundRun
from aigateway.routing.models import Route
from aigateway.usage.models import UsageRecord
from providers.models import ProviderKind
from tests.factories import make_key, make_provider
from tests.fakes.upstream import FakeUpstream
from tests.security.matrix_support import (
    MEMBER_OF,
    ROLES,
    TEAMS,
    World,
    body_text,
    build_world,
    forbidden_markers,
    visible_slots,
)

SIGNED_IN = [r for r in ROLES if r != "anonymous"]


def signed_in(world: World, role: str) -> Client:
    client = Client()
    client.force_login(world.users[role])
    return client


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# -- exports (and the management API's usage) ---------------------------------------------
# Whose calls a role counts (issue #8): operators every call; platform admins and auditors
# their organisation's; a team admin their team's; a member their own.
USAGE_SEEN = {
    "root": {
        "req-quokka-carol",
        "req-quokka-bob",
        "req-wombat-gina",
        "req-narwhal-eve",
        "req-okapi-hank",
    },
    "alice": {"req-quokka-carol", "req-quokka-bob", "req-wombat-gina"},
    "dave": {"req-quokka-carol", "req-quokka-bob", "req-wombat-gina"},
    "bob": {"req-quokka-carol", "req-quokka-bob"},
    "carol": {"req-quokka-carol"},
    "frank": {"req-narwhal-eve", "req-okapi-hank"},
}


@pytest.fixture
def world(db: None) -> World:
    return build_world()


@pytest.mark.parametrize("role", SIGNED_IN)
def test_the_usage_csv_holds_exactly_the_calls_the_role_may_see(world: World, role: str) -> None:
    response = signed_in(world, role).get("/usage/export.csv")
    assert response.status_code == 200
    text = body_text(response)
    assert {row["request_id"] for row in csv_rows(text)} == USAGE_SEEN[role]
    assert not [m for m in forbidden_markers(role) if m in text.lower()]


@pytest.mark.parametrize("role", SIGNED_IN)
def test_the_audit_csv_holds_only_the_role_s_organisations(world: World, role: str) -> None:
    response = signed_in(world, role).get("/audit/export.csv")
    if role in ("bob", "carol"):  # team roles read no audit log
        assert response.status_code == 403
        return
    assert response.status_code == 200
    text = body_text(response)
    seeded = {row["target_label"] for row in csv_rows(text) if row["action"] == "matrix.seeded"}
    orgs = {"acme": "A", "globex": "B"}
    want = {
        f"{world.teams[s].organisation.slug}/{TEAMS[s][1]}"
        for s in TEAMS
        if role == "root"
        or orgs[world.teams[s].organisation.slug]
        in {"alice": "A", "dave": "A", "frank": "B"}.get(role, "")
    }
    assert seeded == want
    assert not [m for m in forbidden_markers(role) if m in text.lower()]


@pytest.mark.parametrize("role", SIGNED_IN)
def test_management_usage_counts_only_what_the_role_may_see(world: World, role: str) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens[role]}")
    rows = client.get("/api/v1/usage?group_by=team").json()["data"]
    requests = sum(row["requests"] for row in rows)
    assert requests == len(USAGE_SEEN[role])
    assert {int(row["key"]) for row in rows} <= {world.teams[s].pk for s in visible_slots(role)}
    other = world.teams["B1"] if role != "frank" else world.teams["A1"]
    if role != "root":  # a filter naming another organisation's team counts nothing
        asked = client.get(f"/api/v1/usage?group_by=team&team_id={other.pk}").json()
        assert asked["data"] == []


# -- the /v1 doors with team keys (the official SDK against the live gateway) ---------------
UPSTREAM_KEY = "sk-tenancy-upstream-0123456789"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def live_world(live_gateway: Any, upstream: FakeUpstream, settings: Any) -> Iterator[Any]:
    """The world, a route "cached" on the fake upstream for A1, A2 and B1 (semantic cache
    on), and a route "special" that only B1 may use."""
    settings.AIGATEWAY_BATCH_EAGER_BACKGROUND = False
    world = build_world()
    provider = make_provider(
        "fake-openai", ProviderKind.OPENAI, upstream.openai_base_url, UPSTREAM_KEY
    )
    cached = Route.objects.create(
        name="cached", semantic_cache=True, semantic_threshold=0.9, max_retries=0
    )
    special = Route.objects.create(name="special", max_retries=0)
    for route in (cached, special):
        route.deployments.create(provider=provider, upstream_model="up-model")
    keys = {
        slot: make_key(world.teams[slot], cached, name=f"sdk-{slot}").raw_key
        for slot in ("A1", "A2", "B1")
    }
    world.teams["B1"].allowed_routes.add(special)
    sdks: list[openai.OpenAI] = []

    def sdk(slot: str) -> openai.OpenAI:
        client = openai.OpenAI(
            base_url=live_gateway.openai_base_url, api_key=keys[slot], max_retries=0, timeout=30
        )
        sdks.append(client)
        return client

    yield world, sdk, keys, live_gateway
    for client in sdks:
        client.close()


def _chat_calls(upstream: FakeUpstream) -> int:
    return sum(1 for r in upstream.requests if r.path == "/v1/chat/completions")


@pytest.mark.django_db(transaction=True)
def test_a_team_key_reaches_only_its_own_files_and_batches(live_world: Any) -> None:
    world, sdk, _, _ = live_world
    a1 = sdk("A1")
    assert {f.id for f in a1.files.list()} == {world.files["A1"].public_id}
    assert {b.id for b in a1.batches.list()} == {world.batches["A1"].public_id}
    assert a1.files.retrieve(world.files["A1"].public_id).filename == "quokka.jsonl"
    assert a1.batches.retrieve(world.batches["A1"].public_id).metadata == {"team": "quokka"}
    for slot in ("A2", "B1"):
        file_id, batch_id = world.files[slot].public_id, world.batches[slot].public_id
        with pytest.raises(openai.NotFoundError):
            a1.files.retrieve(file_id)
        with pytest.raises(openai.NotFoundError):
            a1.files.content(file_id)
        with pytest.raises(openai.NotFoundError):
            a1.files.delete(file_id)
        with pytest.raises(openai.NotFoundError):
            a1.batches.retrieve(batch_id)
        with pytest.raises(openai.NotFoundError):
            a1.batches.cancel(batch_id)
        with pytest.raises(openai.NotFoundError):  # another team's file as a batch's input
            a1.batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        assert BatchFile.objects.filter(public_id=file_id).exists()
        assert Batch.objects.get(public_id=batch_id).status == "in_progress"
    # The own team's objects: allowed, and the change happens.
    assert a1.batches.cancel(world.batches["A1"].public_id).status in ("cancelling", "cancelled")
    a1.files.delete(world.files["A1"].public_id)
    assert not BatchFile.objects.filter(public_id=world.files["A1"].public_id).exists()


@pytest.mark.django_db(transaction=True)
def test_a_team_key_reaches_only_its_team_s_routes(live_world: Any, upstream: FakeUpstream) -> None:
    _, sdk, keys, _ = live_world
    a1, b1 = sdk("A1"), sdk("B1")
    assert "special" not in {m.id for m in a1.models.list()}
    assert "special" in {m.id for m in b1.models.list()}
    with pytest.raises(openai.NotFoundError):
        a1.models.retrieve("special")
    ask = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError):
        a1.chat.completions.create(model="special", messages=ask)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        a1.embeddings.create(model="special", input="hi")
    anthropic_headers = {"x-api-key": keys["A1"], "anthropic-version": "2023-06-01"}
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        body = {"model": "special", "max_tokens": 5, "messages": ask}
        answer = Client().post(
            path, json.dumps(body), content_type="application/json", headers=anthropic_headers
        )
        assert answer.status_code == 404, path
    assert _chat_calls(upstream) == 0  # nothing reached the provider


def _status(url: str, credential: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {credential}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.mark.django_db(transaction=True)
def test_neither_credential_opens_the_other_api(live_world: Any) -> None:
    world, _, keys, gateway = live_world
    assert _status(f"{gateway.base_url}/api/v1/me", keys["A1"]) == 401  # a team key
    assert _status(f"{gateway.openai_base_url}/models", world.tokens["root"]) == 401  # a token


@pytest.mark.django_db(transaction=True)
def test_the_cache_is_per_team_exact_and_semantic(live_world: Any, upstream: FakeUpstream) -> None:
    _, sdk, _, _ = live_world

    def ask(slot: str, text: str) -> str:
        raw = sdk(slot).chat.completions.with_raw_response.create(
            model="cached", temperature=0, messages=[{"role": "user", "content": text}]
        )
        return raw.headers["x-aigateway-cache"]

    question = "How do I reverse a list in Python?"
    assert ask("A1", question) == "MISS"
    assert ask("A1", question) == "HIT"
    assert ask("A2", question) == "MISS"  # the same organisation's other team
    assert ask("B1", question) == "MISS"  # another organisation
    assert ask("A1", "How can I reverse a Python list?") == "SEMANTIC-HIT"
    assert ask("B1", "How can I reverse a Python list?") == "SEMANTIC-HIT"  # its own entry
    assert _chat_calls(upstream) == 3


# -- the playground's stream: the signed-in user acting for a team they belong to -----------
@pytest.mark.django_db(transaction=True)
async def test_the_playground_acts_only_for_members_of_the_team() -> None:
    world = await sync_to_async(build_world)()
    failures = []
    for role in ROLES:
        client = AsyncClient()
        if role != "anonymous":
            await client.aforce_login(world.users[role])
        for slot in ("A1", "A2", "B1"):
            body = {
                "team": world.teams[slot].pk,
                "route": "smart",
                "temperature": 0,
                "messages": [{"role": "user", "content": "hello"}],
                "max_tokens": 20,
            }
            runs = await PlaygroundRun.objects.acount()
            response: Any = await client.post(
                "/playground/stream/", json.dumps(body), content_type="application/json"
            )
            if getattr(response, "streaming", False):
                _ = b"".join([part async for part in response.streaming_content])
            member = (role in ("bob", "carol") and slot == "A1") or MEMBER_OF.get(slot) == role
            want = 401 if role == "anonymous" else 200 if member else 403
            if response.status_code != want:
                failures.append(f"{role} {slot}: {response.status_code}, {want} expected")
            made = await PlaygroundRun.objects.acount() - runs
            if made != (1 if want == 200 else 0):
                failures.append(f"{role} {slot}: {made} runs stored")
    assert not failures, "\n".join(failures)
    assert not await UsageRecord.objects.filter(user_id=world.users["frank"].pk).aexists()
