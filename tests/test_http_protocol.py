"""The HTTP protocol ``python -m aigateway.serve`` runs (aigateway/core/http_protocol.py): a
response's head leaves with its body in one write, and nothing is ever held back: a HEAD
response, a stream whose first chunk comes later and a closing connection all get their
bytes, in order."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aigateway.core.http_protocol import _HeadWithBody
from tests.conftest import free_port
from tests.test_serve import APP_START

ROOT = Path(__file__).resolve().parents[1]
APP = (
    APP_START
    + """
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.5)
        await send({"type": "http.response.body", "body": b"late", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b"hello world"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""
)


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_the_head_leaves_with_the_first_body_bytes():
    recorder = _Recorder()
    transport = _HeadWithBody(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert recorder.writes == []
    transport.write(b"ok")
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    transport.write(b"more")  # later writes pass straight through
    assert recorder.writes[-1] == b"more"
    assert transport.get_extra_info("peername") == "info:peername"  # the rest is forwarded


async def test_a_head_without_a_body_in_the_same_iteration_leaves_on_the_next():
    recorder = _Recorder()
    transport = _HeadWithBody(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    await asyncio.sleep(0)
    assert recorder.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"]


async def test_closing_writes_what_is_held_first():
    recorder = _Recorder()
    transport = _HeadWithBody(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.close()
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\n"] and recorder.closed


def _request(port: int, raw: bytes) -> tuple[bytes, float]:
    """The whole answer and when its first bytes came (seconds after sending)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(raw)
        data = sock.recv(65536)
        first = time.monotonic() - started
        while chunk := sock.recv(65536):
            data += chunk
    return data, first


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    app_dir = tmp_path_factory.mktemp("app")
    (app_dir / "protoapp.py").write_text(APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aigateway.serve", "--app-dir", str(app_dir), "protoapp:app",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=30)


def test_a_served_response_is_whole_and_its_head_and_body_arrive_together(server):
    data, _ = _request(server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"hello world"


def test_a_head_request_on_a_kept_alive_connection_is_answered(server):
    # No body write and no close follow a HEAD response's head: only the next loop
    # iteration's release sends it (a recv timeout here would mean it was held).
    with socket.create_connection(("127.0.0.1", server), timeout=3) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"\r\n\r\n")


def test_a_streams_head_is_not_held_until_its_first_chunk(server):
    data, first = _request(server, b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert first < 0.4  # the head came at once, the chunk 0.5 s later
    assert data.startswith(b"HTTP/1.1 200 OK") and b"4\r\nlate\r\n0\r\n\r\n" in data
