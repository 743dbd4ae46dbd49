"""A real Celery worker process, with real Redis as broker and result backend, runs a task
against the test database: background work does not depend on eager mode."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from celery.backends.redis import RedisBackend
from celery.result import AsyncResult
from django.db import connection
from django.utils import timezone

from aigateway.celery import app as celery_app
from providers.models import Credential, CredentialStatus, Provider, ProviderKind
from providers.services import credential_create
from providers.tasks import credentials_housekeeping

ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(redis_url, transactional_db):
    env = dict(
        os.environ,
        CELERY_BROKER_URL=redis_url,
        CELERY_RESULT_BACKEND=redis_url,
        DATABASE_URL=_database_url(),
        AIGATEWAY_ALLOW_INSECURE_DEFAULTS="true",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aigateway", "worker", "--pool", "solo",
         "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    keys = ("broker_url", "result_backend", "task_always_eager")
    saved = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(broker_url=redis_url, result_backend=redis_url, task_always_eager=False)
    process.redis_url = redis_url  # type: ignore[attr-defined]
    yield process
    celery_app.conf.update(saved)
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def test_a_real_worker_runs_the_housekeeping_task(worker):
    provider = Provider.objects.create(name="openai", kind=ProviderKind.OPENAI)
    old = credential_create(provider=provider, name="old", secret="sk-old-0000000000")
    Credential.objects.filter(pk=old.pk).update(
        status=CredentialStatus.RETIRING, retire_at=timezone.now() - timedelta(seconds=1)
    )
    sent = credentials_housekeeping.delay()
    # The app caches its result backend on first use (an earlier test in this process may
    # have made it the disabled one), so read the result through an explicit Redis backend.
    backend = RedisBackend(app=celery_app, url=worker.redis_url)
    result = AsyncResult(sent.id, backend=backend, app=celery_app)
    try:
        outcome = result.get(timeout=60)
    except Exception:
        worker.terminate()
        print(worker.communicate(timeout=10)[0][-3000:])
        raise
    assert outcome == {"retired": 1, "overdue": 0}
    old.refresh_from_db()
    assert old.status == CredentialStatus.RETIRED
