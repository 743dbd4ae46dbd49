"""Limits through the API: rate limits, budgets, concurrency, soft thresholds and deployment
limits as a client of /v1/chat/completions sees them (django AsyncClient, both backends).

The demo provider answers "You said: Hello" in 15 words: 1 input and 15 output tokens by
its count, while the gateway's pre-call estimate for the same prompt is 8 tokens (3 per
message, 3 for the reply, 4 characters per token). The tests below rely on that difference
to tell reconciled usage from the estimate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from aigateway.audit.models import AuditEvent
from aigateway.core.redis import reset_clients
from aigateway.gateway import limits
from aigateway.gateway.limits import settles_flush
from aigateway.quotas import alerts
from aigateway.quotas.checks import COUNTER, Check, budget_period
from aigateway.quotas.limiter import InProcessLimiter
from aigateway.quotas.models import Limit, QuotaAlert
from providers.models import ModelPrice, ProviderKind
from tests.api.resilience_support import (
    PRIMARY,
    SECONDARY,
    build_gateway,
)
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v1/chat/completions"
HELLO = {"model": "demo", "messages": [{"role": "user", "content": "Hello"}]}
ESTIMATE = 8  # the gateway's pre-call token estimate for HELLO on the demo provider
DURATION = re.compile(r"^(\d+ms|\d+s|\d+m\d+s)$")  # OpenAI's reset format
UPSTREAM_KEY = "sk-slow-upstream-0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_limiter_state(monkeypatch) -> Iterator[None]:
    # Process state outside the shared conftest's reset: the in-process limiter (keys repeat
    # across tests: ids restart) and the soft-threshold markers of this process.
    monkeypatch.setattr(limits, "_local", InProcessLimiter())
    alerts._raised.clear()
    yield
    alerts._raised.clear()


@pytest.fixture
def demo(cast):
    """A key of the cast's team that may call route "demo" (the demo provider)."""
    route = make_route("demo", (make_provider(), "demo"))
    return make_key(cast.team, route)


async def post(key: str, body: dict | None = None, **headers: str):
    sent = {"Authorization": f"Bearer {key}", **headers}
    return await AsyncClient().post(
        URL, data=json.dumps(body or HELLO), content_type="application/json", headers=sent
    )


async def add_limit(scope: str, scope_id: int, kind: str, value: float, **fields) -> Limit:
    return await sync_to_async(Limit.objects.create)(
        scope=scope, scope_id=scope_id, kind=kind, value=Decimal(str(value)), **fields
    )


def assert_429(response, code: str) -> dict:
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", code)
    assert set(error) >= {"message", "type", "param", "code"}
    return error


def retry_after(response) -> int:
    value = int(response["Retry-After"])
    assert value >= 1
    return value


async def eventually(predicate, timeout: float = 3.0) -> bool:
    """Poll a (sync, DB-reading) predicate: alerts are written in the background."""
    deadline = time.monotonic() + timeout
    while not await sync_to_async(predicate)():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def budget_remaining(scope: str, scope_id: int, kind: str, limit: float) -> float:
    """What the limiter holds for a budget today (UTC organisation), taking nothing."""
    period = budget_period(kind, tz_name="UTC", now=datetime.now(UTC))
    check = Check(f"aigw:q:{scope}:{scope_id}:{kind}:{period.name}", COUNTER, 0, limit,
                  ttl=period.seconds_left)  # fmt: skip
    [result] = await limits._limiter().peek([check], time.time())
    return result.remaining


# -- per-minute limits ----------------------------------------------------------------------
async def test_a_key_rpm_limit_counts_down_then_answers_429(backend, demo):
    await add_limit("key", demo.api_key.pk, "rpm", 3)
    for remaining in ("2", "1", "0"):
        response = await post(demo.raw_key)
        assert response.status_code == 200, response.content
        assert response["x-ratelimit-limit-requests"] == "3"
        assert response["x-ratelimit-remaining-requests"] == remaining
        assert DURATION.match(response["x-ratelimit-reset-requests"])
        assert not response.has_header("x-ratelimit-limit-tokens")  # no tokens limit here

    refused = await post(demo.raw_key)
    error = assert_429(refused, "rate_limit_exceeded")
    assert f"requests per minute on API key {demo.api_key.prefix}" in error["message"]
    assert demo.api_key.prefix.startswith("agw-") and demo.raw_key not in error["message"]
    assert retry_after(refused) <= 20  # one request every 20 s
    assert refused["x-request-id"] == error["request_id"]


async def test_a_request_too_large_for_a_team_tpm_limit_is_refused_for_good(backend, demo, cast):
    await add_limit("team", cast.team.pk, "tpm", 100)
    response = await post(demo.raw_key, {**HELLO, "max_tokens": 500})
    error = assert_429(response, "request_too_large_for_limit")
    assert "tokens per minute on team" in error["message"]
    assert "requested 508" in error["message"]
    assert not response.has_header("Retry-After")  # waiting would not help

    fits = await post(demo.raw_key, {**HELLO, "max_tokens": 20})
    assert fits.status_code == 200, fits.content
    assert fits["x-ratelimit-limit-tokens"] == "100"
    assert fits["x-ratelimit-remaining-tokens"] == str(100 - ESTIMATE - 20)


# -- budgets --------------------------------------------------------------------------------
async def test_a_team_token_budget_is_reconciled_with_real_usage(backend, demo, cast):
    await add_limit("team", cast.team.pk, "tokens_day", 1000)
    first = await post(demo.raw_key)
    assert first.status_code == 200, first.content
    used = first.json()["usage"]["total_tokens"]
    assert used != ESTIMATE  # else this test could not tell the two apart
    # Reconciliation is queued and rides along with the next admission (or a 50 ms timer).
    await settles_flush()
    assert await budget_remaining("team", cast.team.pk, "tokens_day", 1000) == 1000 - used

    second = await post(demo.raw_key)
    used += second.json()["usage"]["total_tokens"]
    await settles_flush()
    assert await budget_remaining("team", cast.team.pk, "tokens_day", 1000) == 1000 - used


async def test_a_token_budget_refuses_on_real_usage_not_on_the_estimate(backend, demo, cast):
    await add_limit("team", cast.team.pk, "tokens_day", 20)
    first = await post(demo.raw_key)
    assert first.status_code == 200, first.content
    # By the estimate alone a second call would fit (8 + 8 ≤ 20); by real usage it does not.
    assert first.json()["usage"]["total_tokens"] + ESTIMATE > 20
    refused = await post(demo.raw_key)
    error = assert_429(refused, "budget_exceeded")
    assert "tokens per day on team" in error["message"]
    period = budget_period("tokens_day", tz_name="UTC", now=datetime.now(UTC))
    assert abs(retry_after(refused) - period.seconds_left) <= 5  # fresh at UTC midnight


async def test_an_org_spend_budget_admits_the_call_that_crosses_it_and_no_more(backend, demo, cast):
    # 0.50 USD per token: the demo call (16 tokens) costs 8 USD, far over the 1 USD budget.
    await sync_to_async(ModelPrice.objects.create)(
        provider=None, model="demo", input_per_million=500_000, output_per_million=500_000
    )
    await add_limit("org", cast.org.pk, "cost_day", 1)
    first = await post(demo.raw_key)
    assert first.status_code == 200, first.content  # under budget when it started

    refused = await post(demo.raw_key)
    error = assert_429(refused, "budget_exceeded")
    assert "spend per day (USD) on organisation" in error["message"]
    retry_after(refused)
    cost = first.json()["usage"]["total_tokens"] / 2
    assert await budget_remaining("org", cast.org.pk, "cost_day", 1) == 1 - cost


# -- concurrency ----------------------------------------------------------------------------
@pytest.fixture
def slow_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def slow_key(cast, slow_upstream):
    provider = make_provider("slow-openai", ProviderKind.OPENAI, slow_upstream.openai_base_url,
                             UPSTREAM_KEY)  # fmt: skip
    return make_key(cast.team, make_route("slow", (provider, "gpt-slow")))


async def test_a_concurrency_limit_refuses_a_second_call_until_the_first_ends(
    backend, slow_upstream, slow_key
):
    await add_limit("key", slow_key.api_key.pk, "concurrent", 1)
    slow_upstream.push_fault("slow", delay=1)
    body = {**HELLO, "model": "slow"}
    first = asyncio.create_task(post(slow_key.raw_key, body))
    deadline = time.monotonic() + 5
    while not slow_upstream.requests:  # the first call holds its lease, upstream is slow
        assert time.monotonic() < deadline and not first.done(), "the first call never arrived"
        await asyncio.sleep(0.01)

    second = await post(slow_key.raw_key, body)
    error = assert_429(second, "concurrency_limit_exceeded")
    assert "concurrent requests on API key" in error["message"]
    assert second["Retry-After"] == "1"

    assert (await first).status_code == 200
    third = await post(slow_key.raw_key, body)  # the lease was released
    assert third.status_code == 200, third.content
    assert len(slow_upstream.requests) == 2


async def test_a_stream_holds_its_concurrency_lease_until_it_ends(backend, demo):
    await add_limit("key", demo.api_key.pk, "concurrent", 1)
    streaming = {**HELLO, "stream": True}
    opened = await post(demo.raw_key, streaming)
    assert opened.status_code == 200 and opened.streaming

    assert_429(await post(demo.raw_key, streaming), "concurrency_limit_exceeded")
    assert_429(await post(demo.raw_key), "concurrency_limit_exceeded")

    body = b"".join([chunk async for chunk in opened.streaming_content])
    assert b"data: [DONE]" in body
    again = await post(demo.raw_key)
    assert again.status_code == 200, again.content


# -- soft thresholds ------------------------------------------------------------------------
async def test_crossing_a_soft_threshold_raises_one_alert_and_one_audit_event(backend, demo, cast):
    limit = await add_limit("team", cast.team.pk, "tokens_day", 100, soft_threshold_percent=50)

    def alerts_count() -> int:
        return QuotaAlert.objects.filter(limit=limit).count()

    def audits_count() -> int:
        return AuditEvent.objects.filter(action="quota.soft_threshold").count()

    assert (await post(demo.raw_key)).status_code == 200  # 8 of 100 taken: below 50 %
    await asyncio.sleep(0.05)
    assert await sync_to_async(alerts_count)() == 0

    # Each call uses 16 tokens; the fourth takes 48 + 8 = 56 ≥ 50 at admission.
    for _ in range(3):
        assert (await post(demo.raw_key)).status_code == 200
    assert await eventually(lambda: alerts_count() == 1 and audits_count() == 1)

    assert (await post(demo.raw_key)).status_code == 200
    alerts._raised.clear()  # as if the next call ran in another process: the DB dedupes
    assert (await post(demo.raw_key)).status_code == 200
    await asyncio.sleep(0.2)
    assert await sync_to_async(alerts_count)() == 1
    assert await sync_to_async(audits_count)() == 1

    alert = await sync_to_async(QuotaAlert.objects.get)(limit=limit)
    assert alert.period == datetime.now(UTC).strftime("%Y-%m-%d")
    assert 50 <= alert.used <= 100
    event = await sync_to_async(AuditEvent.objects.get)(action="quota.soft_threshold")
    assert (event.target_type, event.target_id) == ("limit", str(limit.pk))
    assert event.details["period"] == alert.period
    assert event.details["threshold_percent"] == 50


# -- deployment limits ----------------------------------------------------------------------
def _smart_gateway(cast, upstream_a, upstream_b=None):
    # A short deadline: the gateway does not wait the ~30 s until a deployment has room.
    return build_gateway(team=cast.team, base_url="", primary_upstream=upstream_a,
                         secondary_upstream=upstream_b, timeout_seconds=5)  # fmt: skip


async def test_a_deployment_at_its_limit_is_skipped_for_the_next(
    backend, cast, upstream_a, upstream_b
):
    gateway = await sync_to_async(_smart_gateway)(cast, upstream_a, upstream_b)
    await add_limit("deployment", gateway.primary.pk, "rpm", 2)
    await add_limit("deployment", gateway.secondary.pk, "rpm", 1)
    body = {**HELLO, "model": "smart"}

    served = []
    for _ in range(3):
        response = await post(gateway.raw_key, body)
        assert response.status_code == 200, response.content
        served.append(response["x-aigateway-served-by"])
    assert served == ["/".join(PRIMARY)] * 2 + ["/".join(SECONDARY)]
    assert (len(upstream_a.requests), len(upstream_b.requests)) == (2, 1)

    refused = await post(gateway.raw_key, body)  # both deployments at their limits
    error = assert_429(refused, "rate_limited")
    assert error["message"].count("deployment_rate_limited") == 2
    assert 1 <= retry_after(refused) <= 30  # the primary has room first (2 per minute)
    assert (len(upstream_a.requests), len(upstream_b.requests)) == (2, 1)


async def test_a_route_whose_only_deployment_is_at_its_limit_answers_429(backend, cast, upstream_a):
    gateway = await sync_to_async(_smart_gateway)(cast, upstream_a)
    await add_limit("deployment", gateway.primary.pk, "rpm", 1)
    body = {**HELLO, "model": "smart"}
    assert (await post(gateway.raw_key, body)).status_code == 200
    refused = await post(gateway.raw_key, body)
    error = assert_429(refused, "rate_limited")
    assert "every deployment of route 'smart' is at its rate limit" in error["message"]
    assert 1 <= retry_after(refused) <= 60
    assert len(upstream_a.requests) == 1


# -- Redis down -----------------------------------------------------------------------------
async def test_with_redis_down_limits_fail_open_to_the_in_process_limiter(demo, settings, caplog):
    await add_limit("key", demo.api_key.pk, "rpm", 2)  # (before Redis goes away)
    settings.AIGATEWAY_LIMITS_REDIS_FAILURE = "open"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    reset_clients()
    caplog.set_level(logging.ERROR, logger="aigateway.gateway.limits")

    for remaining in ("1", "0"):
        response = await post(demo.raw_key)
        assert response.status_code == 200, response.content
        assert response["x-ratelimit-remaining-requests"] == remaining
    assert_429(await post(demo.raw_key), "rate_limit_exceeded")
    assert any("ALERT rate limiter degraded" in r.getMessage() for r in caplog.records)


async def test_with_redis_down_limits_can_fail_closed(demo, settings, caplog):
    await add_limit("key", demo.api_key.pk, "rpm", 2)
    settings.AIGATEWAY_LIMITS_REDIS_FAILURE = "closed"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    reset_clients()

    response = await post(demo.raw_key)
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "service_unavailable")
    assert response["Retry-After"] == "1"
    assert not any("ALERT rate limiter degraded" in r.getMessage() for r in caplog.records)


async def test_redis_failing_after_admission_never_fails_the_answered_call(
    redis_url, settings, slow_upstream, slow_key, caplog
):
    """Failing closed is for admission: a call already admitted and answered upstream is
    delivered even if Redis goes away before its usage is settled."""
    await add_limit("key", slow_key.api_key.pk, "concurrent", 1)
    settings.AIGATEWAY_LIMITS_REDIS_FAILURE = "closed"
    slow_upstream.push_fault("slow", delay=0.3)
    call = asyncio.create_task(post(slow_key.raw_key, {**HELLO, "model": "slow"}))
    deadline = time.monotonic() + 5
    while not slow_upstream.requests:  # admitted through Redis, waiting for the upstream
        assert time.monotonic() < deadline and not call.done(), "the call never arrived"
        await asyncio.sleep(0.01)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    reset_clients()

    response = await call
    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"] == "Echo from gpt-slow: Hello"
    await settles_flush()  # the queued reconciliation meets the Redis outage
    assert any("not settled" in r.getMessage() for r in caplog.records)


async def test_rate_limit_headers_are_on_the_refusal_too(cast):
    """x-ratelimit-* on every response: the 429 itself carries them, not only successes."""
    from asgiref.sync import sync_to_async

    from aigateway.quotas.models import Limit
    from tests.factories import make_key as _make_key
    from tests.factories import make_provider as _make_provider
    from tests.factories import make_route as _make_route

    def setup() -> str:
        route = _make_route("headers", (_make_provider(), "demo"))
        issued = _make_key(cast.team, route, name="headers-key")
        Limit.objects.create(scope="key", scope_id=issued.api_key.pk, kind="rpm", value=2)
        return issued.raw_key

    raw = await sync_to_async(setup)()
    client = AsyncClient()
    body = json.dumps({"model": "headers", "messages": [{"role": "user", "content": "hi"}]})
    auth = {"Authorization": f"Bearer {raw}"}
    responses = [
        await client.post(URL, data=body, content_type="application/json", headers=auth)
        for _ in range(3)
    ]
    assert [r.status_code for r in responses] == [200, 200, 429]
    refused = responses[2]
    assert refused["x-ratelimit-limit-requests"] == "2"
    assert refused["x-ratelimit-remaining-requests"] == "0"
    assert refused["x-ratelimit-reset-requests"].endswith("s")
