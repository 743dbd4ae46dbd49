"""Keeping the shared circuit breakers off the hot path's critical cost.

With Redis, every call used to cost three round trips besides the rate limiter: ask the
breaker (``allow``), record the success, record the latency sample: about 1 ms of gateway
CPU per request on this machine, a third of the whole. Most of that buys nothing while a
deployment is healthy, so each process:

- trusts a *closed* breaker it has read for ``AIGATEWAY_BREAKER_SYNC_SECONDS`` (0.5 s) before
  asking Redis again. A breaker opened by another process (or forced open by an admin) is
  therefore seen here at most that much later; this process's own failures, and a force from
  this process, forget the cached answer at once. Open and half-open breakers are never cached:
  each call asks (the probe lease must stay exact).
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

logger = logging.getLogger(__name__)


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
    pending: dict[int, _Pending] = field(default_factory=dict)
    next_flush: float = 0.0

    @staticmethod
    def interval() -> float:
        return float(settings.AIGATEWAY_BREAKER_SYNC_SECONDS)

    def known_closed(self, deployment_id: int) -> bool:
        return self.closed_until.get(deployment_id, 0.0) > time.monotonic()

    def remember_closed(self, deployment_id: int) -> None:
        if (interval := self.interval()) > 0:
            self.closed_until[deployment_id] = time.monotonic() + interval

    def forget(self, deployment_id: int) -> None:
        self.closed_until.pop(deployment_id, None)

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
        self.pending.clear()
        self.next_flush = 0.0


breaker_sync = BreakerSync()
