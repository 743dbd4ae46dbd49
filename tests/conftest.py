"""Shared fixtures: isolation of caches between tests, Redis, a live ASGI gateway, the cast.

The cast for permission tests: alice (platform admin), bob (team admin), carol (member),
dave (auditor), eve (outsider, another organisation).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import redis

from aigateway.audit.writer import audit_writer
from aigateway.core.config_cache import config_cache
from aigateway.core.redis import reset_clients
from aigateway.usage.recorder import usage_recorder
from tests.fakes.upstream import FakeUpstream

# Every response body of the suite is scanned for the secrets the tests used (secret_scan.py).
from tests.secret_scan import _no_secret_in_any_response, _secret_scan_hooks  # noqa: F401

TEST_REDIS_URL = os.environ.get("AIGATEWAY_TEST_REDIS_URL", "")


def _clear_process_state() -> None:
    from aigateway.caching import semantic, store
    from aigateway.gateway import auth_failures, breaker, breaker_sync, latency, limits
    from aigateway.quotas import alerts, limiter

    config_cache.clear()
    usage_recorder._buffer.clear()
    audit_writer.clear()
    # Ids repeat across tests (fresh database), so per-process state keyed by them must go.
    breaker._in_process._breakers.clear()
    breaker_sync.breaker_sync.reset()
    latency._local.clear()
    limits._local = limiter.InProcessLimiter()
    auth_failures.auth_failures_reset()  # failed-key counts per client address
    limits._queued.clear()  # reconciliations queued by another test's calls
    limits._flush_task = None
    alerts._raised.clear()
    store._local = store.InProcessAnswerStore()
    semantic._indexes.clear()
    from auth import login_throttle

    login_throttle._local = limiter.InProcessLimiter()  # failed sign-ins of earlier tests


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    _clear_process_state()
    yield
    _clear_process_state()
    reset_clients()


# Shapes of every secret the suite uses: team keys (agw-…), upstream keys (sk-…), bearer
# tokens, the fake Entra client secret. Masked forms ("sk-…1234") do not match.
SECRET_PATTERNS = re.compile(
    r"agw-[A-Za-z0-9_-]{16,}|sk-[A-Za-z0-9_-]{12,}|Bearer\s+[A-Za-z0-9._-]{12,}"
    r"|entra-client-secret|fake-entra-token-\d+"
)


class _CapturingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(f"<unformattable record from {record.name}>")


@pytest.fixture(autouse=True)
def _no_secret_in_any_log_line() -> Iterator[None]:
    """Every log line any thread writes during a test is scanned for secrets afterwards
    (tracebacks included): a credential or key in a log fails the test that wrote it."""
    from aigateway.observability.logging import JsonFormatter

    handler = _CapturingHandler()
    handler.setFormatter(JsonFormatter())  # structured fields are scanned too
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(handler)
    root.setLevel(previous_level)
    leaks = [line for line in handler.lines if SECRET_PATTERNS.search(line)]
    if leaks:
        pytest.fail("secret-shaped text in log lines:\n" + "\n".join(leaks[:5])[:2000])


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: pytest.FixtureRequest) -> None:
    # The production hasher costs ~0.3 s per user on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]


def _worker_db() -> int:
    """A Redis database per xdist worker. The runner picks a random base per run, so two
    test runs sharing one Redis (developers, helpers) rarely flush each other's data."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    base = int(os.environ.get("AIGATEWAY_TEST_REDIS_DB_BASE", "1"))
    return 1 + (base - 1 + worker) % 15


@pytest.fixture
def redis_url(settings: pytest.FixtureRequest) -> Iterator[str]:
    """Point the app at real Redis (a database per xdist worker, flushed per test)."""
    if not TEST_REDIS_URL:
        pytest.fail("Redis is required: run the suite with `make test` (it provides one)")
    base = TEST_REDIS_URL.rsplit("/", 1)[0]
    url = f"{base}/{_worker_db()}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings.REDIS_URL = url  # type: ignore[attr-defined]
    reset_clients()
    yield url
    client.flushdb()
    client.close()
    reset_clients()


@pytest.fixture(params=["inprocess", "redis"])
def backend(request: pytest.FixtureRequest, settings: pytest.FixtureRequest) -> str:
    """Run a test once with in-process backends and once with Redis (contract tests)."""
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    else:
        settings.REDIS_URL = ""  # type: ignore[attr-defined]
        reset_clients()
    return request.param


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveGateway:
    base_url: str  # e.g. http://127.0.0.1:PORT

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"


@contextmanager
def serve_asgi(application: object) -> Iterator[LiveGateway]:
    """Serve an ASGI app under uvicorn on 127.0.0.1, in a thread of this test process."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
        access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield LiveGateway(base_url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_gateway(transactional_db: None) -> Iterator[LiveGateway]:
    """The real ASGI app under uvicorn on 127.0.0.1, in a thread of this test process."""
    from aigateway.asgi import application

    with serve_asgi(application) as gateway:
        yield gateway


# -- the cast -------------------------------------------------------------------------------
@dataclass
class Cast:
    org: object
    other_org: object
    team: object
    other_team: object
    alice: object
    bob: object
    carol: object
    dave: object
    eve: object


@pytest.fixture
def cast(db: None) -> Cast:
    from django.contrib.auth import get_user_model

    from auth.models import (
        Organisation,
        OrgMembership,
        OrgRole,
        Team,
        TeamMembership,
        TeamRole,
    )

    User = get_user_model()
    org = Organisation.objects.create(slug="acme", name="Acme")
    other_org = Organisation.objects.create(slug="globex", name="Globex")
    team = Team.objects.create(organisation=org, slug="research", name="Research")
    other_team = Team.objects.create(organisation=other_org, slug="sales", name="Sales")
    users = {n: User.objects.create_user(n, f"{n}@example.test", "pw-" + n + "-secret") for n in
             ("alice", "bob", "carol", "dave", "eve")}  # fmt: skip
    OrgMembership.objects.create(user=users["alice"], organisation=org, role=OrgRole.PLATFORM_ADMIN)
    OrgMembership.objects.create(user=users["dave"], organisation=org, role=OrgRole.AUDITOR)
    TeamMembership.objects.create(user=users["bob"], team=team, role=TeamRole.TEAM_ADMIN)
    TeamMembership.objects.create(user=users["carol"], team=team, role=TeamRole.MEMBER)
    TeamMembership.objects.create(user=users["eve"], team=other_team, role=TeamRole.TEAM_ADMIN)
    return Cast(org, other_org, team, other_team, **users)


# Two fake upstreams with the resilience suites' keys: the primary and secondary deployments
# of tests/api/resilience_support.py's route (a test module may override them).
@pytest.fixture
def upstream_a() -> Iterator[FakeUpstream]:
    from tests.api.resilience_support import PRIMARY_KEY

    with FakeUpstream(api_key=PRIMARY_KEY) as fake:
        yield fake


@pytest.fixture
def upstream_b() -> Iterator[FakeUpstream]:
    from tests.api.resilience_support import SECONDARY_KEY

    with FakeUpstream(api_key=SECONDARY_KEY) as fake:
        yield fake
