"""The runner's database steps (synchronous, ORM; the runner calls them through ``run_db``).

Two rules make a batch safe to run again after any crash:
- one run at a time holds a batch's lease (a token and an expiry, renewed while it works);
  a run that finds the lease held by a live run does nothing;
- an item's result is written by a conditional update that only succeeds while the item is
  still open, so however often an item is started (a redelivered task, a run that lost its
  lease), exactly one result is kept and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from aigateway.batches.models import (
    ACTIVE_STATUSES,
    OPEN_ITEM_STATUSES,
    Batch,
    BatchFile,
    BatchItem,
    BatchStatus,
    ItemStatus,
)
from aigateway.batches.output import batch_outputs
from aigateway.batches.validation import InputLine, LineError, parse_input
from aigateway.gateway.principal import Principal


@dataclass(frozen=True, slots=True)
class RunState:
    batch_id: int
    public_id: str
    status: str
    endpoint: str
    api_key_id: int | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ItemWork:
    pk: int
    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ItemResult:
    status_code: int
    line: dict[str, Any]  # the output line: {"id", "custom_id", "response", "error"}
    input_tokens: int = 0
    output_tokens: int = 0


def _state(batch: Batch) -> RunState:
    return RunState(
        batch.pk, batch.public_id, batch.status, batch.endpoint, batch.api_key_id,
        batch.expires_at,
    )  # fmt: skip


def _free_lease(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def lease_take(batch_id: int, token: str, seconds: float) -> RunState | None:
    """Take the batch's lease if it is active and no live run holds it."""
    now = timezone.now()
    taken = (
        Batch.objects.filter(pk=batch_id, status__in=ACTIVE_STATUSES)
        .filter(_free_lease(now))
        .update(lease_token=token, lease_until=now + timedelta(seconds=seconds))
    )
    if not taken:
        return None
    return _state(Batch.objects.get(pk=batch_id))


def lease_renew(batch_id: int, token: str, seconds: float, quota_waits: int = 0) -> RunState | None:
    """Extend our lease (and count the quota waits since the last renewal); None when
    another run took the batch over (ours had run out)."""
    now = timezone.now()
    renewed = Batch.objects.filter(pk=batch_id, lease_token=token).update(
        lease_until=now + timedelta(seconds=seconds), quota_waits=F("quota_waits") + quota_waits
    )
    return _state(Batch.objects.get(pk=batch_id)) if renewed else None


def lease_release(
    batch_id: int, token: str, resume_after: datetime | None, quota_waits: int = 0
) -> None:
    Batch.objects.filter(pk=batch_id, lease_token=token).update(
        lease_token="", lease_until=None, resume_after=resume_after,
        quota_waits=F("quota_waits") + quota_waits,
    )  # fmt: skip


def batch_validate(
    batch_id: int, token: str, principal: Principal | None, max_requests: int
) -> RunState:
    """Read the input file into items (``in_progress``), or fail the batch with its errors."""
    batch = Batch.objects.get(pk=batch_id)
    content = (
        BatchFile.objects.filter(team_id=batch.team_id, public_id=batch.input_file_id)
        .values_list("content", flat=True)
        .first()
    )
    lines: list[InputLine] = []
    model = ""
    if principal is None:
        errors = [LineError("invalid_api_key", "The API key that created this batch was "
                            "revoked, deleted or has expired.")]  # fmt: skip
    elif content is None:
        errors = [LineError("file_not_found", f"The input file {batch.input_file_id} was "
                            "deleted before the batch started.")]  # fmt: skip
    else:
        parsed = parse_input(
            bytes(content), endpoint=batch.endpoint, allowed_models=principal.allowed_routes,
            max_requests=max_requests,
        )  # fmt: skip
        errors, lines, model = parsed.errors, parsed.lines, parsed.model
    now = timezone.now()
    with transaction.atomic():
        mine = Batch.objects.select_for_update().filter(pk=batch_id, lease_token=token)
        if not mine.exists():
            return replace(_state(batch), status="")  # lost the lease: do nothing
        if errors:
            mine.update(
                status=BatchStatus.FAILED, failed_at=now, errors=[e.as_dict() for e in errors]
            )
            return replace(_state(batch), status=BatchStatus.FAILED)
        BatchItem.objects.filter(batch_id=batch_id).delete()  # a half-done earlier attempt
        BatchItem.objects.bulk_create(
            [BatchItem(batch_id=batch_id, line=line.line, custom_id=line.custom_id,
                       body=line.body) for line in lines],
            batch_size=1000,
        )  # fmt: skip
        mine.update(total=len(lines), model=model, in_progress_at=now)
        # A cancel that arrived while validating stands; otherwise the batch starts.
        mine.filter(status=BatchStatus.VALIDATING).update(status=BatchStatus.IN_PROGRESS)
    return _state(Batch.objects.get(pk=batch_id))


def orphans_reset(batch_id: int) -> int:
    """Items a dead run had started go back to the queue (called by the lease holder)."""
    return BatchItem.objects.filter(batch_id=batch_id, status=ItemStatus.RUNNING).update(
        status=ItemStatus.PENDING, run_token=""
    )


def open_items(batch_id: int) -> int:
    return BatchItem.objects.filter(batch_id=batch_id, status__in=OPEN_ITEM_STATUSES).count()


def items_claim(batch_id: int, token: str, limit: int) -> tuple[str, list[ItemWork]]:
    """The batch's status now, and up to ``limit`` pending items marked as ours (none once
    the batch is no longer running)."""
    status = Batch.objects.filter(pk=batch_id).values_list("status", flat=True).first() or ""
    if status not in (BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING):
        return status, []
    ids = list(
        BatchItem.objects.filter(batch_id=batch_id, status=ItemStatus.PENDING)
        .order_by("line")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return status, []
    BatchItem.objects.filter(pk__in=ids, status=ItemStatus.PENDING).update(
        status=ItemStatus.RUNNING, run_token=token, started_at=timezone.now(),
        attempts=F("attempts") + 1,
    )  # fmt: skip
    rows = BatchItem.objects.filter(pk__in=ids, run_token=token, status=ItemStatus.RUNNING)
    return status, [
        ItemWork(row["pk"], row["custom_id"], row["body"])
        for row in rows.order_by("line").values("pk", "custom_id", "body")
    ]


def items_release(item_ids: list[int], token: str) -> None:
    """Claimed items this run did not start (it is stopping) go back to the queue."""
    BatchItem.objects.filter(pk__in=item_ids, run_token=token, status=ItemStatus.RUNNING).update(
        status=ItemStatus.PENDING, run_token="", attempts=F("attempts") - 1
    )


def item_finish(item_id: int, result: ItemResult) -> bool:
    """Write the item's result unless it already has one. True when this write counted."""
    return bool(
        BatchItem.objects.filter(pk=item_id, status__in=OPEN_ITEM_STATUSES).update(
            status=ItemStatus.SUCCEEDED if 200 <= result.status_code < 300 else ItemStatus.FAILED,
            status_code=result.status_code,
            result=result.line,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            finished_at=timezone.now(),
        )
    )


ENDINGS = {
    BatchStatus.COMPLETED: "completed_at",
    BatchStatus.CANCELLED: "cancelled_at",
    BatchStatus.EXPIRED: "expired_at",
}


def batch_finalize(batch_id: int, token: str, ending: BatchStatus) -> bool:
    """Write the output and error files and end the batch, in one transaction: a crash in
    between leaves the batch active (and the next run finalizes it) with no stray files."""
    if ending == BatchStatus.COMPLETED:
        Batch.objects.filter(pk=batch_id, lease_token=token).exclude(
            status=BatchStatus.FINALIZING
        ).update(status=BatchStatus.FINALIZING, finalizing_at=timezone.now())
    with transaction.atomic():
        batch = Batch.objects.select_for_update().filter(pk=batch_id, lease_token=token).first()
        if batch is None:
            return False
        outputs = batch_outputs(batch, ending)
        now = timezone.now()
        setattr(batch, ENDINGS[ending], now)
        batch.status = ending
        batch.output_file_id = outputs.output_file_id
        batch.error_file_id = outputs.error_file_id
        batch.completed, batch.failed = outputs.completed, outputs.failed
        batch.usage = outputs.usage
        batch.save()  # the run's lease_release clears the lease
    return True


def batches_stalled(now: datetime, requeue_after: float) -> list[int]:
    """Active batches no live run holds, due to run, and not sent to a worker recently: a
    killed worker's batch once its lease ran out, a batch whose task was lost, a batch
    waiting for its quota once the wait is over, an expired one to be ended. Each is marked
    as sent by a conditional update, so sweeps running at once (several workers starting)
    send a batch once."""
    recent = now - timedelta(seconds=requeue_after)
    not_recent = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=recent)
    due = Q(resume_after__isnull=True) | Q(resume_after__lte=now) | Q(expires_at__lte=now)
    candidates = (
        Batch.objects.filter(status__in=ACTIVE_STATUSES)
        .filter(_free_lease(now), due, not_recent)
        .values_list("pk", flat=True)
    )
    return [
        pk
        for pk in list(candidates)
        if Batch.objects.filter(not_recent, pk=pk).update(enqueued_at=now)
    ]
