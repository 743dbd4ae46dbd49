"""/metrics after real calls: the official SDK → the live gateway → fake upstreams that fail
on purpose. The exposition is parsed with prometheus_client's own parser, and each test
compares two scrapes (counters are per process and other tests move them too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import openai
import pytest
import redis

from aigateway.quotas.models import Limit
from auth.keys import hash_api_key
from auth.models import ApiKey
from providers.models import ModelPrice
from tests.api.resilience_support import (
    MESSAGES,
    PRIMARY,
    SECONDARY,
    Gateway,
    build_gateway,
)
from tests.observability.support import Metrics, scrape

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def make_gateway(cast, live_gateway, upstream_a, upstream_b) -> Iterator[Callable[..., Gateway]]:
    built: list[Gateway] = []

    def make(*, secondary: bool = True, **fields) -> Gateway:
        gateway = build_gateway(
            team=cast.team, base_url=live_gateway.openai_base_url, primary_upstream=upstream_a,
            secondary_upstream=upstream_b if secondary else None, **fields,
        )  # fmt: skip
        built.append(gateway)
        return gateway

    yield make
    for gateway in built:
        gateway.close()


class Delta:
    """What moved between two scrapes."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.before = scrape(base_url)
        self.after: Metrics | None = None

    def __call__(self, name: str, **labels: str) -> float:
        if self.after is None:
            self.after = scrape(self.base_url)
        return self.after.value(name, **labels) - self.before.value(name, **labels)


def test_a_call_moves_requests_latency_tokens_and_cost(make_gateway, live_gateway):
    gateway = make_gateway(secondary=False)
    ModelPrice.objects.create(
        provider=gateway.primary.provider, model=PRIMARY[1],
        input_per_million=Decimal(100_000), output_per_million=Decimal(200_000),
    )  # fmt: skip
    delta = Delta(live_gateway.base_url)
    completion = gateway.sdk().chat.completions.create(model="smart", messages=MESSAGES)
    deployment = str(gateway.primary.pk)
    served = {"route": "smart", "deployment": deployment}
    assert delta("aigateway_requests_total", provider=PRIMARY[0], status="200", **served) == 1
    assert delta("aigateway_request_duration_seconds_count", route="smart", stream="false") == 1
    assert delta("aigateway_upstream_duration_seconds_count", **served) == 1
    assert delta("aigateway_gateway_overhead_seconds_count", route="smart") == 1
    assert delta("aigateway_tokens_total", direction="input", **served) == (
        completion.usage.prompt_tokens
    )
    assert delta("aigateway_tokens_total", direction="output", **served) == (
        completion.usage.completion_tokens
    )
    expected_cost = (completion.usage.prompt_tokens + completion.usage.completion_tokens * 2) / 10
    assert delta("aigateway_cost_usd_total", **served) == pytest.approx(expected_cost)
    # The gateway's own share is a small part of the total (the bucket sums say so).
    overhead = delta("aigateway_gateway_overhead_seconds_sum", route="smart")
    total = delta("aigateway_request_duration_seconds_sum", route="smart")
    assert 0 <= overhead < total


def test_a_stream_records_its_time_to_first_token(make_gateway, live_gateway):
    gateway = make_gateway(secondary=False)
    delta = Delta(live_gateway.base_url)
    stream = gateway.sdk().chat.completions.create(model="smart", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    deployment = str(gateway.primary.pk)
    assert delta("aigateway_time_to_first_token_seconds_count", route="smart",
                 deployment=deployment) == 1  # fmt: skip
    assert delta("aigateway_request_duration_seconds_count", route="smart", stream="true") == 1


def test_failover_and_retry_are_counted_by_reason(make_gateway, live_gateway, upstream_a):
    gateway = make_gateway()
    delta = Delta(live_gateway.base_url)
    upstream_a.push_fault("500")  # the primary fails once: the secondary answers
    raw = gateway.sdk().chat.completions.with_raw_response.create(model="smart", messages=MESSAGES)
    assert raw.headers["x-aigateway-served-by"] == "/".join(SECONDARY)
    assert delta("aigateway_failovers_total", route="smart", reason="server_error") == 1
    assert delta("aigateway_retries_total", route="smart") == 0
    secondary = {"provider": SECONDARY[0], "deployment": str(gateway.secondary.pk)}
    assert delta("aigateway_requests_total", route="smart", status="200", **secondary) == 1


def test_a_retry_is_counted_with_its_reason(make_gateway, live_gateway, upstream_a):
    gateway = make_gateway(secondary=False)
    delta = Delta(live_gateway.base_url)
    upstream_a.push_fault("503")  # the only deployment is overloaded once: one retry round
    gateway.sdk().chat.completions.create(model="smart", messages=MESSAGES)
    assert delta("aigateway_retries_total", route="smart", reason="overloaded") == 1
    assert delta("aigateway_failovers_total", route="smart") == 0


def test_cache_lookups_are_counted_by_result(make_gateway, live_gateway, upstream_a):
    gateway = make_gateway(secondary=False)
    delta = Delta(live_gateway.base_url)
    client = gateway.sdk()
    for _ in range(2):
        client.chat.completions.create(model="smart", messages=MESSAGES, temperature=0)
    client.chat.completions.create(model="smart", messages=MESSAGES)  # not deterministic
    assert delta("aigateway_cache_lookups_total", route="smart", result="miss") == 1
    assert delta("aigateway_cache_lookups_total", route="smart", result="exact") == 1
    assert delta("aigateway_cache_lookups_total", route="smart", result="bypass") == 1
    # The hit reached no upstream: it is a request without a deployment.
    assert delta("aigateway_requests_total", route="smart", deployment="", status="200") == 1
    assert len([r for r in upstream_a.requests if r.path == "/v1/chat/completions"]) == 2


def test_a_rate_limit_rejection_is_counted_by_scope(make_gateway, live_gateway):
    gateway = make_gateway(secondary=False)
    key = ApiKey.objects.get(key_hash=hash_api_key(gateway.raw_key))
    Limit.objects.create(scope="key", scope_id=key.pk, kind="rpm", value=Decimal(1))
    delta = Delta(live_gateway.base_url)
    client = gateway.sdk()
    client.chat.completions.create(model="smart", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="smart", messages=MESSAGES)
    assert delta("aigateway_rate_limit_rejections_total", scope="key", kind="rpm") == 1
    assert delta("aigateway_rate_limit_rejections_total", scope="team") == 0
    assert delta("aigateway_requests_total", route="smart", status="429", deployment="") == 1


def test_scrape_time_gauges_sit_beside_the_process_metrics(make_gateway, live_gateway):
    gateway = make_gateway(secondary=False)
    metrics = scrape(live_gateway.base_url)
    labels = {"deployment": str(gateway.primary.pk), "route": "smart", "state": "closed"}
    assert metrics.value("aigateway_breaker_state", **labels) == 1
    assert metrics.value("aigateway_metrics_processes") == 1
    assert "aigateway_credentials_rotation_overdue 0" in metrics.text


def test_celery_queue_depth_is_read_from_the_broker(client, redis_url, settings):
    settings.CELERY_BROKER_URL = redis_url
    broker = redis.Redis.from_url(redis_url)
    broker.lpush("celery", "t1", "t2", "t3")
    broker.lpush("celery\x06\x166", "urgent")  # a task sent with priority 6
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert Metrics(text).value("aigateway_celery_queue_depth", queue="celery") == 4
    broker.close()


def test_no_queue_depth_when_tasks_run_eagerly(client, settings):
    settings.CELERY_BROKER_URL = ""
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert "aigateway_celery_queue_depth" not in text
    Metrics(text)  # and the whole exposition still parses


def test_unknown_model_names_do_not_become_label_values(make_gateway, live_gateway):
    gateway = make_gateway(secondary=False)
    delta = Delta(live_gateway.base_url)
    for name in ("made-up-1", "made-up-2"):
        with pytest.raises(openai.NotFoundError):
            gateway.sdk().chat.completions.create(model=name, messages=MESSAGES)
    assert delta("aigateway_requests_total", route="", status="404") == 2
    assert "made-up" not in (delta.after.text if delta.after else "")
