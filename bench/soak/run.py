"""The soak: a steady load on the production-like gateway for minutes, sampled every window.

Starts the fake upstream (bench/fake_upstream.py) and the gateway through bench/serve.sh
(uvicorn, WORKERS processes, Redis, DEBUG off) with bench/soak/soak.yaml: rate limits, the
exact cache and audit on. The load comes from a process of its own (bench/soak/load.py) at a
fixed rate; for each of its windows this process adds the RSS of every gateway worker (from
/proc) and writes a CSV row. At the end: the gateway is stopped with SIGTERM (its buffers
flush), the records are checked against the answers (bench/soak/records.py), and the chart
(SVG), the CSV and a markdown summary with the trend verdict are written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import targets
from bench.soak import output
from bench.soak.summary import summary
from bench.targets import ROOT, Target

SOAK_KEY = "agw-soakload-00000000000000000000000000"
LIMITED_KEY = "agw-soaklim-000000000000000000000000000"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per sample")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--port", type=int, default=18101, help="the gateway's")
    parser.add_argument("--upstream-port", type=int, default=18100)
    parser.add_argument("--limited-rpm", type=int, default=60, help="the limited key's limit")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--database-url", default="",
                        help="the gateway's (default: a SQLite file in the logs dir)")  # fmt: skip
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs",
                        help="soak.csv and soak.svg go here")  # fmt: skip
    parser.add_argument("--summary", type=Path, help="also write the markdown summary here")
    parser.add_argument("--replot", type=Path, metavar="CSV",
                        help="only redraw soak.svg from a soak.csv (same --rate etc.)")  # fmt: skip
    return parser.parse_args(argv)


def worker_pids(root: int) -> list[int]:
    """uvicorn's worker processes: the children of its supervisor (not multiprocessing's
    resource tracker)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == root and b"resource_tracker" not in cmdline:
            pids.append(int(entry))
    return sorted(pids)


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def start_servers(args: argparse.Namespace, logs: Path) -> tuple[Target, Target]:
    for port in (args.port, args.upstream_port):
        if not targets.port_free(port):
            raise SystemExit(f"port {port} is in use (see --port / --upstream-port)")
    log = logs / "fake_upstream.log"
    cmd = [sys.executable, "-m", "bench.fake_upstream", "--port", str(args.upstream_port)]
    upstream = Target("upstream", f"http://127.0.0.1:{args.upstream_port}", "sk-fake",
                      {"instant": "gpt-4o-mini"}, targets.start(cmd, log))  # fmt: skip
    targets.wait_ready(upstream, log, 30)
    config = logs / "soak.yaml"
    template = (Path(__file__).parent / "soak.yaml").read_text()
    config.write_text(template.format(upstream_port=args.upstream_port,
                                      limited_rpm=args.limited_rpm))  # fmt: skip
    env = dict(os.environ, PORT=str(args.port), WORKERS=str(args.workers), REDIS_URL=args.redis,
               BENCH_KEY=SOAK_KEY, SOAK_LIMITED_KEY=LIMITED_KEY, GATEWAY_CONFIG=str(config),
               DATABASE_URL=args.database_url or f"sqlite:///{logs / 'soak.sqlite3'}",
               PY=sys.executable)  # fmt: skip
    log = logs / "gateway.log"
    process = targets.start(["bash", "bench/serve.sh"], log, env)
    gateway = Target("gateway", f"http://127.0.0.1:{args.port}", SOAK_KEY,
                     {"instant": "gpt-4o-mini"}, process)  # fmt: skip
    targets.wait_ready(gateway, log)
    return upstream, gateway


Row = dict[str, Any]


def drive(args: argparse.Namespace, gateway: Target, logs: Path) -> tuple[list[Row], Row]:
    """Run the load process; one row per window with the workers' RSS added."""
    assert gateway.process is not None
    workers = worker_pids(gateway.process.pid)
    print(f"gateway workers {workers}; load {args.rate:g} req/s for {args.minutes:g} min",
          file=sys.stderr, flush=True)  # fmt: skip
    cmd = [sys.executable, "-m", "bench.soak.load", "--url", gateway.base_url, "--key", SOAK_KEY,
           "--limited-key", LIMITED_KEY, "--rate", str(args.rate),
           "--seconds", str(args.minutes * 60), "--window", str(args.window),
           "--ids", str(logs / "ids.txt")]  # fmt: skip
    rows: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as load:
        assert load.stdout is not None
        for text in load.stdout:
            line = json.loads(text)
            if line.get("final"):
                final = line
                continue
            if line["sent"] == 0:
                continue  # the drain after the last send: not a window of the steady load
            now = worker_pids(gateway.process.pid)
            line["worker_pids"] = now
            line["rss_mib"] = [rss_mib(pid) for pid in workers]
            line["workers_replaced"] = sorted(set(workers) - set(now))
            rows.append(line)
            print(f"{line['t']:6.0f} s  sent {line['sent']:5d} ok {line['ok']:5d} "
                  f"429 {line['rate_limited']:4d} errors {sum(line['errors'].values()):3d} "
                  f"p50 {line['p50_ms'] or 0:7.1f} p99 {line['p99_ms'] or 0:7.1f} ms  RSS "
                  + " ".join(f"{r or 0:.1f}" for r in line["rss_mib"]) + " MiB",
                  file=sys.stderr, flush=True)  # fmt: skip
    if load.returncode != 0 or not final:
        raise SystemExit(f"the load process failed ({load.returncode})")
    return rows, final


def check_records(database_url: str, logs: Path) -> dict[str, Any]:
    env = dict(os.environ, DATABASE_URL=database_url)
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak.records", str(logs / "ids.txt")],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        return {"error": result.stderr[-2000:]}
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.replot:
        (args.out_dir / "soak.svg").write_text(output.plot(args.replot, args))
        return
    command = "python -m bench.soak " + shlex.join(sys.argv[1:] if argv is None else argv)
    logs = Path(tempfile.mkdtemp(prefix="aigw-soak-"))
    database_url = args.database_url or f"sqlite:///{logs / 'soak.sqlite3'}"
    print(f"soak: logs in {logs}", file=sys.stderr, flush=True)
    started: list[Target] = []
    try:
        upstream, gateway = start_servers(args, logs)
        started += [upstream, gateway]
        rows, final = drive(args, gateway, logs)
        stop_started = time.monotonic()
        targets.stop(gateway)  # SIGTERM: in-flight calls finish, buffers flush
        stop_seconds = time.monotonic() - stop_started
    finally:
        for target in reversed(started):
            targets.stop(target)
    records = check_records(database_url, logs)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    output.write_csv(args.out_dir / "soak.csv", rows, args.workers)
    (args.out_dir / "soak.svg").write_text(output.plot(args.out_dir / "soak.csv", args))
    text, flat = summary(
        command=command, args=args, rows=rows, final=final, records=records,
        stop_seconds=stop_seconds, machine=f"{platform.node()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at the end",
    )  # fmt: skip
    print(text)
    if args.summary:
        args.summary.write_text(text)
    sys.exit(0 if flat and not records.get("error") else 1)


if __name__ == "__main__":
    main()
