"""The request id follows the call: the client's X-Request-ID (or a generated one) comes back
in the response and reaches the upstream, whichever adapter and whether streamed or not."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from providers.models import ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

KEY = "sk-request-id-upstream-000000"
CHAT_PATHS = ("/v1/chat/completions", "/v1/messages")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=KEY) as fake:
        yield fake


@pytest.fixture(params=[ProviderKind.OPENAI, ProviderKind.ANTHROPIC])
def client(request, cast, live_gateway, upstream) -> Iterator[openai.OpenAI]:
    kind = request.param
    base = upstream.openai_base_url if kind == ProviderKind.OPENAI else upstream.base_url
    route = make_route("traced", (make_provider(f"p-{kind}", kind, base, KEY), "up-model"))
    issued = make_key(cast.team, route)
    sdk = openai.OpenAI(
        base_url=live_gateway.openai_base_url, api_key=issued.raw_key, max_retries=0, timeout=10
    )
    yield sdk
    sdk.close()


def upstream_ids(upstream: FakeUpstream) -> list[str | None]:
    return [r.headers.get("x-request-id") for r in upstream.requests if r.path in CHAT_PATHS]


MESSAGES = [{"role": "user", "content": "follow me"}]


def test_the_callers_request_id_reaches_the_upstream(client, upstream):
    raw = client.chat.completions.with_raw_response.create(
        model="traced", messages=MESSAGES, extra_headers={"X-Request-ID": "trace-me-42"}
    )
    assert raw.headers["x-request-id"] == "trace-me-42"
    assert upstream_ids(upstream) == ["trace-me-42"]


def test_a_generated_request_id_reaches_the_upstream_of_a_stream(client, upstream):
    with client.chat.completions.with_streaming_response.create(
        model="traced", messages=MESSAGES, stream=True
    ) as raw:
        generated = raw.headers["x-request-id"]
        list(raw.parse())
    assert generated.startswith("req_")
    assert upstream_ids(upstream) == [generated]


def test_each_call_sends_its_own_id(client, upstream):
    ids = [f"call-{n}" for n in range(3)]
    for request_id in ids:
        client.chat.completions.create(
            model="traced", messages=MESSAGES, extra_headers={"X-Request-ID": request_id}
        )
    assert upstream_ids(upstream) == ids
