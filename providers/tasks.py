"""Periodic provider housekeeping (Celery beat)."""

from __future__ import annotations

from celery import shared_task

from providers.services import credentials_flag_overdue, credentials_retire_due


@shared_task(name="providers.credentials_housekeeping", time_limit=120, soft_time_limit=100)
def credentials_housekeeping() -> dict[str, int]:
    """Retire credentials whose grace period ended; flag (and audit) overdue rotations."""
    retired = credentials_retire_due()
    overdue = credentials_flag_overdue()
    return {"retired": retired, "overdue": len(overdue)}
