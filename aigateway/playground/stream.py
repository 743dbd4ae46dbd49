"""The playground's SSE body: the pipeline's stream as events the page's script reads.

    event: start   data: {"request_id", "route"}
    event: token   data: {"text"}                  one per chunk with text, as it arrives
    event: error   data: {"message", "request_id"} the stream broke after it started
    event: meta    data: RunMeta                   last: who served it, tokens, cost, cache, …

When the browser stops (aborts the fetch) the server sees the disconnect: Django cancels the
response, the pipeline's stream is closed (``aclose`` down to the upstream connection, which
the upstream sees dropped) and the pipeline records what was produced. The run is saved to
the user's history in every case, with the stored (redacted) messages and answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aigateway.core.aio import aclose_quietly
from aigateway.core.db import run_db
from aigateway.gateway.pipeline import CallContext, ChatStream
from aigateway.playground.errors import STREAM_BROKE
from aigateway.playground.inputs import PlaygroundInput
from aigateway.playground.services import RunMeta, playground_run_save, run_meta
from providers.types import ChatRequest

logger = logging.getLogger(__name__)


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class PlaygroundRunStream:
    """One run: iterate ``events()`` once."""

    def __init__(
        self,
        *,
        ctx: CallContext,
        opened: ChatStream,
        data: PlaygroundInput,
        request: ChatRequest,
        user_id: int,
        show_audit_link: bool,
    ) -> None:
        self.ctx, self.opened, self.data, self.request = ctx, opened, data, request
        self.user_id, self.show_audit_link = user_id, show_audit_link

    async def events(self) -> AsyncIterator[bytes]:
        ctx, opened = self.ctx, self.opened
        yield sse("start", {"request_id": ctx.request_id, "route": self.data.route})
        status, finish, first_token_ms = "ok", None, None
        try:
            async for chunk in opened.chunks:
                if chunk.finish_reason is not None:
                    finish = chunk.finish_reason
                if chunk.content:
                    if first_token_ms is None:
                        first_token_ms = (time.perf_counter() - ctx.started) * 1000
                    yield sse("token", {"text": chunk.content})
        except (asyncio.CancelledError, GeneratorExit):
            status = "stopped"  # the browser went away or pressed Stop
            raise
        except Exception:  # after the first byte: reported in-stream
            logger.warning("playground stream broke (request %s)", ctx.request_id, exc_info=True)
            status = "error"
        finally:
            # Idempotent after a normal end; after a stop it closes the pipeline's stream
            # now (the upstream connection is dropped) and lets it record the usage.
            await aclose_quietly(opened.chunks)
            meta = run_meta(
                ctx, opened.outcome, route=self.data.route, status=status,
                finish_reason=finish, ttft_ms=first_token_ms,
                show_audit_link=self.show_audit_link,
            )  # fmt: skip
            await self._save(meta)
        if status == "error":
            yield sse("error", {"message": STREAM_BROKE, "request_id": ctx.request_id})
        yield sse("meta", meta)

    async def _save(self, meta: RunMeta) -> None:
        # What the pipeline stored: the answer with guardrail placeholders, not the revealed
        # text the requester saw.
        answer = self.opened.outcome.completion_text or ""
        try:
            await run_db(
                playground_run_save, user_id=self.user_id, data=self.data,
                request=self.request, answer=answer, meta=meta,
            )  # fmt: skip
        except Exception:
            logger.exception("playground run not saved (request %s)", self.ctx.request_id)
