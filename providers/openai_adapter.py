"""Adapter for OpenAI and OpenAI-compatible servers (vLLM, Ollama, LM Studio, Groq, …).

Chat (plain and streamed) goes through the lean wire client in providers/openai_wire.py: the
same JSON in and out on a shared aiohttp session, without the SDK's per-call machinery (about
0.5 ms of CPU per call, 2 ms per 50-chunk stream). Embeddings, model lists, health checks and
every call of a subclass that sets ``lean_wire = False`` (Azure: its URLs and Entra ID auth)
use the official ``openai`` SDK with its aiohttp transport. Both have explicit timeouts and no
retries of their own: the resilience layer owns retries.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
from django.conf import settings

from providers.base import DeploymentTarget, upstream_headers
from providers.errors_map import map_openai_error, unreadable
from providers.openai_wire import OpenAIWire
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
    # Chat through the lean wire client; a subclass whose URLs or auth differ (Azure) says no.
    lean_wire = True

    def __init__(self, target: DeploymentTarget) -> None:
        self.client = self.make_client(target, upstream_timeout())
        self.wire = (
            OpenAIWire(target.base_url, target.api_key or PLACEHOLDER_KEY, target.provider_name)
            if self.lean_wire
            else None
        )

    async def aclose(self) -> None:
        """Close the HTTP pools (tests; a process keeps its adapters for its lifetime)."""
        await self.client.close()
        if self.wire is not None:
            await self.wire.close()

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
        if self.wire is not None:
            body = await self.wire.complete(params)  # raises our ProviderErrors
            try:
                return _response_from_openai(body, request, target, started)
            except ValueError:  # not the shape of an answer
                raise unreadable(target.provider_name) from None
        try:
            # The SDK's transport, status errors and JSON decoding, but the body comes back as
            # a plain dict: building its pydantic models cost more than everything we do with
            # the answer (see "Hot path" in docs/architecture.md).
            completion = await self.client.post(
                "/chat/completions", body=params, cast_to=object,
                options={"headers": upstream_headers() or {}},
            )  # fmt: skip
            return _response_from_openai(completion, request, target, started)
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: body not JSON or shape
            raise map_openai_error(exc, target.provider_name) from None

    def chat_stream(
        self, request: ChatRequest, target: DeploymentTarget
    ) -> AsyncIterator[ChatChunk]:
        params = build_openai_params(request, target.upstream_model)
        # Always ask for usage: we record it even when the client did not ask to see it.
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        if self.wire is not None:
            return self.wire.stream(params, _chunk_from_openai)
        return self._sdk_chat_stream(params, target)

    async def _sdk_chat_stream(
        self, params: dict[str, Any], target: DeploymentTarget
    ) -> AsyncIterator[ChatChunk]:
        try:
            # The SDK's SSE decoding and mid-stream error events, events as plain dicts (a
            # pydantic model per chunk was ~5x the cost of the rest of the relay).
            stream = await self.client.post(
                "/chat/completions", body=params, cast_to=object, stream=True,
                stream_cls=openai.AsyncStream[object],
                options={"headers": upstream_headers() or {}},
            )  # fmt: skip
            async with stream:
                async for event in stream:
                    yield _chunk_from_openai(event)
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: body not JSON or shape
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


def _mapping(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"the upstream's {what} is not a JSON object")
    return value


def _first_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    choices = body.get("choices") or []
    return _mapping(choices[0], "choice") if choices else None


def _usage(body: dict[str, Any]) -> Usage | None:
    usage = body.get("usage")
    if not usage:
        return None
    usage = _mapping(usage, "usage")
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
    )


def _response_from_openai(
    body: object, request: ChatRequest, target: DeploymentTarget, started: float
) -> ChatResponse:
    completion = _mapping(body, "answer")
    choice = _first_choice(completion)
    message = _mapping(choice.get("message") or {}, "message") if choice else {}
    return ChatResponse(
        id=str(completion.get("id") or ""),
        model=request.model,
        content=message.get("content"),
        finish_reason=choice.get("finish_reason") if choice else None,
        usage=_usage(completion) or Usage(),
        served_by=ServedBy(target.provider_name, target.deployment_id, target.upstream_model),
        tool_calls=[
            ToolCall(
                id=str(call.get("id") or ""),
                name=call["function"].get("name") or "",
                arguments=call["function"].get("arguments") or "",
            )
            for call in message.get("tool_calls") or []
            if isinstance(call, dict) and isinstance(call.get("function"), dict)
        ],
        created=int(completion.get("created") or 0),
        latency_ms=(time.perf_counter() - started) * 1000,
    )


def _chunk_from_openai(event: object) -> ChatChunk:
    body = _mapping(event, "stream event")
    chunk = ChatChunk(usage=_usage(body))
    choice = _first_choice(body)
    if choice is None:
        return chunk
    delta = _mapping(choice.get("delta") or {}, "delta")
    chunk.role = delta.get("role")
    chunk.content = delta.get("content")
    chunk.finish_reason = choice.get("finish_reason")
    for call in delta.get("tool_calls") or []:
        function = _mapping(call, "tool call").get("function") or {}
        chunk.tool_calls.append(
            ToolCallDelta(
                index=call.get("index", 0),
                id=call.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        )
    return chunk
