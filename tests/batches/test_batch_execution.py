"""How a batch executes: cancel and expiry mid-run keep partial results, the team's quota
makes requests wait instead of fail, a dead run's batch is resumed by the sweep, and a
redelivered task or a second write never processes an item twice."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from aigateway.audit.models import AuditEvent
from aigateway.batches import store, tasks
from aigateway.batches.files import file_create
from aigateway.batches.models import Batch, BatchFile, BatchItem, ItemStatus
from aigateway.batches.services import batch_cancel, batch_create
from aigateway.gateway.principal import principal_for_api_key_id
from aigateway.quotas.models import Limit
from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from tests.batches.conftest import chat_line, echo, jsonl, parse_jsonl

pytestmark = pytest.mark.usefixtures("transactional_db")  # runs touch the DB from threads


def _new_batch(setup, team, count: int) -> Batch:
    """A batch of ``count`` chat requests, created as the API does (not yet started)."""
    lines = [chat_line(f"item-{i}", f"prompt number {i}") for i in range(count)]
    uploaded = file_create(team_id=team.pk, filename="in.jsonl", content=jsonl(lines),
                           purpose="batch")  # fmt: skip
    principal = principal_for_api_key_id(setup.api_key_id)
    return batch_create(principal=principal, input_file_id=uploaded.public_id,
                        endpoint="/v1/chat/completions", completion_window="24h")  # fmt: skip


def _file(file_id: str) -> list[dict]:
    return parse_jsonl(bytes(BatchFile.objects.get(public_id=file_id).content)) if file_id else []


def _all_lines(batch: Batch) -> list[dict]:
    return _file(batch.output_file_id) + _file(batch.error_file_id)


def test_cancel_stops_new_requests_and_keeps_partial_results(batch_setup, live_gateway, settings):
    settings.AIGATEWAY_BATCH_CONCURRENCY = 2
    batch_setup.upstream.push_fault("slow", count=100, path="/v1/chat/completions", delay=0.15)
    client = batch_setup.sdk(live_gateway.openai_base_url)
    file_id = batch_setup.upload(client, [chat_line(f"c{i}", f"p {i}") for i in range(20)])
    created: list = []
    # Eager Celery runs the batch inside the create call: create it from a thread, cancel it
    # from here once it has made progress.
    creator = threading.Thread(target=lambda: created.append(client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h",
    )))  # fmt: skip
    creator.start()
    deadline = time.monotonic() + 20
    while True:
        running = [b for b in client.batches.list() if b.status == "in_progress"]
        if running and running[0].request_counts.completed >= 2:
            break
        assert time.monotonic() < deadline, "the batch never made progress"
        time.sleep(0.05)
    cancelling = client.batches.cancel(running[0].id)
    # "cancelling" until the run notices (at its next claim); it may already have ended.
    assert cancelling.status in ("cancelling", "cancelled")
    assert cancelling.cancelling_at is not None
    creator.join(timeout=20)
    assert not creator.is_alive()

    batch = client.batches.retrieve(running[0].id)
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    done = batch.request_counts.completed
    assert 2 <= done < 20 and batch.request_counts.failed == 0
    output = parse_jsonl(client.files.content(batch.output_file_id).content)
    errors = parse_jsonl(client.files.content(batch.error_file_id).content)
    assert len(output) == done
    # Requests in flight when the cancel came finished (and are in the output); none started
    # after it: every upstream call has its output line.
    assert len(batch_setup.upstream.requests) == done
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    assert sorted(line["custom_id"] for line in output + errors) == sorted(
        f"c{i}" for i in range(20)
    )
    assert client.batches.cancel(batch.id).status == "cancelled"  # cancelling twice is fine


def test_an_expired_batch_ends_with_what_it_finished(batch_setup, cast, settings):
    settings.AIGATEWAY_BATCH_CONCURRENCY = 2
    batch_setup.upstream.push_fault("slow", count=100, path="/v1/chat/completions", delay=0.2)
    batch = _new_batch(batch_setup, cast.team, 20)
    Batch.objects.filter(pk=batch.pk).update(expires_at=timezone.now() + timedelta(seconds=1))

    assert tasks.batch_run(batch.pk) == "expired"

    batch.refresh_from_db()
    assert batch.status == "expired" and batch.expired_at is not None
    lines = _all_lines(batch)
    finished = [line for line in lines if line["error"] is None]
    assert 2 <= len(finished) < 20 and batch.completed == len(finished)
    assert all(line["response"]["status_code"] == 200 for line in finished)
    assert {line["error"]["code"] for line in lines if line["error"]} == {"batch_expired"}
    assert sorted(line["custom_id"] for line in lines) == sorted(f"item-{i}" for i in range(20))


def test_a_cancel_before_the_batch_ran_ends_it_with_nothing_run(batch_setup, cast):
    batch = _new_batch(batch_setup, cast.team, 3)
    cancelled = batch_cancel(team_id=cast.team.pk, batch_id=batch.public_id)
    cancelled.refresh_from_db()  # eager: the cancel's run has ended it
    assert cancelled.status == "cancelled"
    assert batch_setup.upstream.requests == []


def test_the_teams_quota_makes_requests_wait_not_fail(batch_setup, cast):
    # 60 requests a minute with room for 2 at once: 5 requests need about 3 seconds.
    Limit.objects.create(scope="team", scope_id=cast.team.pk, kind="rpm", value=60, burst=2)
    batch = _new_batch(batch_setup, cast.team, 5)
    started = time.monotonic()
    assert tasks.batch_run(batch.pk) == "completed"
    elapsed = time.monotonic() - started

    batch.refresh_from_db()
    assert (batch.completed, batch.failed) == (5, 0)
    assert elapsed >= 2.5 and batch.quota_waits >= 3
    for line in _file(batch.output_file_id):
        assert line["response"]["body"]["choices"][0]["message"]["content"] == echo(
            "prompt number " + line["custom_id"].removeprefix("item-")
        )
    # The waits were pauses, not calls: one usage record per request, none of them a 429.
    usage_recorder.flush()
    assert list(UsageRecord.objects.values_list("status_code", flat=True)) == [200] * 5


def test_a_batch_whose_run_died_is_resumed_by_the_sweep(batch_setup, cast):
    batch = _new_batch(batch_setup, cast.team, 10)
    # A run takes the batch, validates it, starts three requests, and dies.
    store.lease_take(batch.pk, "dead-run", 60)
    principal = principal_for_api_key_id(batch_setup.api_key_id)
    store.batch_validate(batch.pk, "dead-run", principal, 100)
    _, started = store.items_claim(batch.pk, "dead-run", 3)
    assert len(started) == 3

    assert tasks.batches_sweep() == 0  # its lease has not run out yet: it may be alive
    Batch.objects.filter(pk=batch.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert tasks.batches_sweep() == 1  # eager: the resumed run completes the batch

    batch.refresh_from_db()
    assert (batch.status, batch.completed) == ("completed", 10)
    attempts = dict(BatchItem.objects.values_list("custom_id", "attempts"))
    assert attempts == {f"item-{i}": 2 if i < 3 else 1 for i in range(10)}
    assert len(batch_setup.upstream.requests) == 10
    assert tasks.batches_sweep() == 0  # nothing left to resume


def test_a_redelivered_task_and_a_second_write_change_nothing(batch_setup, cast):
    batch = _new_batch(batch_setup, cast.team, 4)
    assert tasks.batch_run(batch.pk) == "completed"
    # The run wrote its calls' audit entries before returning (its loop may not run again).
    batch.refresh_from_db()
    audited = AuditEvent.objects.filter(target_type="api_call")
    assert sorted(audited.values_list("target_id", flat=True)) == sorted(
        line["response"]["request_id"] for line in _file(batch.output_file_id)
    )
    files_before = BatchFile.objects.count()
    results_before = dict(BatchItem.objects.values_list("pk", "result"))

    assert tasks.batch_run(batch.pk) == "skipped"  # the broker delivered the task again
    item = BatchItem.objects.first()
    late = store.ItemResult(500, {"custom_id": item.custom_id, "late": True})
    assert store.item_finish(item.pk, late) is False  # a lost run finishing late

    assert BatchFile.objects.count() == files_before
    assert dict(BatchItem.objects.values_list("pk", "result")) == results_before
    assert set(BatchItem.objects.values_list("status", flat=True)) == {ItemStatus.SUCCEEDED}
    assert len(batch_setup.upstream.requests) == 4


def test_a_revoked_key_fails_its_batch(batch_setup, cast):
    from auth.models import ApiKey

    batch = _new_batch(batch_setup, cast.team, 2)
    ApiKey.objects.filter(pk=batch_setup.api_key_id).update(revoked_at=timezone.now())
    assert tasks.batch_run(batch.pk) == "failed"
    batch.refresh_from_db()
    assert [e["code"] for e in batch.errors] == ["invalid_api_key"]
    assert batch_setup.upstream.requests == []


def test_the_sweep_sends_each_stalled_batch_once(batch_setup, cast):
    now = timezone.now()
    never_sent = _new_batch(batch_setup, cast.team, 1)
    waiting = _new_batch(batch_setup, cast.team, 1)
    Batch.objects.filter(pk=waiting.pk).update(resume_after=now + timedelta(minutes=5))

    assert store.batches_stalled(now, 60) == [never_sent.pk]
    assert store.batches_stalled(now, 60) == []  # a second sweep at once sends nothing
    # The quota wait is over (or the batch expired meanwhile): it is due again.
    Batch.objects.filter(pk=waiting.pk).update(expires_at=now - timedelta(seconds=1))
    assert store.batches_stalled(now, 60) == [waiting.pk]


def test_a_spent_budget_parks_the_batch_until_it_has_room(batch_setup, cast, settings):
    settings.AIGATEWAY_BATCH_CONCURRENCY = 1
    # Room for a request or two this month: the rest wait until the month is over,
    # far longer than a worker should sit on it.
    limit = Limit.objects.create(scope="team", scope_id=cast.team.pk, kind="tokens_month",
                                 value=25)  # fmt: skip
    batch = _new_batch(batch_setup, cast.team, 3)
    assert tasks.batch_run(batch.pk) == "quota"

    batch.refresh_from_db()
    assert batch.status == "in_progress" and batch.lease_token == ""
    assert batch.resume_after > timezone.now() + timedelta(minutes=1)
    done = BatchItem.objects.filter(status="succeeded").count()
    waiting = BatchItem.objects.filter(status="pending")
    assert done >= 1 and waiting.count() == 3 - done >= 1
    assert set(waiting.values_list("attempts", flat=True)) == {0}  # never reached upstream
    assert len(batch_setup.upstream.requests) == done
    assert tasks.batches_sweep() == 0  # not due yet

    limit.delete()  # the budget is raised (or the month ends): due again
    Batch.objects.filter(pk=batch.pk).update(resume_after=timezone.now())
    assert tasks.batches_sweep() == 1
    batch.refresh_from_db()
    assert (batch.status, batch.completed) == ("completed", 3)
