"""What every API door (OpenAI, Anthropic) shares: the key, the call context, the common
response headers, the SSE body with its abandon behaviour, and a decorator that turns every
failure into the door's own error shape instead of a 500 with a trace."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from decimal import Decimal
from functools import wraps
from typing import Any

import orjson
from django.core.exceptions import DisallowedHost, SuspiciousOperation
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DataError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from aigateway.api import debug
from aigateway.api.parsing import request_id_from
from aigateway.core.aio import aclose_quietly
from aigateway.core.asgi_handler import (
    API_DOOR_MARK,
    BODY_LIMIT_MARK,
    BODY_REFUSED,
    ERROR_RESPONSE_MARK,
)
from aigateway.core.config_cache import ConfigUnavailable
from aigateway.core.ids import unique_hex
from aigateway.gateway.auth_failures import auth_failure_record
from aigateway.gateway.cache import CacheControl
from aigateway.gateway.errors import (
    AuthenticationFailed,
    BodyTooLarge,
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    ServiceUnavailable,
    UpstreamFailed,
)
from aigateway.gateway.pipeline import CallContext, CallOutcome, chat_complete
from aigateway.gateway.principal import Principal, authenticate_api_key
from aigateway.guardrails.stage import header_value as guardrails_header
from providers.errors import ProviderError
from providers.types import ChatRequest, ChatResponse

logger = logging.getLogger(__name__)
View = Callable[..., Awaitable[HttpResponseBase]]
# Gives up a stream whose body never started (the pipeline's ChatStream.abandon).
Abandon = Callable[[], Coroutine[Any, Any, None]]
Decorator = Callable[[View], View]
# Renders a GatewayError in a door's wire format: (error, request id) → response.
ErrorRenderer = Callable[[GatewayError, str], HttpResponse]


def api_key_from(request: HttpRequest) -> str:
    """``Authorization: Bearer <key>`` (openai, and anthropic SDK 2.x) or ``x-api-key``."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def client_timeout(request: HttpRequest) -> float | None:
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


async def authenticate(request: HttpRequest) -> Principal:
    """The caller's key → Principal, with failed attempts limited per client address
    (aigateway/gateway/auth_failures.py: nothing on success; on a failure a dict lookup,
    then Redis unless the address is already refused here)."""
    try:
        return await authenticate_api_key(api_key_from(request))
    except AuthenticationFailed:
        await auth_failure_record(request.META.get("REMOTE_ADDR", ""))
        raise


async def call_context(request: HttpRequest, request_id: str) -> CallContext:
    """Authenticate the caller's key and describe the call for the pipeline."""
    authenticating = time.perf_counter()
    principal = await authenticate(request)
    authenticated = time.perf_counter()
    ctx = CallContext(
        request_id=request_id,
        principal=principal,
        client_ip=request.META.get("REMOTE_ADDR", ""),
        client_timeout=client_timeout(request),
        cache_control=CacheControl.from_header(request.headers.get("Cache-Control", "")),
    )
    ctx.trace.add_stage("auth", authenticating, authenticated)
    ctx.trace.reveal = debug.trace_allowed(request, principal)
    return ctx


class StreamBody:
    """The SSE body of every streaming door (API, Anthropic, playground). Django calls
    ``close()`` when the response is done (also after a disconnect): a body that never
    started abandons the stream (lease released, upstream closed, call recorded); one cut
    while waiting to send is closed now, not left to the garbage collector."""

    def __init__(self, events: AsyncIterator[bytes], abandon: Abandon):
        self._events = events
        self._abandon = abandon
        self._loop = asyncio.get_running_loop()
        self.started = self.finished = False

    def __aiter__(self) -> StreamBody:
        return self

    async def __anext__(self) -> bytes:
        self.started = True
        try:
            return await anext(self._events)
        except BaseException:
            self.finished = True
            raise

    def close(self) -> None:
        if self.finished:
            return
        self.finished = True
        closing = aclose_quietly(self._events) if self.started else self._abandon()
        try:
            asyncio.run_coroutine_threadsafe(closing, self._loop)
        except RuntimeError:  # the loop is gone (shutdown): the lease expires on its own
            closing.close()
            logger.warning("could not close an unfinished stream")


def sse_response(
    events: AsyncIterator[bytes],
    abandon: Abandon,
    outcome: CallOutcome,
) -> StreamingHttpResponse:
    if outcome.trace is not None and outcome.trace.reveal:
        events = debug.with_trace_comment(events, outcome.trace)
    response = StreamingHttpResponse(StreamBody(events, abandon), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx must not buffer a token stream
    outcome_headers(response, outcome)
    return response


class FastJsonResponse(HttpResponse):
    """``JsonResponse`` serialised by orjson (~10x faster on an answer; UTF-8 as is where
    Django escaped non-ASCII). Decimals, lazy strings and durations as Django writes them."""

    def __init__(self, payload: dict[str, Any], status: int = 200) -> None:
        content = orjson.dumps(payload, default=_DJANGO_JSON.default, option=_DJANGO_DATES)
        super().__init__(content, status=status, content_type="application/json")


_DJANGO_JSON = DjangoJSONEncoder()
_DJANGO_DATES = orjson.OPT_PASSTHROUGH_DATETIME  # dates and times as DjangoJSONEncoder formats


def answer_response(
    payload: dict[str, Any], outcome: CallOutcome, cost_usd: Decimal
) -> HttpResponse:
    """A complete (non-streamed) answer with the call's headers."""
    response = FastJsonResponse(payload)
    outcome_headers(response, outcome)
    response["x-aigateway-cost-usd"] = f"{cost_usd:.8f}"
    return response


async def chat_answer(
    ctx: CallContext, chat_request: ChatRequest, render: Callable[[ChatResponse], dict[str, Any]]
) -> HttpResponse:
    """A non-streamed chat call through the pipeline, answered in the door's format."""
    result, outcome = await chat_complete(ctx, chat_request)
    return answer_response(render(result), outcome, result.cost_usd)


def outcome_headers(response: HttpResponseBase, outcome: CallOutcome) -> None:
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
    if outcome.trace is not None and outcome.trace.guardrails:  # rule names, never values
        response["x-aigateway-guardrails"] = guardrails_header(outcome.trace.guardrails)
    debug.add_trace_header(response, outcome.trace)  # only when asked and allowed


def stream_failure(exc: Exception, request_id: str) -> GatewayError:
    """The error to report inside a stream that already started (its status line is sent)."""
    if isinstance(exc, ProviderError):
        return UpstreamFailed(exc, attempts=1)
    logger.exception("stream failed (request %s)", request_id)
    return GatewayError("The stream failed.", code="internal_error")


def internal_error() -> GatewayError:
    failure = GatewayError("The gateway had an internal error.", code="internal_error")
    failure.status_code, failure.error_type = 500, "api_error"
    return failure


def _refuse_nul(request: HttpRequest, kwargs: dict[str, object]) -> None:
    """Ids in the path and query are looked up in the database; PostgreSQL refuses NUL."""
    for name, value in kwargs.items():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidRequest(f"'{name}' must not contain NUL characters.", param=name)
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            raise InvalidRequest("Query parameters must not contain NUL characters.", param=name)


def _refuse_unread_body(request: HttpRequest) -> None:
    """The handler stopped reading a body past the door's limit (core/asgi_handler.py)."""
    limit = getattr(request, "scope", {}).get(BODY_REFUSED)
    if limit is not None:
        # The rest of the body is still on the connection: close it after this answer.
        raise BodyTooLarge(
            f"Request body is larger than the {limit} bytes allowed.",
            headers={"Connection": "close"},
        )


def api_endpoint(
    *methods: str,
    render_error: ErrorRenderer,
    id_headers: tuple[str, ...] = ("x-request-id",),
    max_body: Callable[[], int] | None = None,
) -> Decorator:
    """Common door behaviour: request id (sent back in each of ``id_headers``), method check,
    body size (``max_body``, default AIGATEWAY_MAX_BODY_BYTES, enforced by the handler while
    it reads), and no exception escapes as a 500 with a trace: ``render_error`` shapes every
    failure."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        async def wrapper(
            request: HttpRequest, *args: object, **kwargs: object
        ) -> HttpResponseBase:
            request_id = request_id_from(request, "req_" + unique_hex())
            response: HttpResponseBase
            try:
                if request.method not in methods:
                    raise MethodNotAllowed(f"Use {' or '.join(methods)} for this endpoint.")
                _refuse_unread_body(request)
                _refuse_nul(request, kwargs)
                response = await view(request, request_id, *args, **kwargs)
            except GatewayError as exc:
                response = render_error(exc, request_id)
            except DataError:
                # A value the database cannot store or compare (NUL, out of range): the
                # caller's input, not our fault.
                invalid = InvalidRequest("A value in the request is not valid here.")
                response = render_error(invalid, request_id)
            except ConfigUnavailable:
                unavailable = ServiceUnavailable(
                    "The gateway cannot read its configuration right now; retry shortly.",
                    headers={"Retry-After": "1"},
                )
                response = render_error(unavailable, request_id)
            except Exception:
                logger.exception("unhandled error in %s (request %s)", view.__name__, request_id)
                response = render_error(internal_error(), request_id)
            for name in id_headers:
                response[name] = request_id
            return response

        def failed_before_view(request: HttpRequest, exc: Exception) -> HttpResponseBase:
            """A middleware refused the request (an invalid Host header, say): the door's
            format too, not Django's HTML error page."""
            request_id = request_id_from(request, "req_" + unique_hex())
            error: GatewayError
            if isinstance(exc, SuspiciousOperation):  # logged as Django logs it
                logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
                error = InvalidRequest(
                    "The Host header is not one this gateway serves."
                    if isinstance(exc, DisallowedHost)
                    else "The request was refused as malformed."
                )
            else:
                logger.error("request failed before %s (request %s)", view.__name__,
                             request_id, exc_info=exc)  # fmt: skip
                error = internal_error()
            response = render_error(error, request_id)
            for name in id_headers:
                response[name] = request_id
            return response

        # Served by the hop-free path of aigateway/core/asgi_handler.py.
        setattr(wrapper, API_DOOR_MARK, True)
        setattr(wrapper, ERROR_RESPONSE_MARK, failed_before_view)
        if max_body is not None:
            setattr(wrapper, BODY_LIMIT_MARK, max_body)
        return wrapper  # type: ignore[return-value]

    return decorate
