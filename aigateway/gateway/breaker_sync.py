"""Keeping the shared circuit breakers off the hot path's critical cost.

With Redis, every call used to cost three round trips besides the rate limiter: ask the
breaker (``allow``), record the success, record the latency sample: about 1 ms of gateway
CPU per request on this machine, a third of the whole. Most of that buys nothing while a
deployment is healthy, so each process:

- trusts a *closed* breaker it has read for ``AIGATEWAY_BREAKER_SYNC_SECONDS`` (0.5 s). It does
  not ask again on a call: a background refresher (aigateway/core/loop_refresher.py) re-reads
  the breakers of the deployments this process called in the last minute, all in one
  read-only script, every interval. A breaker opened by another process (or forced open by an
  admin) is therefore seen here at most that much later; this process's own failures, and a
  force from this process, forget the cached answer at once. If the refresher falls behind
  (a slow Redis, a blocked loop) a call trusts the copy for at most GRACE_INTERVALS
  intervals, then asks itself. Open and half-open breakers are never cached: each call asks
  (the probe lease must stay exact).
- counts successes and latency samples in memory and writes them in one go at most every
  ``AIGATEWAY_BREAKER_SYNC_SECONDS`` (on the next call after that; at shutdown too). A failure
  writes the pending successes of its deployment first, so the shared window and the
  consecutive-failure count see this process's outcomes in order.
  A probe's success is written at once (it closes the breaker).

The in-process backend keeps writing every outcome directly (it costs microseconds).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings

from aigateway.core.loop_refresher import GRACE_INTERVALS

logger = logging.getLogger(__name__)

# A deployment this process has not called for this long is no longer re-read.
IDLE_FORGET_SECONDS = 60.0


@dataclass(slots=True)
class _Pending:
    successes: int = 0
    latency_total_ms: float = 0.0
    samples: int = 0


@dataclass(slots=True)
class BreakerSync:
    """One per process (module-level ``breaker_sync``); plain dicts, so several event loops
    in one process (tests) may share it: each operation is a single dict step."""

    closed_until: dict[int, float] = field(default_factory=dict)
    last_called: dict[int, float] = field(default_factory=dict)  # what the refresher re-reads
    forgotten_at: dict[int, float] = field(default_factory=dict)  # this process saw it fail
    pending: dict[int, _Pending] = field(default_factory=dict)
    next_flush: float = 0.0

    @staticmethod
    def interval() -> float:
        return float(settings.AIGATEWAY_BREAKER_SYNC_SECONDS)

    def known_closed(self, deployment_id: int) -> bool:
        """Read for this interval (the refresher keeps it so)."""
        now = time.monotonic()
        self.last_called[deployment_id] = now
        return self.closed_until.get(deployment_id, 0.0) > now

    def closed_within_grace(self, deployment_id: int) -> bool:
        """Read as closed a little longer ago: trusted while a refresher is running."""
        until = self.closed_until.get(deployment_id)
        grace = self.interval() * (GRACE_INTERVALS - 1)
        return until is not None and time.monotonic() < until + grace

    def remember_closed(self, deployment_id: int) -> None:
        if (interval := self.interval()) > 0:
            self.closed_until[deployment_id] = time.monotonic() + interval

    def forget(self, deployment_id: int) -> None:
        self.closed_until.pop(deployment_id, None)
        self.forgotten_at[deployment_id] = time.monotonic()

    def to_refresh(self) -> list[int]:
        """Deployments whose closed breaker is cached and still called (idle ones dropped)."""
        horizon = time.monotonic() - IDLE_FORGET_SECONDS
        for deployment_id in [d for d, t in self.last_called.items() if t < horizon]:
            del self.last_called[deployment_id]
            self.closed_until.pop(deployment_id, None)
            self.forgotten_at.pop(deployment_id, None)
        return [d for d in self.closed_until if d in self.last_called]

    def refreshed(self, read: list[int], closed: set[int], read_at: float) -> None:
        """A refresher's read (started at ``read_at``): closed ones are trusted another
        interval, the others asked on their next call. One forgotten since the read started
        (this process saw it fail) stays forgotten: the read may predate the failure."""
        until = time.monotonic() + self.interval()
        for deployment_id in read:
            if deployment_id not in self.closed_until:
                continue
            if self.forgotten_at.get(deployment_id, -1.0) >= read_at:
                del self.closed_until[deployment_id]
                continue
            if deployment_id in closed:
                self.closed_until[deployment_id] = until
            else:
                del self.closed_until[deployment_id]

    def add_success(self, deployment_id: int, latency_ms: float) -> None:
        pending = self.pending.get(deployment_id)
        if pending is None:
            pending = self.pending[deployment_id] = _Pending()
        pending.successes += 1
        pending.latency_total_ms += latency_ms
        pending.samples += 1

    def flush_due(self) -> bool:
        return bool(self.pending) and time.monotonic() >= self.next_flush

    def take(self, deployment_id: int | None = None) -> dict[int, _Pending]:
        """Pending outcomes to write (all, or one deployment's), forgotten here."""
        if deployment_id is not None:
            one = self.pending.pop(deployment_id, None)
            return {deployment_id: one} if one is not None else {}
        taken, self.pending = self.pending, {}
        self.next_flush = time.monotonic() + self.interval()
        return taken

    def reset(self) -> None:
        self.closed_until.clear()
        self.last_called.clear()
        self.forgotten_at.clear()
        self.pending.clear()
        self.next_flush = 0.0


breaker_sync = BreakerSync()
