"""The soak's markdown summary: totals, records check, RSS verdict, p99 drift."""

from __future__ import annotations

import argparse
from typing import Any

from bench.soak import analysis


def summary(
    *,
    command: str,
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    final: dict[str, Any],
    records: dict[str, Any],
    stop_seconds: float,
    machine: str,
) -> tuple[str, bool]:
    """The markdown, and whether every worker's RSS stayed flat."""
    ts = [float(r["t"]) for r in rows]
    workers = len(rows[0]["rss_mib"]) if rows else 0
    rss = {f"worker {i + 1}": [r["rss_mib"][i] or 0.0 for r in rows] for i in range(workers)}
    trends = analysis.rss_verdicts(ts, rss)
    p99_line, p99_first, p99_last = analysis.p99_drift(ts, [r["p99_ms"] for r in rows])
    errors = final["errors"]
    error_rate = sum(errors.values()) / final["sent"] if final["sent"] else 0.0
    replaced = sorted({pid for r in rows for pid in r["workers_replaced"]})
    lines = [
        f"Command: `{command}` (logs and the gateway's database in a temp directory).",
        f"Machine: {machine}. The machine is shared with other jobs: latency numbers are noisy; "
        "the RSS trend is the result that matters.",
        "",
        "| | |",
        "|---|---|",
        f"| requests sent | {final['sent']} ({args.rate:g}/s for {final['t']:.0f} s) |",
        f"| succeeded (200) | {final['ok']} (streams completed: {final['streams_ok']}) |",
        f"| refused by the rate limit (429, limited key) | {final['rate_limited']} |",
        f"| failed | {sum(errors.values())} ({_kinds(errors)}); error rate {error_rate:.4%} |",
        f"| cached route answers | {_kinds(final['cache'])} |",
        f"| latency of non-streamed 200s, whole run | p50 {final['p50_ms']} ms, "
        f"p99 {final['p99_ms']} ms; stream TTFT p99 {final['ttft_p99_ms']} ms |",
        f"| p99 per window | median {p99_first:.1f} ms in the first third (after warm-up), "
        f"{p99_last:.1f} ms in the last third; second-half slope "
        f"{p99_line.slope_per_s * 60:+.2f} ms/min |",
        f"| worst load-generator lag | {max((r['lag_ms'] for r in rows), default=0):.0f} ms |",
        f"| gateway workers replaced during the run | {len(replaced)} |",
        f"| graceful stop (SIGTERM to exit) | {stop_seconds:.1f} s |",
    ]
    for name, trend in trends.items():
        lines.append(
            f"| RSS {name}, second half | mean {trend.mean:.1f} MiB, fitted change "
            f"{trend.change:+.2f} MiB over {trend.span_s:.0f} s ({trend.share:+.2%}; "
            f"{trend.per_hour:+.1f} MiB/h extrapolated) |"
        )
    verdict = "flat" if analysis.flat(trends) else "GROWING"
    lines += ["", f"RSS verdict: **{verdict}** (each worker's fitted change over the second "
              f"half within +-{analysis.FLAT_WITHIN:.0%} of its mean)."]  # fmt: skip
    lines += ["", _records(records)]
    return "\n".join(lines) + "\n", analysis.flat(trends)


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _records(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"Records check failed to run: {r['error']}"
    exact = r["usage_matched"] == r["expected"] == r["audit_matched"]
    return (
        f"Records (after the gateway's graceful stop): expected {r['expected']} (one per answered "
        f"call: {_kinds(r['expected_by_status'])}); usage rows matching by request id and status "
        f"{r['usage_matched']}, api.call audit entries matching {r['audit_matched']}"
        f" — **{'exact' if exact else 'MISMATCH'}**. Rows for calls the load did not make "
        f"(the harness's readiness probes): usage {r['usage_rows_for_unanswered_calls']}, audit "
        f"{r['audit_entries_for_unanswered_calls']}. Missing: usage {r['missing_usage']}, audit "
        f"{r['missing_audit']}; wrong status {r['wrong_status']}; audited twice {r['audit_twice']}."
    )
