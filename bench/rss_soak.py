"""Memory under S1 load: RSS per worker over a long run of S1 (`make soak-rss`).

    python -m bench.rss_soak [--minutes 10] [--window 10] [--workers 2] [--port 18090]
                             [--postgres postgres://postgres@127.0.0.1:5432]

The fake upstream and the production-like gateway (bench/serve.sh: limits and audit on),
then S1 back to back (wrk, 16 connections, instant upstream, as fast as the gateway goes)
in windows of ``--window`` seconds; after each window every worker's RSS is read from /proc.
The verdict is the soak's (bench/soak/analysis.py): a least-squares line through each
worker's RSS over the second half (the first holds warm-up) must change by at most 10 % of
its mean. After each window it also counts the usage and audit rows in the gateway's
database against the calls completed so far: a write-behind buffer that falls behind grows
the worker's RSS (the buffers hold up to 200,000 records), so the lag is printed with it.
Prints one line per window and a markdown summary; ``--csv`` keeps the samples.
(`make soak` is the other soak: a fixed 100 req/s open-loop mix of streams, cache hits and
429s for 10 minutes; this one is the highest load the gateway sustains.)
"""

from __future__ import annotations

import argparse
import csv
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from bench.scenarios import SCENARIOS, run_once
from bench.soak.analysis import flat, rss_verdicts
from bench.soak.run import rss_mib, worker_pids
from bench.targets import start_ours, start_upstream, stop

S1 = next(s for s in SCENARIOS if s.key == "S1")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per sample")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18090, help="the gateway's")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--csv", type=Path, help="write the samples here")
    parser.add_argument("--postgres", default="", metavar="SERVER_URL",
                        help="run the gateway on a scratch database created on this "
                        "PostgreSQL server and dropped after (postgres://user@host:port); "
                        "default: a new SQLite file, as make run")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="aigateway-rss-soak-"))
    upstream = gateway = None
    scratch = ""  # a PostgreSQL database of this run's own
    rows: list[dict[str, float]] = []
    try:
        upstream = start_upstream(logs)
        database = str(logs / "bench.sqlite3")
        if args.postgres:
            database = scratch = create_postgres(args.postgres)
        gateway, _ = start_ours(logs, args.port, args.redis, args.workers, scratch)
        assert gateway.process is not None
        workers = worker_pids(gateway.process.pid)
        warm_up = run_once(gateway, S1, 5, logs)  # not sampled
        # Non-2xx answers are recorded too; wrk's socket errors may never reach the gateway.
        calls = warm_up.requests + warm_up.answered_errors
        started = time.monotonic()
        while time.monotonic() - started < args.minutes * 60:
            result = run_once(gateway, S1, args.window, logs)
            calls += result.requests + result.answered_errors
            row = {"t": round(time.monotonic() - started, 1), "rps": round(result.rps, 1),
                   "errors": result.errors, "p99_ms": result.p99_ms}  # fmt: skip
            for i, pid in enumerate(workers):
                row[f"rss_mib_{i}"] = round(rss_mib(pid) or 0.0, 2)
            usage, audit = records(database)
            row["usage_lag"], row["audit_lag"] = max(0, calls - usage), max(0, calls - audit)
            rows.append(row)
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        caught_up = wait_for_records(database, calls)
    finally:
        stop(gateway)
        stop(upstream)
        if scratch:
            drop_postgres(scratch)
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print(summary(rows, calls, caught_up))


def records(database: str | Path) -> tuple[int, int]:
    """Usage rows and API-call audit rows written so far (read-only; the writers go on).
    ``database``: a SQLite file, or a postgres:// URL."""
    queries = ("SELECT count(*) FROM usage_usagerecord",
               "SELECT count(*) FROM audit_auditevent WHERE action = 'api.call'")  # fmt: skip
    if str(database).startswith(("postgres://", "postgresql://")):
        import psycopg

        with psycopg.connect(str(database), connect_timeout=10) as pg:
            usage, audit = (pg.execute(q).fetchone()[0] for q in queries)  # type: ignore[index]
        return usage, audit
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as db:
        usage, audit = (db.execute(q).fetchone()[0] for q in queries)
    return usage, audit


def create_postgres(server_url: str) -> str:
    """A new, empty database on the server; its URL."""
    import psycopg

    name = f"aigateway_rss_soak_{secrets.token_hex(4)}"
    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as pg:
        pg.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url.rstrip('/')}/{name}"


def drop_postgres(database_url: str) -> None:
    import psycopg

    server, name = database_url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as pg:
        pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for_records(database: str | Path, calls: int, timeout: float = 60.0) -> float | None:
    """Seconds after the load until every completed call has its usage and audit row
    (wrk's count misses the calls in flight when it stops: a few more rows than calls)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if min(records(database)) >= calls:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def summary(rows: list[dict[str, float]], calls: int, caught_up: float | None) -> str:
    ts = [r["t"] for r in rows]
    names = [k for k in rows[0] if k.startswith("rss_mib_")]
    trends = rss_verdicts(ts, {n: [r[n] for r in rows] for n in names})
    requests = sum(r["rps"] for r in rows) * (ts[1] - ts[0] if len(ts) > 1 else 1)
    lines = [
        f"S1 load for {ts[-1] / 60:.1f} min: ~{requests:,.0f} calls, median "
        f"{statistics.median(r['rps'] for r in rows):,.0f} req/s, "
        f"{sum(int(r['errors']) for r in rows)} errors.",
        "",
        "| worker | RSS first sample MiB | RSS last MiB | second-half trend | verdict |",
        "|---|---:|---:|---:|---|",
    ]
    for n in names:
        trend = trends[n]
        lines.append(
            f"| {n.removeprefix('rss_mib_')} | {rows[0][n]:.1f} | {rows[-1][n]:.1f} | "
            f"{trend.share * 100:+.2f} % | {'flat' if abs(trend.share) <= 0.10 else 'GROWS'} |"
        )
    lag = max(max(r["usage_lag"], r["audit_lag"]) for r in rows)
    written = (
        f"all written {caught_up:.1f} s after the load"
        if caught_up is not None
        else "NOT all written 60 s after the load"
    )
    lines.append(
        f"\nUsage and audit records: {calls:,} calls completed, {written}; the largest lag "
        f"after a window was {lag:,.0f} records (by design up to about one flush interval's "
        "calls wait in the buffers: 1 s at this rate)."
    )
    lines.append(f"\nRSS flat within ±10 %: {'yes' if flat(trends) else 'NO'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
