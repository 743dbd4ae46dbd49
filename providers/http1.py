"""A small HTTP/1.1 client for the upstream hot path: keep-alive connections per upstream,
httptools' C parser, the request written in one ``write``, the body handed on as bytes.

Why not aiohttp here: per call, aiohttp builds a ClientRequest (URL joins, header
multidicts merged from the session's and the call's, auth, proxy and cookie checks), runs
its tracing hooks and timer contexts, and a ClientResponse with its own stream reader. On
the bench's chat calls that was most of the upstream call's CPU (~18 % of a worker under
load) and ~0.5 ms of a stream's time to first token over a client talking to the upstream
directly. Chat requests are always the same shape (one POST, a JSON body, JSON or SSE
back), so the request head is mostly bytes prepared once (providers/openai_wire.py), and
this module only moves bytes.

What it does as aiohttp did for these calls: a connect timeout and a read timeout (the
longest wait for any bytes, as ``sock_read``), TLS with the given context, responses with a
Content-Length, chunked, or read to the connection's end, ``gzip``/``deflate`` bodies (never
asked for, decoded if sent), a cap on open connections (0 = none), idle connections kept
4 s (under the 5 s keep-alive of common servers, uvicorn's included, so an idle connection
is dropped here before the upstream closes it under a request). Nothing is ever sent twice
here: a connection that fails, however early, is the call's failure, which the resilience
layer retries, counts and feeds to the breaker (as with aiohttp before). Proxies stay on
aiohttp (providers/openai_wire.py chooses).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import zlib
from collections import deque

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

KEEPALIVE_SECONDS = 4.0
PAUSE_ABOVE_BYTES = 1 << 20  # stop reading the socket while this much body waits unread


class UpstreamClosed(ConnectionResetError):
    """The upstream closed the connection before the response was complete."""


class Http1Response:
    """A response whose head has arrived; its body is read with ``read`` or ``readany``.
    ``release()`` when done gives a fully read connection back to the pool; ``close()``
    drops it (the upstream sees the client leave)."""

    def __init__(self, connection: _Connection, read_timeout: float | None) -> None:
        self._connection = connection
        self._read_timeout = read_timeout
        self.status = 0
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: CIMultiDictProxy[str] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._head_done = False
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: zlib._Decompress | None = None
        self._finished = False
        self.delimited = False  # Content-Length or chunked: else the body ends with the connection

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        if self._headers is None:
            pairs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw_headers]
            self._headers = CIMultiDictProxy(CIMultiDict(pairs))
        return self._headers

    @property
    def content(self) -> Http1Response:
        """aiohttp's name for the body reader (``response.content.readany()``)."""
        return self

    # -- fed by the connection --------------------------------------------------------
    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_head(self, status: int) -> None:
        self.status = status
        self._head_done = True
        for name, value in self._raw_headers:
            name = name.lower()
            chunked = name == b"transfer-encoding" and b"chunked" in value.lower()
            if name == b"content-length" or chunked:
                self.delimited = True
            elif name == b"content-encoding":
                encoding = value.strip().lower()
                if encoding in (b"gzip", b"x-gzip"):
                    self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                elif encoding == b"deflate":
                    self._decoder = zlib.decompressobj()
        self._wake()

    def _on_body(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error:
                self._decoder = None
                self._on_error(UpstreamClosed("the upstream sent a body that does not decode"))
                self._connection.abort()
                return
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered > PAUSE_ABOVE_BYTES:
                self._connection.pause_reading()
        self._wake()

    def _on_complete(self) -> None:
        if self._error is not None:
            return  # a failed body never completes (a decode error, a cut connection)
        if self._decoder is not None and (rest := self._decoder.flush()):
            self._chunks.append(rest)
        self._complete = True
        self._wake()

    def _on_error(self, error: BaseException) -> None:
        if not self._complete and self._error is None:
            self._error = error
        self._wake()

    # -- read by the caller -------------------------------------------------------------
    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._read_timeout):
                await self._waiter
        finally:
            self._waiter = None

    async def _read_head(self) -> None:
        while not self._head_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def readany(self) -> bytes:
        """The body bytes that have arrived (waiting for some), or b"" at its end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._complete:
                return b""
            await self._wait()
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        if self._buffered > PAUSE_ABOVE_BYTES:
            self._connection.resume_reading()
        self._buffered = 0
        return data

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while data := await self.readany():
            parts.append(data)
        return b"".join(parts)

    def at_eof(self) -> bool:
        return self._complete and not self._chunks

    def release(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self.at_eof() and self._connection.reusable:
            self._connection.pool.put(self._connection)
        else:
            self._connection.abort()
        self._connection.pool.slot_free()

    def close(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._connection.abort()
        self._connection.pool.slot_free()


class _Connection(asyncio.Protocol):
    def __init__(self, pool: Http1Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.response: Http1Response | None = None
        self.closed = False
        self.keep_alive = True
        self.idle_since = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._informational = False  # parsing a 1xx interim response (skipped)

    @property
    def reusable(self) -> bool:
        return self.keep_alive and not self.closed

    def send(self, data: bytes, read_timeout: float | None) -> Http1Response:
        assert self.transport is not None
        self.response = Http1Response(self, read_timeout)
        self._parser = httptools.HttpResponseParser(self)
        # What aiohttp's parser let through from sloppy upstreams: LF without CR, spaces
        # after a chunk size.
        self._parser.set_dangerous_leniencies(
            lenient_optional_cr_before_lf=True, lenient_spaces_after_chunk_size=True
        )
        self.transport.write(data)
        return self.response

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None or response._complete:
            self.abort()  # bytes nobody asked for: this connection cannot be trusted again
            return
        try:
            self._parser.feed_data(data)  # type: ignore[union-attr]
        except httptools.HttpParserError as exc:
            response._on_error(UpstreamClosed(f"the upstream's response is not HTTP/1.1: {exc}"))
            self.abort()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is None or response._complete:
            return
        self.keep_alive = False
        if (
            exc is None
            and response._error is None
            and response._head_done
            and not response.delimited
        ):
            response._on_complete()  # a body delimited by the connection's end
            return
        response._on_error(UpstreamClosed("the upstream closed the connection"))

    # -- httptools callbacks --------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.response is not None and self.response._complete:
            # Bytes after the answer, in the same read: nobody asked for them.
            raise UpstreamClosed("the upstream sent more than one response")

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.response is not None
        assert self._parser is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue, 103 Early Hints: the answer follows
            self._informational = True
            self.response._raw_headers.clear()
            return
        self.keep_alive = self._parser.should_keep_alive()
        self.response._on_head(status)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._on_body(body)

    def on_message_complete(self) -> None:
        assert self.response is not None and self._parser is not None
        if self._informational:
            self._informational = False
            return
        self.keep_alive = self.keep_alive and self._parser.should_keep_alive()
        self.response._on_complete()


class Http1Pool:
    """Keep-alive connections to one upstream origin, on the event loop that created it."""

    def __init__(
        self,
        url: URL,
        *,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float | None,
        read_timeout: float | None,
        max_connections: int = 0,
    ) -> None:
        self.host = url.raw_host or ""
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl_context = ssl_context if url.scheme == "https" else None
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._idle: deque[_Connection] = deque()  # oldest first
        self._closed = False
        self._in_use = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()

    async def request(self, data: bytes) -> Http1Response:
        """Send one request (head and body, already encoded) and wait for its response head."""
        await self._slot_take()
        connection: _Connection | None = None
        try:
            connection = self._idle_connection() or await self._connect()
            response = connection.send(data, self.read_timeout)
            await response._read_head()
        except BaseException:
            if connection is not None:
                connection.abort()
            self.slot_free()
            raise
        return response

    def put(self, connection: _Connection) -> None:
        if self._closed:
            connection.abort()
            return
        connection.response = None
        connection.idle_since = now = time.monotonic()
        expired = now - KEEPALIVE_SECONDS
        while self._idle and self._idle[0].idle_since <= expired:
            self._idle.popleft().abort()  # idle too long: closed here, not left to the upstream
        self._idle.append(connection)

    def close(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.abort()
        self._idle.clear()

    def _idle_connection(self) -> _Connection | None:
        expired = time.monotonic() - KEEPALIVE_SECONDS
        while self._idle:
            connection = self._idle.pop()  # the most recently used: least likely to be closed
            if connection.reusable and connection.idle_since > expired:
                return connection
            connection.abort()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, connection = await loop.create_connection(
                lambda: _Connection(self),
                self.host,
                self.port,
                ssl=self.ssl_context,
                server_hostname=self.host if self.ssl_context is not None else None,
            )
        return connection

    # -- the connection cap ---------------------------------------------------------------
    async def _slot_take(self) -> None:
        if self.max_connections <= 0:
            return
        if self._in_use >= self.max_connections:
            waiter = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            try:
                # As aiohttp's connect timeout: it includes waiting for a free connection.
                async with asyncio.timeout(self.connect_timeout):
                    await waiter  # the slot is handed over by slot_free
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self.slot_free()  # handed over just as this caller was cancelled
                else:
                    with contextlib.suppress(ValueError):  # slot_free skipped it already
                        self._slot_waiters.remove(waiter)
                raise
            return
        self._in_use += 1

    def slot_free(self) -> None:
        if self.max_connections <= 0:
            return
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to this waiter; _in_use unchanged
                return
        self._in_use -= 1
