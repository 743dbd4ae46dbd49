"""Run a batch: validate its file, execute its items with bounded concurrency, finalize.

A run holds the batch's lease (aigateway/batches/store.py) and renews it from a heartbeat.
It stops taking new items when the batch is cancelled, expires, when its time slice is up
(the task hands over to a fresh one) or when the team's quota will not have room before the
slice ends (the sweep resumes it then); items already in flight always finish. A run that
dies leaves its lease to run out; the sweep then starts another run, which puts the dead
run's unfinished items back in the queue.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from aigateway.audit.writer import audit_writer
from aigateway.batches import store
from aigateway.batches.execute import QuotaGate, item_execute
from aigateway.batches.models import BatchStatus
from aigateway.batches.store import ItemWork, RunState
from aigateway.core.db import run_db
from aigateway.gateway.limits import settles_flush
from aigateway.gateway.principal import Principal, principal_for_api_key_id
from aigateway.usage.recorder import usage_recorder

# Why a run stopped, besides the batch's own endings (completed, cancelled, expired).
SLICE = "slice"  # its time is up: hand over to a fresh task now
QUOTA = "quota"  # the quota has no room before the slice ends: resume when it has
LOST = "lost"  # another run took the batch over, or it ended elsewhere
SKIPPED = "skipped"  # a live run holds the batch, or it is already over
FINAL = (BatchStatus.COMPLETED, BatchStatus.CANCELLED, BatchStatus.EXPIRED)
# A quota wait longer than this (and than the slice has left) parks the batch instead of
# keeping a worker waiting; shorter waits just continue in the next slice.
PARK_AFTER_SECONDS = 60.0


class BatchRun:
    def __init__(self, state: RunState, token: str, principal: Principal | None) -> None:
        self.state = state
        self.token = token
        self.principal = principal
        self.concurrency = max(1, settings.AIGATEWAY_BATCH_CONCURRENCY)
        self.slice_ends = time.monotonic() + settings.AIGATEWAY_BATCH_SLICE_SECONDS
        self.gate = QuotaGate()
        self.stop = asyncio.Event()
        self.reason = ""
        self._buffer: deque[ItemWork] = deque()
        self._exhausted = False
        self._claiming = asyncio.Lock()
        self._unstarted: list[int] = []

    def halt(self, reason: str) -> None:
        if not self.stop.is_set():
            self.reason = reason
            self.stop.set()

    def _check_status(self, status: str) -> None:
        if status == BatchStatus.CANCELLING:
            self.halt(BatchStatus.CANCELLED)
        elif status not in (BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING):
            self.halt(LOST)

    def _check_clock(self) -> None:
        left = self.slice_ends - time.monotonic()
        if timezone.now() >= self.state.expires_at:
            self.halt(BatchStatus.EXPIRED)
        elif left <= 0:
            self.halt(SLICE)
        elif self.gate.wait_seconds() > max(left, PARK_AFTER_SECONDS):
            self.halt(QUOTA)

    async def _next(self) -> ItemWork | None:
        async with self._claiming:
            self._check_clock()
            if not self._buffer and not self._exhausted and not self.stop.is_set():
                status, items = await run_db(
                    store.items_claim, self.state.batch_id, self.token, self.concurrency
                )
                self._buffer.extend(items)
                self._exhausted = not items
                self._check_status(status)
            if self.stop.is_set() or not self._buffer:
                return None
            return self._buffer.popleft()

    async def _worker(self) -> None:
        while (item := await self._next()) is not None:
            result = await item_execute(
                endpoint=self.state.endpoint, principal=self.principal, item=item,
                gate=self.gate, stop=self.stop,
            )  # fmt: skip
            if result is None:
                self._unstarted.append(item.pk)
            else:
                # The call's usage and audit records are stored before its result. A worker
                # killed in between runs the item again (a second, real upstream call that is
                # recorded too) but never leaves a result whose call went unrecorded.
                await usage_recorder.aflush()
                await audit_writer.aflush()
                await run_db(store.item_finish, item.pk, result)

    async def _heartbeat(self) -> None:
        lease = settings.AIGATEWAY_BATCH_LEASE_SECONDS
        interval = max(0.2, lease / 4)
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=interval)
                return
            except TimeoutError:
                pass
            state = await run_db(
                store.lease_renew, self.state.batch_id, self.token, lease,
                self.gate.take_refusals(),
            )  # fmt: skip
            if state is None:
                self.halt(LOST)
                return
            self._check_status(state.status)
            self._check_clock()

    async def execute(self) -> str:
        """Work until every item has a result or the run stops; returns why it ended."""
        if self.state.status == BatchStatus.CANCELLING:
            return BatchStatus.CANCELLED
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            for _ in range(3):  # a second pass only for items a lost run left behind
                await run_db(store.orphans_reset, self.state.batch_id)
                self._exhausted = False
                async with asyncio.TaskGroup() as workers:
                    for _ in range(self.concurrency):
                        workers.create_task(self._worker())
                if self.stop.is_set():
                    return self.reason
                if not await run_db(store.open_items, self.state.batch_id):
                    return BatchStatus.COMPLETED
            return SLICE
        finally:
            heartbeat.cancel()
            leftovers = self._unstarted + [item.pk for item in self._buffer]
            if leftovers:
                await run_db(store.items_release, leftovers, self.token)


async def batch_run(batch_id: int) -> str:
    """One run of a batch (one task). Returns how it ended; SLICE means "send another"."""
    token = secrets.token_hex(16)
    lease = settings.AIGATEWAY_BATCH_LEASE_SECONDS
    state = await run_db(store.lease_take, batch_id, token, lease)
    if state is None:
        return SKIPPED
    resume_after: datetime | None = None
    run: BatchRun | None = None
    try:
        principal = (
            await run_db(principal_for_api_key_id, state.api_key_id)
            if state.api_key_id is not None
            else None
        )
        if state.status == BatchStatus.VALIDATING:
            state = await run_db(
                store.batch_validate, batch_id, token, principal,
                settings.AIGATEWAY_BATCH_MAX_REQUESTS,
            )  # fmt: skip
            if state.status in ("", BatchStatus.FAILED):
                return state.status or LOST
        run = BatchRun(state, token, principal)
        ending = await run.execute()
        if ending in FINAL:
            await run_db(store.batch_finalize, batch_id, token, BatchStatus(ending))
        elif ending == QUOTA:
            resume_after = timezone.now() + timedelta(seconds=run.gate.wait_seconds())
        return ending
    finally:
        waits = run.gate.take_refusals() if run is not None else 0
        await run_db(store.lease_release, batch_id, token, resume_after, waits)
        # Usage records, audit entries and limit reconciliations of this run are written
        # before the task returns: the event loop may not run again in this process for a while.
        await settles_flush()
        await usage_recorder.aflush()
        await audit_writer.aflush()
