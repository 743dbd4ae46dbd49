"""Anthropic-compatible endpoints (``/v1/messages``), so the official ``anthropic`` SDK works
with ``base_url`` set to the gateway. Thin, like the OpenAI door: authenticate, parse into
the normalized request, call the one pipeline, answer in Anthropic's wire format. Any route
serves them, whatever provider its deployments use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from aigateway.api import door
from aigateway.api.anthropic_parsing import parse_messages_request
from aigateway.api.anthropic_serializers import (
    error_body,
    error_response,
    message_id,
    message_to_anthropic,
    sse_event,
)
from aigateway.api.anthropic_stream import AnthropicStreamWriter
from aigateway.api.parsing import read_json_body
from aigateway.gateway.pipeline import chat_stream
from aigateway.gateway.routes import route_resolve
from providers.tokens import count_prompt_tokens


def anthropic_endpoint(*methods: str) -> door.Decorator:
    """Anthropic-shaped errors; the request id also in Anthropic's ``request-id`` header
    (the SDK exposes it as ``_request_id``)."""
    return door.api_endpoint(
        *methods, render_error=error_response, id_headers=("x-request-id", "request-id")
    )


@anthropic_endpoint("POST")
async def messages(request: HttpRequest, request_id: str) -> HttpResponseBase:
    ctx = await door.call_context(request, request_id)
    chat_request = parse_messages_request(read_json_body(request))
    if not chat_request.stream:
        return await door.chat_answer(
            ctx, chat_request, partial(message_to_anthropic, request_id=request_id)
        )

    opened = await chat_stream(ctx, chat_request)
    writer = AnthropicStreamWriter(
        message_id=message_id(request_id),
        model=chat_request.model,
        input_tokens=count_prompt_tokens(chat_request),
    )

    async def events() -> AsyncIterator[bytes]:
        chunks = aiter(opened.chunks)
        try:
            # Take the first chunk (already here) before sending message_start: from then on
            # the pipeline's relay owns the call, so a client that leaves at any later point
            # is recorded and its lease settled, as on the OpenAI door.
            first = await anext(chunks, None)
            yield writer.start() + (writer.add(first) if first is not None else b"")
            async for chunk in chunks:
                frames = writer.add(chunk)
                if frames:
                    yield frames
        # After the first event: report the error in-stream, as Anthropic does (an ``error``
        # event, no message_stop); stream_failure logs the unexpected ones.
        except Exception as exc:  # noqa: BLE001
            yield sse_event(error_body(door.stream_failure(exc, request_id), request_id))
            return
        yield writer.end()

    return door.sse_response(events(), opened.abandon, opened.outcome)


@anthropic_endpoint("POST")
async def count_tokens(request: HttpRequest, request_id: str) -> HttpResponseBase:
    """An estimate made here (no upstream call, so no usage and no rate limit): the count the
    gateway's own token limits use, for the route's first deployment's provider."""
    principal = await door.authenticate(request)
    chat_request = parse_messages_request(read_json_body(request), count_only=True)
    route = await route_resolve(principal, chat_request.model)
    kind = route.deployments[0].provider_kind if route.deployments else "openai"
    return JsonResponse({"input_tokens": count_prompt_tokens(chat_request, provider_kind=kind)})
