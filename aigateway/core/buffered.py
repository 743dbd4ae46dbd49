"""A write-behind buffer for rows the request path must not wait for (usage, audit).

The request path only appends. A background task per event loop flushes every
``interval()`` seconds in batches of ``batch_size()``; the ASGI lifespan handler and an
``atexit`` hook flush what is left, so a clean shutdown loses nothing. While the database is
down a failed batch stays buffered for the next attempt (bounded, so a long outage cannot
exhaust memory: what is dropped then is counted and logged). While it is up, a batch that
fails is written one item at a time, so a single refused item cannot hold back the rest.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from django.db import close_old_connections

from aigateway.core.db import database_up, run_db

logger = logging.getLogger(__name__)
MAX_BUFFERED = 200_000


class BufferedWriter[Item]:
    """Subclasses say what to write (``write_batch``) and how often."""

    name = "records"

    def __init__(self, max_buffered: int = MAX_BUFFERED) -> None:
        self._buffer: list[Item] = []
        self._lock = threading.Lock()  # guards the buffer (event loop vs flushing thread)
        # One flush at a time per process: batches are written in the order they were taken,
        # and the shutdown flush waits for a periodic flush already running.
        self._flushing = threading.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._max_buffered = max_buffered
        self.dropped = 0

    # What subclasses provide.
    def interval(self) -> float:
        raise NotImplementedError

    def batch_size(self) -> int:
        raise NotImplementedError

    def write_batch(self, batch: list[Item]) -> None:
        """Write the batch in one transaction, or raise."""
        raise NotImplementedError

    def describe(self, item: Item) -> str:
        return repr(item)

    # The buffer.
    def record(self, item: Item) -> None:
        with self._lock:
            if len(self._buffer) >= self._max_buffered:
                self._buffer.pop(0)
                self.dropped += 1
                logger.error("%s buffer full; oldest dropped (total %s)", self.name, self.dropped)
            self._buffer.append(item)
        self._ensure_flusher()

    def pending(self) -> int:
        return len(self._buffer)

    def clear(self) -> None:
        with self._lock:
            self._buffer.clear()

    def _ensure_flusher(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # sync caller (tests, commands): flushed by flush() or atexit
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.interval())
            if self._buffer:
                await run_db(self.flush)

    def flush(self) -> int:
        """Write everything buffered; returns how many items were written."""
        written = 0
        with self._flushing:
            while True:
                with self._lock:
                    batch = self._buffer[: self.batch_size()]
                    del self._buffer[: len(batch)]
                if not batch:
                    return written
                try:
                    self.write_batch(batch)
                    written += len(batch)
                except Exception:
                    if not database_up():
                        close_old_connections()
                        logger.exception("%s flush failed; %s kept for retry", self.name,
                                         len(batch))  # fmt: skip
                        with self._lock:
                            self._buffer[:0] = batch
                        return written
                    written += self._write_one_by_one(batch)

    def _write_one_by_one(self, batch: list[Item]) -> int:
        written = 0
        for item in batch:
            try:
                self.write_batch([item])
                written += 1
            except Exception:
                self.dropped += 1
                logger.exception("%s: %s refused by the database; dropped", self.name,
                                 self.describe(item))  # fmt: skip
        return written

    async def aflush(self) -> int:
        return await run_db(self.flush)

    def flush_at_exit(self) -> None:
        if self.pending():
            try:
                self.flush()
            except Exception:
                logger.exception("final %s flush failed", self.name)
