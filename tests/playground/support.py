"""Shared by the playground tests: a team with two routes on the wire-level fake upstream
(OpenAI protocol), a route the team may not use, and helpers that post to the stream
endpoint and read its server-sent events.

The fake answers ``Echo from <upstream model>: <last user text>`` word by word
(tests/fakes/echo.py), so every answer is predictable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import AsyncClient

from aigateway.routing.models import Route
from providers.models import ProviderKind
from tests.factories import make_provider, make_route
from tests.fakes.upstream import FakeUpstream

UPSTREAM_KEY = "sk-playground-upstream-0123456789"
STREAM_URL = "/playground/stream/"


@dataclass
class World:
    upstream: FakeUpstream
    fast: Route  # deployment "up-model"
    other: Route  # deployment "other-model"
    forbidden: Route  # not given to the team
    cast: Any


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


def build_world(cast: Any, upstream: FakeUpstream) -> World:
    provider = make_provider(
        "fake-openai", ProviderKind.OPENAI, upstream.openai_base_url, secret=UPSTREAM_KEY
    )
    fast = make_route("fast", (provider, "up-model"))
    other = make_route("other", (provider, "other-model"))
    forbidden = make_route("forbidden", (provider, "secret-model"))
    Route.objects.filter(pk__in=[fast.pk, other.pk, forbidden.pk]).update(max_retries=0)
    cast.team.allowed_routes.add(fast, other)
    cast.other_team.allowed_routes.add(forbidden)
    return World(upstream, fast, other, forbidden, cast)


@pytest.fixture
def world(cast: Any, upstream: FakeUpstream) -> World:
    return build_world(cast, upstream)


def conversation(team: Any, text: str = "hello there", route: str = "fast", **extra: Any) -> dict:
    return {
        "team": team.pk,
        "route": route,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": text}],
        "temperature": 0.7,
        "max_tokens": 200,
        **extra,
    }


def parse_events(body: bytes) -> list[tuple[str, Any]]:
    """``event: <name>`` / ``data: <json>`` frames → [(name, data)]."""
    events = []
    for frame in body.decode().split("\n\n"):
        if not frame.strip():
            continue
        name, data = "message", None
        for line in frame.split("\n"):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
        events.append((name, data))
    return events


async def post_stream(client: AsyncClient, payload: dict) -> tuple[int, Any]:
    """POST a conversation in process; (status, events) for a stream, (status, JSON) else."""
    response = await client.post(STREAM_URL, json.dumps(payload), content_type="application/json")
    if getattr(response, "streaming", False):
        body = b"".join([part async for part in response.streaming_content])
        return response.status_code, parse_events(body)
    return response.status_code, json.loads(response.content)


async def signed_in(user: Any) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


def tokens_text(events: list[tuple[str, Any]]) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


def meta_of(events: list[tuple[str, Any]]) -> dict:
    metas = [data for name, data in events if name == "meta"]
    assert len(metas) == 1, events
    return metas[0]
