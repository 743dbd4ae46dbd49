"""One circuit breaker per deployment: closed → open → half-open → closed.

- closed: calls flow. It opens after ``failures`` consecutive failures, or when the failure
  rate over the sliding window (``window_seconds``, in 10 buckets) reaches ``failure_rate``
  with at least ``min_requests`` calls.
- open: calls are rejected at once (the pipeline fails over) until ``recovery_seconds``
  have passed; then the first caller moves it to half-open.
- half-open: exactly one caller at a time holds the probe lease (``probe_timeout`` long);
  everyone else is rejected. The probe's success closes the breaker, its failure reopens it.
- An admin may force a breaker open (maintenance) or closed, or reset it.

Two backends share this contract (tests/gateway/test_breaker_contract.py): Redis, so every
web and worker process sees one state and each transition is one atomic script, and an
in-process one for single-process use. If Redis cannot be reached, calls are allowed (fail
open): a breaker protects upstreams, it must not take the gateway down with Redis.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import weakref
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings

from aigateway.core.redis import get_async_redis

logger = logging.getLogger(__name__)
BUCKETS = 10


class Decision(enum.StrEnum):
    ALLOW = "allow"
    PROBE = "probe"  # allowed, as the half-open state's single probe
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failures: int
    failure_rate: float
    min_requests: int
    window_seconds: float
    recovery_seconds: float
    probe_timeout: float

    @classmethod
    def from_settings(cls) -> BreakerConfig:
        return cls(
            failures=settings.AIGATEWAY_BREAKER_FAILURES,
            failure_rate=settings.AIGATEWAY_BREAKER_FAILURE_RATE,
            min_requests=settings.AIGATEWAY_BREAKER_MIN_REQUESTS,
            window_seconds=settings.AIGATEWAY_BREAKER_WINDOW_SECONDS,
            recovery_seconds=settings.AIGATEWAY_BREAKER_RECOVERY_SECONDS,
            probe_timeout=settings.AIGATEWAY_BREAKER_PROBE_TIMEOUT_SECONDS,
        )

    @property
    def bucket_seconds(self) -> float:
        return self.window_seconds / BUCKETS


@dataclass(frozen=True, slots=True)
class Transition:
    deployment_id: int
    from_state: str
    to_state: str
    reason: str


@dataclass(slots=True)
class BreakerState:
    """What the dashboard shows. ``state`` is the effective one (forced states included)."""

    state: str = "closed"
    consecutive_failures: int = 0
    window_ok: int = 0
    window_failed: int = 0
    opened_at: float = 0.0


class BreakerStore(Protocol):
    async def allow(
        self, deployment_id: int, now: float, cfg: BreakerConfig
    ) -> tuple[Decision, Transition | None]: ...

    async def record(
        self, deployment_id: int, now: float, ok: bool, cfg: BreakerConfig, count: int = 1
    ) -> Transition | None: ...

    async def force(self, deployment_id: int, mode: str) -> Transition: ...

    async def release_probe(self, deployment_id: int) -> None:
        """Give back a half-open probe lease that was granted but not used."""

    async def snapshot(
        self, deployment_id: int, now: float, cfg: BreakerConfig
    ) -> BreakerState: ...


@dataclass(slots=True)
class _Breaker:
    state: str = "closed"
    forced: str = ""
    consecutive: int = 0
    opened_at: float = 0.0
    probe_until: float = 0.0
    ok: dict[int, int] = field(default_factory=dict)
    failed: dict[int, int] = field(default_factory=dict)

    def effective(self) -> str:
        return f"forced_{self.forced}" if self.forced else self.state


def _window(counts: dict[int, int], bucket: int) -> int:
    return sum(n for b, n in counts.items() if b > bucket - BUCKETS)


class InProcessBreakerStore:
    """The same state machine as the Redis script, guarded by a lock."""

    def __init__(self) -> None:
        self._breakers: dict[int, _Breaker] = {}
        self._lock = threading.Lock()

    def _get(self, deployment_id: int) -> _Breaker:
        return self._breakers.setdefault(deployment_id, _Breaker())

    async def allow(
        self, deployment_id: int, now: float, cfg: BreakerConfig
    ) -> tuple[Decision, Transition | None]:
        with self._lock:
            b = self._get(deployment_id)
            if b.forced == "open":
                return Decision.REJECT, None
            if b.forced == "closed" or b.state == "closed":
                return Decision.ALLOW, None
            if b.state == "open":
                if now < b.opened_at + cfg.recovery_seconds:
                    return Decision.REJECT, None
                b.state, b.probe_until = "half_open", now + cfg.probe_timeout
                reason = "recovery timeout elapsed; admitting one probe"
                return Decision.PROBE, Transition(deployment_id, "open", "half_open", reason)
            if now < b.probe_until:  # half-open, another caller holds the probe lease
                return Decision.REJECT, None
            b.probe_until = now + cfg.probe_timeout
            return Decision.PROBE, None

    async def record(
        self, deployment_id: int, now: float, ok: bool, cfg: BreakerConfig, count: int = 1
    ) -> Transition | None:
        with self._lock:
            b = self._get(deployment_id)
            bucket = math.floor(now / cfg.bucket_seconds)
            counts = b.ok if ok else b.failed
            counts[bucket] = counts.get(bucket, 0) + count
            for stale in [k for k in (*b.ok, *b.failed) if k <= bucket - BUCKETS]:
                b.ok.pop(stale, None)
                b.failed.pop(stale, None)
            if b.forced:
                return None
            if ok:
                b.consecutive = 0
                if b.state == "half_open":
                    b.state, b.ok, b.failed = "closed", {}, {}
                    return Transition(deployment_id, "half_open", "closed", "probe succeeded")
                return None
            b.consecutive += 1
            if b.state == "half_open":
                b.state, b.opened_at = "open", now
                return Transition(deployment_id, "half_open", "open", "probe failed")
            if b.state != "closed":
                return None
            reason = _open_reason(
                b.consecutive, _window(b.ok, bucket), _window(b.failed, bucket), cfg
            )
            if reason:
                b.state, b.opened_at = "open", now
                return Transition(deployment_id, "closed", "open", reason)
            return None

    async def release_probe(self, deployment_id: int) -> None:
        with self._lock:
            b = self._get(deployment_id)
            if b.state == "half_open":
                b.probe_until = 0.0

    async def force(self, deployment_id: int, mode: str) -> Transition:
        with self._lock:
            b = self._get(deployment_id)
            before = b.effective()
            if mode == "reset":
                self._breakers[deployment_id] = b = _Breaker()
            else:
                b.forced = mode
            return Transition(deployment_id, before, b.effective(), f"forced {mode}")

    async def snapshot(self, deployment_id: int, now: float, cfg: BreakerConfig) -> BreakerState:
        with self._lock:
            b = self._get(deployment_id)
            bucket = math.floor(now / cfg.bucket_seconds)
            return BreakerState(
                b.effective(), b.consecutive, _window(b.ok, bucket), _window(b.failed, bucket),
                b.opened_at,
            )  # fmt: skip


def _open_reason(consecutive: int, ok: int, failed: int, cfg: BreakerConfig) -> str:
    if consecutive >= cfg.failures:
        return f"{consecutive} consecutive failures"
    total = ok + failed
    if total >= cfg.min_requests and failed / total >= cfg.failure_rate:
        percent = math.floor(failed * 100 / total + 0.5)  # rounds as the Lua script does
        return f"failure rate {percent}% over {total} calls"
    return ""


_in_process = InProcessBreakerStore()
_redis_stores: weakref.WeakKeyDictionary[object, BreakerStore] = weakref.WeakKeyDictionary()


def breaker_store() -> BreakerStore:
    """The shared store (Redis) when configured, else this process's. One store object per
    Redis client: it registers its scripts (SHA-1 of each) once, not per call."""
    from aigateway.gateway.breaker_redis import RedisBreakerStore

    client = get_async_redis()
    if client is None:
        return _in_process
    store = _redis_stores.get(client)
    if store is None:
        store = _redis_stores[client] = RedisBreakerStore(client)
    return store


def breaker_store_is_shared(store: BreakerStore) -> bool:
    return store is not _in_process
