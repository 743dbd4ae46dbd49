"""Streams and the cache: replay a cached answer as chunks, and rebuild a complete answer
from a finished stream so it can be stored."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from providers.types import ChatChunk, ChatResponse, ServedBy, ToolCall, ToolCallDelta, Usage

_PIECES = re.compile(r"\s*\S+\s*")


def replay_chunks(response: ChatResponse) -> list[ChatChunk]:
    """The cached answer as a proper stream: role, content in word-sized pieces, tool calls,
    then the finish reason with usage (as the original stream ended)."""
    chunks = [ChatChunk(role="assistant", content="")]
    for piece in _PIECES.findall(response.content or ""):
        chunks.append(ChatChunk(content=piece))
    for index, call in enumerate(response.tool_calls):
        chunks.append(
            ChatChunk(tool_calls=[ToolCallDelta(index, call.id, call.name, call.arguments)])
        )
    chunks.append(ChatChunk(finish_reason=response.finish_reason, usage=response.usage))
    return chunks


@dataclass(slots=True)
class StreamAccumulator:
    """Collects a stream so that, if it ends normally, it can be cached like any answer."""

    content: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # index → [id, name, arguments]
    finish_reason: str | None = None
    usage: Usage | None = None

    def add(self, chunk: ChatChunk) -> None:
        if chunk.content:
            self.content.append(chunk.content)
        for delta in chunk.tool_calls:
            call = self.calls.setdefault(delta.index, ["", "", ""])
            call[0] = delta.id or call[0]
            call[1] = delta.name or call[1]
            call[2] += delta.arguments
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage

    def complete(self) -> bool:
        return self.finish_reason is not None

    def response(self, *, model: str, response_id: str, served_by: ServedBy) -> ChatResponse:
        return ChatResponse(
            id=response_id,
            model=model,
            content="".join(self.content) if self.content or not self.calls else None,
            finish_reason=self.finish_reason,  # type: ignore[arg-type]
            usage=self.usage or Usage(),
            served_by=served_by,
            tool_calls=[ToolCall(*self.calls[i]) for i in sorted(self.calls)],
            created=int(time.time()),
        )
