"""Adapter for Anthropic's Messages API on the official ``anthropic`` SDK (aiohttp transport,
explicit timeouts, ``max_retries=0``: the resilience layer owns retries)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
from django.conf import settings

from providers.anthropic_mapping import build_anthropic_params, finish_reason
from providers.base import DeploymentTarget, upstream_headers
from providers.errors import BadRequest
from providers.errors_map import map_anthropic_error
from providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ServedBy,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# What a call can raise because of the upstream: the SDK's errors; bare httpx2 transport errors
# (the SDK's stream iterator does not wrap a reset or a read timeout mid-stream); ValueError
# for a body or SSE event that is not JSON.
_UPSTREAM_ERRORS = (anthropic.AnthropicError, httpx2.HTTPError, ValueError)


class AnthropicAdapter:
    def __init__(self, target: DeploymentTarget) -> None:
        timeout = httpx2.Timeout(
            settings.AIGATEWAY_UPSTREAM_READ_TIMEOUT,
            connect=settings.AIGATEWAY_UPSTREAM_CONNECT_TIMEOUT,
        )
        self.client = anthropic.AsyncAnthropic(
            api_key=target.api_key or "missing-key",
            base_url=target.base_url or None,
            max_retries=0,
            timeout=timeout,
            http_client=anthropic.DefaultAioHttpClient(timeout=timeout),
        )

    async def chat(self, request: ChatRequest, target: DeploymentTarget) -> ChatResponse:
        params = build_anthropic_params(request, target.upstream_model)
        started = time.perf_counter()
        try:
            message = await self.client.messages.create(**params, extra_headers=upstream_headers())
        except _UPSTREAM_ERRORS as exc:
            raise map_anthropic_error(exc, target.provider_name) from None
        texts, calls = [], []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                calls.append(
                    ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input))
                )
        return ChatResponse(
            id=message.id,
            model=request.model,
            content="".join(texts) if texts else None,
            finish_reason=finish_reason(message.stop_reason),
            usage=Usage(
                input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens
            ),
            served_by=ServedBy(target.provider_name, target.deployment_id, target.upstream_model),
            tool_calls=calls,
            created=int(time.time()),
            latency_ms=(time.perf_counter() - started) * 1000,
            stop_sequence=message.stop_sequence,
        )

    async def chat_stream(
        self, request: ChatRequest, target: DeploymentTarget
    ) -> AsyncIterator[ChatChunk]:
        params = build_anthropic_params(request, target.upstream_model)
        translator = _StreamTranslator()
        try:
            stream = await self.client.messages.create(
                **params, stream=True, extra_headers=upstream_headers()
            )
            async with stream:
                async for event in stream:
                    chunk = translator.translate(event)
                    if chunk is not None:
                        yield chunk
        except _UPSTREAM_ERRORS as exc:
            raise map_anthropic_error(exc, target.provider_name) from None

    async def embeddings(
        self, request: EmbeddingRequest, target: DeploymentTarget
    ) -> EmbeddingResponse:
        raise BadRequest(
            "Anthropic has no embeddings API; route embeddings to another provider",
            provider=target.provider_name,
        )

    async def list_models(self, target: DeploymentTarget) -> list[str]:
        try:
            page = await self.client.models.list()
        except _UPSTREAM_ERRORS as exc:
            raise map_anthropic_error(exc, target.provider_name) from None
        return [m.id for m in page.data]

    async def health_check(self, target: DeploymentTarget) -> None:
        await self.list_models(target)


class _StreamTranslator:
    """Anthropic's SSE events → normalized chunks (one per text/tool delta, then a final one
    with the finish reason and usage)."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.tool_index_by_block: dict[int, int] = {}

    def translate(self, event: Any) -> ChatChunk | None:
        kind = event.type
        if kind == "message_start":
            self.input_tokens = event.message.usage.input_tokens
            return ChatChunk(role="assistant", content="")
        if kind == "content_block_start" and event.content_block.type == "tool_use":
            index = len(self.tool_index_by_block)
            self.tool_index_by_block[event.index] = index
            block = event.content_block
            return ChatChunk(tool_calls=[ToolCallDelta(index=index, id=block.id, name=block.name)])
        if kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                return ChatChunk(content=delta.text)
            if delta.type == "input_json_delta":
                index = self.tool_index_by_block.get(event.index, 0)
                return ChatChunk(
                    tool_calls=[ToolCallDelta(index=index, arguments=delta.partial_json)]
                )
            return None
        if kind == "message_delta":
            return ChatChunk(
                finish_reason=finish_reason(event.delta.stop_reason),
                stop_sequence=event.delta.stop_sequence,
                usage=Usage(
                    input_tokens=self.input_tokens, output_tokens=event.usage.output_tokens
                ),
            )
        return None
