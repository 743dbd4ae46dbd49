"""OpenAI-compatible endpoints. Thin: authenticate, parse, call the pipeline, serialize."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from aigateway.api import door
from aigateway.api.door import StreamBody  # noqa: F401 - re-exported (tests import it here)
from aigateway.api.embeddings_wire import embedding_response_to_openai, parse_embedding_request
from aigateway.api.parsing import parse_chat_request, read_json_body
from aigateway.api.serializers import (
    SSE_DONE,
    chat_response_to_openai,
    chunk_to_openai,
    sse_event,
    usage_chunk,
)
from aigateway.gateway.embeddings import embeddings_create
from aigateway.gateway.errors import GatewayError, ModelNotFound
from aigateway.gateway.pipeline import chat_stream
from aigateway.gateway.principal import Principal

logger = logging.getLogger(__name__)


def error_response(exc: GatewayError, request_id: str) -> JsonResponse:
    response = JsonResponse(exc.body(request_id), status=exc.status_code)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def api_endpoint(*methods: str, max_body: Callable[[], int] | None = None) -> door.Decorator:
    """The OpenAI door: OpenAI-shaped errors (see aigateway/api/door.py)."""
    return door.api_endpoint(*methods, render_error=error_response, max_body=max_body)


@api_endpoint("POST")
async def chat_completions(request: HttpRequest, request_id: str) -> HttpResponseBase:
    ctx = await door.call_context(request, request_id)
    chat_request = parse_chat_request(read_json_body(request))
    if not chat_request.stream:
        return await door.chat_answer(ctx, chat_request, chat_response_to_openai)

    opened = await chat_stream(ctx, chat_request)
    completion_id = "chatcmpl-" + request_id.removeprefix("req_")
    created = int(time.time())

    async def events() -> AsyncIterator[bytes]:
        try:
            async for chunk in opened.chunks:
                payload = chunk_to_openai(
                    chunk, completion_id=completion_id, model=chat_request.model, created=created
                )
                if payload is not None:
                    yield sse_event(payload)
                if chunk.usage is not None and chat_request.include_usage:
                    yield sse_event(
                        usage_chunk(
                            chunk.usage,
                            completion_id=completion_id,
                            model=chat_request.model,
                            created=created,
                        )
                    )
        # After the first token: report the error in-stream (stream_failure logs the
        # unexpected ones).
        except Exception as exc:  # noqa: BLE001
            yield sse_event(door.stream_failure(exc, request_id).body(request_id))
        yield SSE_DONE

    return door.sse_response(events(), opened.abandon, opened.outcome)


@api_endpoint("POST")
async def embeddings(request: HttpRequest, request_id: str) -> HttpResponseBase:
    ctx = await door.call_context(request, request_id)
    embedding_request, encoding = parse_embedding_request(read_json_body(request))
    result, outcome = await embeddings_create(ctx, embedding_request)
    payload = embedding_response_to_openai(result, encoding)
    return door.answer_response(payload, outcome, result.cost_usd)


def _model(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "aigateway"}


@api_endpoint("GET")
async def list_models(request: HttpRequest, request_id: str) -> HttpResponse:
    """The routes this key may use (the team's, narrowed to the key's own list if it has one)."""
    principal: Principal = await door.authenticate(request)
    data = [_model(name) for name in sorted(principal.allowed_routes)]
    return JsonResponse({"object": "list", "data": data})


@api_endpoint("GET")
async def retrieve_model(request: HttpRequest, request_id: str, model: str) -> HttpResponse:
    """One route, if this key may use it; else 404 like OpenAI (route names do not leak)."""
    principal: Principal = await door.authenticate(request)
    if model not in principal.allowed_routes:
        raise ModelNotFound(
            f"The model '{model}' does not exist or you do not have access to it.", param="model"
        )
    return JsonResponse(_model(model))


# Every method: an unknown path is a 404 whatever the method (and a door, so no CSRF 403 page).
@api_endpoint("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
async def not_found(request: HttpRequest, request_id: str, path: str = "") -> HttpResponse:
    error = GatewayError(f"Unknown endpoint: {request.method} {request.path}", code="not_found")
    error.status_code = 404
    raise error
