"""Without a broker (eager Celery, `make run`) a batch runs in a background thread of the
process: POST /v1/batches answers at once, the batch progresses afterwards, a failing run is
logged and does not stop the thread, and batches left unfinished resume at startup."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from aigateway.batches import background, runner
from aigateway.batches.background import eager_worker
from aigateway.batches.files import file_create
from aigateway.batches.models import Batch, BatchFile, BatchStatus
from aigateway.batches.services import batch_create, batch_enqueue
from aigateway.gateway.principal import principal_for_api_key_id
from tests.batches.conftest import chat_line, echo, jsonl, parse_jsonl

pytestmark = pytest.mark.usefixtures("transactional_db")  # the thread has its own connection

LINES = 10
DELAY = 0.5  # seconds per upstream answer: 10 lines, 2 at a time, take at least 2.5 s


@pytest.fixture
def in_background(settings, transactional_db) -> Iterator[None]:
    settings.AIGATEWAY_BATCH_EAGER_BACKGROUND = True
    yield
    assert eager_worker.stop(timeout=30), "the batches thread did not stop"


def _wait_for(batch_id: int, timeout: float) -> Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = Batch.objects.get(pk=batch_id)
        if batch.status == BatchStatus.COMPLETED:
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.05)


def _new_batch(setup, team, count: int) -> Batch:
    lines = [chat_line(f"item-{i}", f"prompt number {i}") for i in range(count)]
    uploaded = file_create(team_id=team.pk, filename="in.jsonl", content=jsonl(lines),
                           purpose="batch")  # fmt: skip
    return batch_create(principal=principal_for_api_key_id(setup.api_key_id),
                        input_file_id=uploaded.public_id, endpoint="/v1/chat/completions",
                        completion_window="24h")  # fmt: skip


def _answers(batch: Batch) -> dict[str, str]:
    content = bytes(BatchFile.objects.get(public_id=batch.output_file_id).content)
    return {
        line["custom_id"]: line["response"]["body"]["choices"][0]["message"]["content"]
        for line in parse_jsonl(content)
    }


def test_create_returns_at_once_and_the_batch_finishes_in_the_background(
    batch_setup, live_gateway, settings, in_background
):
    settings.AIGATEWAY_BATCH_CONCURRENCY = 2
    batch_setup.upstream.push_fault("slow", count=100, path="/v1/chat/completions", delay=DELAY)
    client = batch_setup.sdk(live_gateway.openai_base_url)
    file_id = batch_setup.upload(client, [chat_line(f"c{i}", f"p {i}") for i in range(LINES)])

    started = time.monotonic()
    created = client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    took = time.monotonic() - started
    assert created.status in ("validating", "in_progress")
    assert created.request_counts.completed < LINES
    assert took < LINES / 2 * DELAY, f"create took {took:.2f}s: it ran the batch"

    seen: set[tuple[str, int]] = set()
    deadline = time.monotonic() + 60
    while (batch := client.batches.retrieve(created.id)).status != "completed":
        assert batch.status in ("validating", "in_progress", "finalizing"), batch.status
        seen.add((batch.status, batch.request_counts.completed))
        assert time.monotonic() < deadline, f"batch still {batch.status}: {batch}"
        time.sleep(0.05)
    # It was observed part-way, through the API, while the thread worked on it.
    assert any(status == "in_progress" and 0 < done < LINES for status, done in seen), seen
    assert batch.request_counts.completed == LINES and batch.request_counts.failed == 0
    assert batch.usage is not None and batch.usage.total_tokens > 0
    output = parse_jsonl(client.files.content(batch.output_file_id).content)
    answers = {line["custom_id"]: line["response"]["body"] for line in output}
    assert {cid: body["choices"][0]["message"]["content"] for cid, body in answers.items()} == {
        f"c{i}": echo(f"p {i}") for i in range(LINES)
    }


def test_a_failing_run_is_logged_and_the_thread_sweeps_the_batch_back(
    batch_setup, cast, settings, in_background, monkeypatch, caplog
):
    # A short lease and sweep: the batch whose run failed is due again about a second later.
    settings.AIGATEWAY_BATCH_LEASE_SECONDS = 0.5
    settings.AIGATEWAY_BATCH_SWEEP_SECONDS = 1.0
    real_run = runner.batch_run
    calls: list[str] = []

    async def failing_once(batch_id: int) -> str:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise RuntimeError("database went away mid-run")
        return await real_run(batch_id)

    monkeypatch.setattr(runner, "batch_run", failing_once)
    caplog.set_level(logging.ERROR, logger="aigateway.batches.background")
    batch = _new_batch(batch_setup, cast.team, 3)
    batch_enqueue(batch_id=batch.pk)  # no transaction open: dispatched at once

    done = _wait_for(batch.pk, timeout=30)
    assert _answers(done) == {f"item-{i}": echo(f"prompt number {i}") for i in range(3)}
    assert calls[0] == "batches-eager" and len(calls) >= 2
    failures = [r for r in caplog.records if r.name == "aigateway.batches.background"]
    assert failures and f"batch {batch.pk} failed" in failures[0].getMessage()
    assert failures[0].exc_info and "database went away" in str(failures[0].exc_info[1])


def test_unfinished_batches_resume_when_the_process_starts(batch_setup, cast, in_background):
    # A batch the previous process never ran (or whose run died, once its lease ran out).
    batch = _new_batch(batch_setup, cast.team, 2)
    background.resume_on_start()  # what the ASGI lifespan startup calls
    done = _wait_for(batch.pk, timeout=30)
    assert _answers(done) == {f"item-{i}": echo(f"prompt number {i}") for i in range(2)}


def test_with_background_off_nothing_starts_at_startup(batch_setup, cast, settings):
    settings.AIGATEWAY_BATCH_EAGER_BACKGROUND = False
    batch = _new_batch(batch_setup, cast.team, 1)
    background.resume_on_start()
    assert not [t for t in threading.enumerate() if t.name == "batches-eager"]
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.VALIDATING
