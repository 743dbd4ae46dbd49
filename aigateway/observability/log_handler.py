"""A console handler that writes log lines in batches.

``logging.StreamHandler`` writes and flushes every record: one ``write`` system call per
line. With one request line per call, that was ~8 % of the gateway's CPU per request under
load (py-spy, bench/compare.py S1). This handler keeps formatted lines in memory and writes
them together when ``LOG_FLUSH_SECONDS`` have passed since the last write, when 64 KiB are
waiting, at once for warnings and errors, and from a small timer thread so that an idle
process still writes its last lines within that time. ``logging.shutdown`` (at exit, after
uvicorn's graceful shutdown) flushes the rest. ``LOG_FLUSH_SECONDS=0`` writes every line
at once, as StreamHandler does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TextIO

MAX_PENDING_CHARS = 64 * 1024


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self, stream: TextIO | None = None, flush_seconds: float | None = None) -> None:
        super().__init__(stream)
        if flush_seconds is None:
            flush_seconds = float(os.environ.get("LOG_FLUSH_SECONDS", "0.2"))
        self.flush_seconds = flush_seconds
        self._pending: list[str] = []
        self._pending_chars = 0
        self._last_write = time.monotonic()
        self._timer: threading.Thread | None = None
        self._timer_pid = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - as StreamHandler: report and go on
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            self._pending_chars += len(line)
            if (
                self.flush_seconds <= 0
                or record.levelno >= logging.WARNING
                or self._pending_chars >= MAX_PENDING_CHARS
                or time.monotonic() - self._last_write >= self.flush_seconds
            ):
                self._write_pending()
            else:
                self._ensure_timer()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def _write_pending(self) -> None:
        """Write what waits (the caller holds the lock)."""
        self._last_write = time.monotonic()
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._pending_chars = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stream closed (interpreter exit, a test's capture)
            pass

    def _ensure_timer(self) -> None:
        # One timer thread per process (a forked worker starts its own).
        if self._timer is not None and self._timer_pid == os.getpid():
            return
        self._timer_pid = os.getpid()
        self._timer = threading.Thread(target=self._tick, name="log-flush", daemon=True)
        self._timer.start()

    def _tick(self) -> None:
        while True:
            time.sleep(self.flush_seconds)
            with self.lock:  # type: ignore[union-attr]
                if self._pending and time.monotonic() - self._last_write >= self.flush_seconds:
                    self._write_pending()
