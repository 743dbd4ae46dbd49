"""Keep shared state fresh in the background instead of on a request's critical path.

Each process reads some shared state from Redis at an interval: the config version
(aigateway/core/config_cache.py) and which circuit breakers are closed
(aigateway/gateway/breaker_sync.py). Done on the request that finds its copy too old, that
read is a Redis round trip inside the request: measured here, 0.3-0.6 ms each on a stream's
time to first token, paid by every request of a process that gets one call a second or less
(the usual case for most workers of a real deployment). Instead, a refresher re-reads every
interval on the process's event loop; requests read memory.

A refresher is started by the first request that needs its state on a loop (each event loop
gets its own: tests run several) and runs until the loop ends. Its owner still checks the age
of what it holds: past a few intervals (the refresher is stuck behind a slow Redis, or the
loop was blocked) the request reads synchronously, exactly as without a refresher.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import weakref
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

# How many intervals a copy may age while a refresher is running before a request stops
# trusting it and reads for itself.
GRACE_INTERVALS = 3


class LoopRefresher:
    """``refresh()`` every ``interval()`` seconds on each event loop that asked for it."""

    def __init__(
        self, name: str, refresh: Callable[[], Awaitable[None]], interval: Callable[[], float]
    ) -> None:
        self.name = name
        self._refresh = refresh
        self._interval = interval
        self._tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )

    def ensure_running(self) -> bool:
        """Start the refresher on the running loop if it is not running there. False when
        there is nothing to run it on (no loop, or an interval of 0: read on every call)."""
        if self._interval() <= 0:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        task = self._tasks.get(loop)
        if task is None or task.done():
            # A context of its own: not the first request's (its request id in the logs).
            task = loop.create_task(
                self._run(), name=f"refresher:{self.name}", context=contextvars.Context()
            )
            # The task holds its loop: drop the entry when it ends, or closed loops stay.
            task.add_done_callback(functools.partial(self._ended, loop))
            self._tasks[loop] = task
        return True

    def _ended(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
        if self._tasks.get(loop) is task:
            del self._tasks[loop]

    async def _run(self) -> None:
        while (interval := self._interval()) > 0:
            await asyncio.sleep(interval)
            try:
                await self._refresh()
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                # One line per failed round, no traceback (Redis down: a line a second).
                logger.warning("background refresh of %s failed: %r", self.name, exc)

    async def stop(self) -> None:
        """Stop the refresher of the running loop (tests; shutdown does not need it)."""
        task = self._tasks.pop(asyncio.get_running_loop(), None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
