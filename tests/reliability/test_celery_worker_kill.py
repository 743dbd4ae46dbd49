"""A production-shaped Celery worker (prefork pool, concurrency 2, real Redis broker) killed
with SIGKILL mid-batch, then restarted under the same name: the batch completes, every item
has exactly one result, and the fake upstream's own log says which items were executed twice.

What tests/batches/test_batch_worker_crash.py already proves (solo pool, quota pacing, a
second worker resumes through its startup sweep, result rows each once) is not repeated.
Added here: the task reaches the worker through the broker, as ``batch_enqueue`` sends it;
the whole worker (main process and pool children, one process group, as a container or an
OOM kill takes it) dies; the same worker is restarted; and calls are counted at the upstream
per custom_id. A call in flight when its worker dies cannot be taken back: the upstream has
it, the result never reached the database. Those items, and only those, run again after the
restart: they reach the upstream exactly twice, every other item exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.utils import timezone

from aigateway.audit.models import AuditEvent
from aigateway.batches.files import file_create
from aigateway.batches.models import Batch, BatchFile, BatchItem, ItemStatus
from aigateway.batches.services import batch_create
from aigateway.gateway.principal import principal_for_api_key_id
from aigateway.usage.models import UsageRecord
from providers.models import ProviderKind
from tests.audit.support import database_url
from tests.batches.conftest import UPSTREAM_KEY, UPSTREAM_MODEL, chat_line, echo, jsonl, parse_jsonl
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 200
CONCURRENCY = 8  # requests a run keeps in flight
UPSTREAM_DELAY = 0.25  # seconds per upstream answer: a full run takes ~6 s
LEASE_SECONDS = 2.0
KILL_AFTER = 40  # results stored before the kill
CHAT = "/v1/chat/completions"

pytestmark = pytest.mark.slow


class Worker:
    """``celery worker`` as docker-compose runs it, in its own process group, output in a file."""

    def __init__(self, broker_url: str, workdir: Path) -> None:
        self.workdir = workdir
        self.env = dict(
            os.environ, CELERY_BROKER_URL=broker_url, REDIS_URL=broker_url,
            DATABASE_URL=database_url(), AIGATEWAY_ALLOW_INSECURE_DEFAULTS="true",
            AIGATEWAY_BATCH_CONCURRENCY=str(CONCURRENCY),
            AIGATEWAY_BATCH_LEASE_SECONDS=str(LEASE_SECONDS), DATABASE_CONN_MAX_AGE="0",
        )  # fmt: skip
        self.runs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"worker-{len(self.runs) + 1}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "aigateway", "worker", "--concurrency", "2",
             "--hostname", "batches@%h", "--loglevel", "WARNING", "--without-heartbeat",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()  # the child holds its own descriptor
        self.runs.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)  # the main process and its pool children
        process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n" + p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.workdir.glob("worker-*.log")))  # fmt: skip

    def stop_all(self) -> None:
        for process in self.runs:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.runs:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def worker(redis_url: str, transactional_db: None, tmp_path: Path) -> Iterator[Worker]:
    running = Worker(redis_url, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        fake.push_fault("slow", count=10 * REQUESTS, path=CHAT, delay=UPSTREAM_DELAY)
        yield fake


def _wait(predicate: Callable[[], bool], timeout: float, what: str, worker: Worker) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{worker.logs()}")
        time.sleep(0.05)


def _upstream_calls(upstream: FakeUpstream, by_prompt: dict[str, str]) -> Counter[str]:
    """Chat calls the upstream received, per custom_id (the prompt names the item)."""
    return Counter(by_prompt[r.json["messages"][0]["content"]]
                   for r in upstream.requests if r.path == CHAT)  # fmt: skip


def _succeeded() -> set[str]:
    items = BatchItem.objects.filter(status=ItemStatus.SUCCEEDED)
    return set(items.values_list("custom_id", flat=True))


def test_a_batch_survives_its_worker_killed_and_restarted_each_item_once(
    cast, upstream, worker, redis_url
) -> None:
    started = time.monotonic()
    provider = make_provider("kill-openai", ProviderKind.OPENAI, upstream.openai_base_url,
                             UPSTREAM_KEY)  # fmt: skip
    issued = make_key(cast.team, make_route("kill-model", (provider, UPSTREAM_MODEL)))
    prompts = {f"item-{i:03d}": f"worker kill prompt {i}" for i in range(REQUESTS)}
    by_prompt = {prompt: custom_id for custom_id, prompt in prompts.items()}
    lines = [chat_line(cid, p, model="kill-model") for cid, p in prompts.items()]
    uploaded = file_create(team_id=cast.team.pk, filename="kill.jsonl", content=jsonl(lines),
                           purpose="batch")  # fmt: skip
    principal = principal_for_api_key_id(issued.api_key.pk)
    assert principal is not None
    batch = batch_create(principal=principal, input_file_id=uploaded.public_id, endpoint=CHAT,
                         completion_window="24h")  # fmt: skip
    # Sent through the broker as batch_enqueue does (this test process runs Celery eagerly).
    Batch.objects.filter(pk=batch.pk).update(enqueued_at=timezone.now())
    client = Celery("kill-test-client", broker=redis_url)
    client.conf.update(task_serializer="json", accept_content=["json"])
    client.send_task("batches.run", args=[batch.pk])

    def _ready_to_kill() -> bool:
        # Items are claimed eight at a time, so a run goes in waves: between one wave's last
        # result and the next wave's first call nothing is in flight. Kill only once a call
        # is (upstream read first: a call it has and the database lacks is still running).
        calls = set(_upstream_calls(upstream, by_prompt))
        done = _succeeded()
        return len(done) >= KILL_AFTER and bool(calls - done)

    first = worker.start()
    _wait(_ready_to_kill, 45, f"{KILL_AFTER} results and a call in flight", worker)
    worker.kill(first)
    killed = time.monotonic()
    time.sleep(0.3)  # bytes a dead worker had written reach the upstream (or never will)
    done_at_kill = _succeeded()
    calls_at_kill = _upstream_calls(upstream, by_prompt)
    running_at_kill = set(BatchItem.objects.filter(status=ItemStatus.RUNNING)
                          .values_list("custom_id", flat=True))  # fmt: skip
    in_flight = set(calls_at_kill) - done_at_kill  # the upstream has it, the database does not
    assert len(done_at_kill) < REQUESTS, "the batch ended before the kill: nothing was tested"
    assert in_flight, "no call was in flight at the kill"
    assert in_flight <= running_at_kill
    assert Batch.objects.get(pk=batch.pk).status == "in_progress"

    worker.start()  # the same worker again; its lease ran out meanwhile or will shortly
    _wait(lambda: Batch.objects.get(pk=batch.pk).status == "completed", 45,
          "the batch to complete after the restart", worker)  # fmt: skip
    elapsed = time.monotonic() - started

    batch.refresh_from_db()
    assert (batch.total, batch.completed, batch.failed) == (REQUESTS, REQUESTS, 0)
    assert batch.error_file_id == ""
    output = parse_jsonl(bytes(BatchFile.objects.get(public_id=batch.output_file_id).content))
    assert Counter(line["custom_id"] for line in output) == Counter(list(prompts))  # each once
    for line in output:
        assert line["response"]["status_code"] == 200
        answer = line["response"]["body"]["choices"][0]["message"]["content"]
        assert answer == echo(prompts[line["custom_id"]])
    assert len({line["response"]["request_id"] for line in output}) == REQUESTS

    # At the upstream: every item at least once; twice exactly the items in flight at the
    # kill; no item three times; every other item exactly once.
    calls = _upstream_calls(upstream, by_prompt)
    twice = {cid for cid, n in calls.items() if n == 2}
    assert set(calls) == set(prompts)
    assert max(calls.values()) <= 2
    assert twice == in_flight
    assert all(calls[cid] == 1 for cid in set(prompts) - in_flight)
    items = BatchItem.objects.all()
    assert set(items.filter(attempts=2).values_list("custom_id", flat=True)) == running_at_kill
    # Usage and audit: a result is stored only after its call's records (runner._worker), so
    # every result's call is recorded, the killed worker's included. Calls in flight at the
    # kill reached the upstream but died with the worker before an answer: at most those
    # (and a call recorded just before its result could be stored) go unmatched.
    request_ids = {line["custom_id"]: line["response"]["request_id"] for line in output}
    usage_rows = list(
        UsageRecord.objects.filter(source="batch").values_list("request_id", flat=True)
    )
    recorded = set(usage_rows)
    assert len(usage_rows) == len(recorded), "a call was recorded twice"
    assert set(request_ids.values()) <= recorded
    assert REQUESTS <= len(recorded) <= sum(calls.values())
    audited = set(AuditEvent.objects.filter(action="api.call").values_list("target_id", flat=True))
    assert set(request_ids.values()) <= audited
    lost_usage = len({request_ids[cid] for cid in done_at_kill} - recorded)
    lost_audit = len({request_ids[cid] for cid in done_at_kill} - audited)
    print(
        f"\nworker kill: {REQUESTS} items, SIGKILL (prefork, whole group) after "
        f"{len(done_at_kill)} results, {len(running_at_kill)} claimed and {len(in_flight)} at "
        f"the upstream at the kill; restarted, completed {time.monotonic() - killed:.1f} s "
        f"after the kill ({elapsed:.1f} s in all). Upstream calls {sum(calls.values())}: "
        f"{REQUESTS - len(twice)} items once, {len(twice)} twice (exactly those in flight). "
        f"Output: {len(output)} lines, one per custom_id. Records of results stored before the "
        f"kill that are missing: usage {lost_usage}, audit {lost_audit} of {len(done_at_kill)}; "
        f"usage rows {len(recorded)}."
    )
