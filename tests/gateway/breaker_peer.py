"""A second OS process for the breaker tests: breaker operations on a Redis shared with them.

usage: python tests/gateway/breaker_peer.py REDIS_URL DEPLOYMENT_ID ACTION [COUNT]
           [--now T] [--config JSON] [--wait-for KEY]

ACTION is ``fail``, ``ok`` (record COUNT outcomes one after another) or ``allow`` (COUNT
concurrent allow() calls). Every operation prints one JSON line:
``{"decision": "allow" | "probe" | "reject" | null, "transition": [from, to, reason] | null}``.
With ``--wait-for KEY`` the peer pushes to ``KEY:ready`` and waits for a token on KEY before
it starts, so a test can start several processes at the same moment.

It uses RedisBreakerStore directly: the breaker modules read Django settings only in
BreakerConfig.from_settings() and breaker_store(), neither of which is called here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = {
    "failures": 3, "failure_rate": 0.5, "min_requests": 10, "window_seconds": 10,
    "recovery_seconds": 5, "probe_timeout": 2,
}  # fmt: skip


def _line(decision: object, transition: object) -> str:
    return json.dumps(
        {
            "decision": None if decision is None else str(decision),
            "transition": None
            if transition is None
            else [transition.from_state, transition.to_state, transition.reason],
        }
    )


async def run(args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis

    from aigateway.gateway.breaker import BreakerConfig
    from aigateway.gateway.breaker_redis import RedisBreakerStore

    cfg = BreakerConfig(**json.loads(args.config))
    # No socket timeout: BLPOP below blocks for as long as the other peers take to start.
    client = aioredis.Redis.from_url(args.redis_url, socket_connect_timeout=10)
    try:
        store = RedisBreakerStore(client)
        if args.wait_for:
            await client.rpush(f"{args.wait_for}:ready", 1)
            if await client.blpop([args.wait_for], timeout=60) is None:
                raise SystemExit("no start signal")
        if args.action == "allow":
            results = await asyncio.gather(
                *(store.allow(args.deployment_id, args.now, cfg) for _ in range(args.count))
            )
            lines = [_line(decision, transition) for decision, transition in results]
        else:
            lines = []
            for _ in range(args.count):
                ok = args.action == "ok"
                transition = await store.record(args.deployment_id, args.now, ok, cfg)
                lines.append(_line(None, transition))
        print("\n".join(lines), flush=True)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("redis_url")
    parser.add_argument("deployment_id", type=int)
    parser.add_argument("action", choices=["fail", "ok", "allow"])
    parser.add_argument("count", type=int, nargs="?", default=1)
    parser.add_argument("--now", type=float, default=100.0)
    parser.add_argument("--config", default=json.dumps(DEFAULT_CONFIG))
    parser.add_argument("--wait-for", default="")
    args = parser.parse_args()
    if str(ROOT) not in sys.path:  # run as a script, sys.path[0] is tests/gateway
        sys.path.insert(0, str(ROOT))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
