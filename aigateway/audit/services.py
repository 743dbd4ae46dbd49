"""Writing audit events. Callers pass identifiers and fingerprints, never secrets.

Every write goes through ``audit_record``, which extends the hash chain (see chain.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from aigateway.audit.chain import GENESIS_HASH, compute_hash
from aigateway.audit.models import AuditChainHead, AuditEvent
from aigateway.audit.rows import ChainedRow, row_inserter

HEAD_PK = 1


def audit_record(
    *,
    action: str,
    target_type: str,
    target_id: object = "",
    target_label: str = "",
    actor: AbstractBaseUser | None = None,
    actor_label: str = "system",
    details: dict[str, Any] | None = None,
    organisation_id: int | None = None,
) -> AuditEvent:
    has_actor = actor is not None and actor.pk is not None
    event = AuditEvent(
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label,
        actor=actor if has_actor else None,  # type: ignore[misc]
        actor_label=actor.get_username() if actor is not None and has_actor else actor_label,
        # Normalised as the database will return it (tuples become lists, keys strings).
        details=json.loads(json.dumps(details or {}, default=str)),
        organisation_id=organisation_id,
    )
    event.created_at = None  # type: ignore[assignment]  # stamped under the lock
    chain_append([event])
    return event


def lock_chain_head() -> AuditChainHead:
    """The chain head, locked until the surrounding transaction ends. The lock serialises
    every writer: a row lock on PostgreSQL; on SQLite the write transaction itself
    (IMMEDIATE, or upgraded by the head UPDATE)."""
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        pk=HEAD_PK, defaults={"sequence": 0, "record_hash": GENESIS_HASH}
    )
    return head


def chain_append(events: list[AuditEvent]) -> None:
    """Give ``events`` the next places in the chain and insert them, in one transaction that
    holds the chain head: concurrent writers (other threads, other processes, the buffered
    API-call writer's flushes) cannot fork the chain. An event without ``created_at`` is
    stamped now, under the lock, so timestamps of directly written events follow the chain."""
    if not events:
        return
    with transaction.atomic():
        head = lock_chain_head()
        _link(events, head)
        if len(events) == 1:
            events[0].save(force_insert=True)
        else:
            AuditEvent.objects.bulk_create(events)
        _advance(head, events)


def chain_append_rows(rows: list[ChainedRow]) -> None:
    """``chain_append`` for the API-call writer's plain rows: a few multi-row INSERTs."""
    if not rows:
        return
    with transaction.atomic():
        head = lock_chain_head()
        _link(rows, head)
        row_inserter().insert([row.values() for row in rows])
        _advance(head, rows)


def _link(events: Sequence[AuditEvent] | Sequence[ChainedRow], head: AuditChainHead) -> None:
    sequence = head.sequence
    previous = head.record_hash if sequence else GENESIS_HASH
    now = timezone.now()
    for event in events:
        sequence += 1
        event.sequence, event.previous_hash = sequence, previous
        if event.created_at is None:
            event.created_at = now
        event.record_hash = previous = compute_hash(event)


def _advance(head: AuditChainHead, events: Sequence[AuditEvent] | Sequence[ChainedRow]) -> None:
    head.sequence, head.record_hash = events[-1].sequence, events[-1].record_hash
    head.save(update_fields=["sequence", "record_hash"])
