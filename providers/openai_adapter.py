"""Adapter for OpenAI and OpenAI-compatible servers (vLLM, Ollama, LM Studio, Groq, …).

Built on the official ``openai`` SDK with its aiohttp transport (cheapest per call, see the
guide), explicit timeouts, and ``max_retries=0``: the resilience layer owns retries.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
from django.conf import settings

from providers.base import DeploymentTarget, upstream_headers
from providers.errors_map import map_openai_error
from providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    ServedBy,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# Servers such as Ollama ignore the key, but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"


def _message_to_openai(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def build_openai_params(request: ChatRequest, upstream_model: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": upstream_model,
        "messages": [_message_to_openai(m) for m in request.messages],
    }
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        # A client that sent max_completion_tokens gets exactly that (it is in ``extra``):
        # o-series models refuse max_tokens.
        "max_tokens": (
            None if request.extra.get("max_completion_tokens") is not None else request.max_tokens
        ),
        "stop": request.stop or None,
        "tools": request.tools or None,
        "tool_choice": request.tool_choice,
        "response_format": request.response_format,
        "seed": request.seed,
        "user": request.user,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    params.update(request.extra)
    return params


def upstream_timeout() -> httpx2.Timeout:
    return httpx2.Timeout(
        settings.AIGATEWAY_UPSTREAM_READ_TIMEOUT,
        connect=settings.AIGATEWAY_UPSTREAM_CONNECT_TIMEOUT,
    )


class OpenAIAdapter:
    def __init__(self, target: DeploymentTarget) -> None:
        self.client = self.make_client(target, upstream_timeout())

    def make_client(self, target: DeploymentTarget, timeout: httpx2.Timeout) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=target.api_key or PLACEHOLDER_KEY,
            base_url=target.base_url or None,
            max_retries=0,
            timeout=timeout,
            http_client=openai.DefaultAioHttpClient(timeout=timeout),
        )

    async def chat(self, request: ChatRequest, target: DeploymentTarget) -> ChatResponse:
        params = build_openai_params(request, target.upstream_model)
        started = time.perf_counter()
        try:
            completion = await self.client.chat.completions.create(
                **params, extra_headers=upstream_headers()
            )
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: body not JSON
            raise map_openai_error(exc, target.provider_name) from None
        choice = completion.choices[0] if completion.choices else None
        message = choice.message if choice else None
        usage = completion.usage
        return ChatResponse(
            id=completion.id,
            model=request.model,
            content=message.content if message else None,
            finish_reason=choice.finish_reason if choice else None,  # type: ignore[arg-type]
            usage=Usage(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
            ),
            served_by=ServedBy(target.provider_name, target.deployment_id, target.upstream_model),
            tool_calls=[
                ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
                for c in (message.tool_calls or [] if message else [])
                if getattr(c, "function", None) is not None
            ],
            created=completion.created,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def chat_stream(
        self, request: ChatRequest, target: DeploymentTarget
    ) -> AsyncIterator[ChatChunk]:
        params = build_openai_params(request, target.upstream_model)
        # Always ask for usage: we record it even when the client did not ask to see it.
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        try:
            stream = await self.client.chat.completions.create(
                **params, extra_headers=upstream_headers()
            )
            async with stream:
                async for event in stream:
                    yield _chunk_from_openai(event)
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: body not JSON
            raise map_openai_error(exc, target.provider_name) from None

    async def embeddings(
        self, request: EmbeddingRequest, target: DeploymentTarget
    ) -> EmbeddingResponse:
        params: dict[str, Any] = {
            "model": target.upstream_model,
            "input": request.inputs,
            "encoding_format": "float",
        }
        if request.dimensions is not None:
            params["dimensions"] = request.dimensions
        if request.user:
            params["user"] = request.user
        try:
            result = await self.client.embeddings.create(**params, extra_headers=upstream_headers())
        except (openai.OpenAIError, ValueError) as exc:
            raise map_openai_error(exc, target.provider_name) from None
        vectors = [list(item.embedding) for item in sorted(result.data, key=lambda d: d.index)]
        return EmbeddingResponse(
            model=request.model,
            vectors=vectors,
            usage=Usage(input_tokens=result.usage.prompt_tokens if result.usage else 0),
            served_by=ServedBy(target.provider_name, target.deployment_id, target.upstream_model),
        )

    async def list_models(self, target: DeploymentTarget) -> list[str]:
        try:
            page = await self.client.models.list()
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: body not JSON
            raise map_openai_error(exc, target.provider_name) from None
        return [m.id for m in page.data]

    async def health_check(self, target: DeploymentTarget) -> None:
        await self.list_models(target)


def _chunk_from_openai(event: Any) -> ChatChunk:
    chunk = ChatChunk()
    if event.usage is not None:
        chunk.usage = Usage(
            input_tokens=event.usage.prompt_tokens or 0,
            output_tokens=event.usage.completion_tokens or 0,
        )
    if event.choices:
        choice = event.choices[0]
        delta = choice.delta
        chunk.role = delta.role if delta else None
        chunk.content = delta.content if delta else None
        chunk.finish_reason = choice.finish_reason
        for call in (delta.tool_calls or []) if delta else []:
            chunk.tool_calls.append(
                ToolCallDelta(
                    index=call.index,
                    id=call.id,
                    name=call.function.name if call.function else None,
                    arguments=(call.function.arguments or "") if call.function else "",
                )
            )
    return chunk
