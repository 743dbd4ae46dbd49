"""uvicorn's httptools protocol, sending a response's head and body in one write.

uvicorn writes the status line and headers as soon as the app sends
``http.response.start``, then the body as a second write: two ``send`` system calls per
response, and on loopback each one also runs the receiver's TCP processing (the head's
write alone was ~5 % of an API worker's event loop under load). The app sends the body in
the same event-loop iteration, so the head is held until then and leaves with the body's
first bytes. Anything held is written at the latest on the next loop iteration (a HEAD
response, a stream whose first chunk comes later, ``100 Continue``), or before the
connection closes: nothing waits on it and the byte order never changes.

``python -m aigateway.serve`` uses it unless ``--http`` says otherwise.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadWithBody:
    """The connection's transport, holding a response head until the next write."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held + bytes(data))
        elif data[:5] == b"HTTP/":  # a status line: the body follows in this iteration
            self._held = bytes(data)
            self._loop.call_soon(self.release)
        else:
            self._transport.write(data)

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.release()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatewayHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeadWithBody(transport, self.loop))  # type: ignore[arg-type]
