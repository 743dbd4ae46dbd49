"""Buffered usage recording: the request path appends, a background task writes in batches.

Nothing is lost on a clean shutdown: the ASGI lifespan handler calls ``flush`` last, and an
``atexit`` hook covers management commands and tests. A failed write keeps the batch in the
buffer for the next attempt (bounded, so a long database outage cannot exhaust memory; what
is dropped then is counted and logged).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction

from aigateway.core.db import run_db
from aigateway.core.rows import fit_text

logger = logging.getLogger(__name__)
MAX_BUFFERED = 200_000


@dataclass(slots=True)
class UsageEntry:
    request_id: str
    created_at: datetime
    source: str
    status_code: int
    organisation_id: int | None = None
    team_id: int | None = None
    api_key_id: int | None = None
    key_prefix: str = ""
    user_id: int | None = None
    route: str = ""
    provider: str = ""
    deployment_id: int | None = None
    upstream_model: str = ""
    stream: bool = False
    error_type: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cache_status: str = ""
    saved_tokens: int = 0
    saved_cost_usd: Decimal = Decimal(0)


class UsageRecorder:
    def __init__(self) -> None:
        self._buffer: list[UsageEntry] = []
        self._lock = threading.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self.dropped = 0

    def record(self, entry: UsageEntry) -> None:
        with self._lock:
            if len(self._buffer) >= MAX_BUFFERED:
                self._buffer.pop(0)
                self.dropped += 1
                logger.error("usage buffer full; oldest record dropped (total %s)", self.dropped)
            self._buffer.append(entry)
        self._ensure_flusher()

    def pending(self) -> int:
        return len(self._buffer)

    def _ensure_flusher(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # sync caller (tests, commands): flushed by flush() or atexit
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(settings.AIGATEWAY_USAGE_FLUSH_SECONDS)
            if self._buffer:
                await run_db(self.flush)

    def flush(self) -> int:
        """Write everything buffered; returns how many rows were written."""
        from aigateway.usage.models import UsageRecord

        written = 0
        while True:
            with self._lock:
                batch = self._buffer[: settings.AIGATEWAY_USAGE_FLUSH_BATCH]
                del self._buffer[: len(batch)]
            if not batch:
                return written
            rows = [UsageRecord(**fit_text(UsageRecord, asdict(e))) for e in batch]
            try:
                with transaction.atomic():  # a savepoint inside a caller's transaction
                    UsageRecord.objects.bulk_create(rows, ignore_conflicts=True)
                written += len(batch)
            except DatabaseError:
                if not _database_up():
                    close_old_connections()
                    logger.exception("usage flush failed; %s records kept for retry", len(batch))
                    with self._lock:
                        self._buffer[:0] = batch
                    return written
                # The database is up, so a row itself is refused: write one by one so that
                # row cannot hold back the rest (it is logged by request id and dropped).
                written += self._write_one_by_one(rows)

    def _write_one_by_one(self, rows: list[Any]) -> int:
        from aigateway.usage.models import UsageRecord

        written = 0
        for row in rows:
            try:
                with transaction.atomic():
                    UsageRecord.objects.bulk_create([row], ignore_conflicts=True)
                written += 1
            except DatabaseError:
                self.dropped += 1
                logger.error("usage record %s refused by the database; dropped", row.request_id)
        return written

    async def aflush(self) -> int:
        return await run_db(self.flush)


def _database_up() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False


usage_recorder = UsageRecorder()


@atexit.register
def _flush_at_exit() -> None:
    if usage_recorder.pending():
        try:
            usage_recorder.flush()
        except Exception:
            logger.exception("final usage flush failed")
