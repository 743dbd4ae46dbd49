"""OpenAI-compatible endpoints. Thin: authenticate, parse, call the pipeline, serialize."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from aigateway.api.parsing import parse_chat_request, read_json_body, request_id_from
from aigateway.api.serializers import (
    SSE_DONE,
    chat_response_to_openai,
    chunk_to_openai,
    sse_event,
    usage_chunk,
)
from aigateway.core.config_cache import ConfigUnavailable
from aigateway.gateway.cache import CacheControl
from aigateway.gateway.errors import (
    GatewayError,
    MethodNotAllowed,
    ServiceUnavailable,
    UpstreamFailed,
)
from aigateway.gateway.pipeline import CallContext, CallOutcome, chat_complete, chat_stream
from aigateway.gateway.principal import Principal, authenticate_api_key

logger = logging.getLogger(__name__)
View = Callable[..., Awaitable[HttpResponseBase]]


def _bearer_key(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def _client_timeout(request: HttpRequest) -> float | None:
    """The caller's timeout in seconds, if it says: X-AIGateway-Timeout, or what the SDKs
    send (anthropic: X-Stainless-Timeout; openai: X-Stainless-Read-Timeout). Retries and
    failovers stay within it."""
    for header in ("X-AIGateway-Timeout", "X-Stainless-Timeout", "X-Stainless-Read-Timeout"):
        try:
            value = float(request.headers.get(header, ""))
        except ValueError:
            continue
        if 0 < value < 86_400:
            return value
    return None


class StreamBody:
    """The SSE body. Django calls ``close()`` when the response ends; if the body never
    started (the client left before the first byte) the stream is abandoned properly:
    lease released, upstream closed, call recorded."""

    def __init__(self, events: AsyncIterator[bytes], abandon: Callable[[], Awaitable[None]]):
        self._events = events
        self._abandon = abandon
        self._loop = asyncio.get_running_loop()
        self.started = False

    def __aiter__(self) -> StreamBody:
        return self

    async def __anext__(self) -> bytes:
        self.started = True
        return await anext(self._events)

    def close(self) -> None:
        if not self.started:
            self.started = True
            try:
                asyncio.run_coroutine_threadsafe(self._abandon(), self._loop)  # type: ignore[arg-type]
            except RuntimeError:  # the loop is gone (shutdown): the lease expires on its own
                logger.warning("could not abandon an unstarted stream")


def error_response(exc: GatewayError, request_id: str) -> JsonResponse:
    response = JsonResponse(exc.body(request_id), status=exc.status_code)
    for name, value in exc.headers.items():
        response[name] = value
    response["x-request-id"] = request_id
    return response


def api_endpoint(*methods: str) -> Callable[[View], View]:
    """Common door behaviour: request id, method check, and no exception escapes as a 500."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        async def wrapper(
            request: HttpRequest, *args: object, **kwargs: object
        ) -> HttpResponseBase:
            request_id = request_id_from(request, "req_" + uuid.uuid4().hex)
            try:
                if request.method not in methods:
                    raise MethodNotAllowed(f"Use {' or '.join(methods)} for this endpoint.")
                response = await view(request, request_id, *args, **kwargs)
            except GatewayError as exc:
                return error_response(exc, request_id)
            except ConfigUnavailable:
                unavailable = ServiceUnavailable(
                    "The gateway cannot read its configuration right now; retry shortly.",
                    headers={"Retry-After": "1"},
                )
                return error_response(unavailable, request_id)
            except Exception:
                logger.exception("unhandled error in %s (request %s)", view.__name__, request_id)
                failure = GatewayError("The gateway had an internal error.", code="internal_error")
                failure.status_code, failure.error_type = 500, "api_error"
                return error_response(failure, request_id)
            response["x-request-id"] = request_id
            return response

        return wrapper  # type: ignore[return-value]

    return decorate


def _outcome_headers(response: HttpResponseBase, outcome: CallOutcome) -> None:
    for name, value in outcome.rate_limit_headers.items():
        response[name] = value
    response["x-aigateway-cache"] = outcome.cache_status
    if outcome.cache_similarity is not None:
        response["x-aigateway-cache-similarity"] = f"{outcome.cache_similarity:.4f}"
    if outcome.served_by is not None:
        response["x-aigateway-served-by"] = (
            f"{outcome.served_by.provider}/{outcome.served_by.upstream_model}"
        )
    if outcome.attempts.failovers:
        response["x-aigateway-failovers"] = str(outcome.attempts.failovers)


@api_endpoint("POST")
async def chat_completions(request: HttpRequest, request_id: str) -> HttpResponseBase:
    principal = await authenticate_api_key(_bearer_key(request))
    chat_request = parse_chat_request(read_json_body(request))
    ctx = CallContext(
        request_id=request_id,
        principal=principal,
        client_timeout=_client_timeout(request),
        cache_control=CacheControl.from_header(request.headers.get("Cache-Control", "")),
    )
    if not chat_request.stream:
        result, outcome = await chat_complete(ctx, chat_request)
        response = JsonResponse(chat_response_to_openai(result))
        _outcome_headers(response, outcome)
        response["x-aigateway-cost-usd"] = f"{result.cost_usd:.8f}"
        return response

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
        except Exception as exc:  # after the first token: report the error in-stream
            from providers.errors import ProviderError

            error = (
                UpstreamFailed(exc, attempts=1)
                if isinstance(exc, ProviderError)
                else GatewayError("The stream failed.", code="internal_error")
            )
            if not isinstance(exc, ProviderError):
                logger.exception("stream failed (request %s)", request_id)
            yield sse_event(error.body(request_id))
        yield SSE_DONE

    body = StreamBody(events(), opened.abandon)
    streaming = StreamingHttpResponse(body, content_type="text/event-stream")
    streaming["Cache-Control"] = "no-cache"
    streaming["X-Accel-Buffering"] = "no"
    _outcome_headers(streaming, opened.outcome)
    return streaming


@api_endpoint("GET")
async def list_models(request: HttpRequest, request_id: str) -> HttpResponse:
    principal: Principal = await authenticate_api_key(_bearer_key(request))
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "aigateway"}
        for name in sorted(principal.allowed_routes)
    ]
    return JsonResponse({"object": "list", "data": data})


async def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    error = GatewayError(f"Unknown endpoint: {request.method} {request.path}", code="not_found")
    error.status_code = 404
    return HttpResponse(json.dumps(error.body()), status=404, content_type="application/json")
