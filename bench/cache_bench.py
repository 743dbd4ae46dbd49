"""Cache benchmarks: exact-hit latency through the gateway, semantic lookup at 10k / 100k /
1M entries, embedding cost per prompt, memory per 100k entries.

    .venv/bin/python -m bench.cache_bench [--seconds 8]

The exact-hit run starts one uvicorn worker (CPU 0, Redis on) and wrk on CPU 1 with one
connection sending the same deterministic request, so every request after the first is a
HIT; it also runs the same request with `Cache-Control: no-cache` (the demo provider answers
instantly, so the difference is the cache's cost against the pipeline's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.limits_throughput import bench_gateway, wrk  # noqa: E402


def semantic_lookups() -> None:
    from aigateway.caching.semantic import NamespaceIndex

    rng = np.random.default_rng(1)
    query = rng.normal(size=384).astype(np.float32)
    query /= np.linalg.norm(query)
    print("entries    lookup p50   lookup p99   matrix MiB")
    for size in (10_000, 100_000, 1_000_000):
        index = NamespaceIndex()
        data = rng.normal(size=(size, 384)).astype(np.float32)
        data /= np.linalg.norm(data, axis=1, keepdims=True)
        index.data, index.ids = data, [str(i) for i in range(size)]
        index.order = list(range(size))
        samples = []
        for _ in range(50 if size >= 1_000_000 else 200):
            started = time.perf_counter()
            index.search(query)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        p99 = samples[int(len(samples) * 0.99) - 1]
        mib = index.matrix.nbytes / 2**20
        print(f"{size:>9}  {statistics.median(samples):8.2f} ms  {p99:8.2f} ms  {mib:9.1f}")
        del index, data


def embedding_cost() -> None:
    from aigateway.caching.embedder import LocalEmbedder

    embedder = LocalEmbedder()
    embedder.embed_one("warm up")
    samples = []
    for n in range(200):
        started = time.perf_counter()
        embedder.embed_one(f"How do I reverse a list in Python? ({n})")
        samples.append((time.perf_counter() - started) * 1000)
    print(f"embedding one short prompt: p50 {statistics.median(samples):.2f} ms")


def exact_hits(seconds: int, port: int, redis_url: str) -> None:
    with bench_gateway(port, redis_url) as env:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        lua = "bench/cached.lua"
        wrk(url, 2, env, 1, lua)
        hit = wrk(url, seconds, env, 1, lua)
        miss = wrk(url, seconds, env, 1, "bench/chat.lua")
    print("one connection      req/s   p50 ms")
    print(f"exact cache HIT   {hit[0]:7.0f}  {hit[1]:7.3f}")
    print(f"no cache (demo)   {miss[0]:7.0f}  {miss[1]:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--port", type=int, default=8793)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"))
    args = parser.parse_args()
    exact_hits(args.seconds, args.port, args.redis)
    embedding_cost()
    semantic_lookups()


if __name__ == "__main__":
    main()
