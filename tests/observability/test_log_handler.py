"""The batching console handler (aigateway/observability/log_handler.py)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import time
from pathlib import Path

from aigateway.observability.log_handler import MAX_PENDING_CHARS, BatchingStreamHandler

ROOT = Path(__file__).resolve().parents[2]


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return logger


def test_info_lines_wait_and_are_written_together():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, flush_seconds=30)
    log = _logger(handler, "test.batching.together")
    handler.flush()  # starts the 30 s window now
    for n in range(3):
        log.info("line %d", n)
    assert stream.getvalue() == ""
    handler.flush()
    assert stream.getvalue().splitlines() == ["line 0", "line 1", "line 2"]


def test_a_warning_is_written_at_once_with_what_waited_before_it():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, flush_seconds=30)
    log = _logger(handler, "test.batching.warning")
    handler.flush()
    log.info("first")
    log.warning("trouble")
    assert stream.getvalue().splitlines() == ["first", "trouble"]


def test_an_idle_process_still_writes_its_last_lines_within_the_interval():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, flush_seconds=0.1)
    log = _logger(handler, "test.batching.idle")
    handler.flush()
    log.info("last words")
    deadline = time.monotonic() + 2
    while "last words" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stream.getvalue() == "last words\n"


def test_a_full_buffer_is_written_without_waiting():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, flush_seconds=30)
    log = _logger(handler, "test.batching.full")
    handler.flush()
    line = "x" * 1000
    for _ in range(MAX_PENDING_CHARS // 1000 + 1):
        log.info(line)
    assert len(stream.getvalue()) >= MAX_PENDING_CHARS


def test_zero_seconds_writes_every_line_at_once():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, flush_seconds=0)
    log = _logger(handler, "test.batching.zero")
    log.info("one")
    assert stream.getvalue() == "one\n"


def test_lines_still_waiting_are_written_when_the_process_exits():
    code = (
        "import logging, sys\n"
        "from aigateway.observability.log_handler import BatchingStreamHandler\n"
        "h = BatchingStreamHandler(sys.stdout, flush_seconds=60)\n"
        "logging.getLogger().addHandler(h); logging.getLogger().setLevel(logging.INFO)\n"
        "h.flush()\n"
        "logging.info('goodbye')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.stdout == "goodbye\n"
