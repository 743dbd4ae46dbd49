"""A wire-level fake LLM upstream for tests: a real aiohttp server on 127.0.0.1.

It speaks the OpenAI protocol (``/v1/chat/completions``, ``/v1/models``, ``/v1/embeddings``)
and the Anthropic Messages protocol (``/v1/messages``), answers deterministically (see
``tests/fakes/echo.py``) and injects faults that really happen on the wire: HTTP error
statuses, slow answers, TCP resets before or during a response, malformed bodies, stalls.

    with FakeUpstream() as upstream:
        client = openai.AsyncOpenAI(base_url=upstream.openai_base_url, api_key="sk-test")
        upstream.push_fault("429", retry_after=3)  # the next request gets a 429
        ...
        assert len(upstream.requests) == 1

The server runs in a daemon thread with its own event loop, so it works under any test
(sync or async, any event loop) and the client sees only real sockets.

Fault kinds (``push_fault(kind, count=1, path=None, **options)``; FIFO, each fault serves
the next ``count`` requests whose path equals ``path``, or any request when ``path`` is None):

=================  ===========================================================================
``"429"``          HTTP 429, ``retry-after: <retry_after=1>``, rate-limit error body
``"500"``          HTTP 500 server error
``"503"``          HTTP 503 (overloaded/unavailable)
``"529"``          HTTP 529 overloaded (Anthropic's overloaded_error)
``"401"``          HTTP 401 authentication error
``"400"``          HTTP 400 generic invalid_request_error
``"context_length"``  HTTP 400 with code ``context_length_exceeded`` (Anthropic: prompt too long)
``"content_filter"``  HTTP 400 with code ``content_filter``
``"slow"``         sleep ``delay=2`` seconds before answering normally
``"reset"``        TCP reset (RST) before any response byte
``"malformed"``    200 whose body is not JSON (stream requests: an SSE event that is not JSON)
``"reset_mid_stream"``  send ``after=2`` SSE events (or half a JSON body), then TCP reset
``"stall"``        send ``after=1`` SSE events (or half a JSON body), sleep ``delay=30``, reset
``"error_mid_stream"``  send ``after=2`` SSE events, then an in-stream error event of kind
                   ``error="500"`` (any error kind above) and end the stream; a request
                   that does not stream is answered normally
=================  ===========================================================================

Error faults accept ``message=`` to override the error message, and ``retry_after=`` adds a
``retry-after`` header to any error. Every response carries ``x-request-id: fake-req-<n>``
(``n`` counts requests from 1; Anthropic routes also get ``request-id``).

A stream whose client leaves before its last frame is noted in ``streams_cut`` (path, frames
sent, frames in all): tests check there that the gateway closed the upstream connection.

``/v1/messages`` wants a key (``x-api-key``, or ``Authorization: Bearer`` as anthropic SDK 2.x
sends it), ``anthropic-version`` and ``max_tokens``, like the real API. With
``FakeUpstream(api_key=...)`` every route also refuses any other key with a 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Self

from aiohttp import web

from tests.fakes import anthropic_protocol, openai_protocol

ERROR_FAULTS = frozenset(openai_protocol.ERRORS)
DELIVERY_FAULTS = frozenset({"reset_mid_stream", "stall", "error_mid_stream"})
FAULT_KINDS = ERROR_FAULTS | DELIVERY_FAULTS | {"slow", "reset", "malformed"}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any  # the parsed body, or None when there was none (or it was not JSON)
    raw: bytes = b""
    fault: str | None = None  # the fault this request was served, if any
    query: dict[str, str] = field(default_factory=dict)  # the query string, parsed


@dataclass(frozen=True, slots=True)
class StreamCut:
    """A stream the client closed before its end (the fake saw the connection go)."""

    path: str
    frames_sent: int
    frames_total: int


@dataclass(slots=True)
class _Fault:
    kind: str
    remaining: int
    path: str | None
    options: dict[str, Any] = field(default_factory=dict)


class FakeUpstream:
    def __init__(
        self, *, chunk_delay: float = 0.0, api_key: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        """``api_key``: when set, requests must carry exactly this key (else 401)."""
        self.chunk_delay = chunk_delay
        self.api_key = api_key
        # Entra ID (Azure AD) token endpoint: the client secret it accepts, how long its
        # tokens live, and what it issued (tokens are then accepted as Bearer by Azure paths).
        self.entra_client_secret = "entra-client-secret"
        self.entra_token_lifetime = 3600
        self.issued_tokens: list[str] = []
        # More keys accepted on the OpenAI-family paths (credential rotation tests).
        self.extra_keys: set[str] = set()
        self.token_requests: list[dict[str, str]] = []
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._cuts: list[StreamCut] = []
        self._faults: deque[_Fault] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("FakeUpstream is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        loop = self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(sock))
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            try:
                if self._runner is not None:
                    loop.run_until_complete(self._runner.cleanup())
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-upstream-{self.port}", daemon=True)
        self._thread.start()
        if not started.wait(timeout=10) or failure:
            self._thread = None
            cause = failure[0] if failure else None
            raise RuntimeError("the fake upstream did not start") from cause
        return self

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # Cancel a handler when its client goes away (a stalled stream must not linger), and do
        # not wait long for handlers on shutdown.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.2, access_log=None
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test controls -----------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def streams_cut(self) -> list[StreamCut]:
        """Streams whose client went away before the last frame, oldest first."""
        with self._lock:
            return list(self._cuts)

    def _note_cut(self, request: web.Request, sent: int, total: int) -> None:
        with self._lock:
            self._cuts.append(StreamCut(request.path, sent, total))

    def push_fault(
        self, kind: str, count: int = 1, *, path: str | None = None, **options: Any
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        if "error" in options and options["error"] not in ERROR_FAULTS:
            raise ValueError(f"unknown error kind {options['error']!r}")
        with self._lock:
            self._faults.append(_Fault(kind, count, path, options))

    def reset(self) -> None:
        """Forget recorded requests and pending faults (request ids restart at 1)."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._cuts.clear()

    def _admit(self, request: web.Request, body: Any, raw: bytes) -> tuple[int, _Fault | None]:
        """Record the request and take the first pending fault that matches it."""
        with self._lock:
            fault = next(
                (f for f in self._faults if f.path is None or f.path == request.path), None
            )
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            headers = {k.lower(): v for k, v in request.headers.items()}
            kind = fault.kind if fault else None
            self._requests.append(
                RecordedRequest(
                    request.method, request.path, headers, body, raw, kind, dict(request.query)
                )
            )
            return len(self._requests), fault

    # -- serving -----------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        number, fault = self._admit(request, body, raw)
        anthropic = request.path.startswith("/v1/messages")
        proto: ModuleType = anthropic_protocol if anthropic else openai_protocol
        headers = {"x-request-id": f"fake-req-{number}"}
        if anthropic:
            headers["request-id"] = headers["x-request-id"]
        stream = isinstance(body, dict) and body.get("stream") is True
        options = fault.options if fault else {}
        if "retry_after" in options or (fault and fault.kind == "429"):
            headers["retry-after"] = str(options.get("retry_after", 1))

        if fault and fault.kind in ERROR_FAULTS:
            status, error = proto.error(fault.kind, options.get("message"))
            return web.json_response(error, status=status, headers=headers)
        if fault and fault.kind == "slow":
            await asyncio.sleep(float(options.get("delay", 2)))
        if fault and fault.kind == "reset":
            _abort(request)
            return web.Response()
        if fault and fault.kind == "malformed":
            return await self._malformed(request, headers, stream, anthropic)

        # The Entra ID token endpoint takes a form, not JSON.
        is_form = _azure_to_openai_path(request.path) == "/token"
        if raw and body is None and not is_form:
            return _error(proto, 400, "invalid_request_error", "Body is not valid JSON", headers)
        payload = self._answer(request, body or {}, headers, stream)
        if isinstance(payload, web.Response):
            return payload
        delivery = fault if fault and fault.kind in DELIVERY_FAULTS else None
        if isinstance(payload, list):
            return await self._send_events(request, payload, headers, proto, delivery)
        return await self._send_json(request, payload, headers, delivery)

    def _answer(
        self, request: web.Request, body: dict[str, Any], headers: dict[str, str], stream: bool
    ) -> dict[str, Any] | list[bytes] | web.Response:
        """The normal answer: a JSON body, a list of SSE frames, or an error response."""
        route = (request.method, _azure_to_openai_path(request.path))
        number = headers["x-request-id"].removeprefix("fake-req-")
        if route == ("POST", "/token"):
            return self._issue_entra_token(request, body)
        if route == ("POST", "/v1/messages"):
            invalid = anthropic_protocol.validate(
                {k.lower(): v for k, v in request.headers.items()}, body, self.api_key
            )
            if invalid is not None:
                return web.json_response(invalid[1], status=invalid[0], headers=headers)
            reply = anthropic_protocol.plan(body)
            message_id = f"msg_fake{number}"
            if stream:
                return anthropic_protocol.stream_frames(body, reply, message_id)
            return anthropic_protocol.message(body, reply, message_id)
        if self.api_key is not None and not self._openai_family_authorized(request):
            return _error(
                openai_protocol,
                401,
                "invalid_request_error",
                "Incorrect API key.",
                headers,
                code="invalid_api_key",
            )
        if route == ("POST", "/v1/chat/completions"):
            reply = openai_protocol.plan(body)
            response_id = f"chatcmpl-fake{number}"
            if stream:
                return openai_protocol.stream_frames(body, reply, response_id)
            return openai_protocol.completion(body, reply, response_id)
        if route == ("GET", "/v1/models"):
            return openai_protocol.models()
        if route == ("POST", "/v1/embeddings"):
            return openai_protocol.embeddings(body)
        message = f"Unknown request URL: {request.method} {request.path}"
        return _error(openai_protocol, 404, "invalid_request_error", message, headers)

    def _openai_family_authorized(self, request: web.Request) -> bool:
        """OpenAI: ``Authorization: Bearer <key>``; Azure: ``api-key: <key>`` or a Bearer
        token this fake issued through its Entra ID token endpoint."""
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        return (
            bearer == self.api_key
            or request.headers.get("api-key") == self.api_key
            or bearer in self.issued_tokens
            or bearer in self.extra_keys
        )

    def _issue_entra_token(self, request: web.Request, body: Any) -> web.Response:
        """OAuth 2.0 client-credentials at ``/<tenant>/oauth2/v2.0/token`` (form-encoded)."""
        form = dict(urllib.parse.parse_qsl(self._last_raw(request).decode()))
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_secret") != self.entra_client_secret
            or not form.get("client_id")
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "AADSTS7000215"}, status=401
            )
        with self._lock:
            token = f"fake-entra-token-{len(self.issued_tokens) + 1}"
            self.issued_tokens.append(token)
            self.token_requests.append(form)
        return web.json_response(
            {"token_type": "Bearer", "expires_in": self.entra_token_lifetime, "access_token": token}
        )

    def _last_raw(self, request: web.Request) -> bytes:
        with self._lock:
            return self._requests[-1].raw if self._requests else b""

    async def _send_json(
        self,
        request: web.Request,
        payload: dict[str, Any],
        headers: dict[str, str],
        fault: _Fault | None,
    ) -> web.StreamResponse:
        data = json.dumps(payload).encode()
        if fault is None or fault.kind == "error_mid_stream":
            return web.Response(body=data, content_type="application/json", headers=headers)
        # Promise the whole body, send half of it, then reset (or stall first).
        response = web.StreamResponse(headers={**headers, "content-type": "application/json"})
        response.content_length = len(data)
        with contextlib.suppress(ConnectionError):
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            if fault.kind == "stall":
                await asyncio.sleep(float(fault.options.get("delay", 30)))
        _abort(request)
        return response

    async def _send_events(
        self,
        request: web.Request,
        frames: list[bytes],
        headers: dict[str, str],
        proto: ModuleType,
        fault: _Fault | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={**headers, "content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        default_after = {"reset_mid_stream": 2, "stall": 1, "error_mid_stream": 2}
        after = int(fault.options.get("after", default_after[fault.kind])) if fault else -1
        sent = 0
        try:
            await response.prepare(request)
            for index, frame in enumerate(frames):
                if index == after and fault is not None:
                    if fault.kind == "error_mid_stream":
                        error = proto.stream_error_frame(fault.options.get("error", "500"))
                        await response.write(error)
                        break
                    if fault.kind == "stall":
                        await asyncio.sleep(float(fault.options.get("delay", 30)))
                    else:
                        # Let the client read what was sent: a reset discards data still
                        # unread in its socket buffer, which would make "after" a race.
                        await asyncio.sleep(0.1)
                    _abort(request)
                    return response
                if index and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                await response.write(frame)
                sent += 1
            await response.write_eof()
        except ConnectionError:
            self._note_cut(request, sent, len(frames))  # the client went away
        except asyncio.CancelledError:  # handler_cancellation: the client went away
            self._note_cut(request, sent, len(frames))
            raise
        return response

    async def _malformed(
        self, request: web.Request, headers: dict[str, str], stream: bool, anthropic: bool
    ) -> web.StreamResponse:
        if not stream:
            return web.Response(
                body=b'{"id": "broken", "choices": [{"index": 0, "message": ',
                content_type="application/json",
                headers=headers,
            )
        event = b"event: message_start\n" if anthropic else b""
        return web.Response(
            body=event + b'data: {"id": "broken", "choices": [\n\n',
            content_type="text/event-stream",
            headers=headers,
        )


def _error(
    proto: ModuleType,
    status: int,
    type_: str,
    message: str,
    headers: dict[str, str],
    code: str | None = None,
) -> web.Response:
    if proto is anthropic_protocol:
        body = anthropic_protocol.error_body(type_, message)
    else:
        body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _azure_to_openai_path(path: str) -> str:
    """Azure OpenAI's ``/openai/deployments/<name>/chat/completions`` → ``/v1/…``; the
    token endpoint ``/<tenant>/oauth2/v2.0/token`` → ``/token``."""
    match = re.fullmatch(r"/openai/deployments/[^/]+/(chat/completions|embeddings)", path)
    if match:
        return "/v1/" + match.group(1)
    if path == "/openai/models":
        return "/v1/models"
    if re.fullmatch(r"/[^/]+/oauth2/v2\.0/token", path):
        return "/token"
    return path


def _abort(request: web.Request) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), so the client sees a reset."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
