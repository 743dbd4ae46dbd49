"""Helpers for the end-to-end resilience tests: two fake "providers" behind one route.

The primary is an OpenAI-kind provider on one FakeUpstream, the secondary an Anthropic-kind
provider on another, so a failover really crosses adapters and wire protocols.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai
import requests

from aigateway.routing.models import BreakerEvent, Deployment, Route
from providers.models import Provider, ProviderKind
from tests.factories import make_key, make_provider
from tests.fakes.upstream import FakeUpstream

PRIMARY_KEY = "sk-primary-SECRET-0123456789abcdef"
SECONDARY_KEY = "sk-secondary-SECRET-fedcba9876543210"
PRIMARY = ("openai-primary", "gpt-primary")
SECONDARY = ("anthropic-secondary", "claude-secondary")
MESSAGES = [{"role": "user", "content": "Hello resilience"}]


@dataclass
class Gateway:
    """A route on the live gateway, the team key that may call it, and its deployments."""

    base_url: str  # the gateway's /v1
    raw_key: str
    route: Route
    primary: Deployment
    secondary: Deployment | None
    clients: list[openai.OpenAI] = field(default_factory=list)

    def sdk(self, timeout: float = 10.0, **kwargs: Any) -> openai.OpenAI:
        """The official SDK, with its own retries off: every retry seen is the gateway's."""
        client = openai.OpenAI(
            base_url=self.base_url, api_key=self.raw_key, max_retries=0, timeout=timeout, **kwargs
        )
        self.clients.append(client)
        return client

    def raw_stream(self, **body: Any) -> requests.Response:
        """POST a streaming request without the SDK, to read the SSE bytes as they are."""
        return requests.post(
            self.base_url + "/chat/completions",
            json={"model": self.route.name, "messages": MESSAGES, "stream": True, **body},
            headers={"Authorization": f"Bearer {self.raw_key}"},
            stream=True,
            timeout=10,
        )

    def close(self) -> None:
        for client in self.clients:
            client.close()


def primary_provider(upstream: FakeUpstream) -> Provider:
    return make_provider(PRIMARY[0], ProviderKind.OPENAI, upstream.openai_base_url, PRIMARY_KEY)


def secondary_provider(upstream: FakeUpstream) -> Provider:
    return make_provider(SECONDARY[0], ProviderKind.ANTHROPIC, upstream.base_url, SECONDARY_KEY)


def add_deployment(route: Route, provider: Provider, model: str, **fields: Any) -> Deployment:
    priority = Deployment.objects.filter(route=route).count()
    return Deployment.objects.create(
        route=route, provider=provider, upstream_model=model, priority=priority, **fields
    )


def build_gateway(
    *,
    team: Any,
    base_url: str,
    primary_upstream: FakeUpstream,
    secondary_upstream: FakeUpstream | None,
    primary_fields: dict[str, Any] | None = None,
    secondary_fields: dict[str, Any] | None = None,
    **route_fields: Any,
) -> Gateway:
    """Route "smart": the primary, then (if given) the secondary. Backoff is tiny by default
    so retry rounds cost milliseconds; tests that need the real numbers pass them."""
    fields = {"backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.05, **route_fields}
    route = Route.objects.create(name="smart", **fields)
    primary = add_deployment(
        route, primary_provider(primary_upstream), PRIMARY[1], **(primary_fields or {})
    )
    secondary = None
    if secondary_upstream is not None:
        secondary = add_deployment(
            route, secondary_provider(secondary_upstream), SECONDARY[1], **(secondary_fields or {})
        )
    issued = make_key(team, route)
    return Gateway(base_url, issued.raw_key, route, primary, secondary)


def chat_paths(upstream: FakeUpstream) -> list[str]:
    """The chat calls an upstream received (OpenAI or Anthropic path)."""
    return [r.path for r in upstream.requests if r.path in ("/v1/chat/completions", "/v1/messages")]


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``predicate`` (e.g. a DB query for a row written in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def breaker_transition_stored(deployment: Deployment, from_state: str, to_state: str) -> bool:
    return wait_for(
        lambda: BreakerEvent.objects.filter(
            deployment=deployment, from_state=from_state, to_state=to_state
        ).exists()
    )


def sse_events(response: requests.Response) -> list[str]:
    """The ``data:`` payloads of an SSE response, in order."""
    events = []
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            events.append(line.removeprefix("data:").strip())
    return events
