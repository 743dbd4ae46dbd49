"""The proof: 1,000 requests under a team quota, executed by real Celery worker processes on
the Redis broker, with the first worker killed (SIGKILL) mid-batch. A second worker finishes
the batch: every request answered exactly once, results match inputs.

Neither worker is sent a task: the batch is created as the API creates it and each worker's
startup sweep picks it up (the same sweep beat runs every AIGATEWAY_BATCH_SWEEP_SECONDS), the
first because nothing runs it, the second because the killed run's lease ran out. The
broker's visibility timeout stays at an hour, so the killed worker's unacknowledged message
plays no part.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from aigateway.batches.files import file_create
from aigateway.batches.models import Batch, BatchFile, BatchItem, ItemStatus
from aigateway.batches.services import batch_create
from aigateway.gateway.principal import principal_for_api_key_id
from aigateway.quotas.models import Limit
from tests.batches.conftest import chat_line, echo, jsonl, parse_jsonl

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 1000
RATE_PER_SECOND = 60  # the team's quota: 3,600 requests a minute...
BURST = 10  # ...with room for 10 at once (16 requests start together: some must wait)
CONCURRENCY = 16
LEASE_SECONDS = 2.0
KILL_AFTER = 300  # results written before the first worker is killed
WINDOW = 5  # seconds: the quota check's window

pytestmark = pytest.mark.slow


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Processes:
    """Celery processes of this test, their output in files (a full pipe would block them)."""

    def __init__(self, redis_url: str, workdir: str) -> None:
        self.workdir = workdir
        self.env = dict(
            os.environ,
            CELERY_BROKER_URL=redis_url,
            REDIS_URL=redis_url,
            DATABASE_URL=_database_url(),
            AIGATEWAY_ALLOW_INSECURE_DEFAULTS="true",
            AIGATEWAY_BATCH_CONCURRENCY=str(CONCURRENCY),
            AIGATEWAY_BATCH_LEASE_SECONDS=str(LEASE_SECONDS),
            CELERY_VISIBILITY_TIMEOUT="3600",
        )
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(Path(self.workdir) / f"{name}.log", "wb")  # noqa: SIM115 - closed with it
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "aigateway", *args, "--loglevel", "WARNING"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.started.append((name, process))
        return process

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(
            name, "worker", "--pool", "solo", "--hostname", f"{name}@%h",
            "--without-heartbeat", "--without-gossip", "--without-mingle",
        )  # fmt: skip

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n" + (Path(self.workdir) / f"{name}.log").read_text()[-3000:]
            for name, _ in self.started
        )

    def stop_all(self) -> None:
        for _, process in self.started:
            if process.poll() is None:
                process.terminate()
        for _, process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def processes(redis_url, transactional_db) -> Iterator[Processes]:
    with tempfile.TemporaryDirectory() as workdir:
        running = Processes(redis_url, workdir)
        yield running
        running.stop_all()


def _succeeded() -> int:
    return BatchItem.objects.filter(status=ItemStatus.SUCCEEDED).count()


def _wait(predicate, timeout: float, what: str, processes: Processes) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{processes.logs()}")
        time.sleep(0.1)


def test_a_killed_worker_loses_nothing_and_repeats_nothing(batch_setup, cast, processes):
    started = time.monotonic()
    upstream = batch_setup.upstream
    upstream.push_fault("slow", count=10 * REQUESTS, path="/v1/chat/completions", delay=0.05)
    Limit.objects.create(scope="team", scope_id=cast.team.pk, kind="rpm",
                         value=RATE_PER_SECOND * 60, burst=BURST)  # fmt: skip
    prompts = {f"req-{i:04d}": f"batch prompt {i} of the crash test" for i in range(REQUESTS)}
    lines = [chat_line(cid, prompt, max_tokens=64) for cid, prompt in prompts.items()]
    uploaded = file_create(team_id=cast.team.pk, filename="big.jsonl", content=jsonl(lines),
                           purpose="batch")  # fmt: skip
    batch = batch_create(
        principal=principal_for_api_key_id(batch_setup.api_key_id),
        input_file_id=uploaded.public_id, endpoint="/v1/chat/completions",
        completion_window="24h",
    )  # fmt: skip

    first = processes.worker("first")
    _wait(lambda: _succeeded() >= 1, 30, "a first result", processes)
    first_result = time.monotonic()
    _wait(lambda: _succeeded() >= KILL_AFTER, 40, f"{KILL_AFTER} results", processes)
    at_kill = time.monotonic()

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.time()
    running_at_kill = BatchItem.objects.filter(status=ItemStatus.RUNNING).count()
    done_at_kill = _succeeded()
    assert done_at_kill < REQUESTS, "the batch finished before the worker could be killed"
    # As a restarted worker would, once the dead run's lease has run out.
    _wait(lambda: Batch.objects.get(pk=batch.pk).lease_until < timezone.now(), 10,
          "the killed run's lease to run out", processes)  # fmt: skip
    second = processes.worker("second")
    _wait(lambda: Batch.objects.get(pk=batch.pk).status == "completed", 50,
          "the batch to complete", processes)  # fmt: skip
    elapsed = time.monotonic() - started
    second_cpu = _cpu_seconds(second.pid)
    items = BatchItem.objects.all()
    # The quota held: no 5-second window saw more results than the quota admits in it, give
    # or take a second between a request's admission and its stored result.
    finishes = sorted(t.timestamp() for t in items.values_list("finished_at", flat=True))
    busiest = max(_in_window(finishes, i, WINDOW) for i in range(len(finishes)))
    assert busiest <= RATE_PER_SECOND * (WINDOW + 1) + BURST
    print(f"\n{REQUESTS} requests, killed at {done_at_kill}: {elapsed:.1f} s wall "
          f"(first result {first_result - started:.1f} s, kill {at_kill - started:.1f} s), "
          f"busiest {WINDOW} s {busiest} results, {Batch.objects.get(pk=batch.pk).quota_waits} "
          f"quota waits; second worker {second_cpu:.1f} s CPU for "
          f"{REQUESTS - done_at_kill} requests, startup included)")  # fmt: skip

    batch.refresh_from_db()
    assert (batch.total, batch.completed, batch.failed) == (REQUESTS, REQUESTS, 0)
    assert batch.error_file_id == ""
    assert batch.quota_waits > 0  # the quota, not the workers, paced the batch
    output = parse_jsonl(bytes(BatchFile.objects.get(public_id=batch.output_file_id).content))
    assert len(output) == REQUESTS
    assert Counter(line["custom_id"] for line in output) == Counter(list(prompts))  # each once
    assert len({line["response"]["request_id"] for line in output}) == REQUESTS
    for line in output:
        answer = line["response"]["body"]["choices"][0]["message"]["content"]
        assert answer == echo(prompts[line["custom_id"]])

    # The second worker resumed the batch: it finished what the first had not, including
    # the requests the first had started (claimed again, so attempted twice).
    items = BatchItem.objects.all()
    finished_after_kill = items.filter(finished_at__gt=_aware(killed_at)).count()
    assert finished_after_kill == REQUESTS - done_at_kill
    assert running_at_kill > 0 and items.filter(attempts=2).count() >= 1
    # At most the requests in flight at the kill reached the upstream twice.
    calls = [r for r in upstream.requests if r.path == "/v1/chat/completions"]
    assert REQUESTS <= len(calls) <= REQUESTS + CONCURRENCY


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (Linux /proc), for the report line."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _in_window(times: list[float], start: int, seconds: float) -> int:
    end = start
    while end < len(times) and times[end] < times[start] + seconds:
        end += 1
    return end - start


def _aware(timestamp: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)
