"""Batches without a broker: a daemon thread of the process stands in for the Celery worker.

With eager Celery (no CELERY_BROKER_URL: ``make run``), ``batch_run.delay`` would run a whole
batch inside the request that queued it, so a 1,000-line batch would hold POST /v1/batches for
minutes. Instead (AIGATEWAY_BATCH_EAGER_BACKGROUND, on by default) the batch id goes into
this process's queue and one daemon thread runs the tasks one after another, as a solo-pool
worker does: a run whose slice is up queues the batch again, behind the others. The thread
also stands in for beat: it sweeps (``batches.sweep``) when it starts and every
AIGATEWAY_BATCH_SWEEP_SECONDS, which resumes quota-parked batches and those a dead process
left behind once their lease has run out.

A daemon thread dies with its process, mid-batch or not: the run's lease then runs out and
the next process's sweep resumes the batch. ``resume_on_start`` (the ASGI lifespan startup)
starts the thread when the database holds unfinished batches, so that sweep happens without
waiting for a new batch to be created.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

type Job = int | Literal["sweep", "stop"]


def runs_in_background() -> bool:
    """True when batches run in this process's thread (no broker, and not turned off)."""
    from aigateway.celery import app

    return bool(app.conf.task_always_eager and settings.AIGATEWAY_BATCH_EAGER_BACKGROUND)


class _Thread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="batches-eager", daemon=True)
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.retired = False  # stop() was called: what it queues now is left to the sweep

    def run(self) -> None:
        _serve(self)


class EagerWorker:
    """One thread and its queue of batch ids; started on first use, again if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: _Thread | None = None

    def submit(self, batch_id: int) -> None:
        with self._lock:
            current = threading.current_thread()
            if isinstance(current, _Thread) and current.retired:
                logger.info("batch %s left to the sweep: the batches thread is stopping", batch_id)
                return
            self._running().jobs.put(batch_id)

    def start(self) -> None:
        with self._lock:
            self._running()

    def stop(self, timeout: float = 30.0) -> bool:
        """Let the thread finish the tasks already queued and end (tests); what they queue
        meanwhile is left to the next sweep. True once it has ended."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return True
            thread.retired = True
            thread.jobs.put("stop")
        thread.join(timeout)
        return not thread.is_alive()

    def _running(self) -> _Thread:
        # A thread that died (or one copied into a forked child, where it never runs) is
        # replaced: is_alive() is False for both.
        if self._thread is None or not self._thread.is_alive():
            self._thread = _Thread()
            self._thread.start()
        return self._thread


def _serve(thread: _Thread) -> None:
    from aigateway.batches import tasks

    interval = max(1.0, float(settings.AIGATEWAY_BATCH_SWEEP_SECONDS))
    next_sweep = time.monotonic()  # first: whatever a previous process left behind
    try:
        while True:
            wait = next_sweep - time.monotonic()
            try:
                # A busy queue does not postpone the sweep: it runs between two tasks.
                job: Job = thread.jobs.get(timeout=wait) if wait > 0 else "sweep"
            except queue.Empty:
                job = "sweep"
            if job == "stop":
                return
            if job == "sweep":
                next_sweep = time.monotonic() + interval
                _call("the batches sweep", tasks.batches_sweep)
            else:
                _call(f"batch {job}", tasks.batch_run, job)
    except BaseException:
        logger.exception("the batches thread (no broker) stopped; the next batch starts another")
        raise
    finally:
        tasks.loop_close()
        connections.close_all()


def _call(what: str, task: Callable[..., Any], *args: Any) -> None:
    """Run a task here; its failure is logged, and the thread goes on with the next one."""
    try:
        task(*args)
    except Exception:
        logger.exception("%s failed in the batches thread (no broker)", what)
    finally:
        # The task's own ORM calls in this thread (enqueue, sweep) leave a connection behind:
        # close it, as a worker does after each task (Django's task_postrun handling).
        connections.close_all()


eager_worker = EagerWorker()


def batch_dispatch(batch_id: int) -> None:
    """Hand the batch to a worker: the broker's, or (no broker) this process's thread, or
    (no broker, background off) run it right here."""
    if runs_in_background():
        eager_worker.submit(batch_id)
        return
    from aigateway.batches.tasks import batch_run

    batch_run.delay(batch_id)


def resume_on_start() -> None:
    """At process start without a broker: start the thread if unfinished batches wait, so
    its first sweep resumes them (synchronous, ORM)."""
    if not runs_in_background():
        return
    from aigateway.batches.models import ACTIVE_STATUSES, Batch

    if Batch.objects.filter(status__in=ACTIVE_STATUSES).exists():
        eager_worker.start()
