"""The web role's start command (Dockerfile CMD and the compose `web` command) prepares the
shared metrics directory before uvicorn starts: set, created, emptied of a previous run's
files. Run for real with sh, with a stand-in `python` on PATH (the command is
`python -m aigateway.serve`, uvicorn's command line) that reports what it got."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FAKE_PYTHON = """#!/bin/sh
echo "$PROMETHEUS_MULTIPROC_DIR"
ls -A "$PROMETHEUS_MULTIPROC_DIR"
echo "args: $*"
"""


def dockerfile_command() -> str:
    text = (ROOT / "Dockerfile").read_text()
    [cmd] = re.findall(r"^CMD (\[.*\])$", text, flags=re.MULTILINE)
    shell, flag, script = json.loads(cmd)
    assert (shell, flag) == ("sh", "-c")
    return script


def compose_command() -> str:
    web = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]
    shell, flag, script = web["command"]
    assert (shell, flag) == ("sh", "-c")
    return script.replace("$$", "$")  # compose's escape for a literal $


@pytest.mark.parametrize("command", [dockerfile_command, compose_command])
@pytest.mark.parametrize("preset", [True, False])
def test_the_metrics_directory_is_ready_and_empty(tmp_path, command, preset):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "WEB_WORKERS": "3"}
    if preset:
        metrics = tmp_path / "metrics"
        metrics.mkdir()
        (metrics / "counter_123.db").write_bytes(b"stale")  # a previous run's worker
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    script = command()
    if not preset:  # the default lives under /tmp: point it at this test's directory
        script = script.replace("/tmp/aigateway-metrics", str(tmp_path / "default-metrics"))
    out = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30, check=True
    ).stdout.splitlines()
    expected = tmp_path / ("metrics" if preset else "default-metrics")
    assert out[0] == str(expected)
    assert out[1].startswith(
        "args: -m aigateway.serve aigateway.asgi:application --workers 3"
    )  # dir is empty
    assert expected.is_dir() and list(expected.iterdir()) == []
