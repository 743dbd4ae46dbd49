"""Writing audit events. Callers pass identifiers and fingerprints, never secrets.

Every write goes through ``audit_record``, which extends the hash chain (see chain.py)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from aigateway.audit.chain import GENESIS_HASH, compute_hash
from aigateway.audit.models import AuditChainHead, AuditEvent

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
        details=json.loads(json.dumps(details or {})),
        organisation_id=organisation_id,
    )
    with transaction.atomic():
        # The locked head row serialises writers: a row lock on PostgreSQL; on SQLite the
        # write transaction itself (IMMEDIATE, or upgraded by the head UPDATE below).
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(
            pk=HEAD_PK, defaults={"sequence": 0, "record_hash": GENESIS_HASH}
        )
        event.sequence = head.sequence + 1
        event.previous_hash = head.record_hash if head.sequence else GENESIS_HASH
        event.created_at = timezone.now()
        event.record_hash = compute_hash(event)
        event.save(force_insert=True)
        head.sequence = event.sequence
        head.record_hash = event.record_hash
        head.save(update_fields=["sequence", "record_hash"])
    return event
