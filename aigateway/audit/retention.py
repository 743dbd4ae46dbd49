"""Audit retention: delete events older than their organisation's retention period
(``Organisation.audit_retention_days``; events of no organisation follow
``AIGATEWAY_AUDIT_RETENTION_DAYS``; 0 keeps forever), without breaking ``audit verify``.

Events of different organisations are interleaved in one chain, so expired events are not
only a prefix: every run of consecutive deleted events becomes (or widens) an ``AuditGap``
row that keeps the two hashes linking it into the chain. Each batch ends with an
``audit.retention_purge`` event carrying a digest of all gap rows, so a gap that no purge
made is reported by ``verify``, and deleting an event anywhere else still is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from aigateway.audit.chain import gaps_digest
from aigateway.audit.models import AuditEvent, AuditGap
from aigateway.audit.services import chain_append, lock_chain_head

PURGE_ACTION = "audit.retention_purge"
BATCH = 5000  # events deleted per transaction (writers wait on the chain head meanwhile)
CHUNK = 500  # sequences per IN (...) clause


@dataclass(frozen=True)
class Gap:
    first_sequence: int
    last_sequence: int
    previous_hash: str
    last_hash: str


@dataclass(frozen=True)
class PurgeResult:
    deleted: int
    batches: int


def _retention_days() -> tuple[dict[int, int], int]:
    from auth.models import Organisation

    orgs = dict(Organisation.objects.values_list("pk", "audit_retention_days"))
    return orgs, settings.AIGATEWAY_AUDIT_RETENTION_DAYS


def _expired(now: datetime, orgs: dict[int, int], default_days: int) -> Q:
    by_days: dict[int, list[int]] = defaultdict(list)
    for pk, days in orgs.items():
        if days > 0:
            by_days[days].append(pk)
    expired = Q(pk__in=[])
    for days, ids in by_days.items():
        expired |= Q(organisation_id__in=ids, created_at__lt=now - timedelta(days=days))
    if default_days > 0:  # no organisation, or one that was deleted since
        orphan = Q(organisation_id__isnull=True) | ~Q(organisation_id__in=list(orgs))
        expired |= orphan & Q(created_at__lt=now - timedelta(days=default_days))
    return expired


def _runs(rows: list[tuple[int, str, str]]) -> list[Gap]:
    """Consecutive sequences → one gap each, with the hashes at both ends."""
    runs: list[Gap] = []
    for sequence, previous_hash, record_hash in rows:
        last = runs[-1] if runs else None
        if last is not None and last.last_sequence + 1 == sequence:
            runs[-1] = Gap(last.first_sequence, sequence, last.previous_hash, record_hash)
        else:
            runs.append(Gap(sequence, sequence, previous_hash, record_hash))
    return runs


def _chunks(values: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def _store_gaps(runs: list[Gap]) -> None:
    """Add ``runs`` to the gap table, merging them with the gaps they touch."""
    touching: list[AuditGap] = []
    for chunk in _chunks([r.first_sequence - 1 for r in runs]):
        touching += AuditGap.objects.filter(last_sequence__in=chunk)
    for chunk in _chunks([r.last_sequence + 1 for r in runs]):
        touching += AuditGap.objects.filter(first_sequence__in=chunk)
    pieces = sorted(
        [*runs, *(Gap(g.first_sequence, g.last_sequence, g.previous_hash, g.last_hash)
                  for g in {g.pk: g for g in touching}.values())],
        key=lambda g: g.first_sequence,
    )  # fmt: skip
    merged: list[Gap] = []
    for piece in pieces:
        if merged and merged[-1].last_sequence + 1 == piece.first_sequence:
            before = merged[-1]
            piece = Gap(before.first_sequence, piece.last_sequence, before.previous_hash,
                        piece.last_hash)  # fmt: skip
            merged[-1] = piece
        else:
            merged.append(piece)
    AuditGap.objects.filter(pk__in=[g.pk for g in touching]).delete()
    AuditGap.objects.bulk_create(
        AuditGap(first_sequence=g.first_sequence, last_sequence=g.last_sequence,
                 previous_hash=g.previous_hash, last_hash=g.last_hash)
        for g in merged
    )  # fmt: skip


def _purge_batch(expired: Q, up_to: int, details: dict[str, object]) -> int:
    with transaction.atomic():
        lock_chain_head()  # one purge at a time; writers wait for this batch
        rows = list(
            AuditEvent.objects.filter(expired, sequence__lte=up_to)
            .order_by("sequence")
            .values_list("sequence", "previous_hash", "record_hash")[:BATCH]
        )
        if not rows:
            return 0
        _store_gaps(_runs(rows))
        for chunk in _chunks([row[0] for row in rows]):
            AuditEvent.objects.filter(sequence__in=chunk).delete()
        gaps = list(AuditGap.objects.all())
        record = AuditEvent(
            actor_label="system",
            action=PURGE_ACTION,
            target_type="audit_log",
            target_label=f"{len(rows)} events up to sequence {rows[-1][0]}",
            details={
                **details,
                "deleted": len(rows),
                "first_sequence": rows[0][0],
                "last_sequence": rows[-1][0],
                "gaps": len(gaps),
                "gaps_digest": gaps_digest(gaps),
            },
        )
        record.created_at = None  # type: ignore[assignment]  # stamped under the lock
        chain_append([record])
        return len(rows)


def audit_retention_purge(*, now: datetime | None = None) -> PurgeResult:
    """Delete expired audit events in batches (Celery beat: ``audit.retention_purge``)."""
    now = now or timezone.now()
    orgs, default_days = _retention_days()
    expired = _expired(now, orgs, default_days)
    # Only events that exist now: this run's own purge records are never candidates.
    up_to = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    details: dict[str, object] = {
        "cutoff_at": now.isoformat(),
        "retention_days": {"default": default_days, **{str(k): v for k, v in orgs.items()}},
    }
    deleted = batches = 0
    while up_to is not None:
        count = _purge_batch(expired, up_to, details)
        if not count:
            break
        deleted, batches = deleted + count, batches + 1
        if count < BATCH:
            break
    return PurgeResult(deleted=deleted, batches=batches)


def latest_gaps_anchor() -> str | None:
    """The gap digest recorded by the newest purge event (None when there was none)."""
    details = (
        AuditEvent.objects.filter(action=PURGE_ACTION)
        .order_by("-sequence")
        .values_list("details", flat=True)
        .first()
    )
    return details.get("gaps_digest") if isinstance(details, dict) else None
