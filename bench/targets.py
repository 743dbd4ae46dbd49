"""The servers a comparison runs: the fake upstream, our gateway (bench/serve.sh) and LiteLLM
proxy, each a process tree we start, measure (CPU from /proc) and stop."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_PORT = 18000  # fixed: bench/gateway.yaml points there
BENCH_KEY = "agw-bench-0000000000000000000000000000"  # bench/serve.sh's defaults
BENCH_KEY_NOLIMITS = "agw-bench-nolimits-00000000000000000000"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

LITELLM_CONFIG = """model_list:
  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: sk-fake}}
  - model_name: gpt-4o-mini-slow
    litellm_params:
      {{model: openai/gpt-4o-mini-latency-300ms, api_base: "{base}", api_key: sk-fake}}
  - model_name: gpt-4o-mini-cached
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: sk-fake}}
litellm_settings:
  telemetry: false
  # S4: LiteLLM's exact cache, opted in per request ("cache": {{"use-cache": true}}), so the
  # other scenarios run without it. In process ("local"): with "redis" LiteLLM also keeps
  # per-key token counters in Redis on every request, which would change S1-S3.
  cache: true
  cache_params: {{type: local, mode: default_off}}
"""


@dataclass
class Target:
    """One column of the table: where to send requests and which processes to charge."""

    name: str
    base_url: str
    api_key: str
    models: dict[str, str]  # "instant" / "slow" / "cached" -> the model name to send
    process: subprocess.Popen[bytes] | None = None
    extra_body: dict[str, object] = field(default_factory=dict)  # per model kind

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid) if self.process else 0.0


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and all its live descendants, plus what their exited children
    used (cutime + cstime): uvicorn's and LiteLLM's worker processes included."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total / CLOCK_TICKS


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A server in its own process group (stopped as a group), its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(target: Target | None) -> None:
    process = target.process if target else None
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # the group we created: this server and its workers
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def post_json(url: str, body: dict[str, object], key: str, timeout: float = 10) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def upstream_served() -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{UPSTREAM_PORT}/stats", timeout=5) as response:
        return int(json.loads(response.read())["chat_completions"])


def wait_ready(target: Target, log: Path, seconds: float = 180) -> None:
    """Until one chat completion through the target succeeds (the proof that it serves)."""
    deadline = time.monotonic() + seconds
    body: dict[str, object] = {
        "model": target.models["instant"],
        "messages": [{"role": "user", "content": "hi"}],
    }
    error: Exception | None = None
    while time.monotonic() < deadline:
        if target.process is not None and target.process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{target.name} exited ({target.process.returncode}):\n{tail}")
        try:
            answer = post_json(f"{target.base_url}/v1/chat/completions", body, target.api_key)
            if answer.get("choices"):
                return
        except (OSError, urllib.error.URLError, ValueError) as exc:
            error = exc
        time.sleep(0.5)
    raise SystemExit(f"{target.name} did not serve within {seconds:.0f} s: {error}; see {log}")


def start_upstream(logs: Path) -> Target:
    if not port_free(UPSTREAM_PORT):
        raise SystemExit(f"port {UPSTREAM_PORT} is in use: the fake upstream needs it")
    log = logs / "fake_upstream.log"
    cmd = [sys.executable, "-m", "bench.fake_upstream", "--port", str(UPSTREAM_PORT)]
    process = start(cmd, log)
    models = {"instant": "gpt-4o-mini", "slow": "gpt-4o-mini-latency-300ms",
              "cached": "gpt-4o-mini"}  # fmt: skip
    target = Target("direct", f"http://127.0.0.1:{UPSTREAM_PORT}", "sk-fake", models, process)
    wait_ready(target, log, 30)
    return target


def start_ours(
    logs: Path, port: int, redis_url: str, workers: int, database_url: str = ""
) -> tuple[Target, Target]:
    """Our gateway via bench/serve.sh, on ``database_url`` (default: a new SQLite file in
    ``logs``); returns the production target and the "limits off" variant (the same
    processes, a key of a team without limits)."""
    if not port_free(port):
        raise SystemExit(f"port {port} is in use (choose another with --ours-port)")
    env = dict(os.environ, PORT=str(port), WORKERS=str(workers), REDIS_URL=redis_url,
               BENCH_KEY=BENCH_KEY, BENCH_KEY_NOLIMITS=BENCH_KEY_NOLIMITS,
               DATABASE_URL=database_url or f"sqlite:///{logs / 'bench.sqlite3'}",
               PY=sys.executable)  # fmt: skip
    log = logs / "gateway.log"
    process = start(["bash", "bench/serve.sh"], log, env)
    models = {"instant": "gpt-4o-mini", "slow": "gpt-4o-mini-slow", "cached": "gpt-4o-mini-cached"}
    url = f"http://127.0.0.1:{port}"
    ours = Target("ours", url, BENCH_KEY, models, process)
    wait_ready(ours, log)
    return ours, Target("ours, limits off", url, BENCH_KEY_NOLIMITS, models, process)


def start_litellm(logs: Path, venv: Path, port: int, workers: int) -> Target | None:
    """LiteLLM proxy from its own venv, no database, a random master key; None if not installed."""
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        print(f"LiteLLM: {binary} not found: the LiteLLM column is skipped "
              "(docs/benchmarks.md says how to create that venv)", file=sys.stderr)  # fmt: skip
        return None
    if not port_free(port):
        raise SystemExit(f"port {port} is in use (choose another with --litellm-port)")
    config = logs / "litellm.yaml"
    base = f"http://127.0.0.1:{UPSTREAM_PORT}/v1"
    config.write_text(LITELLM_CONFIG.format(base=base))
    master_key = f"sk-{secrets.token_hex(32)}"  # it refuses to start without one
    # Its own environment: none of ours (DATABASE_URL would make it look for Prisma), quiet
    # logs, and the bundled model cost map instead of a download at start.
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
           "LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_TELEMETRY": "False", "DISABLE_ADMIN_UI": "True",
           "LITELLM_MASTER_KEY": master_key}  # fmt: skip
    log = logs / "litellm.log"
    cmd = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
           "--num_workers", str(workers)]  # fmt: skip
    process = start(cmd, log, env)
    models = {"instant": "gpt-4o-mini", "slow": "gpt-4o-mini-slow", "cached": "gpt-4o-mini-cached"}
    target = Target("litellm", f"http://127.0.0.1:{port}", master_key, models, process)
    target.extra_body = {"cached": {"cache": {"use-cache": True}}}
    wait_ready(target, log)
    return target


def version_of(python: Path | str, module: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "?"
