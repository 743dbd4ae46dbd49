"""Failover drill: the primary deployment fails mid-load, the breaker opens, traffic fails
over, the primary recovers and traffic returns. Prints counts and a per-second timeline.

    .venv/bin/python -m bench.failover_drill [--seconds 30] [--fail-from 5] [--fail-for 10]

It starts two wire-level fake upstreams (tests/fakes), writes a gateway.yaml for a route
`drill` (primary OpenAI-kind deployment on upstream A, fallback Anthropic-kind deployment
on upstream B), applies it to a throwaway SQLite database, runs the gateway under uvicorn
(2 workers, sharing breaker state through Redis when REDIS_URL is set), and drives it with
concurrent clients. During the failure window the primary answers 500s, and every fifth
request hangs past the gateway's read timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.upstream import FakeUpstream  # noqa: E402

TEAM_KEY = "agw-drill-key-000000000000000000000000"
UPSTREAM_KEY = "sk-drill-upstream-0000000000"


@dataclass
class DrillResult:
    sent: int = 0
    succeeded: int = 0
    failed_over: int = 0
    failed: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    timeline: dict[int, collections.Counter[str]] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"requests sent {self.sent}, succeeded {self.succeeded}, "
            f"failed over {self.failed_over}, failed {self.failed}",
        ]
        if self.failures:
            lines.append(f"failures: {dict(self.failures)}")
        lines.append("second  primary  fallback  failed")
        for second in sorted(self.timeline):
            row = self.timeline[second]
            lines.append(
                f"{second:>6}  {row['primary']:>7}  {row['fallback']:>8}  {row['failed']:>6}"
            )
        return "\n".join(lines)


async def drive(
    base_url: str,
    key: str,
    *,
    seconds: float,
    concurrency: int,
    on_tick: dict[float, object],
) -> DrillResult:
    """Send chat completions from ``concurrency`` clients for ``seconds``; call the
    callables in ``on_tick`` (seconds → function) at those offsets."""
    result = DrillResult()
    started = time.monotonic()
    body = json.dumps({"model": "drill", "messages": [{"role": "user", "content": "ping"}]})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def ticker() -> None:
        for offset in sorted(on_tick):
            await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
            on_tick[offset]()  # type: ignore[operator]

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() - started < seconds:
            second = int(time.monotonic() - started)
            row = result.timeline.setdefault(second, collections.Counter())
            result.sent += 1
            try:
                async with session.post(
                    base_url + "/v1/chat/completions", data=body, headers=headers
                ) as response:
                    await response.read()
                    served = response.headers.get("x-aigateway-served-by", "")
                    if response.status == 200:
                        result.succeeded += 1
                        fallback = served.startswith("fallback")
                        row["fallback" if fallback else "primary"] += 1
                        result.failed_over += int(fallback)
                    else:
                        result.failed += 1
                        row["failed"] += 1
                        result.failures[f"HTTP {response.status}"] += 1
            except Exception as exc:  # noqa: BLE001 - counted, the drill goes on
                result.failed += 1
                row["failed"] += 1
                result.failures[type(exc).__name__] += 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(ticker(), *(client(session) for _ in range(concurrency)))
    return result


def start_failure(primary: FakeUpstream) -> None:
    for _ in range(100_000):  # 4 x 500, then 1 x hang past the read timeout, repeated
        primary.push_fault("500", count=4, path="/v1/chat/completions")
        primary.push_fault("slow", count=1, path="/v1/chat/completions", delay=5)


def end_failure(primary: FakeUpstream) -> None:
    primary.reset()


def gateway_yaml(primary: FakeUpstream, fallback: FakeUpstream) -> str:
    return f"""version: 1
providers:
  - name: primary
    kind: openai
    base_url: {primary.openai_base_url}
    credentials: [{{name: key, secret: env:DRILL_UPSTREAM_KEY}}]
  - name: fallback
    kind: anthropic
    base_url: {fallback.base_url}
    credentials: [{{name: key, secret: env:DRILL_UPSTREAM_KEY}}]
routes:
  - name: drill
    strategy: ordered
    retries: {{max: 2, backoff_base_seconds: 0.05, backoff_cap_seconds: 1, timeout_seconds: 20}}
    deployments:
      - {{provider: primary, model: drill-primary}}
      - {{provider: fallback, model: drill-fallback}}
organisations:
  - slug: drill
    name: Drill
    teams:
      - slug: load
        name: Load
        routes: [drill]
        api_keys:
          - {{name: drill, secret: env:DRILL_TEAM_KEY}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--fail-from", type=float, default=5)
    parser.add_argument("--fail-for", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="aigw-drill-"))
    with (
        FakeUpstream(api_key=UPSTREAM_KEY) as primary,
        FakeUpstream(api_key=UPSTREAM_KEY) as fallback,
    ):
        env = dict(
            os.environ,
            DATABASE_URL=f"sqlite:///{workdir / 'drill.sqlite3'}",
            AIGATEWAY_ALLOW_INSECURE_DEFAULTS="true",
            DRILL_UPSTREAM_KEY=UPSTREAM_KEY,
            DRILL_TEAM_KEY=TEAM_KEY,
            AIGATEWAY_UPSTREAM_READ_TIMEOUT="1.5",
            AIGATEWAY_BREAKER_FAILURES="5",
            AIGATEWAY_BREAKER_RECOVERY_SECONDS="3",
            LOG_LEVEL="ERROR",
        )
        config = workdir / "gateway.yaml"
        config.write_text(gateway_yaml(primary, fallback))
        python = sys.executable
        subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run(
            [python, "manage.py", "gateway", "apply", str(config)],
            cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        server = subprocess.Popen(
            [python, "-m", "uvicorn", "aigateway.asgi:application", "--port", str(args.port),
             "--workers", str(args.workers), "--no-access-log", "--log-level", "error"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{args.port}"
            _wait_for(base + "/healthz")
            print(
                f"gateway: {args.workers} workers, redis: "
                f"{os.environ.get('REDIS_URL') or 'none (in-process breakers per worker)'}"
            )
            print(f"load: {args.concurrency} clients for {args.seconds:.0f} s; primary fails from "
                  f"{args.fail_from:.0f} s for {args.fail_for:.0f} s")  # fmt: skip
            result = asyncio.run(
                drive(
                    base, TEAM_KEY, seconds=args.seconds, concurrency=args.concurrency,
                    on_tick={
                        args.fail_from: lambda: start_failure(primary),
                        args.fail_from + args.fail_for: lambda: end_failure(primary),
                    },
                )
            )  # fmt: skip
            print(result.summary())
            events = subprocess.run(
                [python, "manage.py", "shell", "-c",
                 "from aigateway.routing.models import BreakerEvent as E\n"
                 "for e in E.objects.order_by('created_at'): "
                 "print(e.created_at.strftime('%H:%M:%S'), e.deployment_id, e.from_state,"
                 " '→', e.to_state, e.reason)"],
                cwd=ROOT, env=env, capture_output=True, text=True,
            )  # fmt: skip
            print("breaker transitions:\n" + events.stdout)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _wait_for(url: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the gateway did not start")


if __name__ == "__main__":
    main()
