"""/readyz: ready when the database, Redis and the broker answer; 503 naming what is down,
with no host names or error texts."""

from __future__ import annotations

import pytest
from django.test import AsyncClient

from aigateway.core.redis import reset_clients

pytestmark = pytest.mark.django_db(transaction=True)


async def test_ready_with_every_dependency_up(redis_url, settings):
    settings.CELERY_BROKER_URL = redis_url
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}
    assert body["providers"] == {"healthy": 0, "unhealthy": 0, "unknown": 0}


async def test_unhealthy_when_redis_stops(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens: as if Redis stopped
    settings.CELERY_BROKER_URL = ""
    reset_clients()
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "redis": "down"}
    assert "127.0.0.1" not in response.content.decode()


async def test_single_process_mode_needs_only_the_database(settings):
    settings.REDIS_URL, settings.CELERY_BROKER_URL = "", ""
    reset_clients()
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 200 and response.json()["checks"] == {"database": "ok"}
