"""The load as the drills see it: ``LoadProcess`` runs bench/reliability/load.py in a second
process and reads back one ``Outcome`` per request; ``api_call`` makes one call from the drill
itself (retry and limit checks), recorded the same way."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from bench.reliability.harness import PYTHON, ROOT, register_cleanup


@dataclass(frozen=True)
class Outcome:
    """One request of the load process (bench/reliability/load.py writes these)."""

    started: float  # wall clock (time.time()) when it was sent
    latency: float  # seconds until the whole answer was read (or the failure)
    model: str
    stream: bool
    status: int  # 0: no HTTP answer
    error: str  # "" when it succeeded; else why: HTTP error code, stream error, exception
    request_id: str = ""
    served_by: str = ""
    failovers: int = 0

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


@dataclass
class LoadProcess:
    """``python -m bench.reliability.load`` in a second process, recording every request."""

    base_url: str
    key: str
    seconds: float
    rate: float = 20.0
    model: str = "drill"
    stream_every: int = 4  # every Nth request streams
    timeout: float = 60.0  # the client's own limit: far past any gateway deadline
    out: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".jsonl")[1]))
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> Self:
        self.started_at = time.time()
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "bench.reliability.load",
                "--base-url",
                self.base_url,
                "--key-env",
                "RELIABILITY_LOAD_KEY",
                "--seconds",
                str(self.seconds),
                "--rate",
                str(self.rate),
                "--model",
                self.model,
                "--stream-every",
                str(self.stream_every),
                "--timeout",
                str(self.timeout),
                "--out",
                str(self.out),
            ],
            cwd=ROOT,
            env=dict(os.environ, RELIABILITY_LOAD_KEY=self.key),
            stderr=subprocess.PIPE,
        )
        register_cleanup(self.kill)
        return self

    def wait(self, extra: float | None = None) -> list[Outcome]:
        """Wait for the load to end (its duration plus the slowest request) and read it."""
        assert self.process is not None
        limit = self.seconds + self.timeout + 15 if extra is None else extra
        _, stderr = self.process.communicate(timeout=limit)
        if self.process.returncode != 0:
            raise RuntimeError(f"the load process failed:\n{stderr.decode()[-3000:]}")
        return read_outcomes(self.out)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def api_call(
    base_url: str, key: str, model: str, content: str = "ping", timeout: float = 60
) -> Outcome:
    """One non-streaming chat completion from this process, as the load process records it."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": content}]})
    request = urllib.request.Request(
        base_url + "/v1/chat/completions",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    started_wall, started = time.time(), time.monotonic()
    status, error, headers = 0, "", {}
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers = response.status, _lower(response.headers)
            response.read()
    except urllib.error.HTTPError as failure:
        status, headers = failure.code, _lower(failure.headers)
        try:
            detail = json.loads(failure.read()).get("error") or {}
            error = f"http_{status}:{detail.get('code') or detail.get('type')}"
        except ValueError:
            error = f"http_{status}:unparseable_body"
    except OSError as exc:
        error = "connection:" + type(exc).__name__
    return Outcome(
        started=started_wall,
        latency=time.monotonic() - started,
        model=model,
        stream=False,
        status=status,
        error=error,
        request_id=headers.get("x-request-id", ""),
        served_by=headers.get("x-aigateway-served-by", ""),
        failovers=int(headers.get("x-aigateway-failovers", "0")),
    )


def read_outcomes(path: Path) -> list[Outcome]:
    with path.open() as lines:
        return [Outcome(**json.loads(line)) for line in lines if line.strip()]


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
