"""The upstream HTTP/1.1 client (providers/http1.py) against a raw TCP server that writes
exactly the bytes each case needs: body framings, keep-alive reuse and its races, cut-off
responses, timeouts, the connection cap, compressed bodies and TLS."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from providers import http1
from providers.http1 import Http1Pool, UpstreamClosed

REQUEST = b"POST /v1/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class Server:
    """Runs ``handler(reader, writer, n)`` per request; ``n`` counts requests from 1."""

    handler: Handler | None = None
    requests: int = 0
    connections: int = 0
    inflight: int = 0
    max_inflight: int = 0
    port: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                self.requests += 1
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
                try:
                    assert self.handler is not None
                    await self.handler(reader, writer, self.requests)
                finally:
                    self.inflight -= 1
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listening = await asyncio.start_server(state.serve, "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    yield state
    for writer in state.writers:
        writer.close()
    listening.close()


def pool_for(server: Server, **options: object) -> Http1Pool:
    settings: dict[str, object] = {"connect_timeout": 2.0, "read_timeout": 2.0}
    settings.update(options)
    return Http1Pool(
        URL(f"http://127.0.0.1:{server.port}/v1"),
        ssl_context=None,
        **settings,  # type: ignore[arg-type]
    )


def answer(body: bytes, *headers: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        extra = b"".join(h + b"\r\n" for h in headers)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)
        )
        await writer.drain()

    return handle


async def call(pool: Http1Pool) -> tuple[int, bytes]:
    response = await pool.request(REQUEST)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def test_a_content_length_body_and_one_connection_for_consecutive_calls(server):
    server.handler = answer(b'{"ok": true}', b"X-Request-ID: up-1")
    pool = pool_for(server)
    for _ in range(3):
        assert await call(pool) == (200, b'{"ok": true}')
    assert (server.requests, server.connections) == (3, 1)
    response = await pool.request(REQUEST)
    assert response.headers["x-request-id"] == "up-1"  # case-insensitive, as aiohttp's
    response.close()
    pool.close()


async def test_a_chunked_body_cut_anywhere_arrives_whole(server):
    body = b"data: " + b"x" * 300 + b"\n\n"
    framed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)

    async def handle(reader, writer, n):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(framed), 7):
            writer.write(framed[start : start + 7])
            await writer.drain()
            await asyncio.sleep(0)

    server.handler = handle
    pool = pool_for(server)
    assert await call(pool) == (200, body)
    assert await call(pool) == (200, body)
    assert server.connections == 1  # the chunked end was seen: the connection was reused
    pool.close()


async def test_a_body_delimited_by_the_connection_s_end(server):
    async def handle(reader, writer, n):
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    server.handler = handle
    pool = pool_for(server)
    assert await call(pool) == (200, b"all of it")
    assert await call(pool) == (200, b"all of it")
    assert server.connections == 2  # not reused
    pool.close()


async def test_a_reused_connection_closed_without_an_answer_fails_the_call_once(server):
    """Not sent again here: the resilience layer decides (and counts) retries."""

    async def handle(reader, writer, n):
        if n == 2:  # the upstream closes instead of answering
            writer.close()
            return
        await answer(b"fine")(reader, writer, n)

    server.handler = handle
    pool = pool_for(server)
    assert await call(pool) == (200, b"fine")
    with pytest.raises(UpstreamClosed):
        await call(pool)
    assert await call(pool) == (200, b"fine")  # the next call takes a new connection
    assert (server.requests, server.connections) == (3, 2)
    pool.close()


async def test_an_idle_connection_past_the_keepalive_is_not_reused(server, monkeypatch):
    monkeypatch.setattr(http1, "KEEPALIVE_SECONDS", 0.1)
    server.handler = answer(b"fine")
    pool = pool_for(server)
    assert await call(pool) == (200, b"fine")
    await asyncio.sleep(0.2)
    assert await call(pool) == (200, b"fine")
    assert server.connections == 2
    # Idle ones past the keep-alive are also closed when another goes back to the pool.
    monkeypatch.setattr(http1, "KEEPALIVE_SECONDS", 0.3)
    pool.close()
    pool = pool_for(server)
    assert len(await asyncio.gather(*(call(pool) for _ in range(3)))) == 3  # three idle now
    await asyncio.sleep(0.2)
    assert await call(pool) == (200, b"fine")  # takes the newest, puts it back
    assert len(pool._idle) == 3
    await asyncio.sleep(0.15)  # the two older ones are past the keep-alive now
    assert await call(pool) == (200, b"fine")
    assert len(pool._idle) == 1  # closed as the newest went back
    pool.close()


async def test_a_fresh_connection_closed_without_an_answer_is_not_retried(server):
    async def handle(reader, writer, n):
        writer.close()

    server.handler = handle
    with pytest.raises(UpstreamClosed):
        await call(pool_for(server))
    assert server.requests == 1


async def test_a_response_cut_off_mid_body_fails_and_is_not_retried(server):
    async def handle(reader, writer, n):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    server.handler = handle
    pool = pool_for(server)
    response = await pool.request(REQUEST)
    assert await response.readany() == b"only part"
    with pytest.raises(UpstreamClosed):
        await response.readany()
    response.release()
    assert server.requests == 1
    pool.close()


async def test_a_reused_connection_that_answered_part_is_not_retried(server):
    async def handle(reader, writer, n):
        if n == 2:
            writer.write(b"HTTP/1.1 200 OK\r\n")  # a status line, then nothing
            await writer.drain()
            writer.close()
            return
        await answer(b"fine")(reader, writer, n)

    server.handler = handle
    pool = pool_for(server)
    assert await call(pool) == (200, b"fine")
    with pytest.raises(UpstreamClosed):
        await call(pool)
    assert server.requests == 2
    pool.close()


async def test_the_read_timeout_bounds_each_wait_for_bytes(server):
    async def handle(reader, writer, n):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    server.handler = handle
    pool = pool_for(server, read_timeout=0.3)
    response = await pool.request(REQUEST)
    assert await response.readany() == b"first"
    with pytest.raises(TimeoutError):
        await response.readany()
    response.close()


async def test_no_answer_at_all_times_out_waiting_for_the_head(server):
    async def handle(reader, writer, n):
        await asyncio.sleep(5)

    server.handler = handle
    with pytest.raises(TimeoutError):
        await pool_for(server, read_timeout=0.3).request(REQUEST)


async def test_nothing_listening_is_a_connection_error():
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    pool = Http1Pool(URL(f"http://127.0.0.1:{port}/"), ssl_context=None, connect_timeout=1,
                     read_timeout=1)  # fmt: skip
    with pytest.raises(ConnectionRefusedError):
        await pool.request(REQUEST)


async def test_garbage_instead_of_http_is_a_connection_error(server):
    async def handle(reader, writer, n):
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()

    server.handler = handle
    with pytest.raises(UpstreamClosed, match=r"not HTTP/1\.1"):
        await call(pool_for(server))


async def test_an_interim_1xx_response_is_skipped(server):
    async def handle(reader, writer, n):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
        await answer(b"the answer", b"X-Final: yes")(reader, writer, n)

    server.handler = handle
    pool = pool_for(server)
    response = await pool.request(REQUEST)
    assert (response.status, await response.read()) == (200, b"the answer")
    assert "link" not in response.headers and response.headers["x-final"] == "yes"
    response.release()
    assert await call(pool) == (200, b"the answer")
    assert server.connections == 1
    pool.close()


async def test_a_body_that_does_not_decode_is_an_error_not_an_empty_answer(server):
    server.handler = answer(b"\x1f\x8b this is not gzip", b"Content-Encoding: gzip")
    with pytest.raises(UpstreamClosed, match="does not decode"):
        await call(pool_for(server))


async def test_a_reset_cuts_a_connection_delimited_body_with_an_error(server):
    async def handle(reader, writer, n):
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart of it")
        await writer.drain()
        await asyncio.sleep(0.05)
        linger = struct.pack("ii", 1, 0)  # close with RST, not FIN: the body was cut
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        writer.transport.abort()

    server.handler = handle
    response = await pool_for(server).request(REQUEST)
    with pytest.raises(UpstreamClosed):
        await response.read()
    response.close()


async def test_bytes_after_the_answer_in_the_same_read_are_not_taken_as_the_next(server):
    async def handle(reader, writer, n):
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            b"HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\nbad"
        )
        await writer.drain()

    server.handler = handle
    pool = pool_for(server)
    assert await call(pool) == (200, b"ok")
    assert await call(pool) == (200, b"ok")
    assert server.connections == 2  # the first connection was not trusted again
    pool.close()


async def test_a_sloppy_upstream_s_bare_line_feeds_are_read_as_aiohttp_read_them(server):
    async def handle(reader, writer, n):
        writer.write(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2 \r\nok\r\n0\r\n\r\n")
        await writer.drain()

    server.handler = handle
    assert await call(pool_for(server)) == (200, b"ok")


async def test_waiting_for_a_free_connection_is_bounded_by_the_connect_timeout(server):
    async def handle(reader, writer, n):
        await asyncio.sleep(1)
        await answer(b"late")(reader, writer, n)

    server.handler = handle
    pool = pool_for(server, max_connections=1, connect_timeout=0.2)
    first = asyncio.create_task(call(pool))
    await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):
        await call(pool)  # queued behind the first for longer than the connect timeout
    assert await first == (200, b"late")
    pool.close()


async def test_a_gzip_body_is_decoded(server):
    server.handler = answer(gzip.compress(b'{"a": 1}' * 50), b"Content-Encoding: gzip")
    assert await call(pool_for(server)) == (200, b'{"a": 1}' * 50)


async def test_a_body_left_unread_does_not_go_back_to_the_pool(server):
    async def handle(reader, writer, n):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(b"67890")
        await writer.drain()

    server.handler = handle
    pool = pool_for(server)
    response = await pool.request(REQUEST)
    response.release()  # before the body ended: the connection is dropped
    server.handler = answer(b"next")
    assert await call(pool) == (200, b"next")
    assert server.connections == 2


async def test_the_connection_cap_queues_calls_beyond_it(server):
    async def handle(reader, writer, n):
        await asyncio.sleep(0.05)
        await answer(b"ok")(reader, writer, n)

    server.handler = handle
    pool = pool_for(server, max_connections=2)
    results = await asyncio.gather(*(call(pool) for _ in range(7)))
    assert results == [(200, b"ok")] * 7
    assert server.max_inflight == 2
    assert server.connections == 2
    pool.close()


async def test_a_caller_cancelled_while_queued_gives_its_place_up(server):
    async def handle(reader, writer, n):
        await asyncio.sleep(0.2)
        await answer(b"ok")(reader, writer, n)

    server.handler = handle
    pool = pool_for(server, max_connections=1)
    first = asyncio.create_task(call(pool))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(call(pool))
    await asyncio.sleep(0.05)
    queued.cancel()
    assert await first == (200, b"ok")
    assert await call(pool) == (200, b"ok")  # the slot was not lost to the cancelled caller
    assert queued.cancelled()
    pool.close()


def _certificates(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate it signed for 127.0.0.1 (PEM files: CA, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aigateway test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_tls_to_a_trusted_certificate_and_refused_to_an_untrusted_one(server, tmp_path):
    ca, cert, key = _certificates(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    server.handler = answer(b"secret-free")
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=served)
    port = listening.sockets[0].getsockname()[1]
    url = URL(f"https://127.0.0.1:{port}/v1")
    try:
        trusting = ssl.create_default_context(cafile=str(ca))
        pool = Http1Pool(url, ssl_context=trusting, connect_timeout=2, read_timeout=2)
        assert await call(pool) == (200, b"secret-free")
        assert await call(pool) == (200, b"secret-free")
        pool.close()
        untrusting = ssl.create_default_context()  # the system's CAs only
        with pytest.raises(ssl.SSLCertVerificationError):
            await call(Http1Pool(url, ssl_context=untrusting, connect_timeout=2, read_timeout=2))
    finally:
        listening.close()
    assert server.requests == 2  # the untrusted connection never sent the request
