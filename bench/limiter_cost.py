"""Cost of the rate limiter per request: one take() of a typical request's checks.

    .venv/bin/python -m bench.limiter_cost [--n 5000] [--redis redis://127.0.0.1:6379/15]

A typical request carries four checks (org rpm, team tpm, key rpm, key concurrency) plus a
settle() afterwards (tpm reconcile + lease release): both are timed, sequentially, as one
client sees them (wall time per call, Redis on loopback), and the in-process backend too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")
os.environ.setdefault("AIGATEWAY_ALLOW_INSECURE_DEFAULTS", "true")

import django

django.setup()

import redis.asyncio as aioredis  # noqa: E402

from aigateway.quotas.checks import BUCKET, CONCURRENCY, Check  # noqa: E402
from aigateway.quotas.limiter import Adjustment, InProcessLimiter  # noqa: E402
from aigateway.quotas.limiter_redis import RedisLimiter  # noqa: E402

BIG = 1e12  # limits nobody reaches: we time the work, not refusals


def request_checks(member: str) -> list[Check]:
    return [
        Check("bench:org:rpm", BUCKET, 1, BIG, capacity=BIG, rate=BIG / 60),
        Check("bench:team:tpm", BUCKET, 500, BIG, capacity=BIG, rate=BIG / 60),
        Check("bench:key:rpm", BUCKET, 1, BIG, capacity=BIG, rate=BIG / 60),
        Check("bench:key:conc", CONCURRENCY, 1, BIG, ttl=900, member=member),
    ]


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def measure(limiter: object, n: int) -> tuple[list[float], list[float]]:
    takes, settles = [], []
    for _ in range(n):
        checks = request_checks(uuid.uuid4().hex)
        started = time.perf_counter()
        verdict = await limiter.take(checks, time.time())  # type: ignore[attr-defined]
        takes.append((time.perf_counter() - started) * 1e6)
        assert verdict.allowed
        started = time.perf_counter()
        await limiter.settle(  # type: ignore[attr-defined]
            [Adjustment(checks[1], -100), Adjustment(checks[3], 0)], time.time()
        )
        settles.append((time.perf_counter() - started) * 1e6)
    return takes, settles


def report(name: str, takes: list[float], settles: list[float]) -> None:
    take = f"take p50 {statistics.median(takes):7.1f} µs  p99 {percentile(takes, 99):7.1f} µs"
    settle = (
        f"settle p50 {statistics.median(settles):7.1f} µs  p99 {percentile(settles, 99):7.1f} µs"
    )
    print(f"{name:<10} {take} | {settle}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    client = aioredis.Redis.from_url(args.redis)
    await client.flushdb()
    redis_limiter = RedisLimiter(client)
    await measure(redis_limiter, 200)  # warm up: script load, connection
    report("redis", *(await measure(redis_limiter, args.n)))
    local = InProcessLimiter()
    await measure(local, 200)
    report("in-process", *(await measure(local, args.n)))
    await client.flushdb()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
