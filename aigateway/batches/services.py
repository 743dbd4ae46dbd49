"""Writes at the API door: create a batch, cancel it, hand it to a worker (synchronous, ORM).

Validation of the input file and all execution happen in the worker (aigateway/batches/
runner.py), as at OpenAI: a new batch answers ``validating`` at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from aigateway.batches.background import batch_dispatch
from aigateway.batches.errors import Conflict
from aigateway.batches.files import file_get_for_team
from aigateway.batches.models import Batch, BatchStatus, FilePurpose
from aigateway.batches.selectors import batch_get_for_team
from aigateway.gateway.errors import InvalidRequest
from aigateway.gateway.principal import Principal

# Endpoints a batch may target: every line's url must equal the batch's endpoint.
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}
METADATA_MAX_KEYS, METADATA_MAX_KEY, METADATA_MAX_VALUE = 16, 64, 512


def _metadata(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) > METADATA_MAX_KEYS:
        raise InvalidRequest(
            f"'metadata' must be an object of at most {METADATA_MAX_KEYS} string pairs.",
            param="metadata",
        )
    for key, value in raw.items():
        if len(key) > METADATA_MAX_KEY or not isinstance(value, str):
            raise InvalidRequest(
                f"'metadata' keys may have {METADATA_MAX_KEY} characters and values must be "
                "strings.",
                param="metadata",
            )
        if len(value) > METADATA_MAX_VALUE:
            raise InvalidRequest(
                f"'metadata' values may have at most {METADATA_MAX_VALUE} characters.",
                param="metadata",
            )
    return raw


def batch_create(
    *,
    principal: Principal,
    input_file_id: Any,
    endpoint: Any,
    completion_window: Any,
    metadata: Any = None,
) -> Batch:
    """A new batch in ``validating``; call ``batch_enqueue`` to start it."""
    if endpoint not in ENDPOINTS:
        raise InvalidRequest(f"'endpoint' must be one of {', '.join(ENDPOINTS)}.", param="endpoint")
    window = (
        COMPLETION_WINDOWS.get(completion_window) if isinstance(completion_window, str) else None
    )
    if window is None:
        raise InvalidRequest(
            "'completion_window' must be one of: " + ", ".join(COMPLETION_WINDOWS),
            param="completion_window",
        )
    if not isinstance(input_file_id, str) or not input_file_id:
        raise InvalidRequest("'input_file_id' is required.", param="input_file_id")
    checked_metadata = _metadata(metadata)
    found = file_get_for_team(team_id=principal.team_id, file_id=input_file_id)
    if found.purpose != FilePurpose.BATCH:
        raise InvalidRequest(
            f"File {input_file_id} has purpose '{found.purpose}'; a batch needs a file "
            "uploaded with purpose 'batch'.",
            param="input_file_id",
        )
    now = timezone.now()
    return Batch.objects.create(
        team_id=principal.team_id,
        api_key_id=principal.api_key_id,
        endpoint=endpoint,
        completion_window=completion_window,
        input_file_id=found.public_id,
        metadata=checked_metadata,
        expires_at=now + window,
    )


def batch_enqueue(*, batch_id: int) -> None:
    """Send the batch to a worker once the current transaction commits."""
    Batch.objects.filter(pk=batch_id).update(enqueued_at=timezone.now())
    batch_send(batch_id=batch_id)


def batch_send(*, batch_id: int) -> None:
    """Queue a run of the batch (after commit). Without a broker, the process's batches
    thread runs it (aigateway/batches/background.py), or this call does when
    AIGATEWAY_BATCH_EAGER_BACKGROUND is off."""
    transaction.on_commit(lambda: batch_dispatch(batch_id))


def batch_cancel(*, team_id: int, batch_id: str) -> Batch:
    """Ask the batch to stop: no new requests start, those in flight finish, and the batch
    ends ``cancelled`` with what it has. Cancelling twice is harmless."""
    batch = batch_get_for_team(team_id=team_id, batch_id=batch_id)
    now = timezone.now()
    changed = Batch.objects.filter(
        pk=batch.pk, status__in=(BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS)
    ).update(status=BatchStatus.CANCELLING, cancelling_at=now)
    batch.refresh_from_db()
    if changed:
        batch_enqueue(batch_id=batch.pk)  # finishes the cancel if no run holds the batch
    elif batch.status not in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
        raise Conflict(
            f"Cannot cancel a batch with status '{batch.status}'.", code="batch_not_cancellable"
        )
    return batch
