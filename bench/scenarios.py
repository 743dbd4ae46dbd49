"""The scenarios of the comparison and one measured run of a scenario against a target.

Non-streaming scenarios load with wrk (pinned to CPU 1, a Lua script per target for the POST
body); the streaming one with bench/stream_client.py (pinned the same way), because wrk cannot
see the time to first token. Around each run the target's process tree CPU is read from /proc,
so every result carries the target's CPU per completed request.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.targets import ROOT, Target, post_json, upstream_served

LOADGEN_CPU = "1"  # taskset -c: the load generator's core


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    kind: str  # which model of the target: "instant", "slow" or "cached"
    connections: int
    stream: bool = False
    targets: tuple[str, ...] = ("direct", "ours", "litellm")


ON_OFF = ("ours", "ours, limits off")
SCENARIOS = (
    Scenario("S0", "1 connection, instant upstream", "instant", 1),
    Scenario("S1", "16 connections, instant upstream", "instant", 16),
    Scenario("S2", "256 connections, upstream answers in 300 ms", "slow", 256),
    # Streams: first unloaded (TTFT and chunk rhythm without queueing), then the load of S3.
    Scenario("S3-1", "1 stream at a time, 50 chunks x 10 ms", "instant", 1, stream=True),
    Scenario("S3", "32 concurrent streams, 50 chunks x 10 ms", "instant", 32, stream=True),
    Scenario("S4-1", "exact cache hit, 1 connection (unloaded)", "cached", 1),
    Scenario("S4", "exact cache hit, 16 connections", "cached", 16),
    # S5: S1 is the production configuration (limits and audit on); this is its "off" twin.
    Scenario("S5", "S1 with rate limits off (audit on)", "instant", 16, targets=ON_OFF),
)


@dataclass
class Result:
    requests: int = 0  # completed (2xx) calls or streams
    seconds: float = 0.0
    rps: float = 0.0
    errors: int = 0
    answered_errors: int = 0  # of ``errors``, the non-2xx answers (recorded by the gateway)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_ms_per_request: float = 0.0  # the target's processes, per completed request
    loadgen_cpu: float = 0.0  # the load generator's CPU, a fraction of one core
    stream: dict[str, float] = field(default_factory=dict)  # S3: ttft, total, gaps


def request_body(target: Target, scenario: Scenario) -> dict[str, object]:
    body: dict[str, object] = {
        "model": target.models[scenario.kind],
        "messages": [{"role": "user", "content": "ping"}],
    }
    if scenario.stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    extra = target.extra_body.get(scenario.kind)
    if isinstance(extra, dict):
        body |= extra
    return body


def cache_hit_verified(target: Target, scenario: Scenario, max_calls: int = 30) -> bool:
    """The same call repeated until three in a row do not reach the fake upstream (its
    /stats count), within ``max_calls``. A per-process cache (LiteLLM's "local") fills once
    per worker, and which worker takes a call is the kernel's choice: a fixed number of
    warm-up calls could leave one worker cold."""
    url = f"{target.base_url}/v1/chat/completions"
    body = request_body(target, scenario)
    in_a_row = 0
    for _ in range(max_calls):
        before = upstream_served()
        answer = post_json(url, body, target.api_key)
        if not answer.get("choices"):
            return False
        in_a_row = in_a_row + 1 if upstream_served() == before else 0
        if in_a_row == 3:
            return True
    return False


def wrk_script(target: Target, scenario: Scenario, directory: Path) -> Path:
    path = directory / f"{target.name.replace(' ', '_').replace(',', '')}-{scenario.key}.lua"
    body = json.dumps(request_body(target, scenario))
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{body}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {target.api_key}"\n'
    )
    return path


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(out: str) -> Result:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not done:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    result = Result(requests=int(done.group(1)), seconds=_ms(done.group(2), done.group(3)) / 1000)
    for name, pct in (("p50_ms", "50"), ("p99_ms", "99")):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)", out, re.M)
        if found:
            setattr(result, name, _ms(found.group(1), found.group(2)))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result.answered_errors = int(non2xx.group(1)) if non2xx else 0
    result.errors = result.answered_errors + (
        sum(int(v) for v in sockets.groups()) if sockets else 0
    )
    # Non-2xx answers are counted as requests by wrk; they are not completed calls.
    result.requests -= int(non2xx.group(1)) if non2xx else 0
    return result


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def run_once(target: Target, scenario: Scenario, seconds: float, scratch: Path) -> Result:
    """One measured run: the load generator for ``seconds``, the target's CPU around it."""
    url = f"{target.base_url}/v1/chat/completions"
    if scenario.stream:
        cmd = [sys.executable, "-m", "bench.stream_client", url, "--key", target.api_key,
               "--concurrency", str(scenario.connections), "--seconds", str(seconds),
               "--body", json.dumps(request_body(target, scenario))]  # fmt: skip
    else:
        script = wrk_script(target, scenario, scratch)
        duration = f"{max(1, round(seconds))}s"  # wrk takes whole seconds
        cmd = ["wrk", "-t1", f"-c{scenario.connections}", f"-d{duration}", "--latency",
               "--timeout", "10s", "-s", str(script), url]  # fmt: skip
    loadgen_before, cpu_before = _children_cpu(), target.cpu_seconds()
    done = subprocess.run(["taskset", "-c", LOADGEN_CPU, *cmd], cwd=ROOT, capture_output=True,
                          text=True, check=False)  # fmt: skip
    cpu = target.cpu_seconds() - cpu_before
    loadgen = _children_cpu() - loadgen_before
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    if scenario.stream:
        data = json.loads(done.stdout)
        result = Result(requests=data.pop("streams"), seconds=data.pop("seconds"),
                        errors=data.pop("errors"), p50_ms=data["total_p50_ms"],
                        p99_ms=data["total_p99_ms"], stream=data)  # fmt: skip
    else:
        result = parse_wrk(done.stdout)
    result.rps = result.requests / result.seconds if result.seconds else 0.0
    result.loadgen_cpu = loadgen / result.seconds if result.seconds else 0.0
    result.cpu_ms_per_request = cpu * 1000 / result.requests if result.requests else 0.0
    return result
