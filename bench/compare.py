"""The comparison of issue "Performance": the fake upstream directly, our gateway
(production-like, bench/serve.sh) and LiteLLM proxy, scenarios S0-S5, interleaved by round.

    make bench-compare                      # or: .venv/bin/python -m bench.compare
    .venv/bin/python -m bench.compare --seconds 5 --rounds 2 --litellm /work/litellm-venv

Round 1 runs every scenario against every target, then round 2 again, and so on; the report
shows the median of the rounds, so ratios hold on a noisy machine. The markdown table is
printed and written between the markers in docs/benchmarks.md (or to --out).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import report, scenarios, targets
from bench.scenarios import SCENARIOS, Result, Scenario
from bench.targets import ROOT, Target


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario and target")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per scenario/target")
    parser.add_argument("--litellm", type=Path, default=Path("/work/litellm-venv"),
                        help="LiteLLM proxy's venv; its column is skipped if absent")  # fmt: skip
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM")
    parser.add_argument("--scenarios", default="S0,S1,S2,S3-1,S3,S4-1,S4,S5")
    parser.add_argument("--ours-port", type=int, default=18080)
    parser.add_argument("--litellm-port", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2, help="of our gateway and LiteLLM")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="our gateway's")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="replace the section between the bench-compare markers there "
                        "(or write the whole file if it has none)")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def idle_cpu(
    columns: dict[str, Target], seconds: float = 5.0, settle: float = 3.0
) -> dict[str, float]:
    """Each server's CPU while nobody calls it (timers, flush loops), a fraction of a core.
    Measured ``settle`` seconds after the last call, once the warm-up's usage and audit
    rows are written (they are flushed every second): that writing is the calls' cost,
    and counting it here put ours at 3-8 % of a core idle instead of ~1 %."""
    servers = {name: columns[name] for name in ("direct", "ours", "litellm") if name in columns}
    time.sleep(settle)
    before = {name: t.cpu_seconds() for name, t in servers.items()}
    time.sleep(seconds)
    return {name: (t.cpu_seconds() - before[name]) / seconds for name, t in servers.items()}


def measure(
    chosen: list[Scenario], columns: dict[str, Target], args: argparse.Namespace, scratch: Path
) -> tuple[dict[tuple[str, str], list[Result]], dict[str, float]]:
    runs: dict[tuple[str, str], list[Result]] = {}
    plan = [(s, columns[name]) for s in chosen for name in s.targets if name in columns]
    if args.warmup > 0:  # pools, caches (S4 fills its cache here), lazy imports
        for scenario, target in plan:
            scenarios.run_once(target, scenario, args.warmup, scratch)
    idle = idle_cpu(columns)
    for round_no in range(1, args.rounds + 1):
        for scenario, target in plan:
            result = scenarios.run_once(target, scenario, args.seconds, scratch)
            runs.setdefault((scenario.key, target.name), []).append(result)
            print(f"round {round_no} {scenario.key} {target.name:<17} {result.rps:8.1f} req/s "
                  f"p50 {result.p50_ms:8.2f} ms  CPU {result.cpu_ms_per_request:6.2f} ms/req "
                  f"errors {result.errors}", file=sys.stderr, flush=True)  # fmt: skip
            time.sleep(0.5)  # let usage/audit flushes of the run settle
    return runs, idle


def check_caches(chosen: list[Scenario], columns: dict[str, Target]) -> list[str]:
    """S4 measures cache hits only if the gateways really answer from their caches."""
    notes = []
    for scenario in (s for s in chosen if s.kind == "cached"):
        for name in ("ours", "litellm"):
            if name in columns and not scenarios.cache_hit_verified(columns[name], scenario):
                notes.append(f"**{scenario.key}: {name} did not answer a repeated call from its "
                             "cache: its S4 numbers are not cache hits.**")  # fmt: skip
    return notes


def median_result(results: list[Result]) -> Result:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    out = Result(
        requests=round(med([r.requests for r in results])),
        seconds=med([r.seconds for r in results]),
        rps=med([r.rps for r in results]),
        errors=sum(r.errors for r in results),
        p50_ms=med([r.p50_ms for r in results]),
        p99_ms=med([r.p99_ms for r in results]),
        cpu_ms_per_request=med([r.cpu_ms_per_request for r in results]),
        loadgen_cpu=med([r.loadgen_cpu for r in results]),
    )
    if results[0].stream:
        out.stream = {k: med([r.stream[k] for r in results]) for k in results[0].stream}
        out.stream["without_usage"] = sum(r.stream.get("without_usage", 0) for r in results)
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("bench-compare needs wrk: apt-get install wrk")
    chosen = [s for s in SCENARIOS if s.key in args.scenarios.split(",")]
    command = "python -m bench.compare " + shlex.join(sys.argv[1:] if argv is None else argv)
    logs = Path(tempfile.mkdtemp(prefix="aigw-bench-compare-"))
    started: list[Target] = []
    try:
        print(f"starting the fake upstream, our gateway and LiteLLM (logs: {logs})",
              file=sys.stderr, flush=True)  # fmt: skip
        direct = targets.start_upstream(logs)
        started.append(direct)
        ours, ours_off = targets.start_ours(logs, args.ours_port, args.redis, args.workers)
        started.append(ours)
        litellm = None
        if args.no_litellm:
            print("LiteLLM: skipped (--no-litellm)", file=sys.stderr)
        else:
            litellm = targets.start_litellm(logs, args.litellm, args.litellm_port, args.workers)
        if litellm:
            started.append(litellm)
        columns = {t.name: t for t in (direct, ours, ours_off, litellm) if t is not None}
        notes = check_caches(chosen, columns)
        runs, idle = measure(chosen, columns, args, logs)
    finally:
        for target in reversed(started):
            targets.stop(target)
    medians = {key: median_result(results) for key, results in runs.items()}
    versions = report.versions(args.litellm if litellm else None)
    text = report.render(chosen, medians, args, versions, command, notes, idle)
    print(text)
    if not args.no_write:
        report.write(args.out, text)
        print(f"written to {args.out}", file=sys.stderr)
    shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    main()
