"""Periodic routing work (Celery beat)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from celery import shared_task

from aigateway.gateway.health import probe_all


@shared_task(name="routing.probe_deployments", time_limit=120, soft_time_limit=100)
def probe_deployments() -> dict[str, int]:
    """Probe every enabled deployment; results feed breakers and the health panel."""
    results = async_to_sync(probe_all)()
    healthy = sum(1 for r in results.values() if r.ok)
    return {"probed": len(results), "healthy": healthy, "unhealthy": len(results) - healthy}
