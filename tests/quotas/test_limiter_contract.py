"""The limiter contract, run against both backends (in-process and Redis).

Every test passes explicit ``now`` values, so nothing sleeps. Rates are chosen so that the
arithmetic is exact in binary (30 per minute = 0.5 per second: one token every 2 s), which
lets the tests compare floats with ``==``. The last tests run separate OS processes
(tests/quotas/limiter_peer.py) against one Redis and count what they were admitted in all.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from aigateway.core.redis import get_async_redis
from aigateway.gateway import limits
from aigateway.quotas.checks import (
    BUCKET,
    CONCURRENCY,
    COUNTER,
    LEASE_SECONDS,
    Check,
    CheckResult,
    Verdict,
)
from aigateway.quotas.limiter import Adjustment, InProcessLimiter, Limiter
from aigateway.quotas.limiter_redis import RedisLimiter
from aigateway.quotas.rules import Demand, Rule, check_for

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_000.0
DAY = 86_400.0


@pytest.fixture(autouse=True)
def _fresh_local_limiter(monkeypatch) -> None:
    # The in-process backend is module state of aigateway.gateway.limits; give each test its own.
    monkeypatch.setattr(limits, "_local", InProcessLimiter())


def _limiter(backend: str) -> Limiter:
    """The limiter the app would use; checks that it is the backend under test."""
    limiter = limits._limiter()
    assert isinstance(limiter, RedisLimiter if backend == "redis" else InProcessLimiter)
    return limiter


def bucket(key: str, per_minute: float, *, capacity: float | None = None, cost: float = 1) -> Check:
    return Check(key, BUCKET, cost, per_minute, capacity=capacity or per_minute,
                 rate=per_minute / 60)  # fmt: skip


def counter(key: str, limit: float, cost: float, ttl: float = DAY) -> Check:
    return Check(key, COUNTER, cost, limit, ttl=ttl)


def lease(key: str, limit: int, member: str, ttl: float = LEASE_SECONDS) -> Check:
    return Check(key, CONCURRENCY, 1, limit, ttl=ttl, member=member)


# -- token bucket ---------------------------------------------------------------------------
async def test_a_bucket_admits_exactly_its_capacity_at_one_instant(backend):
    limiter = _limiter(backend)
    check = bucket("b", 30)  # capacity 30, one token every 2 s
    verdicts = [await limiter.take([check], T0) for _ in range(30)]
    assert all(v.allowed and v.failed_index == -1 and v.retry_after is None for v in verdicts)
    # remaining counts down; reset is the time until the bucket is full again
    assert [v.results[0].remaining for v in verdicts] == list(range(29, -1, -1))
    assert [v.results[0].reset_seconds for v in verdicts] == [2.0 * n for n in range(1, 31)]

    refused = await limiter.take([check], T0)
    assert refused == Verdict(False, 0, 2.0, ())  # retry after exactly 1/rate
    assert await limiter.peek([check], T0) == [CheckResult(0, 60.0)]


async def test_a_bucket_refills_continuously(backend):
    limiter = _limiter(backend)
    check = bucket("b", 30)
    for _ in range(30):
        assert (await limiter.take([check], T0)).allowed

    half = await limiter.take([check], T0 + 1.0)  # half a token: wait the other second
    assert (half.allowed, half.retry_after) == (False, 1.0)
    one = await limiter.take([check], T0 + 2.0)  # exactly one token after 1/rate
    assert one.allowed and one.results[0] == CheckResult(0, 60.0)
    again = await limiter.take([check], T0 + 2.0)
    assert (again.allowed, again.retry_after) == (False, 2.0)

    # Refill stops at the capacity however long the bucket was idle.
    assert await limiter.peek([check], T0 + 10_000) == [CheckResult(30, 0.0)]
    later = [await limiter.take([check], T0 + 10_000) for _ in range(31)]
    assert [v.allowed for v in later] == [True] * 30 + [False]


async def test_burst_is_the_capacity_above_the_per_minute_rate(backend):
    limiter = _limiter(backend)
    rule = Rule(limit_id=1, scope="key", scope_id=9, kind="rpm", value=6, burst=10,
                soft_percent=80)  # fmt: skip
    demand = Demand(prompt_tokens=5, total_tokens=5, lease_id="x")
    check = check_for(rule, demand, tz_name="UTC", now=datetime.now(UTC))
    assert (check.type, check.capacity, check.rate, check.cost) == (BUCKET, 10, 0.1, 1.0)

    verdicts = [await limiter.take([check], T0) for _ in range(11)]
    assert [v.allowed for v in verdicts] == [True] * 10 + [False]
    assert verdicts[-1].retry_after == pytest.approx(10.0)  # refills at 6 per minute


async def test_a_cost_above_the_capacity_is_refused_for_good(backend):
    limiter = _limiter(backend)
    check = bucket("tpm", 100, cost=101)
    verdict = await limiter.take([check], T0)
    assert verdict == Verdict(False, 0, None, ())  # waiting cannot help
    assert await limiter.peek([check], T0) == [CheckResult(100, 0.0)]  # nothing taken
    fits = await limiter.take([bucket("tpm", 100, cost=100)], T0)
    assert fits.allowed and fits.results[0].remaining == 0


async def test_settle_on_a_bucket_refunds_or_charges_extra_capped_at_capacity(backend):
    limiter = _limiter(backend)
    check = bucket("tpm", 60, cost=40)  # one token per second
    assert (await limiter.take([check], T0)).results[0] == CheckResult(20, 40.0)

    await limiter.settle([Adjustment(check, -30)], T0)  # used 30 fewer than estimated
    assert await limiter.peek([check], T0) == [CheckResult(50, 10.0)]
    await limiter.settle([Adjustment(check, -1000)], T0)  # refunds never pass the capacity
    assert await limiter.peek([check], T0) == [CheckResult(60, 0.0)]

    await limiter.settle([Adjustment(check, 70)], T0)  # used 70 more: the bucket owes 10
    assert await limiter.peek([check], T0) == [CheckResult(-10, 70.0)]
    one = bucket("tpm", 60, cost=1)
    assert (await limiter.take([one], T0)).retry_after == 11.0  # back to 1 token
    assert (await limiter.take([one], T0 + 11)).allowed


# -- all-or-nothing -------------------------------------------------------------------------
async def test_a_refusal_takes_nothing_from_the_checks_before_it(backend):
    limiter = _limiter(backend)
    first, spent = bucket("first", 30), bucket("spent", 30, cost=30)
    assert (await limiter.take([spent], T0)).allowed
    budget, held = counter("budget", 100, cost=10), lease("conc", 1, "m1")

    verdict = await limiter.take([first, spent, budget, held], T0)
    assert (verdict.allowed, verdict.failed_index, verdict.retry_after) == (False, 1, 60.0)
    assert verdict.results == (CheckResult(29, 2.0),)  # what the first would have left
    assert await limiter.peek([first, budget, held], T0) == [
        CheckResult(30, 0.0), CheckResult(100, DAY), CheckResult(1, 0.0)
    ]  # fmt: skip

    # The same request without the exhausted check goes through, and takes every check.
    verdict = await limiter.take([first, budget, held], T0)
    assert verdict.allowed and verdict.failed_index == -1
    assert verdict.results == (CheckResult(29, 2.0), CheckResult(90, DAY), CheckResult(0, 0.0))


async def test_the_last_check_refusing_reports_its_index(backend):
    limiter = _limiter(backend)
    checks = [bucket("a", 30), counter("b", 5, cost=1), counter("c", 5, cost=6)]
    verdict = await limiter.take(checks, T0)
    assert (verdict.allowed, verdict.failed_index, verdict.retry_after) == (False, 2, DAY)
    assert len(verdict.results) == 2
    assert await limiter.peek(checks, T0) == [
        CheckResult(30, 0.0), CheckResult(5, DAY), CheckResult(5, DAY)
    ]  # fmt: skip


# -- counters (budgets) ---------------------------------------------------------------------
async def test_a_budget_admits_while_used_plus_cost_stays_within_it(backend):
    limiter = _limiter(backend)
    assert (await limiter.take([counter("day", 100, 40)], T0)).results[0] == CheckResult(60, DAY)
    exact = await limiter.take([counter("day", 100, 60)], T0)  # used + cost == limit: admitted
    assert exact.allowed and exact.results[0] == CheckResult(0, DAY)
    over = await limiter.take([counter("day", 100, 1)], T0)
    assert over == Verdict(False, 0, DAY, ())  # retry when the period ends
    assert (await limiter.take([counter("day", 100, 0)], T0)).allowed is False


async def test_a_cost_zero_check_is_admitted_until_the_budget_is_used_up(backend):
    limiter = _limiter(backend)
    spend = counter("cost", 1.0, 0)  # spend budgets take nothing up front, settle the cost
    assert (await limiter.take([spend], T0)).results[0] == CheckResult(1.0, DAY)
    await limiter.settle([Adjustment(spend, 0.75)], T0)
    assert (await limiter.take([spend], T0)).results[0] == CheckResult(0.25, DAY)
    await limiter.settle([Adjustment(spend, 0.25)], T0)  # exactly the budget: used ≥ limit
    assert await limiter.take([spend], T0) == Verdict(False, 0, DAY, ())


async def test_settle_adds_real_usage_to_a_budget_but_never_below_zero(backend):
    limiter = _limiter(backend)
    tokens = counter("tokens", 1000, 100)
    assert (await limiter.take([tokens], T0)).allowed
    await limiter.settle([Adjustment(tokens, 150)], T0)  # the call used 250, not 100
    assert await limiter.peek([tokens], T0) == [CheckResult(750, DAY)]
    await limiter.settle([Adjustment(tokens, -50)], T0)  # ... or 200
    assert await limiter.peek([tokens], T0) == [CheckResult(800, DAY)]
    await limiter.settle([Adjustment(tokens, -5000)], T0)
    assert await limiter.peek([tokens], T0) == [CheckResult(1000, DAY)]
    assert (await limiter.take([counter("tokens", 1000, 1000)], T0)).allowed


# -- concurrency ----------------------------------------------------------------------------
async def test_a_concurrency_limit_holds_leases_until_settled(backend):
    limiter = _limiter(backend)
    first, second, third = (lease("conc", 2, m) for m in ("m1", "m2", "m3"))
    assert (await limiter.take([first], T0)).results[0] == CheckResult(1, 0.0)
    assert (await limiter.take([second], T0)).results[0] == CheckResult(0, 0.0)
    assert await limiter.take([third], T0) == Verdict(False, 0, 1.0, ())

    await limiter.settle([Adjustment(first, 0)], T0 + 1)  # the first call ended
    assert await limiter.peek([third], T0 + 1) == [CheckResult(1, 0.0)]
    assert (await limiter.take([third], T0 + 1)).allowed
    await limiter.settle([Adjustment(first, 0)], T0 + 2)  # settling twice frees nothing more
    assert (await limiter.take([lease("conc", 2, "m4")], T0 + 2)).allowed is False


async def test_expired_leases_free_their_capacity(backend):
    limiter = _limiter(backend)
    assert (await limiter.take([lease("conc", 2, "a", ttl=10)], T0)).allowed
    assert (await limiter.take([lease("conc", 2, "b", ttl=10)], T0 + 5)).allowed
    late = lease("conc", 2, "c", ttl=10)
    assert (await limiter.take([late], T0 + 9.5)).allowed is False
    assert await limiter.peek([late], T0 + 10) == [CheckResult(1, 0.0)]  # "a" expired at 10
    assert (await limiter.take([late], T0 + 10)).allowed
    assert await limiter.peek([late], T0 + 19.5) == [CheckResult(1, 0.0)]  # "b" gone, "c" held
    assert await limiter.peek([late], T0 + 20) == [CheckResult(2, 0.0)]  # all expired


# -- both backends give the same answers ----------------------------------------------------
def _scenario(seed: int) -> list[tuple[str, list[Check], list[Adjustment] | None, float]]:
    """A reproducible mix of takes and settles with awkward (non-binary) numbers."""
    rnd = random.Random(seed)
    steps: list[tuple[str, list[Check], list[Adjustment] | None, float]] = []
    now = T0
    for _ in range(400):
        now += rnd.choice([0.0, 0.1, 1 / 3, 0.37, 2.5])
        checks = []
        for _ in range(rnd.randint(1, 3)):
            kind, n = rnd.choice([BUCKET, COUNTER, CONCURRENCY]), rnd.randint(0, 2)
            if kind == BUCKET:
                per_minute = (7, 10.5, 100)[n]
                cost = rnd.choice([1, 0.1, 3.3, 7])
                checks.append(bucket(f"bucket{n}", per_minute, cost=cost))
            elif kind == COUNTER:
                checks.append(counter(f"counter{n}", 50.3, rnd.choice([0, 0.1, 0.2, 1.7]), DAY / 7))
            else:
                checks.append(lease(f"conc{n}", 3, f"m{rnd.randint(0, 5)}", ttl=5.3))
        steps.append(("take", checks, None, now))
        if rnd.random() < 0.4:
            deltas = [Adjustment(c, rnd.choice([-0.3, 0.1, 2.2, -50])) for c in checks]
            steps.append(("settle", checks, deltas, now))
        steps.append(("peek", checks, None, now))
    return steps


async def _replay(limiter: Limiter, steps) -> list[object]:
    out: list[object] = []
    for operation, checks, deltas, now in steps:
        if operation == "take":
            out.append(await limiter.take(checks, now))
        elif operation == "settle":
            await limiter.settle(deltas, now)
        else:
            out.append(await limiter.peek(checks, now))
    return out


async def test_both_backends_report_the_same_remaining_and_reset(redis_url):
    client = get_async_redis()
    assert client is not None
    steps = _scenario(seed=20261125)
    in_process = await _replay(InProcessLimiter(), steps)
    in_redis = await _replay(RedisLimiter(client), steps)
    assert len(in_process) == len(in_redis)
    mismatches = [(i, a, b) for i, (a, b) in enumerate(zip(in_process, in_redis, strict=True))
                  if a != b]  # fmt: skip
    assert not mismatches, mismatches[:3]
    verdicts = [v for v in in_process if isinstance(v, Verdict)]
    assert any(v.allowed for v in verdicts) and any(not v.allowed for v in verdicts)


# -- several OS processes sharing Redis -----------------------------------------------------
def _race(redis_url: str, kind: str, limit: float, *, cost: float = 1.0) -> tuple[str, int]:
    """Four peer processes, released at once, each take 50 on one key. Returns (key,
    admitted in all)."""
    key = f"aigw:test:race:{uuid.uuid4().hex}"
    go = f"{key}:go"
    peer = str(ROOT / "tests/quotas/limiter_peer.py")
    args = [sys.executable, peer, redis_url, key, kind, repr(limit), "50",
            "--cost", repr(cost), "--now", repr(T0), "--wait-for", go]  # fmt: skip
    peers = [subprocess.Popen(args, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 60
        while client.llen(f"{go}:ready") < len(peers):  # every peer connected and waiting
            assert all(p.poll() is None for p in peers), "a peer died before the start"
            assert time.monotonic() < deadline, "the peers did not start"
            time.sleep(0.01)
        client.rpush(go, *["go"] * len(peers))
        admitted = 0
        for peer in peers:
            stdout, stderr = peer.communicate(timeout=60)
            assert peer.returncode == 0, stderr[-2000:]
            line = json.loads(stdout.strip().splitlines()[-1])
            assert line["admitted"] + line["refused"] == 50
            admitted += line["admitted"]
        return key, admitted
    finally:
        for peer in peers:
            if peer.poll() is None:
                peer.kill()
        client.close()


def test_a_request_bucket_is_exact_across_processes(redis_url):
    _, admitted = _race(redis_url, "bucket", 73)
    assert admitted == 73


def test_a_token_bucket_is_exact_across_processes(redis_url):
    key, admitted = _race(redis_url, "tokens", 500, cost=7)
    assert admitted == 500 // 7 == 71
    with redis.Redis.from_url(redis_url) as client:
        assert float(client.hget(key, "tokens")) == 500 - 71 * 7


def test_a_concurrency_limit_is_exact_across_processes(redis_url):
    key, admitted = _race(redis_url, "concurrency", 5)
    assert admitted == 5
    with redis.Redis.from_url(redis_url) as client:
        assert client.zcard(key) == 5


async def test_reconciliations_ride_along_with_the_next_take(backend):
    """One round trip per request: queued adjustments are applied first, in the same atomic
    step as the next admission, with the same result as settling separately."""
    from aigateway.gateway.limits import _limiter
    from aigateway.quotas.checks import BUCKET, Check
    from aigateway.quotas.limiter import Adjustment

    limiter = _limiter()
    tokens = Check("contract:ride:tpm", BUCKET, 100, 1000, capacity=1000, rate=1000 / 60)
    requests = Check("contract:ride:rpm", BUCKET, 1, 10, capacity=10, rate=10 / 60)
    first = await limiter.take([tokens], 5000.0)
    assert first.results[0].remaining == 900
    # The call really used 40 tokens, not the 100 estimated: 60 come back with the next take.
    verdict = await limiter.take([tokens, requests], 5000.0, [Adjustment(tokens, -60)])
    assert verdict.allowed
    assert verdict.results[0].remaining == 900 + 60 - 100
    assert verdict.results[1].remaining == 9


async def test_two_checks_on_one_key_both_take_from_it(backend):
    # Each check is judged against the state before the call; both are taken, in order.
    limiter = _limiter(backend)
    verdict = await limiter.take([bucket("shared", 10, cost=3), bucket("shared", 10, cost=4)], T0)
    assert verdict.allowed
    assert await limiter.peek([bucket("shared", 10)], T0) == [CheckResult(3, 42.0)]
    spent = await limiter.take([counter("c", 10, 2), counter("c", 10, 5)], T0)
    assert spent.allowed
    assert await limiter.peek([counter("c", 10, 0)], T0) == [CheckResult(3, DAY)]
