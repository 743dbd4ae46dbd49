"""A real Celery worker process, with real Redis as broker and result backend, runs a task
against the test database: background work does not depend on eager mode."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone

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
    process.redis_url = redis_url  # type: ignore[attr-defined]
    yield process
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
    # A client of its own, as another process would be: the project's app is configured
    # eager for the test suite and caches its broker connections and result backend.
    client = Celery("aigateway-test-client", broker=worker.redis_url, backend=worker.redis_url)
    client.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    result = client.send_task(credentials_housekeeping.name)
    try:
        outcome = result.get(timeout=60)
    except Exception:
        worker.terminate()
        print(worker.communicate(timeout=10)[0][-3000:])
        raise
    assert outcome == {"retired": 1, "overdue": 0}
    old.refresh_from_db()
    assert old.status == CredentialStatus.RETIRED
