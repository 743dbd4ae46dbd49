"""One JSON request line per call, with every field, for answers, streams, errors and cache
hits; prompts and completions only for teams whose policy says so, and then redacted.

Real parts: the official openai SDK over HTTP to the live gateway, to the wire-level fake
upstream.
"""

from __future__ import annotations

import openai
import pytest

from aigateway.usage.recorder import usage_recorder
from providers.models import ModelPrice, ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream
from tests.observability.support import request_log

UPSTREAM_KEY = "sk-observe-upstream-0123456789"
FIELDS = {
    "request_id", "source", "team_id", "key_prefix", "endpoint", "route", "provider",
    "deployment_id", "upstream_model", "status", "error", "stream", "latency_ms",
    "upstream_ms", "overhead_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd",
    "cache", "cache_similarity", "attempts", "retries", "failovers",
}  # fmt: skip
# A prompt full of things that must never reach a log in clear text.
SENSITIVE = (
    "Mail jane.doe@example.com, card 4111 1111 1111 1111, order 4111 1111 1111 1112, "
    "key sk-abcdefghijklmnop1234 and Bearer abcdefghijklmnopqrstuvwxyz0123"
)


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def gateway(cast, live_gateway, upstream):
    provider = make_provider("openai", ProviderKind.OPENAI, upstream.openai_base_url, UPSTREAM_KEY)
    ModelPrice.objects.create(
        provider=provider, model="up-model", input_per_million=2, output_per_million=4
    )
    route = make_route("observed", (provider, "up-model"))
    issued = make_key(cast.team, route)
    client = openai.OpenAI(
        base_url=live_gateway.openai_base_url, api_key=issued.raw_key, max_retries=0, timeout=10
    )
    yield client, issued, route
    client.close()


def ask(text: str = "Hello there", **kwargs):
    return {"model": "observed", "messages": [{"role": "user", "content": text}], **kwargs}


def test_an_answer_writes_one_line_with_every_field(gateway):
    client, issued, route = gateway
    with request_log() as log:
        raw = client.chat.completions.with_raw_response.create(**ask())
    line = log.one(raw.headers["x-request-id"])
    assert set(line) >= FIELDS
    assert len(log.lines) == 1
    deployment = route.deployments.get()
    assert (line["route"], line["provider"], line["deployment_id"]) == (
        "observed",
        "openai",
        deployment.pk,
    )
    assert (line["status"], line["error"], line["stream"], line["endpoint"]) == (
        200,
        "",
        False,
        "chat",
    )
    assert line["key_prefix"] == issued.api_key.prefix
    assert line["team_id"] == issued.api_key.team_id
    # "Hello there" → "Echo from up-model: Hello there" (the fake counts words)
    assert (line["input_tokens"], line["output_tokens"]) == (2, 5)
    assert float(line["cost_usd"]) == pytest.approx((2 * 2 + 5 * 4) / 1_000_000)
    assert line["cache"] == "BYPASS"  # no temperature 0: not cacheable
    assert (line["attempts"], line["retries"], line["failovers"]) == (1, 0, 0)
    assert 0 < line["upstream_ms"] <= line["latency_ms"]
    assert 0 <= line["overhead_ms"] <= line["latency_ms"]
    assert "prompt" not in line and "completion" not in line


def test_a_stream_line_has_its_time_to_first_token(gateway):
    client, _, _ = gateway
    opened = client.chat.completions.with_streaming_response.create(**ask(stream=True))
    with request_log() as log, opened as raw:
        request_id = raw.headers["x-request-id"]
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "Echo from up-model: Hello there"
    line = log.one(request_id)
    assert set(line) >= FIELDS
    assert (line["status"], line["stream"], line["output_tokens"]) == (200, True, 5)
    assert 0 < line["ttft_ms"] <= line["latency_ms"]
    assert line["upstream_ms"] <= line["ttft_ms"]


def test_an_upstream_failure_is_logged_with_its_error_and_attempts(gateway, upstream):
    client, _, route = gateway
    route.max_retries = 0
    route.save()
    upstream.push_fault("500")
    with request_log() as log, pytest.raises(openai.InternalServerError) as failure:
        client.chat.completions.create(**ask())
    line = log.one(failure.value.response.headers["x-request-id"])
    assert set(line) >= FIELDS
    assert (line["status"], line["error"], line["attempts"]) == (502, "server_error", 1)
    assert (line["input_tokens"], line["output_tokens"], line["cost_usd"]) == (0, 0, "0")


def test_a_refused_call_is_logged_without_an_upstream(gateway):
    client, _, _ = gateway
    with request_log() as log, pytest.raises(openai.NotFoundError) as failure:
        client.chat.completions.create(model="no-such-route", messages=ask()["messages"])
    line = log.one(failure.value.response.headers["x-request-id"])
    assert set(line) >= FIELDS
    assert (line["status"], line["error"], line["provider"], line["attempts"]) == (
        404,
        "model_not_found",
        "",
        0,
    )


def test_a_cache_hit_is_logged_as_a_hit_with_no_upstream_time(gateway, upstream):
    client, _, _ = gateway
    with request_log() as log:
        first = client.chat.completions.with_raw_response.create(**ask(temperature=0))
        second = client.chat.completions.with_raw_response.create(**ask(temperature=0))
    assert second.headers["x-aigateway-cache"] == "HIT"
    miss, hit = log.one(first.headers["x-request-id"]), log.one(second.headers["x-request-id"])
    assert (miss["cache"], hit["cache"]) == ("MISS", "HIT")
    assert set(hit) >= FIELDS
    assert (hit["attempts"], hit["upstream_ms"], hit["input_tokens"]) == (0, 0, 0)
    assert len([r for r in upstream.requests if r.path == "/v1/chat/completions"]) == 1


def test_prompts_and_completions_are_not_logged_by_default(gateway):
    client, _, _ = gateway
    with request_log() as log:
        client.chat.completions.create(**ask("my secret plan is jane.doe@example.com"))
    [line] = log.raw
    assert "secret plan" not in line and "jane.doe" not in line and "Echo from" not in line


def test_a_team_that_logs_prompts_gets_them_redacted(gateway, cast):
    client, _, _ = gateway
    cast.team.log_prompts = True
    cast.team.save()  # bumps the config version: the key's principal is reloaded
    with request_log() as log:
        raw = client.chat.completions.with_raw_response.create(
            model="observed",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": SENSITIVE},
            ],
        )
    line = log.one(raw.headers["x-request-id"])
    system, user = line["prompt"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user["role"] == "user"
    expected = (
        "Mail [REDACTED:email], card [REDACTED:card_number], order 4111 1111 1111 1112, "
        "key [REDACTED:api_key] and [REDACTED:bearer_token]"
    )
    assert user["content"] == expected
    # The fake model echoes the prompt: the completion is redacted the same way.
    assert line["completion"] == "Echo from up-model: " + expected
    joined = "\n".join(log.raw)
    for secret in ("jane.doe", "4111 1111 1111 1111", "sk-abcdefghijklmnop", "abcdefghijklmnopq"):
        assert secret not in joined


def test_streamed_completions_are_logged_for_such_teams_too(gateway, cast):
    client, _, _ = gateway
    cast.team.log_prompts = True
    cast.team.save()
    with (
        request_log() as log,
        client.chat.completions.with_streaming_response.create(
            **ask("write to bob@example.org", stream=True)
        ) as raw,
    ):
        request_id = raw.headers["x-request-id"]
        list(raw.parse())
    line = log.one(request_id)
    assert line["prompt"] == [{"role": "user", "content": "write to [REDACTED:email]"}]
    assert line["completion"] == "Echo from up-model: write to [REDACTED:email]"


def test_usage_is_still_recorded_alongside_the_line(gateway):
    from aigateway.usage.models import UsageRecord

    client, _, _ = gateway
    raw = client.chat.completions.with_raw_response.create(**ask())
    usage_recorder.flush()
    assert UsageRecord.objects.filter(request_id=raw.headers["x-request-id"]).count() == 1
