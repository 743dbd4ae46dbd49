"""A separate OS process for the limiter tests: K concurrent takes on a Redis shared with them.

usage: python tests/quotas/limiter_peer.py REDIS_URL KEY TYPE LIMIT COUNT
           [--cost C] [--now T] [--wait-for KEY]

TYPE is ``bucket`` (capacity LIMIT, a rate so tiny nothing refills), ``tokens`` (the same
bucket, each request taking ``--cost`` tokens) or ``concurrency`` (LIMIT leases, never
settled). COUNT single-check requests are taken at once (asyncio.gather) through
RedisLimiter, all at the fixed ``--now``; the peer prints one JSON line
``{"admitted": N, "refused": M}``. With ``--wait-for KEY`` it pushes to ``KEY:ready`` and
waits for a token on KEY before it starts, so a test can release several peers together.

RedisLimiter needs no Django settings (it is handed its Redis client), so the peer does not
set Django up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY_RATE = 1e-9  # tokens per second: no refill while a test runs (and `now` is fixed anyway)


def _check(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from aigateway.quotas.checks import BUCKET, CONCURRENCY, LEASE_SECONDS, Check

    if args.type == "concurrency":
        member = uuid.uuid4().hex
        return Check(args.key, CONCURRENCY, 1, args.limit, ttl=LEASE_SECONDS, member=member)
    cost = 1.0 if args.type == "bucket" else args.cost
    return Check(args.key, BUCKET, cost, args.limit, capacity=args.limit, rate=TINY_RATE)


async def run(args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis

    from aigateway.quotas.limiter_redis import RedisLimiter

    # No socket timeout: BLPOP below blocks for as long as the other peers take to start.
    client = aioredis.Redis.from_url(args.redis_url, socket_connect_timeout=10)
    try:
        limiter = RedisLimiter(client)
        if args.wait_for:
            await client.rpush(f"{args.wait_for}:ready", 1)
            if await client.blpop([args.wait_for], timeout=60) is None:
                raise SystemExit("no start signal")
        verdicts = await asyncio.gather(
            *(limiter.take([_check(args)], args.now) for _ in range(args.count))
        )
        admitted = sum(1 for verdict in verdicts if verdict.allowed)
        print(json.dumps({"admitted": admitted, "refused": len(verdicts) - admitted}), flush=True)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("redis_url")
    parser.add_argument("key")
    parser.add_argument("type", choices=["bucket", "tokens", "concurrency"])
    parser.add_argument("limit", type=float)
    parser.add_argument("count", type=int)
    parser.add_argument("--cost", type=float, default=1.0)
    parser.add_argument("--now", type=float, default=1_000.0)
    parser.add_argument("--wait-for", default="")
    args = parser.parse_args()
    if str(ROOT) not in sys.path:  # run as a script, sys.path[0] is tests/quotas
        sys.path.insert(0, str(ROOT))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
