"""`make run` serves /static/ itself (AIGATEWAY_SERVE_STATIC, set by the Makefile), so the
dashboard's CSS and the API docs page are styled without collectstatic or nginx. Checked
against a real uvicorn process started the way `make run` starts it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_makefile_turns_static_serving_on_for_make_run() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: export AIGATEWAY_SERVE_STATIC \?= true$", makefile, re.MULTILINE)


def _serve(tmp_path: Path, serve_static: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ, "AIGATEWAY_ALLOW_INSECURE_DEFAULTS": "true",
        "AIGATEWAY_SERVE_STATIC": serve_static, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "REDIS_URL": "", "CELERY_BROKER_URL": "",
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "aigateway.asgi:application", "--port", str(port),
         "--host", "127.0.0.1", "--lifespan", "on", "--no-access-log"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(base + "/healthz", timeout=5)
                break
            except requests.RequestException:  # not listening yet, or slow to start
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, "true")


@pytest.fixture
def production(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, "false")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/ninja/swagger-ui.css", "text/css"),
        ("/static/ninja/swagger-ui-bundle.js", "javascript"),
    ],
)
def test_static_files_are_served_when_on(served: str, path: str, content_type: str) -> None:
    response = requests.get(served + path, timeout=10)
    assert response.status_code == 200
    assert content_type in response.headers["Content-Type"]
    assert len(response.content) > 1000


def test_static_files_are_left_to_the_proxy_when_off(production: str) -> None:
    assert requests.get(production + "/static/ninja/swagger-ui.css", timeout=10).status_code == 404
