"""Fixtures for the Batch API tests: a fake OpenAI upstream behind a route, a team key, the
official SDK pointed at the live gateway, and helpers to build JSONL input files."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from aigateway.routing.models import Route
from providers.models import ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

UPSTREAM_KEY = "sk-batch-upstream-0123456789"
ROUTE = "batch-model"
UPSTREAM_MODEL = "fake-model"


def chat_line(custom_id: str, prompt: str, *, model: str = ROUTE, **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def jsonl(lines: list[Any]) -> bytes:
    return b"".join(
        (line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines
    )


def echo(prompt: str) -> str:
    """What the fake upstream answers to ``prompt`` (tests/fakes/echo.py)."""
    return " ".join(f"Echo from {UPSTREAM_MODEL}: {prompt}".split())


def parse_jsonl(content: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in content.splitlines() if line.strip()]


@dataclass
class BatchSetup:
    upstream: FakeUpstream
    route: Route
    raw_key: str
    api_key_id: int
    clients: list[openai.OpenAI] = field(default_factory=list)

    def sdk(self, base_url: str, raw_key: str | None = None) -> openai.OpenAI:
        client = openai.OpenAI(
            base_url=base_url, api_key=raw_key or self.raw_key, max_retries=0, timeout=60
        )
        self.clients.append(client)
        return client

    @staticmethod
    def upload(client: openai.OpenAI, lines: list[Any], name: str = "input.jsonl") -> str:
        created = client.files.create(file=(name, io.BytesIO(jsonl(lines))), purpose="batch")
        return created.id


@pytest.fixture(autouse=True)
def _batches_run_inside_the_call(settings) -> None:
    """Without a broker, these tests expect a batch finished when its create (or the task)
    returns: run it in the calling thread, not the process's batches thread
    (tests/batches/test_eager_background.py covers that one)."""
    settings.AIGATEWAY_BATCH_EAGER_BACKGROUND = False


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def batch_setup(cast, upstream) -> Iterator[BatchSetup]:
    provider = make_provider("batch-openai", ProviderKind.OPENAI, upstream.openai_base_url,
                             UPSTREAM_KEY)  # fmt: skip
    route = make_route(ROUTE, (provider, UPSTREAM_MODEL))
    route.backoff_base_seconds, route.backoff_cap_seconds = 0.01, 0.05
    route.save()
    issued = make_key(cast.team, route, name="batch-key")
    setup = BatchSetup(upstream, route, issued.raw_key, issued.api_key.pk)
    yield setup
    for client in setup.clients:
        client.close()
