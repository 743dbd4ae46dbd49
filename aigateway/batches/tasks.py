"""Celery tasks: run a batch (one time slice), and the sweep that resumes stalled batches.

``batches.run`` acknowledges late and is rejected (requeued) when its worker is lost, so a
task is never dropped; running it twice is harmless (see aigateway/batches/store.py). A
killed worker does not rely on the broker's visibility timeout either: the sweep (beat, and
once when a worker starts) resumes a batch as soon as its run's lease has run out.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

from aigateway.batches import runner, store
from aigateway.batches.services import batch_enqueue, batch_send

logger = logging.getLogger(__name__)
_loops = threading.local()
# A slice, plus time for the requests in flight to finish (a route's timeout is at most ten
# minutes by default), before Celery's own limits strike (prefork pool; solo has none).
_LIMIT = int(settings.AIGATEWAY_BATCH_SLICE_SECONDS) + 600


def _run[T](work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` on this thread's own long-lived event loop: pooled upstream clients and
    Redis connections belong to a loop, so one loop per worker thread keeps them reused."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work)
    except BaseException:
        # Interrupted from outside the coroutine (a soft time limit): its tasks must not
        # resume inside the next task's run. Cancel them (their cleanup runs) and start over.
        _discard(loop)
        raise


def _discard(loop: asyncio.AbstractEventLoop) -> None:
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    except BaseException:
        logger.exception("could not cancel an interrupted batch run cleanly")
    finally:
        loop.close()
        _loops.loop = None


def loop_close() -> None:
    """Close this thread's event loop: the thread that ran tasks on it is ending."""
    loop = getattr(_loops, "loop", None)
    if loop is not None and not loop.is_closed():
        _discard(loop)


@shared_task(
    name="batches.run",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=_LIMIT,
    time_limit=_LIMIT + 60,
)
def batch_run(batch_id: int) -> str:
    ending = _run(runner.batch_run(batch_id))
    if ending == runner.SLICE:
        batch_enqueue(batch_id=batch_id)
    return ending


@shared_task(name="batches.sweep", ignore_result=True, time_limit=120, soft_time_limit=100)
def batches_sweep() -> int:
    """Send every stalled batch (see ``store.batches_stalled``) to a worker again."""
    stalled = store.batches_stalled(timezone.now(), settings.AIGATEWAY_BATCH_LEASE_SECONDS)
    for batch_id in stalled:
        batch_send(batch_id=batch_id)
    if stalled:
        logger.info("batches sweep: resumed %s stalled batches", len(stalled))
    return len(stalled)


@worker_ready.connect
def _sweep_when_a_worker_starts(**_: object) -> None:
    try:
        batches_sweep()
    except Exception:
        logger.exception("batches sweep at worker start failed")
