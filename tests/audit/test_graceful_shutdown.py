"""No record is lost across a graceful shutdown under load.

The real gateway runs as a uvicorn subprocess (lifespan on) on the test database (PostgreSQL
when the suite runs on it, else the SQLite file) and real Redis, in front of the wire-level
fake upstream answering with latency. The test drives concurrent calls through the official
SDK, sends SIGTERM mid-load and waits for the process to exit. Then every call that got a
200 has exactly one usage record and one API-call audit entry, the calls that were in flight
when the signal came finished, and the audit chain verifies.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from django.db.models import Count

from aigateway.audit.models import AuditEvent
from aigateway.usage.models import UsageRecord
from providers.models import ProviderKind
from tests.audit.support import audit_verify, database_url
from tests.conftest import free_port
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_KEY = "sk-shutdown-upstream-0000"
WORKERS = 16  # concurrent client loops
LOAD_SECONDS = 4.0  # before SIGTERM
UPSTREAM_DELAY = 0.3  # every upstream answer takes this long
SURELY_RECEIVED = 0.1  # a call sent this long before the signal has reached the server


@dataclass
class Call:
    started: float
    ended: float = 0.0
    status: int = 0  # 0: no HTTP answer (connection refused or closed)
    request_id: str = ""


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        fake.push_fault("slow", count=1_000_000, delay=UPSTREAM_DELAY)
        yield fake


def _start_gateway(port: int, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    # No periodic flush during the test: every record must reach the database through the
    # shutdown flush (the periodic flush is tested in test_api_calls.py).
    env = dict(os.environ, DATABASE_URL=database_url(), REDIS_URL=redis_url,
               AIGATEWAY_ALLOW_INSECURE_DEFAULTS="true", DATABASE_CONN_MAX_AGE="0",
               AIGATEWAY_AUDIT_FLUSH_SECONDS="600",
               AIGATEWAY_USAGE_FLUSH_SECONDS="600")  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "aigateway.asgi:application", "--host",
             "127.0.0.1", "--port", str(port), "--lifespan", "on", "--no-access-log",
             "--log-level", "info", "--timeout-graceful-shutdown", "30"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def _wait_ready(client: openai.AsyncOpenAI, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # the SDK imports make a cold start slow
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the gateway exited during startup")
        try:
            await client.models.list()
            return
        except openai.APIConnectionError:
            await asyncio.sleep(0.2)
    raise RuntimeError("the gateway did not start")


async def _drive(
    base_url: str, key: str, process: subprocess.Popen[bytes]
) -> tuple[list[Call], float]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=15)
    await _wait_ready(client, process)
    calls: list[Call] = []
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            call = Call(started=time.monotonic())
            calls.append(call)
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="gpt-load", messages=[{"role": "user", "content": f"load {n}-{i}"}]
                )
                call.status, call.request_id = raw.status_code, raw.headers["x-request-id"]
            except openai.APIStatusError as exc:
                call.status = exc.status_code
            except openai.APIConnectionError:
                stop.set()  # the server is going: stop sending
            call.ended = time.monotonic()
            i += 1

    workers = [asyncio.create_task(worker(n)) for n in range(WORKERS)]
    await asyncio.sleep(LOAD_SECONDS)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)  # keep sending into the shutdown: refused, never half-recorded
    stop.set()
    await asyncio.wait_for(asyncio.gather(*workers), timeout=60)
    await client.close()
    return calls, signalled


def test_no_record_is_lost_across_a_graceful_shutdown_under_load(
    cast, upstream, redis_url, transactional_db, tmp_path
) -> None:
    provider = make_provider("fake", ProviderKind.OPENAI, upstream.openai_base_url, UPSTREAM_KEY)
    issued = make_key(cast.team, make_route("gpt-load", (provider, "gpt-4o-mini")))
    port, log = free_port(), tmp_path / "gateway.log"
    process = _start_gateway(port, redis_url, log)
    try:
        calls, signalled = asyncio.run(
            _drive(f"http://127.0.0.1:{port}/v1", issued.raw_key, process)
        )
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text(errors="replace")
    # uvicorn re-raises the signal once it has shut down cleanly: killed by SIGTERM is normal.
    assert code in (0, -signal.SIGTERM), output[-3000:]
    assert "Application shutdown complete" in output, output[-3000:]
    flushed = re.search(r"shutdown: flushed (\d+) audit entries", output)
    assert flushed, output[-3000:]

    ok = [c for c in calls if c.status == 200]
    in_flight = [c for c in calls if c.started <= signalled - SURELY_RECEIVED < c.ended]
    assert len(ok) > 50  # real load: several rounds of WORKERS concurrent calls
    assert in_flight, "no call was in flight at SIGTERM: the test did not test shutdown"
    assert all(c.status == 200 for c in in_flight), [c.status for c in in_flight]
    # (uvicorn notices the signal within ~0.1 s: a call sent just after it may still be
    # accepted, and is then recorded like any other 200 below.)

    ids = [c.request_id for c in ok]
    usage = dict(
        UsageRecord.objects.filter(request_id__in=ids)
        .values_list("request_id")
        .annotate(n=Count("id"))
    )
    audited = dict(
        AuditEvent.objects.filter(action="api.call", target_id__in=ids)
        .values_list("target_id")
        .annotate(n=Count("id"))
    )
    missing_usage = [i for i in ids if usage.get(i) != 1]
    missing_audit = [i for i in ids if audited.get(i) != 1]
    print(
        f"\nshutdown under load: {len(calls)} calls sent, {len(ok)} succeeded, "
        f"{len(calls) - len(ok)} failed (refused or closed during shutdown), "
        f"{len(in_flight)} in flight at SIGTERM (all finished 200); records expected "
        f"{len(ids)}, stored usage {sum(usage.values())}, audit {sum(audited.values())} "
        f"(the shutdown flush wrote {flushed.group(1)} audit entries)"
    )
    assert not missing_usage and not missing_audit, (missing_usage[:5], missing_audit[:5])
    # Nothing recorded twice, nothing recorded for calls the clients never saw succeed
    # beyond those that failed with an HTTP status.
    api_calls = AuditEvent.objects.filter(action="api.call").count()
    assert UsageRecord.objects.count() == api_calls == int(flushed.group(1))  # all at shutdown
    assert audit_verify() == f"audit chain OK: {AuditEvent.objects.count()} records"
