"""The limiter: take a request's checks all-or-nothing, settle them afterwards.

``InProcessLimiter`` is the single-process backend; ``RedisLimiter`` (limiter_redis.py) runs
the same algorithm as one Lua script per call, so limits hold exactly across processes.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Protocol

from aigateway.quotas.checks import BUCKET, CONCURRENCY, COUNTER, Check, CheckResult, Verdict


@dataclass(frozen=True, slots=True)
class Adjustment:
    """After the call: ``delta`` more (or, negative, fewer) units than were taken; a
    concurrency check releases its lease."""

    check: Check
    delta: float


class Limiter(Protocol):
    async def take(
        self, checks: list[Check], now: float, adjustments: list[Adjustment] | None = None
    ) -> Verdict:
        """Apply ``adjustments`` (earlier calls' reconciliations), then take ``checks``
        all-or-nothing: one atomic step, one round trip."""

    async def settle(self, adjustments: list[Adjustment], now: float) -> None: ...

    async def peek(self, checks: list[Check], now: float) -> list[CheckResult]:
        """Current remaining/reset for display, taking nothing."""


MAX_KEYS = 200_000  # per InProcessLimiter: buckets, counters and lease sets together


class InProcessLimiter:
    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, timestamp)
        self._full_at: dict[str, float] = {}  # bucket key → when it has refilled completely
        self._counters: dict[str, tuple[float, float]] = {}  # key → (used, expires_at)
        self._leases: dict[str, dict[str, float]] = {}  # key → {member: expires_at}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def _size(self) -> int:
        return len(self._buckets) + len(self._counters) + len(self._leases)

    def _prune(self, now: float) -> None:
        """Keys are per client address, username, team…: an attacker spraying new ones must
        not grow memory without bound. Past ``max_keys``: forget what no longer limits anyone
        (full buckets, expired counters, lease sets with no live lease); if that is not
        enough, the oldest keys until half the cap is left (they start again from full)."""
        if self._size() <= self._max_keys:
            return
        self._buckets = {k: v for k, v in self._buckets.items() if self._full_at.get(k, 0) > now}
        self._full_at = {k: v for k, v in self._full_at.items() if k in self._buckets}
        self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        self._leases = {k: v for k, v in self._leases.items() if any(e > now for e in v.values())}
        for store in (self._counters, self._buckets, self._leases):
            excess = self._size() - self._max_keys // 2
            if excess <= 0:
                break
            for key in list(store)[:excess]:
                del store[key]
                self._full_at.pop(key, None)

    def _bucket(self, check: Check, now: float) -> float:
        tokens, stamp = self._buckets.get(check.key, (check.capacity, now))
        return min(check.capacity, tokens + max(0.0, now - stamp) * check.rate)

    def _counter(self, check: Check, now: float) -> float:
        used, expires = self._counters.get(check.key, (0.0, 0.0))
        return used if expires > now else 0.0

    def _live_leases(self, check: Check, now: float) -> dict[str, float]:
        leases = self._leases.setdefault(check.key, {})
        for member in [m for m, expiry in leases.items() if expiry <= now]:
            del leases[member]
        return leases

    def _evaluate(self, check: Check, now: float) -> tuple[bool, float | None, CheckResult]:
        if check.type == BUCKET:
            tokens = self._bucket(check, now)
            if check.cost > check.capacity:
                return False, None, CheckResult(math.floor(tokens), 0.0)
            if tokens < check.cost:
                wait = (check.cost - tokens) / check.rate
                return False, wait, CheckResult(math.floor(tokens), wait)
            left = tokens - check.cost
            return True, None, CheckResult(math.floor(left), (check.capacity - left) / check.rate)
        if check.type == COUNTER:
            used = self._counter(check, now)
            if used + check.cost > check.limit or (check.cost == 0 and used >= check.limit):
                return False, check.ttl, CheckResult(max(0.0, check.limit - used), check.ttl)
            return True, None, CheckResult(check.limit - used - check.cost, check.ttl)
        held = len(self._live_leases(check, now))
        if held >= check.limit:
            return False, 1.0, CheckResult(0, 1.0)
        return True, None, CheckResult(check.limit - held - 1, 0.0)

    def _set_bucket(self, check: Check, tokens: float, now: float) -> None:
        self._buckets[check.key] = (tokens, now)
        missing = max(0.0, check.capacity - tokens)
        self._full_at[check.key] = now + missing / check.rate if check.rate > 0 else math.inf

    def _apply(self, check: Check, now: float) -> None:
        if check.type == BUCKET:
            self._set_bucket(check, self._bucket(check, now) - check.cost, now)
        elif check.type == COUNTER:
            self._counters[check.key] = (self._counter(check, now) + check.cost, now + check.ttl)
        else:
            self._live_leases(check, now)[check.member] = now + check.ttl

    async def take(
        self, checks: list[Check], now: float, adjustments: list[Adjustment] | None = None
    ) -> Verdict:
        if adjustments:
            await self.settle(adjustments, now)
        with self._lock:
            results: list[CheckResult] = []
            for index, check in enumerate(checks):
                allowed, retry_after, result = self._evaluate(check, now)
                if not allowed:
                    return Verdict(False, index, retry_after, tuple(results))
                results.append(result)
            for check in checks:
                self._apply(check, now)
            self._prune(now)
            return Verdict(True, -1, None, tuple(results))

    async def settle(self, adjustments: list[Adjustment], now: float) -> None:
        with self._lock:
            for adjustment in adjustments:
                check = adjustment.check
                if check.type == BUCKET:
                    tokens = min(check.capacity, self._bucket(check, now) - adjustment.delta)
                    self._set_bucket(check, tokens, now)
                elif check.type == COUNTER:
                    used = self._counter(check, now) + adjustment.delta
                    self._counters[check.key] = (max(0.0, used), now + check.ttl)
                elif check.type == CONCURRENCY:
                    self._leases.get(check.key, {}).pop(check.member, None)

    async def peek(self, checks: list[Check], now: float) -> list[CheckResult]:
        with self._lock:
            out = []
            for check in checks:
                if check.type == BUCKET:
                    tokens = self._bucket(check, now)
                    out.append(
                        CheckResult(math.floor(tokens), (check.capacity - tokens) / check.rate)
                    )
                elif check.type == COUNTER:
                    out.append(CheckResult(check.limit - self._counter(check, now), check.ttl))
                else:
                    out.append(CheckResult(check.limit - len(self._live_leases(check, now)), 0.0))
            return out
