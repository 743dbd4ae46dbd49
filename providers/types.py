"""Normalized request/response types shared by every adapter and every door.

Adapters translate between these and their provider's wire format, so a route can fail over
from one provider to another and the API can answer in OpenAI or Anthropic shape alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Role = Literal["system", "developer", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@dataclass(slots=True)
class Message:
    role: Role
    # Plain text, or OpenAI-style content parts (text/image_url) for multimodal input.
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "".join(p.get("text", "") for p in self.content if p.get("type") == "text")


@dataclass(slots=True)
class ChatRequest:
    model: str  # the route name the client asked for
    messages: list[Message]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)  # OpenAI function-tool schema
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    user: str | None = None
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage
    # OpenAI parameters we do not model but pass through to OpenAI-family upstreams.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def system_prompt(self) -> str | None:
        parts = [m.text() for m in self.messages if m.role in ("system", "developer")]
        return "\n\n".join(parts) if parts else None


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class ServedBy:
    """Which upstream answered: recorded in usage and returned in response headers."""

    provider: str
    deployment_id: int | None
    upstream_model: str


@dataclass(slots=True)
class ChatResponse:
    id: str
    model: str  # the route name, echoed back to the client
    content: str | None
    finish_reason: FinishReason | None
    usage: Usage
    served_by: ServedBy
    tool_calls: list[ToolCall] = field(default_factory=list)
    created: int = 0
    latency_ms: float = 0.0
    cost_usd: Decimal = Decimal(0)
    # Which of the request's stop sequences ended the answer, when the upstream says
    # (Anthropic does; OpenAI does not): the Anthropic door reports it.
    stop_sequence: str | None = None


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class ChatChunk:
    """One streamed increment. ``usage`` is set on the final chunk when the upstream sent it."""

    content: str | None = None
    role: Role | None = None
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    stop_sequence: str | None = None  # with the finish reason, as in ChatResponse


@dataclass(slots=True)
class EmbeddingRequest:
    model: str  # the route name
    # Texts, or pre-tokenised inputs (token ids), never a mix: OpenAI accepts either form.
    inputs: list[str] | list[list[int]]
    dimensions: int | None = None
    user: str | None = None


@dataclass(slots=True)
class EmbeddingResponse:
    model: str
    vectors: list[list[float]]
    usage: Usage
    served_by: ServedBy
    cost_usd: Decimal = Decimal(0)
