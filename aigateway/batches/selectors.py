"""Reads: a team's batches, and the live request counts of running ones (synchronous, ORM)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from aigateway.batches.errors import NotFound
from aigateway.batches.files import Page
from aigateway.batches.models import ACTIVE_STATUSES, Batch, BatchItem, ItemStatus


@dataclass(frozen=True, slots=True)
class RequestCounts:
    total: int
    completed: int
    failed: int


def batch_get_for_team(*, team_id: int, batch_id: str) -> Batch:
    found = Batch.objects.filter(team_id=team_id, public_id=batch_id).first()
    if found is None:
        raise NotFound(f"No such Batch object: {batch_id}", param="batch_id")
    return found


def batches_list(*, team_id: int, limit: int, after: str | None) -> Page[Batch]:
    """Newest first; ``after`` is the id of the last batch of the previous page."""
    batches = Batch.objects.filter(team_id=team_id)
    if after:
        cursor = Batch.objects.filter(team_id=team_id, public_id=after).first()
        if cursor is None:
            raise NotFound(f"No such Batch object: {after}", param="after")
        batches = batches.filter(pk__lt=cursor.pk)
    rows = list(batches.order_by("-pk")[: limit + 1])
    return Page(items=rows[:limit], has_more=len(rows) > limit)


def request_counts(batches: list[Batch]) -> dict[int, RequestCounts]:
    """Counts per batch: live from the items while a batch runs (one query for all of
    them), the stored final counts once it ended."""
    counts = {
        b.pk: RequestCounts(b.total, b.completed, b.failed)
        for b in batches
        if b.status not in ACTIVE_STATUSES
    }
    running = {b.pk: b for b in batches if b.status in ACTIVE_STATUSES}
    if running:
        done: dict[int, dict[str, int]] = {pk: {} for pk in running}
        rows = (
            BatchItem.objects.filter(
                batch_id__in=list(running),
                status__in=(ItemStatus.SUCCEEDED, ItemStatus.FAILED),
            )
            .values("batch_id", "status")
            .annotate(n=Count("pk"))
        )
        for row in rows:
            done[row["batch_id"]][row["status"]] = row["n"]
        for pk, batch in running.items():
            counts[pk] = RequestCounts(
                batch.total,
                done[pk].get(ItemStatus.SUCCEEDED, 0),
                done[pk].get(ItemStatus.FAILED, 0),
            )
    return counts
