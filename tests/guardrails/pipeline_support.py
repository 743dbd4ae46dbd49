"""Shared by the guardrail pipeline and SDK tests: a route on the wire-level fake upstream
(OpenAI protocol), a team key, policies set through the service, and the values the tests
look for in every stored record.

The fake upstream answers ``Echo from up-model: <last user text>`` and streams it word by
word (tests/fakes/echo.py), so a card number written with spaces arrives split over chunks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import AsyncClient

from aigateway.guardrails.services import PolicyValues, policy_set
from aigateway.routing.models import Route
from auth.services import IssuedApiKey
from providers.models import ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

UPSTREAM_KEY = "sk-guardrails-upstream-0123456789"
ROUTE = "guarded"
CARD = "4111 1111 1111 1111"  # a Visa test number: passes Luhn
EMAIL = "jane.doe@example.com"
CODENAME = "Project Falcon"  # a custom pattern: no log redactor would hide it by chance
CODENAME_RULE = {
    "detect": "custom.codename",
    "pattern": "Project (Falcon|Eagle)",
    "action": "redact",
}


@dataclass
class Guarded:
    upstream: FakeUpstream
    route: Route
    issued: IssuedApiKey
    cast: Any

    @property
    def raw_key(self) -> str:
        return self.issued.raw_key

    def policy(self, scope: str = "org", **values: Any) -> None:
        """Set the policy of the team's organisation (or team, or route within it)."""
        target: dict[str, Any] = {"organisation": self.cast.org}
        if scope == "team":
            target["team"] = self.cast.team
        elif scope == "route":
            target["route"] = self.route
        policy_set(actor=None, scope=scope, values=PolicyValues(**values), **target)

    def upstream_bodies(self, path: str = "/v1/chat/completions") -> list[Any]:
        return [r.json for r in self.upstream.requests if r.path == path]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def guarded(cast, upstream) -> Guarded:
    provider = make_provider(
        "openai", ProviderKind.OPENAI, upstream.openai_base_url, secret=UPSTREAM_KEY
    )
    route = make_route(ROUTE, (provider, "up-model"))
    Route.objects.filter(pk=route.pk).update(max_retries=0)
    return Guarded(upstream, route, make_key(cast.team, route, name="ci"), cast)


def user(text: str, **body: Any) -> dict[str, Any]:
    return {"model": ROUTE, "messages": [{"role": "user", "content": text}], **body}


async def post(key: str, body: dict[str, Any], path: str = "/v1/chat/completions", **headers: str):
    sent = {"Authorization": f"Bearer {key}", **headers}
    return await AsyncClient().post(
        path, data=json.dumps(body), content_type="application/json", headers=sent
    )


async def stream_events(response: Any) -> list[dict[str, Any]]:
    body = b"".join([part async for part in response.streaming_content])
    events = []
    for block in body.decode().split("\n\n"):
        if block.startswith("data: ") and block != "data: [DONE]":
            events.append(json.loads(block[6:]))
    return events


def streamed_text(events: list[dict[str, Any]]) -> tuple[list[str], str | None]:
    pieces, finish = [], None
    for event in events:
        for choice in event.get("choices", []):
            pieces.append(choice["delta"].get("content") or "")
            finish = choice.get("finish_reason") or finish
    return pieces, finish


class Lines(logging.Handler):
    """Every line a logger writes, as formatted JSON."""

    def __init__(self) -> None:
        from aigateway.observability.logging import JsonFormatter

        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def request_lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("aigateway.requests")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
