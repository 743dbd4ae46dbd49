"""Django's ASGI handler with a lean path for the API doors.

The stock handler is built for views that may touch the ORM: every request runs each
middleware's ``process_request``/``process_response`` through ``sync_to_async`` (two thread
hops per middleware, on a thread created for the request) and sends the request signals
through threads too. On the API hot path that is most of Django's cost (about 0.6 ms of CPU
per request measured here, see ../shared/GUIDE.md §4), and none of it is needed: the doors
(``aigateway/api/door.py: api_endpoint``) are async views that never use sessions, users,
messages or CSRF, and reach the database only through ``run_db`` (its own threads).

So a request whose URL resolves to a view marked ``gateway_api_door`` is served here without
thread hops: the request signals' receivers run inline (they are cheap and only touch this
thread's resources; async receivers are awaited), the middlewares that only shape headers run
inline, and the rest (sessions, auth, messages, CSRF, the page CSP) are skipped; the doors'
responses get one constant Content-Security-Policy instead. Every other request (pages,
admin, management API, static files) takes the stock path unchanged.

What stays as in the stock handler: the body is spooled the same way (to disk past
FILE_UPLOAD_MAX_MEMORY_SIZE), but reading stops at the door's size limit (a Content-Length
above it is not read at all; a chunked body is cut where it passes it) and the door answers
413 in its own format, so an endless body costs neither memory nor disk. A client
disconnect while the response is produced or streamed cancels it (the upstream call is
closed), and an exception from a view becomes Django's usual error response.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from contextlib import closing
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import response_for_exception
from django.dispatch import Signal
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix, set_urlconf
from django.utils.log import log_response
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# Middlewares that only read the request and set response headers (no I/O, no ORM): safe to
# call inline on the event loop. Others in settings.MIDDLEWARE are skipped on the API path.
HEADER_ONLY_MIDDLEWARE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    }
)
# The doors answer JSON and event streams, never a page: instead of the CSP middleware (it
# builds the page policy per response, ~8 us), one constant policy that forbids everything.
API_CSP = "default-src 'none'; frame-ancestors 'none'"

API_DOOR_MARK = "gateway_api_door"
# A door's body size limit: a callable returning bytes (default AIGATEWAY_MAX_BODY_BYTES).
BODY_LIMIT_MARK = "gateway_max_body"
# Set in the scope when the body went past the limit (value: the limit); the door answers 413.
BODY_REFUSED = "aigateway.body_refused"
# A door's answer to an exception raised before its view ran (a header-only middleware: an
# invalid Host header, say): ``(request, exception) -> response`` in the door's format.
ERROR_RESPONSE_MARK = "gateway_error_response"


class _RequestProcessed(Exception):
    pass


async def send_signal_inline(signal: Signal, sender: object, **named: object) -> None:
    """``signal.asend`` without the thread hop for sync receivers (Django's own are a few
    microseconds each and use only this thread's connections and caches)."""
    sync_receivers, async_receivers = signal._live_receivers(sender)
    for receiver in sync_receivers:
        receiver(signal=signal, sender=sender, **named)
    for receiver in async_receivers:
        await receiver(signal=signal, sender=sender, **named)


def _header_middleware() -> list[Any]:
    def no_view(request: HttpRequest) -> HttpResponseBase:  # never called: we call the hooks
        raise AssertionError("header-only middleware called as a chain")

    return [
        import_string(path)(no_view)
        for path in settings.MIDDLEWARE
        if path in HEADER_ONLY_MIDDLEWARE
    ]


class GatewayASGIHandler(ASGIHandler):
    """ASGIHandler plus the hop-free API path (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._header_middleware = _header_middleware()
        self._door_matches: dict[tuple[str, str], ResolverMatch] = {}

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = self._api_door(scope)
        if match is None:
            await super().handle(scope, receive, send)
            return
        await self._handle_api(scope, receive, send, match)

    def _api_door(self, scope: dict[str, Any]) -> ResolverMatch | None:
        path = scope.get("path", "")
        if not path.startswith("/v1/") or scope.get("root_path"):
            return None
        # The doors' fixed paths (/v1/chat/completions, ...) are resolved once: walking the
        # URLconf's patterns was ~10 us per request warm and ~90 us on a quiet worker's
        # first. Paths with arguments (ids) are resolved each time, so the cache stays small.
        key = (settings.ROOT_URLCONF, path)
        match = self._door_matches.get(key)
        if match is None:
            try:
                match = get_resolver().resolve(path)
            except Resolver404:
                return None
            if not getattr(match.func, API_DOOR_MARK, False) or not iscoroutinefunction(match.func):
                return None
            if not match.args and not match.kwargs and len(self._door_matches) < 256:
                self._door_matches[key] = match
        return match

    async def _handle_api(
        self, scope: dict[str, Any], receive: Any, send: Any, match: ResolverMatch
    ) -> None:
        try:
            body_file = await self._read_body_within(scope, receive, _body_limit(match.func))
        except RequestAborted:
            return
        with closing(body_file):
            set_script_prefix(get_script_prefix(scope))
            await send_signal_inline(signals.request_started, self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                assert error_response is not None
                await self.send_response(error_response, send)
                await self._close(error_response)
                return
            response: HttpResponseBase | None = None
            try:
                try:
                    async with asyncio.TaskGroup() as tasks:
                        tasks.create_task(self.listen_for_disconnect(receive))
                        response = await self._api_response(request, match)
                        await self.send_response(response, send)
                        raise _RequestProcessed
                except* (_RequestProcessed, RequestAborted):
                    pass
            except BaseExceptionGroup as group:
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise
            if response is None:
                await send_signal_inline(signals.request_finished, self.__class__)
            else:
                await self._close(response)

    async def listen_for_disconnect(self, receive: Any) -> None:
        """Django's version treats any message but a disconnect as impossible; here a body
        left unread past the door's limit may still arrive: skip it until the client goes."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted()

    async def _read_body_within(
        self, scope: dict[str, Any], receive: Any, limit: int
    ) -> tempfile.SpooledTemporaryFile[bytes]:
        """Django's ``read_body``, stopping at ``limit``: past it the body is left unread (the
        413 says ``Connection: close``, so the server drops the rest) and the scope says so."""
        body_file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 -- the caller closes it
            max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
        )
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            scope[BODY_REFUSED] = limit
            return body_file
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_file.close()
                raise RequestAborted()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                body_file.truncate(0)
                body_file.seek(0)
                scope[BODY_REFUSED] = limit
                return body_file
            if getattr(body_file, "_rolled", False):  # on disk: write off the event loop
                await sync_to_async(body_file.write, thread_sensitive=False)(chunk)
            else:
                body_file.write(chunk)
            if not message.get("more_body", False):
                break
        body_file.seek(0)
        return body_file

    async def _api_response(self, request: HttpRequest, match: ResolverMatch) -> HttpResponseBase:
        """The middleware chain, view and error handling of Django's async path, inline."""
        set_urlconf(settings.ROOT_URLCONF)
        request.resolver_match = match
        entered: list[Any] = []  # as in Django's chain, only these see the response
        response: HttpResponseBase | None = None
        try:
            for middleware in self._header_middleware:
                entered.append(middleware)
                process_request = getattr(middleware, "process_request", None)
                if process_request is not None and (response := process_request(request)):
                    break
            if response is None:
                response = await match.func(request, *match.args, **match.kwargs)
        except Exception as exc:  # noqa: BLE001 -- as Django's convert_exception_to_response
            door_error = getattr(match.func, ERROR_RESPONSE_MARK, None)
            if door_error is not None and response is None:
                response = door_error(request, exc)
            else:
                response = response_for_exception(request, exc)
        assert response is not None
        for middleware in reversed(entered):
            process_response = getattr(middleware, "process_response", None)
            if process_response is not None:
                response = process_response(request, response)
        response.headers.setdefault("Content-Security-Policy", API_CSP)
        response._handler_class = self.__class__  # type: ignore[union-attr]
        response._resource_closers.append(request.close)  # type: ignore[union-attr]
        if response.status_code >= 400:
            log_response(
                "%s: %s",
                response.reason_phrase,
                request.path,
                response=response,  # type: ignore[arg-type]
                request=request,
            )
        return response

    async def _close(self, response: HttpResponseBase) -> None:
        """``response.close()`` sends request_finished synchronously: inline when all its
        receivers are sync (always, unless a library adds an async one)."""
        if signals.request_finished._live_receivers(self.__class__)[1]:
            await sync_to_async(response.close)()
        else:
            response.close()


def _body_limit(view: Any) -> int:
    limit = getattr(view, BODY_LIMIT_MARK, None)
    return int(limit()) if limit is not None else int(settings.AIGATEWAY_MAX_BODY_BYTES)


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def get_gateway_asgi_application() -> GatewayASGIHandler:
    """Like ``django.core.asgi.get_asgi_application`` with our handler."""
    import django

    django.setup(set_prefix=False)
    return GatewayASGIHandler()
