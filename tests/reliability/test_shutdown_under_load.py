"""SIGTERM to the production-like gateway under load: nothing accepted is cut, nothing is lost.

tests/audit/test_graceful_shutdown.py proves the shutdown flush with one uvicorn process and
non-streamed calls. This runs what production runs: bench/serve.sh (uvicorn supervisor + 2
worker processes, uvloop, httptools, DEBUG off) on a PostgreSQL database of its own (created
here, dropped after) and real Redis, in front of the fake upstream (bench/fake_upstream.py,
a process too). This test process is the load: non-streamed calls answered in 300 ms and
1-second streams, back to back on keep-alive connections, then SIGTERM to the supervisor
while it keeps sending. Periodic flushes are off, so every record reaches the database
through the workers' shutdown flush.

Then: every call sent before the signal ended 200 and complete (streams to ``[DONE]``); no
call got an error status or a cut body; every failure is a connection that never got a
response byte (refused, or reset unanswered); and the usage rows and ``api.call`` audit
entries match the 200s one to one by request id, none for any other call, the chain intact.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import aiohttp
import psycopg
import pytest
from django.db import connection

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY = "agw-shutdown-0000000000000000000000000"
PLAIN_LOOPS, STREAM_LOOPS = 12, 6  # concurrent clients of each kind
LOAD_SECONDS = 3.0  # before SIGTERM
AFTER_EXIT = 0.3  # clients keep sending until the server has exited, and this long after
SURELY_SENT = 0.05  # a call started this long before the signal has reached the server
# Every record must reach the database through the workers' shutdown flush.
NO_PERIODIC_FLUSH = {"AIGATEWAY_USAGE_FLUSH_SECONDS": "600", "AIGATEWAY_AUDIT_FLUSH_SECONDS": "600"}
CONFIG = """version: 1
providers:
  - {{name: fake, kind: openai, base_url: "http://127.0.0.1:{port}/v1",
     credentials: [{{name: k, secret: env:BENCH_UPSTREAM_KEY}}]}}
routes:
  - {{name: slow, deployments: [{{provider: fake, model: gpt-4o-mini-latency-300ms}}]}}
  - {{name: streamed, deployments: [{{provider: fake, model: gpt-4o-mini}}]}}
  - {{name: long, deployments: [{{provider: fake, model: gpt-4o-mini-latency-2000ms}}]}}
organisations:
  - slug: shut
    name: Shutdown
    teams: [{{slug: load, name: Load, routes: [slow, streamed, long],
              api_keys: [{{name: load, secret: env:BENCH_KEY}}]}}]
limits:
  - {{scope: key, target: shut/load/load, kind: rpm, value: 1000000}}
"""

pytestmark = pytest.mark.slow


@dataclass
class Call:
    stream: bool
    started: float
    ended: float = 0.0
    status: int = 0  # 0: no HTTP answer at all
    complete: bool = False  # a whole JSON body, or a stream up to [DONE]
    error: str = ""
    request_id: str = ""


def _server_url() -> str:
    """The PostgreSQL server: the suite's own if it runs on one, else the local default."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        return (f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
                f"{db['PORT'] or 5432}")  # fmt: skip
    return os.environ.get("AIGATEWAY_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """A database of this test's own, dropped afterwards (other runs share the server)."""
    server = _server_url()
    name = f"reliability_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"this test needs PostgreSQL at {urlparse(server).netloc} "
                    f"(AIGATEWAY_TEST_POSTGRES_URL): {exc}")  # fmt: skip
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{server}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {KEY}"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited during startup:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not start in {seconds:.0f} s:\n{log.read_text()[-3000:]}")


@dataclass
class Servers:
    port: int
    gateway: subprocess.Popen[bytes]  # the uvicorn supervisor (serve.sh execs it)
    log: Path
    database_url: str


@pytest.fixture
def servers(scratch_postgres: str, redis_url: str, tmp_path: Path) -> Iterator[Servers]:
    upstream_port, port = free_port(), free_port()
    started: list[subprocess.Popen[bytes]] = []
    try:
        log = tmp_path / "upstream.log"
        started.append(_start([sys.executable, "-m", "bench.fake_upstream", "--port",
                               str(upstream_port), "--chunks", "50", "--chunk-delay-ms", "20"],
                              log, dict(os.environ)))  # fmt: skip
        _wait_ready(f"http://127.0.0.1:{upstream_port}/healthz", started[0], log, 30)
        config = tmp_path / "gateway.yaml"
        config.write_text(CONFIG.format(port=upstream_port))
        env = dict(os.environ, PORT=str(port), WORKERS="2", DATABASE_URL=scratch_postgres,
                   REDIS_URL=redis_url, GATEWAY_CONFIG=str(config), BENCH_KEY=KEY,
                   PY=sys.executable, DATABASE_CONN_MAX_AGE="0", **NO_PERIODIC_FLUSH)  # fmt: skip
        log = tmp_path / "gateway.log"
        gateway = _start(["bash", "bench/serve.sh"], log, env)
        started.append(gateway)
        _wait_ready(f"http://127.0.0.1:{port}/v1/models", gateway, log, 90)  # records nothing
        yield Servers(port, gateway, log, scratch_postgres)
    finally:
        for process in reversed(started):
            _stop(process)


async def _call(
    session: aiohttp.ClientSession, url: str, n: int, stream: bool, model: str = ""
) -> Call:
    call = Call(stream=stream, started=time.monotonic())
    messages = [{"role": "user", "content": f"shutdown call {n}"}]
    model = model or ("streamed" if stream else "slow")
    body: dict[str, object] = {"model": model, "messages": messages}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    try:
        async with session.post(url, json=body) as response:
            call.status, call.request_id = response.status, response.headers["x-request-id"]
            if stream:
                async for line in response.content:
                    call.complete = call.complete or line.strip() == b"data: [DONE]"
            else:
                call.complete = "choices" in json.loads(await response.read())
    except aiohttp.ClientConnectorError as exc:
        refused = exc.os_error.errno == errno.ECONNREFUSED
        call.error = "refused" if refused else f"connect: {exc.os_error}"
    except (aiohttp.ClientError, ValueError) as exc:
        call.error = type(exc).__name__
    call.ended = time.monotonic()
    return call


async def _load(port: int, gateway: subprocess.Popen[bytes]) -> tuple[list[Call], float, float]:
    """Calls until the gateway has exited; the times of SIGTERM and of the exit."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    calls: list[Call] = []
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(
        headers=headers, connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:  # fmt: skip
        done = asyncio.Event()

        async def client(n: int, stream: bool) -> None:
            # Staggered starts: loops started together stay in step (every plain call takes
            # ~330 ms), and on a fast machine all of them were between two calls, inside
            # SURELY_SENT, at the signal: no plain call counted as in flight.
            await asyncio.sleep((n % PLAIN_LOOPS) * 0.3 / PLAIN_LOOPS)
            i = 0
            while not done.is_set():
                call = await _call(session, url, n * 10_000 + i, stream)
                calls.append(call)
                i += 1
                if call.status == 0:
                    await asyncio.sleep(0.05)  # refused: try again a little later

        loops = [client(n, n < STREAM_LOOPS) for n in range(PLAIN_LOOPS + STREAM_LOOPS)]
        tasks = [asyncio.create_task(loop) for loop in loops]
        await asyncio.sleep(LOAD_SECONDS - 0.5)
        # One 2.5-second stream in flight at the signal keeps the drain going that long.
        long_call = asyncio.create_task(_call(session, url, 999_999, True, model="long"))
        await asyncio.sleep(0.5)
        signalled = time.monotonic()
        gateway.send_signal(signal.SIGTERM)  # the supervisor: it stops its workers
        deadline = signalled + 60
        while gateway.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        exited = time.monotonic()
        await asyncio.sleep(AFTER_EXIT)
        done.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        calls.append(await long_call)
    return calls, signalled, exited


def _manage(database_url: str, *args: str) -> str:
    env = dict(os.environ, DATABASE_URL=database_url, AIGATEWAY_ALLOW_INSECURE_DEFAULTS="true")
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout.strip()


def test_sigterm_under_load_finishes_what_was_accepted_and_loses_no_record(
    servers: Servers, tmp_path: Path
) -> None:
    calls, signalled, exited = asyncio.run(_load(servers.port, servers.gateway))
    code = servers.gateway.wait(timeout=5)
    output = servers.log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert output.count("Application shutdown complete") == 2, output[-3000:]

    before = [c for c in calls if c.started <= signalled - SURELY_SENT]
    in_flight = [c for c in before if c.ended > signalled]
    ok = [c for c in calls if c.status == 200 and c.complete]
    failed = [c for c in calls if not (c.status == 200 and c.complete)]
    unanswered = [c for c in failed if c.error != "refused"]
    print(
        f"\nshutdown under load (uvicorn, 2 workers, PostgreSQL): {len(calls)} calls sent, "
        f"{len(ok)} succeeded ({sum(c.stream for c in ok)} streams), {len(in_flight)} in flight "
        f"at SIGTERM ({sum(c.stream for c in in_flight)} streams); failed {len(failed)}: "
        f"{dict(Counter((c.status, c.error) for c in failed))}; unanswered calls waited up to "
        f"{max((c.ended - c.started for c in unanswered), default=0):.2f} s; exit "
        f"{exited - signalled:.2f} s after SIGTERM."
    )
    assert len(ok) > 2 * (PLAIN_LOOPS + STREAM_LOOPS), "not enough load to test anything"
    assert any(c.stream for c in in_flight) and any(not c.stream for c in in_flight)
    assert all(c.status == 200 and c.complete for c in before), Counter(
        (c.status, c.complete, c.error) for c in before if not c.complete
    )
    # Nothing answered with an error status or cut short: a call the gateway did not take
    # never got a byte (refused, or reset unanswered when the supervisor closed its socket).
    assert all(c.status == 0 for c in failed), Counter((c.status, c.error) for c in failed)
    assert any(c.error == "refused" and c.started > exited for c in failed)
    # While the long stream drains, new connections are refused at once (aigateway/serve.py
    # stops listening): none waits unanswered for the drain to end.
    assert exited - signalled > 1.5, "the drain was too short to test anything"
    assert any(c.error == "refused" and signalled < c.started < exited - 0.5 for c in failed)
    assert max((c.ended - c.started for c in unanswered), default=0) < 1.0

    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{c.request_id} 200\n" for c in ok))
    check = json.loads(
        _manage(servers.database_url, "-m", "bench.soak.records", "--verify-chain", str(ids))
    )
    flushed = sum(map(int, re.findall(r"shutdown: flushed (\d+) usage records", output)))
    print(
        f"records expected {check['expected']}, usage {check['usage_matched']}, audit "
        f"{check['audit_matched']}, flushed at shutdown {flushed}; {check['chain']}"
    )
    assert check["usage_matched"] == check["audit_matched"] == len(ok), check
    assert check["usage_rows_for_unanswered_calls"] == 0, check
    assert check["audit_entries_for_unanswered_calls"] == 0, check
    assert flushed == len(ok)  # every record came through the shutdown flush
    assert check["chain"].startswith("audit chain OK"), check["chain"]
