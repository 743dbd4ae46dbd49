"""Gateway throughput with rate limits off versus on (same run, interleaved).

    .venv/bin/python -m bench.limits_throughput [--seconds 10] [--rounds 2]

One uvicorn worker pinned to CPU 0 serves the demo route (instant, non-streaming) with Redis
on; wrk pinned to CPU 1 sends POSTs over 16 connections. "on" adds four limits that nobody
reaches (org rpm, team tpm, key rpm, key concurrency), so every request runs the full
limiter (one Lua script before, one after) without refusals.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "agw-bench-key-0000000000000000000000"
CONFIG = """version: 1
providers:
  - {name: demo, kind: demo}
routes:
  - name: demo
    deployments: [{provider: demo, model: demo}]
organisations:
  - slug: bench
    name: Bench
    teams:
      - slug: load
        name: Load
        routes: [demo]
        api_keys: [{name: bench, secret: env:AIGW_BENCH_KEY}]
"""
LIMITS_ON = (
    "from aigateway.quotas.models import Limit; from auth.models import ApiKey\n"
    "k = ApiKey.objects.get(name='bench')\n"
    "for scope, sid, kind in [('org', k.team.organisation_id, 'rpm'), ('team', k.team_id, 'tpm'),"
    " ('key', k.pk, 'rpm'), ('key', k.pk, 'concurrent')]:\n"
    "    Limit.objects.update_or_create(scope=scope, scope_id=sid, kind=kind,"
    " defaults={'value': 10**9})\n"
)
LIMITS_OFF = "from aigateway.quotas.models import Limit; Limit.objects.all().delete()\n"


def run(cmd: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def wrk(
    url: str,
    seconds: int,
    env: dict[str, str],
    connections: int = 16,
    script: str = "bench/chat.lua",
) -> tuple[float, float, float]:
    started_cpu = os.times()
    out = run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", script, url],
        env,
    ).stdout  # fmt: skip
    cpu = os.times()
    wrk_cpu = (cpu.children_user + cpu.children_system) - (
        started_cpu.children_user + started_cpu.children_system
    )
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} errors:\n{out}")
    return rps, float(p50.group(1)) * scale, wrk_cpu / seconds  # type: ignore[union-attr]


@contextmanager
def bench_gateway(port: int, redis_url: str) -> Iterator[dict[str, str]]:
    """A throwaway database with the bench config applied, and one uvicorn worker pinned to
    CPU 0 serving it until the block ends. Yields the environment it runs with."""
    work = Path(tempfile.mkdtemp(prefix="aigw-bench-"))
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{work / 'bench.sqlite3'}",
               AIGATEWAY_ALLOW_INSECURE_DEFAULTS="true", AIGW_BENCH_KEY=KEY,
               REDIS_URL=redis_url, LOG_LEVEL="WARNING")  # fmt: skip
    (work / "gateway.yaml").write_text(CONFIG)
    run([sys.executable, "manage.py", "migrate", "-v0"], env)
    run([sys.executable, "manage.py", "gateway", "apply", str(work / "gateway.yaml")], env)
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "uvicorn", "aigateway.asgi:application",
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=8792)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    with bench_gateway(args.port, args.redis) as env:
        python = sys.executable
        url = f"http://127.0.0.1:{args.port}/v1/chat/completions"
        wrk(url, 2, env)  # warm up
        rows: list[tuple[str, int, float, float, float]] = []
        for _ in range(args.rounds):
            for mode, script in (("off", LIMITS_OFF), ("on", LIMITS_ON)):
                run([python, "manage.py", "shell", "-c", script], env)
                time.sleep(1.5)  # the config cache notices within AIGATEWAY_CONFIG_CACHE_SECONDS
                for connections in (1, 16):
                    rows.append((mode, connections, *wrk(url, args.seconds, env, connections)))
        print("limits  conns   req/s   p50 ms  wrk CPU")
        for mode, connections, rps, p50, cpu in rows:
            print(f"{mode:<6} {connections:>6} {rps:7.0f}  {p50:7.3f}   {cpu:4.0%}")

        def mean(mode: str, connections: int, column: int) -> float:
            values = [r[column] for r in rows if r[0] == mode and r[1] == connections]
            return sum(values) / len(values)

        added = mean("on", 1, 3) - mean("off", 1, 3)
        print(f"one connection: the limiter adds {added * 1000:+.0f} µs to the p50 latency")
        ratio = mean("on", 16, 2) / mean("off", 16, 2)
        print(f"16 connections: throughput with limits on is {ratio:.0%} of limits off")


if __name__ == "__main__":
    main()
