"""``python -m aigateway.serve`` (aigateway/serve.py): each worker listens on a socket of its
own (SO_REUSEPORT, so the kernel spreads connections evenly), and a graceful stop refuses new
connections at once (tests/reliability/test_shutdown_under_load.py proves that under load)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
# The start of a test ASGI app: lifespan answered, then HTTP (tests/test_http_protocol.py too).
APP_START = """
import asyncio, os
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
"""
APP = (
    APP_START
    + """
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
"""
)


def _listening_sockets(port: int) -> int:
    """LISTEN entries for ``port`` in /proc/net/tcp (state 0A)."""
    rows = [row.split() for row in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for row in rows if row[1].endswith(f":{port:04X}") and row[3] == "0A")


def _get(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux")
def test_each_worker_listens_on_its_own_socket_and_both_serve(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(APP)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aigateway.serve", "--app-dir", str(tmp_path), "pidapp:app",
         "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while _listening_sockets(port) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _listening_sockets(port) == 2  # stock uvicorn: one socket shared by all
        pids = [_get(port) for _ in range(200)]  # fresh connections, spread by the kernel
        counts = sorted(pids.count(pid) for pid in set(pids))
        assert len(counts) == 2 and counts[0] >= 40, counts
    finally:
        server.terminate()
        server.wait(timeout=30)
