"""The soak's files: one CSV row per window, and the chart drawn from that CSV."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

from bench.soak.chart import Panel, chart


def write_csv(path: Path, rows: list[dict[str, Any]], workers: int) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["t_s", "sent", "ok", "rate_limited", "errors", "errors_by_kind",
                         "cache_hit", "cache_miss", "streams_ok", "p50_ms", "p99_ms",
                         "stream_ttft_p99_ms", "loadgen_lag_ms",
                         *[f"rss_mib_worker{i + 1}" for i in range(workers)]])  # fmt: skip
        for r in rows:
            writer.writerow([r["t"], r["sent"], r["ok"], r["rate_limited"],
                             sum(r["errors"].values()),
                             ";".join(f"{k}:{v}" for k, v in sorted(r["errors"].items())),
                             r["cache"].get("HIT", 0), r["cache"].get("MISS", 0), r["streams_ok"],
                             r["p50_ms"], r["p99_ms"], r["ttft_p99_ms"], r["lag_ms"],
                             *[_mib(v) for v in r["rss_mib"]]])  # fmt: skip


def _mib(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else ""


def _number(text: str) -> float | None:
    return float(text) if text else None


def plot(csv_path: Path, args: argparse.Namespace) -> str:
    """The SVG: p99 and p50, RSS per worker, errors and 429s, over time."""
    with csv_path.open(newline="") as source:
        rows = [r for r in csv.DictReader(source) if r["sent"] != "0"]
    ts = [float(r["t_s"]) for r in rows]
    workers = sorted(k for k in rows[0] if k.startswith("rss_mib_worker")) if rows else []

    def column(name: str) -> list[float | None]:
        return [_number(r[name]) for r in rows]

    panels = [
        Panel("p99 and p50 latency of non-streamed 200s, per 10 s window", "ms",
              {"p99": column("p99_ms"), "p50": column("p50_ms")}),
        Panel("RSS per gateway worker", "MiB",
              {w.replace("rss_mib_worker", "worker "): column(w) for w in workers}),
        Panel("errors and 429s per window", "calls",
              {"errors": column("errors"), "429 (limited key)": column("rate_limited")}),
    ]  # fmt: skip
    title = (f"aigateway soak: {args.rate:g} req/s for {args.minutes:g} min, {args.workers} "
             "uvicorn workers, rate limits + exact cache + audit on")  # fmt: skip
    return chart(ts, panels, title)
