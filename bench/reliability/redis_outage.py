"""Drill (b): Redis stops for ``outage_seconds`` under load, then starts again (empty: it
persists nothing, as after a crash without an append-only file).

The documented policy (docs/resilience.md, docs/quotas.md, docs/architecture.md): with Redis
down the gateway keeps serving. Rate limits follow ``AIGATEWAY_LIMITS_REDIS_FAILURE``: ``open``
(the default) limits each worker on its own, ``closed`` refuses calls with 503 and
Retry-After; breakers allow calls (fail open); the config cache keeps serving what it has;
the response cache misses. ``/readyz`` answers 503 naming ``redis`` while it is down.

Checked: the load's calls during the outage follow the policy; ``/readyz`` says redis down,
then ready again; a key limited to 5 requests a minute gets per-process limiting during the
outage (open) and exactly 5 calls after the restart, counted in Redis again; the breaker
opens on upstream failures after the restart and closes when they stop; no call outlived its
deadline; both workers are the same processes; every answered call stored exactly once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from bench.reliability.faults import DEADLINE_MARGIN, ENDLESS, check_common
from bench.reliability.harness import wait_until
from bench.reliability.outcomes import Outcome, api_call
from bench.reliability.report import DrillReport
from bench.reliability.stack import (
    LIMIT_AFTER_KEY,
    LIMIT_DURING_KEY,
    LOW_RPM,
    ROUTE_TIMEOUT,
    Sampler,
    Stack,
    check_readyz_cycle,
    ready_again,
    readyz_probe,
)


@dataclass
class RedisOutageConfig:
    outage_seconds: float = 30.0
    lead_seconds: float = 3.0  # load before Redis stops
    after_seconds: float = 10.0  # load after Redis is back (the checks run inside it)
    rate: float = 20.0


def run(stack: Stack, config: RedisOutageConfig | None = None) -> DrillReport:
    config = config or RedisOutageConfig()
    assert stack.gateway is not None
    report = DrillReport("Redis outage", deadline=ROUTE_TIMEOUT + DEADLINE_MARGIN)
    report.facts.append(
        f"policy: AIGATEWAY_LIMITS_REDIS_FAILURE={stack.limits_redis_failure}, "
        f"Redis down {config.outage_seconds:.0f} s"
    )
    workers_before = stack.gateway.worker_pids()
    probes = LOW_RPM * stack.workers + 2
    seconds = config.lead_seconds + config.outage_seconds + config.after_seconds
    load = stack.load("redis", seconds, config.rate)
    with Sampler(readyz_probe(stack.base_url), 0.25) as ready:
        try:
            time.sleep(config.lead_seconds + 0.5)  # the load process needs a moment to start
            stack.redis.stop()
            stopped = time.time()  # gone (the stop waits for the process to exit)
            time.sleep(min(1.0, config.outage_seconds / 3))
            during = [api_call(stack.base_url, LIMIT_DURING_KEY, "drill") for _ in range(probes)]
            time.sleep(max(0.0, stopped + config.outage_seconds - time.time()))
        finally:
            restarting = time.time()  # the outage ends as the restart begins
            if not stack.redis.ping():
                stack.redis.start()
        restarted = time.time()
        recovered = ready_again(ready)
        after = [api_call(stack.base_url, LIMIT_AFTER_KEY, "drill") for _ in range(probes)]
        breaker_open, breaker_closed = _breaker_cycle(stack)
        load_outcomes = load.wait()
    report.outcomes = load_outcomes + during + after

    _check_policy(report, stack, load_outcomes, stopped, restarting)
    check_readyz_cycle(report, ready, "redis", stopped, restarting, restarted, recovered)
    _check_limits(report, stack, during, after)
    report.check(
        "breaker opened on upstream failures after the restart",
        breaker_open is not None,
        f"{breaker_open:.1f} s after the failures began" if breaker_open else "",
    )
    report.check(
        "breaker closed again when the upstream recovered",
        breaker_closed is not None,
        f"{breaker_closed:.1f} s after it recovered" if breaker_closed else "",
    )
    check_common(report, stack, workers_before)
    return report


def _check_policy(
    report: DrillReport, stack: Stack, outcomes: list[Outcome], stopped: float, restarted: float
) -> None:
    during = [o for o in outcomes if stopped <= o.started < restarted]
    others = [o for o in outcomes if o not in during]
    if stack.limits_redis_failure == "closed":
        refused = [o for o in during if o.error.startswith("http_503:")]
        report.check(
            "calls during the outage refused with 503 (policy closed)",
            len(refused) == len(during) > 0,
            f"{len(refused)} of {len(during)}",
        )
    else:
        served = [o for o in during if o.ok]
        report.check(
            "calls during the outage served (policy open)",
            len(served) == len(during) > 0,
            f"{len(served)} of {len(during)}",
        )
    failed = [o for o in others if not o.ok]
    report.check(
        "calls before and after the outage served",
        not failed,
        f"{len(others) - len(failed)} of {len(others)}",
    )


def _check_limits(
    report: DrillReport, stack: Stack, during: list[Outcome], after: list[Outcome]
) -> None:
    admitted_during = sum(o.ok for o in during)
    if stack.limits_redis_failure == "open":
        report.check(
            f"limit of {LOW_RPM}/min during the outage: enforced per worker",
            LOW_RPM <= admitted_during <= LOW_RPM * stack.workers
            and all(o.ok or o.error == "http_429:rate_limit_exceeded" for o in during),
            f"{admitted_during} of {len(during)} admitted, at most {LOW_RPM} per worker",
        )
    admitted_after = [o.ok for o in after]
    refused = all(o.error == "http_429:rate_limit_exceeded" for o in after[LOW_RPM:])
    client = redis.Redis.from_url(stack.redis.url(0))
    try:
        buckets = len(list(client.scan_iter("aigw:q:key:*:rpm")))
    finally:
        client.close()
    report.check(
        f"limit of {LOW_RPM}/min after the restart: counted in Redis again",
        admitted_after[:LOW_RPM] == [True] * LOW_RPM and refused and buckets > 0,
        f"{sum(admitted_after)} of {len(after)} admitted, the first {LOW_RPM}; "
        f"{buckets} key bucket(s) in Redis",
    )


def _breaker_cycle(stack: Stack) -> tuple[float | None, float | None]:
    """Fail the primary until its breaker opens, heal it until it closes; seconds each."""
    began = time.time()
    stack.primary.push_fault("500", count=ENDLESS)
    try:
        wait_until(lambda: stack.breaker_state("drill-primary") == "open", 10, "breaker open")
        opened: float | None = time.time() - began
    except TimeoutError:
        opened = None
    finally:
        stack.primary.reset()
    healed = time.time()
    try:
        wait_until(lambda: stack.breaker_state("drill-primary") == "closed", 15, "breaker closed")
        closed: float | None = time.time() - healed
    except TimeoutError:
        closed = None
    return opened, closed
