"""Audit housekeeping (Celery beat)."""

from __future__ import annotations

from celery import shared_task

from aigateway.audit.retention import audit_retention_purge


@shared_task(name="audit.retention_purge", time_limit=3600, soft_time_limit=3500)
def audit_retention_purge_task() -> dict[str, int]:
    """Delete audit events past their organisation's retention period."""
    result = audit_retention_purge()
    return {"deleted": result.deleted, "batches": result.batches}
