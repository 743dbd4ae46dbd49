"""Guardrails on streams: output rules before a chunk leaves, and reversible redaction.

Two wrappers around the pipeline's relay (aigateway/gateway/pipeline.py, ``chat_stream``):

    upstream ─► guard_stream ─► relay (cache, usage, record) ─► reveal_stream ─► client
                 output rules                                   placeholders → values

``guard_stream`` passes each text channel of the stream (the content, and each tool call's
arguments) through a StreamScanner (aigateway/guardrails/stream.py): it holds back the text
that could still become part of a match, so a card number split over two chunks is caught,
and emits only what is clean, redacted or flagged. A block ends the stream where the blocked
match starts, with finish reason ``content_filter``, and closes the upstream. What the relay
caches and logs is therefore already checked. ``reveal_stream`` restores this call's
placeholders for the requester, holding back a possible ``[REDACTED_…`` that is split over
chunks. Without a policy (or without output rules / redactions) neither wraps anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aigateway.core.aio import aclose_quietly
from aigateway.guardrails.engine import CallGuard, Redactions
from aigateway.guardrails.stream import StreamScanner
from providers.types import ChatChunk, ToolCallDelta

if TYPE_CHECKING:
    from aigateway.gateway.pipeline import CallContext, CallOutcome
    from aigateway.gateway.resilience import OpenedStream

HEAD = "[REDACTED_"
_BODY = re.compile(r"[A-Z0-9_]*")
MAX_PLACEHOLDER = 80
# Where a blocked match started, in the scanner's output: cut there. NUL never reaches a
# client in text (JSON would escape it) and no model writes this sequence.
BLOCK_MARK = "\x00guardrail-block\x00"


# -- output rules --------------------------------------------------------------------------
class _Channel:
    """One text channel through a StreamScanner. ``feed``/``finish`` → (text, blocked)."""

    __slots__ = ("blocked", "guard", "scanner")

    def __init__(self, guard: CallGuard) -> None:
        self.guard = guard
        self.blocked = False
        self.scanner = StreamScanner(guard.policy.output_detectors, replace=self._replace)

    def _replace(self, finding: Any, matched: str) -> str:
        if self.blocked:  # everything after a block is dropped: not noted either
            return ""
        replacement = self.guard.output_replacement(finding.detector)
        if replacement == "":
            self.blocked = True
            return BLOCK_MARK
        return matched if replacement is None else replacement  # None: flagged, kept

    @staticmethod
    def _cut(emitted: str) -> tuple[str, bool]:
        at = emitted.find(BLOCK_MARK)
        return (emitted, False) if at < 0 else (emitted[:at], True)

    def feed(self, text: str) -> tuple[str, bool]:
        return self._cut(self.scanner.feed(text).emit)

    def finish(self) -> tuple[str, bool]:
        return self._cut(self.scanner.finish().emit)


class _OutputFilter:
    """Chunks in → checked chunks out (0..n per chunk); ``done`` after a block."""

    def __init__(self, ctx: CallContext, guard: CallGuard) -> None:
        self.ctx, self.guard = ctx, guard
        self.content: _Channel | None = None
        self.tools: dict[int, _Channel] = {}
        self.done = False
        self.flushed = False

    def _blocked(self, text: str, tools: list[ToolCallDelta]) -> list[ChatChunk]:
        self.done = True
        # Never cached: a later policy decides afresh (aigateway/guardrails/stage.py).
        self.ctx.cache_control = dataclasses.replace(self.ctx.cache_control, no_store=True)
        out = [ChatChunk(content=text or None, tool_calls=tools)] if text or tools else []
        return [*out, ChatChunk(finish_reason="content_filter")]

    def _channel(self, index: int | None) -> _Channel:
        if index is None:
            if self.content is None:
                self.content = _Channel(self.guard)
            return self.content
        channel = self.tools.get(index)
        if channel is None:
            channel = self.tools[index] = _Channel(self.guard)
        return channel

    def step(self, chunk: ChatChunk) -> list[ChatChunk]:
        if self.done:
            return []
        text = chunk.content
        if text:
            text, blocked = self._channel(None).feed(text)
            if blocked:
                return self._blocked(text, [])
        deltas: list[ToolCallDelta] = []
        for delta in chunk.tool_calls:
            arguments = delta.arguments
            if arguments:
                arguments, blocked = self._channel(delta.index).feed(arguments)
                if blocked:
                    return self._blocked(text or "", [])
            if arguments or delta.id or delta.name:
                same = arguments == delta.arguments
                deltas.append(delta if same else dataclasses.replace(delta, arguments=arguments))
        unchanged = text == chunk.content and deltas == chunk.tool_calls
        if chunk.finish_reason is not None:
            tail = self.flush()  # what the scanners held back goes out before the end
            if tail:
                body = ChatChunk(content=text or None, role=chunk.role, tool_calls=deltas)
                head = [body] if body.content or body.tool_calls or body.role else []
                if self.done:  # blocked in the held-back text: tail ends the stream
                    return [*head, *tail]
                end = ChatChunk(
                    finish_reason=chunk.finish_reason,
                    usage=chunk.usage,
                    stop_sequence=chunk.stop_sequence,
                )
                return [*head, *tail, end]
        if unchanged:
            return [chunk]
        changed = dataclasses.replace(chunk, content=text or None, tool_calls=deltas)
        if changed.content or changed.tool_calls or changed.role or changed.usage:
            return [changed]
        return [changed] if changed.finish_reason is not None else []

    def flush(self) -> list[ChatChunk]:
        """What the scanners still hold (the stream is ending)."""
        if self.flushed or self.done:
            return []
        self.flushed = True
        content = ""
        if self.content is not None:
            content, blocked = self.content.finish()
            if blocked:
                return self._blocked(content, [])
        deltas = []
        for index, channel in self.tools.items():
            arguments, blocked = channel.finish()
            if blocked:
                return self._blocked(content, [])
            if arguments:
                deltas.append(ToolCallDelta(index, arguments=arguments))
        return [ChatChunk(content=content or None, tool_calls=deltas)] if content or deltas else []


class _GuardedChunks:
    """The upstream's remaining chunks through the filter. ``aclose`` closes the upstream
    even if iteration never started (the pipeline's abandon path relies on it)."""

    def __init__(
        self, upstream: AsyncIterator[ChatChunk], filt: _OutputFilter, pending: list[ChatChunk]
    ) -> None:
        self.upstream, self.filter = upstream, filt
        self.pending: deque[ChatChunk] = deque(pending)
        self.ended = False

    def __aiter__(self) -> _GuardedChunks:
        return self

    async def __anext__(self) -> ChatChunk:
        while not self.pending:
            if self.ended:
                raise StopAsyncIteration
            if self.filter.done:  # blocked: stop generating upstream
                self.ended = True
                await self.aclose()
                continue
            chunk = await anext(self.upstream, None)
            if chunk is None:
                self.ended = True
                self.pending.extend(self.filter.flush())
            else:
                self.pending.extend(self.filter.step(chunk))
        return self.pending.popleft()

    async def aclose(self) -> None:
        close = getattr(self.upstream, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


def guard_stream(ctx: CallContext, outcome: CallOutcome, opened: OpenedStream) -> OpenedStream:
    """``opened`` with output rules applied to every chunk before it leaves."""
    guard = outcome.guardrails
    if guard is None or not guard.policy.output_detectors:
        return opened
    filt = _OutputFilter(ctx, guard)
    first = filt.step(opened.first)
    head = first[0] if first else ChatChunk(content="")
    rest = _GuardedChunks(opened.rest, filt, first[1:])
    return dataclasses.replace(opened, first=head, rest=rest)


# -- reversible redaction ------------------------------------------------------------------
def _could_be_placeholder(tail: str) -> bool:
    if len(tail) > MAX_PLACEHOLDER or "]" in tail:
        return False
    if len(tail) <= len(HEAD):
        return HEAD.startswith(tail)
    return tail.startswith(HEAD) and _BODY.fullmatch(tail, len(HEAD)) is not None


class _Restorer:
    """Restores placeholders in a text channel, holding back a possible partial one."""

    __slots__ = ("json_string", "pending", "redactions")

    def __init__(self, redactions: Redactions, *, json_string: bool = False) -> None:
        self.redactions, self.json_string = redactions, json_string
        self.pending = ""

    def feed(self, text: str) -> str:
        buffer = self.pending + text if self.pending else text
        self.pending = ""
        cut = buffer.rfind("[")
        if cut != -1 and _could_be_placeholder(buffer[cut:]):
            buffer, self.pending = buffer[:cut], buffer[cut:]
        return self.redactions.restore(buffer, json_string=self.json_string)

    def flush(self) -> str:
        rest, self.pending = self.pending, ""
        return self.redactions.restore(rest, json_string=self.json_string)


async def _revealed(
    redactions: Redactions, chunks: AsyncIterator[ChatChunk]
) -> AsyncIterator[ChatChunk]:
    content = _Restorer(redactions)
    tools: dict[int, _Restorer] = {}

    def leftovers() -> tuple[str, list[ToolCallDelta]]:
        deltas = []
        for index, restorer in tools.items():
            arguments = restorer.flush()
            if arguments:
                deltas.append(ToolCallDelta(index, arguments=arguments))
        return content.flush(), deltas

    try:
        async for chunk in chunks:
            text = content.feed(chunk.content) if chunk.content else chunk.content
            deltas = chunk.tool_calls
            if deltas:
                deltas = [
                    dataclasses.replace(
                        d,
                        arguments=tools.setdefault(
                            d.index, _Restorer(redactions, json_string=True)
                        ).feed(d.arguments),
                    )
                    for d in deltas
                ]
            if chunk.finish_reason is not None:
                rest, more = leftovers()
                text = (text or "") + rest or text
                deltas = [*deltas, *more]
            if text is not chunk.content or deltas is not chunk.tool_calls:
                chunk = dataclasses.replace(chunk, content=text, tool_calls=deltas)
            yield chunk
        rest, more = leftovers()  # a stream cut short: what was held back still goes out
        if rest or more:
            yield ChatChunk(content=rest or None, tool_calls=more)
    finally:  # closed early (the client left): close the relay, and so the upstream
        await aclose_quietly(chunks)


def reveal_stream(
    outcome: CallOutcome, chunks: AsyncIterator[ChatChunk]
) -> AsyncIterator[ChatChunk]:
    """``chunks`` as the requester sees them: placeholders restored (reversible policies)."""
    guard = outcome.guardrails
    if guard is None or not guard.reveals:
        return chunks
    return _revealed(guard.redactions, chunks)
