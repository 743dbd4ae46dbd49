"""The in-process limiter keeps memory bounded when keys are sprayed (an address or username
per request): what no longer limits anyone is forgotten first, what still does is kept."""

from __future__ import annotations

from aigateway.quotas.checks import BUCKET, COUNTER, Check
from aigateway.quotas.limiter import InProcessLimiter


def _bucket(key: str) -> Check:
    return Check(key=key, type=BUCKET, cost=1, limit=60, capacity=2, rate=1.0)


def _counter(key: str, ttl: float) -> Check:
    return Check(key=key, type=COUNTER, cost=1, limit=3, ttl=ttl)


async def test_sprayed_keys_never_grow_past_the_cap() -> None:
    limiter = InProcessLimiter(max_keys=100)
    for n in range(2_000):
        assert (await limiter.take([_bucket(f"addr-{n}")], now=1000.0)).allowed
        assert limiter._size() <= 100


async def test_refilled_buckets_and_expired_counters_go_first() -> None:
    limiter = InProcessLimiter(max_keys=100)
    for n in range(40):  # 80 keys: full again 1 s later, expired 5 s later
        await limiter.take([_bucket(f"old-b{n}"), _counter(f"old-c{n}", ttl=5)], now=0.0)
    limiter_key = "attacker"
    for _ in range(2):  # empties the attacker's bucket at t=100
        await limiter.take([_bucket(limiter_key)], now=100.0)
    for n in range(30):  # pushes the size past the cap at t=100
        await limiter.take([_bucket(f"new-{n}")], now=100.0)
    assert limiter._size() <= 100
    assert not any(k.startswith("old-") for k in (*limiter._buckets, *limiter._counters))
    # The attacker's empty bucket survived the pruning: still refused.
    assert not (await limiter.take([_bucket(limiter_key)], now=100.0)).allowed
