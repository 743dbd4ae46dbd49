"""Normalized stream chunks → Anthropic's named SSE events.

Anthropic streams a message as: ``message_start`` (an empty message), ``ping``, then per
content block ``content_block_start`` / ``content_block_delta``\\* / ``content_block_stop``,
then ``message_delta`` (stop reason and usage) and ``message_stop``. Normalized chunks carry
text and tool-call deltas in any order the upstream produced them, so the writer opens a new
block whenever the kind of content changes (text, or another tool call).
"""

from __future__ import annotations

import uuid
from typing import Any

from aigateway.api.anthropic_serializers import sse_event, stop_reason
from providers.types import ChatChunk, FinishReason, ToolCallDelta, Usage

TEXT = -1  # the key of a text block in ``_Open.key`` (tool blocks use their call index)


class AnthropicStreamWriter:
    """Stateful: feed every chunk to ``add`` in order, then call ``end`` once."""

    def __init__(self, *, message_id: str, model: str, input_tokens: int) -> None:
        self.message_id = message_id
        self.model = model
        self.input_tokens = input_tokens  # an estimate until the upstream reports usage
        self._next_index = 0
        self._open: tuple[int, int] | None = None  # (key, block index) of the open block
        self._tool_blocks: dict[int, int] = {}  # tool call index → block index
        self._finish: FinishReason | None = None
        self._stop_sequence: str | None = None
        self._usage: Usage | None = None
        self._produced_chars = 0

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        return sse_event({"type": "message_start", "message": message}) + sse_event(
            {"type": "ping"}
        )

    def add(self, chunk: ChatChunk) -> bytes:
        frames: list[bytes] = []
        if chunk.content:
            self._produced_chars += len(chunk.content)
            index = self._block(TEXT, {"type": "text", "text": ""}, frames)
            delta = {"type": "text_delta", "text": chunk.content}
            frames.append(self._delta(index, delta))
        for call in chunk.tool_calls:
            index = self._tool_block(call, frames)
            if call.arguments:
                self._produced_chars += len(call.arguments)
                delta = {"type": "input_json_delta", "partial_json": call.arguments}
                frames.append(self._delta(index, delta))
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
            self._stop_sequence = chunk.stop_sequence
        if chunk.usage is not None:
            self._usage = chunk.usage
        return b"".join(frames)

    def end(self) -> bytes:
        frames = [self._close()]
        # No usage from the upstream (some OpenAI-compatible servers): ~4 characters a token.
        usage = self._usage or Usage(
            input_tokens=self.input_tokens, output_tokens=(self._produced_chars + 3) // 4
        )
        frames.append(
            sse_event(
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": stop_reason(self._finish, self._stop_sequence),
                        "stop_sequence": self._stop_sequence,
                    },
                    # Cumulative counts: input_tokens here replaces message_start's estimate.
                    "usage": {
                        "input_tokens": usage.input_tokens,
                        "output_tokens": usage.output_tokens,
                    },
                }
            )
        )
        frames.append(sse_event({"type": "message_stop"}))
        return b"".join(frames)

    # -- blocks ------------------------------------------------------------------------------
    def _tool_block(self, call: ToolCallDelta, frames: list[bytes]) -> int:
        known = self._tool_blocks.get(call.index)
        if known is not None and (call.id is None or self._open == (call.index, known)):
            return known  # a continuation of a call already started
        block = {
            "type": "tool_use",
            # Some OpenAI-compatible servers send no id; Anthropic clients need one.
            "id": call.id or "toolu_" + uuid.uuid4().hex[:24],
            "name": call.name or "",
            "input": {},
        }
        index = self._block(call.index, block, frames, force_new=True)
        self._tool_blocks[call.index] = index
        return index

    def _block(
        self, key: int, block: dict[str, Any], frames: list[bytes], *, force_new: bool = False
    ) -> int:
        """The index of the open block for ``key``, opening one (and closing the previous)
        when the content kind changes."""
        if self._open is not None and self._open[0] == key and not force_new:
            return self._open[1]
        frames.append(self._close())
        index = self._next_index
        self._next_index += 1
        self._open = (key, index)
        frames.append(
            sse_event({"type": "content_block_start", "index": index, "content_block": block})
        )
        return index

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index = self._open[1]
        self._open = None
        return sse_event({"type": "content_block_stop", "index": index})

    @staticmethod
    def _delta(index: int, delta: dict[str, Any]) -> bytes:
        return sse_event({"type": "content_block_delta", "index": index, "delta": delta})
