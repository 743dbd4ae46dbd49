"""One shared, auto-pipelined Redis connection per event loop, for the hot path's scripts.

Every API call runs the limiter's Lua script. Through redis-py's asyncio client that cost
~200 µs of the worker's CPU per call here (its command layers, a pooled connection per
concurrent caller, one ``send`` system call and one wake-up per command; measured in
docs/benchmarks.md). Here concurrent callers share one connection: a command is encoded into
an output buffer, and everything buffered during one event-loop iteration leaves in one
write; Redis answers in order, so replies are matched to callers first-in first-out, and
one read can answer many callers. ~45 µs per call at 50 concurrent callers.

Failures look like redis-py's (``redis.exceptions.ConnectionError``, ``TimeoutError``,
``ResponseError``), so callers keep their handling (the limiter fails open or closed). A
timed-out or broken connection fails every caller waiting on it and is dropped: the next
call connects again (its replies could no longer be matched to callers).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis import exceptions as rx

Reply = Any


def _encode(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, float):
            data = repr(arg).encode()  # as redis-py encodes floats: exact round trip
        else:
            data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: PipelinedRedis) -> None:
        self.owner = owner
        self.reader = hiredis.Reader(replyError=rx.ResponseError)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.owner._waiting
        while (reply := self.reader.gets()) is not False:
            if not waiting:
                self.owner._fail(rx.ConnectionError("Redis sent a reply nobody asked for"))
                return
            future = waiting.popleft()
            if future.done():  # its caller was cancelled: the reply is dropped, order kept
                continue
            if isinstance(reply, rx.ResponseError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner._protocol is self:  # not a connection already dropped and replaced
            self.owner._fail(rx.ConnectionError(f"Redis connection lost: {exc or 'closed'}"))


class PipelinedRedis:
    """Commands from any number of concurrent callers over one connection (per event loop)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password
        self.timeout = timeout
        self._transport: asyncio.BaseTransport | None = None
        self._protocol: _Protocol | None = None
        self._ready = False  # connected, authenticated, database selected
        self._waiting: deque[asyncio.Future[Reply]] = deque()
        self._out: list[bytes] = []
        self._write_scheduled = False
        self._connecting: asyncio.Lock | None = None

    async def execute(self, *args: Any) -> Reply:
        """Send one command and wait for its reply (an error reply is raised)."""
        if not self._ready:
            await self._connect()
        future = self._send(_encode(args))
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError as exc:  # the builtin, raised by asyncio.timeout
            error = rx.TimeoutError(f"Redis did not answer within {self.timeout} s")
            self._fail(error)
            raise error from exc

    def script(self, text: str) -> PipelinedScript:
        return PipelinedScript(self, text)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _send(self, command: bytes) -> asyncio.Future[Reply]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        self._waiting.append(future)
        self._out.append(command)
        if not self._write_scheduled:
            self._write_scheduled = True
            loop.call_soon(self._write)
        return future

    def _write(self) -> None:
        self._write_scheduled = False
        out, self._out = self._out, []
        if out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(out))  # type: ignore[attr-defined]

    def _fail(self, error: Exception) -> None:
        """Drop the connection; every caller still waiting gets ``error``."""
        transport, self._transport, self._protocol = self._transport, None, None
        self._ready = False
        waiting, self._waiting = self._waiting, deque()
        self._out = []
        for future in waiting:
            if not future.done():
                future.set_exception(error)
        if transport is not None:
            transport.abort()  # type: ignore[attr-defined]

    async def _connect(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._ready:
                return  # another caller connected while this one waited
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self.timeout):
                    transport, protocol = await loop.create_connection(
                        lambda: _Protocol(self), self.host, self.port
                    )
            except (OSError, TimeoutError) as exc:
                raise rx.ConnectionError(
                    f"cannot connect to Redis at {self.host}:{self.port}"
                ) from exc
            self._transport, self._protocol = transport, protocol
            setup = []
            if self.password:
                auth = ("AUTH", self.username, self.password) if self.username else (
                    "AUTH", self.password)  # fmt: skip
                setup.append(self._send(_encode(auth)))
            if self.db:
                setup.append(self._send(_encode(("SELECT", self.db))))
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.gather(*setup)
            except BaseException:
                self._fail(rx.ConnectionError("Redis refused AUTH or SELECT"))
                raise
            self._ready = True


class PipelinedScript:
    """A Lua script run by its SHA-1 (EVALSHA), loaded again (EVAL) after a SCRIPT FLUSH or
    a Redis restart; called like redis-py's registered scripts."""

    def __init__(self, redis: PipelinedRedis, text: str) -> None:
        self.redis = redis
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Reply:
        try:
            return await self.redis.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except rx.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self.redis.execute("EVAL", self.text, len(keys), *keys, *args)


_pipelined: weakref.WeakKeyDictionary[aioredis.Redis, PipelinedRedis | None] = (
    weakref.WeakKeyDictionary()
)


def pipelined_for(client: aioredis.Redis) -> PipelinedRedis | None:
    """The pipelined connection to the server ``client`` talks to (one per client, so one
    per event loop: the limiter, breakers and latency scores share it), or None when
    ``client`` connects in a way this module does not (TLS, a unix socket): redis-py then."""
    if client in _pipelined:
        return _pipelined[client]
    pool = client.connection_pool
    made = None
    if pool.connection_class is aioredis.Connection:
        kwargs = pool.connection_kwargs
        made = PipelinedRedis(
            kwargs.get("host", "localhost"),
            int(kwargs.get("port", 6379)),
            db=int(kwargs.get("db", 0) or 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            timeout=float(kwargs.get("socket_timeout") or 2.0),
        )
    _pipelined[client] = made
    return made


def register_script(client: aioredis.Redis, text: str) -> Any:
    """``client.register_script(text)``, run over the pipelined connection when there is one
    (called the same way: ``await script(keys=[...], args=[...])``)."""
    pipelined = pipelined_for(client)
    return pipelined.script(text) if pipelined is not None else client.register_script(text)
