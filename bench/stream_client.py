"""Streaming load for S3: N concurrent SSE chat completions, back to back, for a while.

    python -m bench.stream_client URL --key KEY --concurrency 32 --seconds 10 --body JSON

Prints one JSON object: completed streams, errors, and the medians (and p99) of the time to
first token (the first ``data:`` event), the total time (to ``data: [DONE]``), the gaps
between consecutive content events as they arrive here, and each stream's "spread" (last
content event minus first). A gateway that relays chunks as they arrive keeps the upstream's
rhythm (gaps ~ its chunk delay, spread ~ (chunks - 1) x delay); one that buffers shows gaps
near 0 and a spread near 0.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

# A chunk with text (not `"content": null`), and the chunk with usage (not `"usage": null`).
CONTENT = re.compile(rb'"content":\s*"')
USAGE = re.compile(rb'"usage":\s*\{')


@dataclass
class Stats:
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    spread: list[float] = field(default_factory=list)
    errors: int = 0
    without_usage: int = 0


async def one_stream(session: aiohttp.ClientSession, url: str, body: bytes, stats: Stats) -> None:
    started = time.perf_counter()
    first: float | None = None
    arrivals: list[float] = []
    usage = done = False
    try:
        async with session.post(url, data=body) as response:
            if response.status != 200:
                await response.read()
                stats.errors += 1
                return
            async for line in response.content:  # one SSE line at a time, as it arrives
                if not line.startswith(b"data:"):
                    continue
                now = time.perf_counter()
                if first is None:
                    first = now
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    break
                if CONTENT.search(payload):
                    arrivals.append(now)
                elif USAGE.search(payload):
                    usage = True
    except (TimeoutError, aiohttp.ClientError):
        stats.errors += 1
        return
    if not done or first is None:
        stats.errors += 1
        return
    ended = time.perf_counter()
    stats.ttft.append(first - started)
    stats.total.append(ended - started)
    stats.gaps.extend(b - a for a, b in itertools.pairwise(arrivals))
    stats.spread.append(arrivals[-1] - arrivals[0] if arrivals else 0.0)
    stats.without_usage += not usage


async def run(url: str, key: str, body: bytes, concurrency: int, seconds: float) -> dict[str, Any]:
    stats = Stats()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as s:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:  # streams in flight at the deadline finish
                await one_stream(s, url, body, stats)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return summary(stats, elapsed)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] * 1000


def summary(stats: Stats, elapsed: float) -> dict[str, Any]:
    return {
        "streams": len(stats.total),
        "seconds": elapsed,
        "errors": stats.errors,
        "without_usage": stats.without_usage,
        "ttft_p50_ms": percentile(stats.ttft, 50),
        "ttft_p99_ms": percentile(stats.ttft, 99),
        "total_p50_ms": percentile(stats.total, 50),
        "total_p99_ms": percentile(stats.total, 99),
        "gap_p50_ms": percentile(stats.gaps, 50),
        "gap_p10_ms": percentile(stats.gaps, 10),
        "spread_p50_ms": percentile(stats.spread, 50),
        "gap_mean_ms": statistics.fmean(stats.gaps) * 1000 if stats.gaps else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--key", default="")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--body", required=True, help="the request JSON (with stream: true)")
    args = parser.parse_args()
    body = json.dumps(json.loads(args.body)).encode()
    try:
        import uvloop

        result = uvloop.run(run(args.url, args.key, body, args.concurrency, args.seconds))
    except ImportError:
        result = asyncio.run(run(args.url, args.key, body, args.concurrency, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
