"""The comparison's markdown: one table of absolute numbers and ratios, the machine, versions,
date and command; written between markers in docs/benchmarks.md (or to a file)."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import Result, Scenario
from bench.targets import version_of

START, END = "<!-- bench-compare:start -->", "<!-- bench-compare:end -->"
COLUMNS = (("direct", "direct (fake upstream)"), ("ours", "ours"), ("litellm", "LiteLLM"))


@dataclass(frozen=True)
class Row:
    label: str
    value: Callable[[Result], float]
    digits: int = 1
    added: bool = False  # shown as the difference to the direct column
    ratio: bool = True


def _stream(key: str) -> Callable[[Result], float]:
    return lambda r: r.stream.get(key, 0.0)


RPS = Row("req/s", lambda r: r.rps, 0)
P50 = Row("p50 ms", lambda r: r.p50_ms, 2)
P99 = Row("p99 ms", lambda r: r.p99_ms, 2)
CPU = Row("**CPU ms / request** (target's processes)", lambda r: r.cpu_ms_per_request, 2)
ERRORS = Row("errors", lambda r: r.errors, 0, ratio=False)
STREAM_ROWS = (
    Row("streams/s", lambda r: r.rps, 1),
    Row("TTFT p50 ms", _stream("ttft_p50_ms"), 1),
    Row("TTFT p99 ms", _stream("ttft_p99_ms"), 1),
    Row("total p50 ms", _stream("total_p50_ms"), 1),
    Row("total p99 ms", _stream("total_p99_ms"), 1),
    Row("inter-chunk gap at the client p50 (p10) ms", _stream("gap_p50_ms"), 1),
    Row("first→last chunk spread p50 ms (490 = no buffering)", _stream("spread_p50_ms"), 0),
    Row("**CPU ms / stream** (target's processes)", lambda r: r.cpu_ms_per_request, 1),
    ERRORS,
)
ROWS: dict[str, tuple[Row, ...]] = {
    "S0": (P50, Row("added latency vs direct, p50 ms", lambda r: r.p50_ms, 2, True), CPU),
    "S1": (
        RPS,
        P50,
        P99,
        Row("overhead: p50 - direct p50, ms", lambda r: r.p50_ms, 2, True),
        CPU,
        ERRORS,
    ),
    "S2": (RPS, P50, P99, ERRORS, CPU),
    "S3-1": STREAM_ROWS,
    "S3": STREAM_ROWS,
    "S4-1": (RPS, P50, P99, CPU),
    "S4": (RPS, P50, P99, CPU),
}


def fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def cell(row: Row, result: Result | None, direct: Result | None) -> float | None:
    if result is None:
        return None
    value = row.value(result)
    if row.added:
        return None if direct is None else value - row.value(direct)
    return value


def main_table(chosen: list[Scenario], medians: dict[tuple[str, str], Result]) -> list[str]:
    head = [name for _, name in COLUMNS]
    lines = ["| scenario | metric | " + " | ".join(head) + " | ours / direct | ours / LiteLLM |",
             "|---|---|" + "---:|" * (len(head) + 2)]  # fmt: skip
    for scenario in chosen:
        first = True
        for row in ROWS.get(scenario.key, ()):
            direct = medians.get((scenario.key, "direct"))
            values = [cell(row, medians.get((scenario.key, key)), direct) for key, _ in COLUMNS]
            shown = [fmt(v, row.digits) for v in values]
            if row.label.startswith("inter-chunk"):
                shown = [f"{s} ({fmt(medians[(scenario.key, k)].stream['gap_p10_ms'], 1)})"
                         if (scenario.key, k) in medians else s
                         for s, (k, _) in zip(shown, COLUMNS, strict=True)]  # fmt: skip
            ratios = ["-", "-"]
            if row.ratio and not row.added:
                ratios = [ratio(values[1], values[0]), ratio(values[1], values[2])]
            elif row.added:
                ratios = ["-", ratio(values[1], values[2])]
            name = f"**{scenario.key}** {scenario.title}" if first else ""
            lines.append(f"| {name} | {row.label} | " + " | ".join(shown + ratios) + " |")
            first = False
    return lines


def limits_table(medians: dict[tuple[str, str], Result]) -> list[str]:
    on, off = medians.get(("S5", "ours")), medians.get(("S5", "ours, limits off"))
    if on is None or off is None:
        return []
    lines = ["**S5** Rate limits and audit on (the production configuration of `make bench-serve`,"
             " so S1 *is* S5) against the same gateway with a key whose organisation, team and"
             " key have no limits (audit logging cannot be switched off):", "",
             "| ours, 16 connections, instant | limits + audit on | limits off, audit on"
             " | on / off |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for row in (RPS, P50, P99, CPU):
        a, b = row.value(on), row.value(off)
        shown = f"{fmt(a, row.digits)} | {fmt(b, row.digits)} | {ratio(a, b)}"
        lines.append(f"| {row.label} | {shown} |")
    return lines


def versions(litellm_venv: Path | None) -> dict[str, str]:
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                           check=False)  # fmt: skip
    found = re.search(r"v=(\S+)", redis.stdout)
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    return {
        "machine": f"{os.cpu_count()} CPUs, {cpu.group(1).strip() if cpu else platform.machine()}",
        "python": platform.python_version(),
        "uvicorn": version_of(sys.executable, "uvicorn"),
        "litellm": (
            version_of(litellm_venv / "bin" / "python", "litellm") if litellm_venv else "-"
        ),
        "wrk": (wrk.stdout + wrk.stderr).split("[")[0].replace("wrk", "").strip() or "?",
        "redis": found.group(1) if found else "?",
    }


def span(shares: list[float]) -> str:
    return f"{min(shares):.0%}-{max(shares):.0%}" if shares else "not run"


def render(
    chosen: list[Scenario],
    medians: dict[tuple[str, str], Result],
    args: argparse.Namespace,
    info: dict[str, str],
    command: str,
    notes: list[str],
    idle: dict[str, float],
) -> str:
    wrk = [r.loadgen_cpu for r in medians.values() if not r.stream]
    client = [r.loadgen_cpu for r in medians.values() if r.stream]
    usage_missing = sum(r.stream.get("without_usage", 0) for r in medians.values())
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {date} on {info['machine']}; Python {info['python']}, uvicorn "
        f"{info['uvicorn']}, LiteLLM {info['litellm']}, wrk {info['wrk']}, Redis {info['redis']}.",
        f"Command: `{command}` ({args.rounds} rounds of {args.seconds:g} s per scenario and "
        f"target, interleaved; medians of the rounds; errors summed).",
        "",
        *main_table(chosen, medians),
        "",
        *limits_table(medians),
        "",
        f"Load generators pinned to CPU 1 (`taskset -c 1`), their own CPU: wrk "
        f"{span(wrk)} of a core, the stream client (bench/stream_client.py, S3) {span(client)}. "
        "CPU ms / request: utime + stime of the target's whole process tree (uvicorn's or "
        "LiteLLM's parent and worker processes; for *direct*, the fake upstream itself) "
        "over the run, divided by the calls completed. Idle (no requests, 5 s from 3 s after "
        "the warm-up, once its usage and audit rows are written), the same process trees used "
        + ", ".join(f"{name} {share:.1%}" for name, share in idle.items())
        + " of a core: part of every run's CPU, which matters only for S3-1's few streams.",
    ]
    if not any(key == "litellm" for _, key in medians):
        lines.append("LiteLLM was not measured (no venv at --litellm, or --no-litellm).")
    lines.extend(notes)
    if usage_missing:
        lines.append(f"**{usage_missing:.0f} streams ended without a usage chunk.**")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Replace the text between the markers, or write the whole file when it has none."""
    block = f"{START}\n{text}{END}"
    old = path.read_text() if path.exists() else ""
    if START in old and END in old:
        before, rest = old.split(START, 1)
        new = before + block + rest.split(END, 1)[1]
    else:
        new = block + "\n"
    path.write_text(new)
