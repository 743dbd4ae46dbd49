"""Readiness: can this process serve? Fast, unauthenticated, and revealing no internals
(no host names, versions or error texts: only which dependency is down)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from aigateway.core.db import run_db
from aigateway.core.redis import get_async_redis

TIMEOUT_SECONDS = 1.0


def _database_ok() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _providers() -> dict[str, int]:
    from aigateway.routing.models import Deployment

    rows = Deployment.objects.filter(enabled=True).values_list("last_probe_ok", flat=True)
    summary = {"healthy": 0, "unhealthy": 0, "unknown": 0}
    for ok in rows:
        summary["unknown" if ok is None else "healthy" if ok else "unhealthy"] += 1
    return summary


async def _check(coro: Coroutine[Any, Any, bool]) -> str:
    try:
        ok = await asyncio.wait_for(coro, TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - any failure means "down"; details stay in the logs
        return "down"
    return "ok" if ok else "down"


async def _redis_ok() -> bool:
    client = get_async_redis()
    return bool(client is not None and await client.ping())


async def _broker_ok() -> bool:
    """The Celery broker answers on its port (Redis: PING)."""
    url = urlparse(settings.CELERY_BROKER_URL)
    if url.scheme.startswith("redis"):
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1)
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()
    port = url.port or {"amqp": 5672, "amqps": 5671}.get(url.scheme, 0)
    await asyncio.to_thread(socket.create_connection, (url.hostname or "127.0.0.1", port), 1)
    return True


async def readyz(request: HttpRequest) -> HttpResponse:
    names, checks = ["database"], [_check(run_db(_database_ok))]
    if settings.REDIS_URL:
        names.append("redis")
        checks.append(_check(_redis_ok()))
    if settings.CELERY_BROKER_URL:
        names.append("broker")
        checks.append(_check(_broker_ok()))
    results = dict(zip(names, await asyncio.gather(*checks), strict=True))
    ready = all(value == "ok" for value in results.values())
    body: dict[str, object] = {"status": "ready" if ready else "unavailable", "checks": results}
    if results["database"] == "ok":
        try:
            body["providers"] = await asyncio.wait_for(run_db(_providers), TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 - the summary is informative, not a check
            body["providers"] = "unknown"
    return JsonResponse(body, status=200 if ready else 503)
