"""Cost of auditing an API call: on the request path, and in the background flush.

    .venv/bin/python -m bench.audit_cost [--n 20000] [--flush 2000]

Request path: ``audit_api_call(ctx, entry, outcome)`` exactly as ``pipeline._record`` calls
it, inside a running event loop (so the flusher check runs too), per call, wall time.
Background: ``audit_writer.flush()`` of ``--flush`` buffered entries (JSON details, the
decision trace's ``as_dict``, SHA-256 chaining, one bulk INSERT per batch under the chain
head lock), per entry, on the database of DATABASE_URL (default: the local SQLite file; it
must be migrated). The flush runs inside a transaction that is rolled back: nothing stays.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")
os.environ.setdefault("AIGATEWAY_ALLOW_INSECURE_DEFAULTS", "true")
os.environ.setdefault("AIGATEWAY_AUDIT_FLUSH_SECONDS", "3600")  # no flush while timing

import django

django.setup()

from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from aigateway.audit.writer import audit_api_call, audit_writer  # noqa: E402
from aigateway.gateway.pipeline import CallContext, CallOutcome  # noqa: E402
from aigateway.gateway.principal import Principal  # noqa: E402
from aigateway.usage.recorder import UsageEntry  # noqa: E402


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def a_call(i: int) -> tuple[CallContext, UsageEntry, CallOutcome]:
    principal = Principal(organisation_id=1, team_id=2, allowed_routes=frozenset({"gpt-4o"}),
                          api_key_id=3, key_prefix="agw-abc")  # fmt: skip
    ctx = CallContext(request_id=f"req_bench_{i}", principal=principal)
    entry = UsageEntry(
        request_id=ctx.request_id, created_at=timezone.now(), source="api", status_code=200,
        organisation_id=1, team_id=2, api_key_id=3, key_prefix="agw-abc", route="gpt-4o",
        provider="openai", deployment_id=4, upstream_model="gpt-4o-2024-08-06",
        input_tokens=812, output_tokens=256, cost_usd=Decimal("0.00459"), latency_ms=431.2,
        cache_status="MISS",
    )  # fmt: skip
    return ctx, entry, CallOutcome()


async def request_path(n: int) -> list[float]:
    calls = [a_call(i) for i in range(n)]
    samples = []
    for ctx, entry, outcome in calls:
        started = time.perf_counter()
        audit_api_call(ctx, entry, outcome)
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


class _Rollback(Exception):
    pass


def flush_cost(n: int) -> float:
    audit_writer.clear()
    for i in range(n):
        ctx, entry, outcome = a_call(i)
        audit_api_call(ctx, entry, outcome)
    started = time.perf_counter()
    try:
        with transaction.atomic():
            written = audit_writer.flush()
            elapsed = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        pass
    assert written == n, written
    return elapsed * 1e6 / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--flush", type=int, default=2_000, help="0: skip the flush part")
    args = parser.parse_args()
    asyncio.run(request_path(1000))  # warm up
    audit_writer.clear()
    samples = asyncio.run(request_path(args.n))
    audit_writer.clear()
    print(
        f"request path, audit_api_call: p50 {statistics.median(samples):.2f} µs, "
        f"p99 {percentile(samples, 99):.2f} µs, mean {statistics.fmean(samples):.2f} µs "
        f"({args.n} calls)"
    )
    if args.flush:
        per_entry = flush_cost(args.flush)
        print(f"background flush: {per_entry:.1f} µs per entry ({args.flush} entries, "
              f"batches of {django.conf.settings.AIGATEWAY_AUDIT_FLUSH_BATCH})")  # fmt: skip


if __name__ == "__main__":
    main()
