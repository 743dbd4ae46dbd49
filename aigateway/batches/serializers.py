"""Files and batches in OpenAI's wire shapes (the openai SDK's FileObject and Batch)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aigateway.batches.models import Batch, BatchFile
from aigateway.batches.selectors import RequestCounts


def _ts(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def file_to_openai(found: BatchFile) -> dict[str, Any]:
    return {
        "id": found.public_id,
        "object": "file",
        "bytes": found.size,
        "created_at": _ts(found.created_at),
        "filename": found.filename,
        "purpose": found.purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


def batch_to_openai(batch: Batch, counts: RequestCounts) -> dict[str, Any]:
    return {
        "id": batch.public_id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": batch.model or None,
        "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": batch.output_file_id or None,
        "error_file_id": batch.error_file_id or None,
        "created_at": _ts(batch.created_at),
        "in_progress_at": _ts(batch.in_progress_at),
        "expires_at": _ts(batch.expires_at),
        "finalizing_at": _ts(batch.finalizing_at),
        "completed_at": _ts(batch.completed_at),
        "failed_at": _ts(batch.failed_at),
        "expired_at": _ts(batch.expired_at),
        "cancelling_at": _ts(batch.cancelling_at),
        "cancelled_at": _ts(batch.cancelled_at),
        "request_counts": {
            "total": counts.total,
            "completed": counts.completed,
            "failed": counts.failed,
        },
        "usage": batch.usage,
        "metadata": batch.metadata,
    }


def page_to_openai(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
