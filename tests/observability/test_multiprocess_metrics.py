"""Several worker processes, one /metrics: with PROMETHEUS_MULTIPROC_DIR set, each process
writes its metrics to the shared directory and a scrape sums them; a process that exited
cleanly no longer counts as live, while its counters keep their totals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.observability.support import Metrics

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def worker(directory: Path, calls: int, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.observability.metrics_worker", str(calls), mode],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_metrics_of_several_processes_are_summed(tmp_path, client, monkeypatch):
    first, second = worker(tmp_path, 3, "exit"), worker(tmp_path, 2, "stay")  # side by side
    assert first.wait(timeout=120) == 0
    try:
        assert second.stdout is not None and second.stdout.readline().strip() == "ready"
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    finally:
        second.communicate(timeout=60)  # closes its stdin: it exits
    metrics = Metrics(text)
    labels = {"route": "mp-route", "status": "200"}
    assert metrics.value("aigateway_requests_total", **labels) == 5
    assert metrics.value("aigateway_tokens_total", route="mp-route", direction="output") == 25
    assert metrics.value("aigateway_request_duration_seconds_count", route="mp-route") == 5
    assert metrics.value("aigateway_metrics_processes") == 1  # the first one marked itself dead
    assert {p.name.split("_")[0] for p in tmp_path.iterdir()} >= {"counter", "histogram"}
    # The scrape-time gauges are still there, once.
    assert text.count("# TYPE aigateway_redis_up gauge") == 1


def test_single_process_mode_reports_this_process(client, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert Metrics(text).value("aigateway_metrics_processes") == 1
    assert "process_cpu_seconds_total" in text  # the default collectors of one process
