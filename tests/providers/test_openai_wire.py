"""The lean OpenAI chat client (providers/openai_wire.py) beyond what the adapter suites cover:
SSE parsing at every split point and line ending, the connection pool (not capped at aiohttp's
100, reused after a finished stream, dropped when a caller leaves mid-stream), the URL and
headers it sends, and that the key never shows in an error.

The wire tests run against a real aiohttp server in the test's event loop that sends a scripted
body in pieces, each in its own read, and records what it saw; the rest against the fake
upstream (tests/fakes/upstream.py)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from providers import errors
from providers.azure_adapter import AzureOpenAIAdapter
from providers.base import DeploymentTarget, upstream_request_id
from providers.http1 import Http1Pool
from providers.openai_adapter import OpenAIAdapter
from providers.openai_wire import OpenAIWire, SSEParser, _authority
from tests.fakes.openai_protocol import sse
from tests.providers.support import (
    OPENAI_KEY,
    OPENAI_MODEL,
    ask,
    assert_secret_absent,
    build_target,
    collect_stream,
    fresh_name,
    joined,
)


@pytest.fixture
def kind() -> str:
    return "openai"


def chunk_event(content: str | None = None, *, role: str | None = None, finish: str | None = None):
    delta = {k: v for k, v in {"role": role, "content": content}.items() if v is not None}
    return {
        "id": "chatcmpl-wire",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


USAGE_EVENT = {
    "id": "chatcmpl-wire",
    "choices": [],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
}
COMPLETION = {
    "id": "chatcmpl-wire",
    "created": 1,
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
}


# -- SSE parsing -------------------------------------------------------------------------------
def events_of(data: bytes, splits: tuple[int, ...] = ()) -> list[tuple[str, bytes]]:
    parser, events, start = SSEParser(), [], 0
    for end in (*splits, len(data)):
        events += parser.feed(data[start:end])
        start = end
    return events


STREAM = (
    b": keep-alive comment\n"
    b'data: {"a": 1}\n\n'
    b"event: delta\n"
    b"id: 7\n"
    b"retry: 1000\n"
    b'data: {"b":\n'
    b"data: 2}\n\n"
    b":ping\n\n"
    b"data:[DONE]\n\n"
)
EXPECTED = [("", b'{"a": 1}'), ("delta", b'{"b":\n2}'), ("", b"[DONE]")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_sse_events_are_the_same_at_every_split(newline):
    data = STREAM.replace(b"\n", newline)
    assert events_of(data) == EXPECTED
    for cut in range(1, len(data)):  # one split anywhere: inside a line, a CRLF, a JSON value
        assert events_of(data, (cut,)) == EXPECTED, cut
    for cuts in itertools.combinations(range(1, len(data), 5), 2):
        assert events_of(data, cuts) == EXPECTED, cuts
    assert events_of(data, tuple(range(1, len(data)))) == EXPECTED  # a byte at a time


def test_multi_line_data_is_joined_with_newlines_and_json_reads_it():
    (event,) = events_of(b'data: {"text":\r\ndata:  "two spaces"}\r\n\r\n')
    assert event == ("", b'{"text":\n "two spaces"}')  # one leading space is the separator
    assert json.loads(event[1]) == {"text": "two spaces"}


def test_events_without_data_and_an_unterminated_last_event_are_dropped():
    assert events_of(b"event: ping\n\nid: 3\n\n: comment\n\n") == []
    assert events_of(b'data: {"a": 1}\n\ndata: {"cut') == [("", b'{"a": 1}')]
    assert events_of(b"data\n\n") == [("", b"")]  # a field with no colon has an empty value


# -- a real server that sends a scripted body in pieces --------------------------------------
class Scripted:
    """Answers every POST with ``pieces`` (each written, then ``gap`` s of silence so each
    arrives in its own read), after ``delay`` s; records peers, concurrency, departures."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.content_type = "text/event-stream"
        self.status = 200
        self.gap = 0.01
        self.delay = 0.0
        self.peers: list[tuple[str, int]] = []  # the client's address per request
        self.bodies: list[Any] = []
        self.inflight = self.max_inflight = 0
        self.sent = 0  # pieces written, over all requests
        self.left = asyncio.Event()  # a client went away before the answer was complete
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(json.loads(await request.read()))
        self.peers.append(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await asyncio.sleep(self.delay)
            response = web.StreamResponse(
                status=self.status, headers={"content-type": self.content_type}
            )
            await response.prepare(request)
            for piece in self.pieces:
                await response.write(piece)
                self.sent += 1
                await asyncio.sleep(self.gap)
            await response.write_eof()
            return response
        except (ConnectionError, asyncio.CancelledError):
            self.left.set()
            raise
        finally:
            self.inflight -= 1


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    server = Scripted()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}/v1"
    yield server
    await runner.cleanup()


@pytest.fixture
def wire_target(scripted: Scripted) -> DeploymentTarget:
    return DeploymentTarget(
        deployment_id=7,
        provider_name=fresh_name("wire"),
        provider_kind="openai",
        upstream_model=OPENAI_MODEL,
        base_url=scripted.url,
        api_key=OPENAI_KEY,
        credential_fingerprint="fp-wire",
    )


async def test_a_stream_split_across_reads_with_crlf_and_comments(connect, scripted, wire_target):
    frames = b"".join(
        [
            b": OPENROUTER PROCESSING\r\n\r\n",
            sse(chunk_event("", role="assistant")),
            sse(chunk_event("Hel")),
            sse(chunk_event("lo")),
            sse(chunk_event(finish="stop")),
            sse(USAGE_EVENT),
            sse("[DONE]"),
        ]
    ).replace(b"\n", b"\r\n")
    # Cut every 37 bytes (inside JSON values, inside "data:") and between every CR and its LF;
    # each piece arrives in its own read.
    between_cr_lf = {i + 1 for i, byte in enumerate(frames) if byte == ord("\r")}
    cuts = sorted({*range(0, len(frames), 37), *between_cr_lf, len(frames)})
    scripted.pieces = [frames[a:b] for a, b in itertools.pairwise(cuts)]
    chunks = await collect_stream(connect(wire_target), ask("hi"), wire_target)
    assert joined(chunks) == "Hello"
    assert chunks[0].role == "assistant"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 2
    assert scripted.bodies[0]["stream_options"] == {"include_usage": True}


async def test_a_finished_stream_gives_its_connection_back(connect, scripted, wire_target):
    scripted.pieces = [sse(chunk_event("a", role="assistant")), sse("[DONE]")]
    adapter = connect(wire_target)
    for _ in range(3):
        assert joined(await collect_stream(adapter, ask("hi"), wire_target)) == "a"
    assert len(set(scripted.peers)) == 1  # one keep-alive connection served all three


async def test_a_caller_leaving_mid_stream_closes_the_upstream_connection(
    connect, scripted, wire_target
):
    scripted.pieces = [sse(chunk_event(str(n), role="assistant")) for n in range(500)]
    stream = connect(wire_target).chat_stream(ask("hi"), wire_target)
    assert [(await anext(stream)).content for _ in range(3)] == ["0", "1", "2"]
    await stream.aclose()  # what the gateway does when its client disconnects
    await asyncio.wait_for(scripted.left.wait(), 2)  # the upstream saw us go
    sent = scripted.sent
    await asyncio.sleep(0.1)
    assert scripted.sent == sent < 50  # and stopped producing
    scripted.pieces = [sse(chunk_event("x", role="assistant")), sse("[DONE]")]
    assert joined(await collect_stream(connect(wire_target), ask("hi"), wire_target)) == "x"
    assert len(set(scripted.peers)) == 2  # the dropped connection was not reused


async def test_the_pool_is_not_capped_at_aiohttps_default(connect, scripted, wire_target):
    scripted.content_type, scripted.pieces = "application/json", [json.dumps(COMPLETION).encode()]
    scripted.delay = 1.0
    adapter = connect(wire_target)
    started = time.monotonic()
    answers = await asyncio.gather(*(adapter.chat(ask("hi"), wire_target) for _ in range(150)))
    assert {a.content for a in answers} == {"hi"}
    assert scripted.max_inflight == 150  # a cap of 100 would have queued 50 of them
    assert time.monotonic() - started < 1.9  # about one latency, not two


async def test_the_connection_cap_is_a_setting(settings, connect, scripted, wire_target):
    settings.AIGATEWAY_UPSTREAM_MAX_CONNECTIONS = 4
    scripted.content_type, scripted.pieces = "application/json", [json.dumps(COMPLETION).encode()]
    scripted.delay = 0.1
    adapter = connect(wire_target)
    await asyncio.gather(*(adapter.chat(ask("hi"), wire_target) for _ in range(10)))
    assert scripted.max_inflight == 4


@pytest.mark.parametrize(
    "frame",
    [
        b'data: {"error": {"message": "key %s is bad", "type": "server_error"}}\n\n',
        b'event: error\ndata: {"message": "key %s is bad"}\n\n',
    ],
    ids=["error-object", "error-event"],
)
async def test_an_error_event_mid_stream_fails_without_the_key(
    connect, scripted, wire_target, frame
):
    scripted.pieces = [sse(chunk_event("a", role="assistant")), frame % OPENAI_KEY.encode()]
    received = []
    with pytest.raises(errors.ServerError) as info:
        async for chunk in connect(wire_target).chat_stream(ask("hi"), wire_target):
            received.append(chunk)
    assert [c.content for c in received] == ["a"]
    assert info.value.retryable is True
    assert_secret_absent(info.value, OPENAI_KEY, "SECRET")


async def test_a_stream_that_ends_without_done_just_ends(connect, scripted, wire_target):
    scripted.pieces = [sse(chunk_event("a", role="assistant")), sse(chunk_event(finish="stop"))]
    chunks = await collect_stream(connect(wire_target), ask("hi"), wire_target)
    assert joined(chunks) == "a"  # as through the SDK: no error, the stream is what came


@pytest.mark.parametrize("status", [400, 401, 429, 500])
@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_an_upstream_echoing_the_key_in_an_error_does_not_leak_it(
    connect, scripted, wire_target, status, stream
):
    scripted.status, scripted.content_type = status, "application/json"
    body = {"error": {"message": f"Incorrect API key provided: {OPENAI_KEY}", "code": None}}
    scripted.pieces = [json.dumps(body).encode()]
    adapter = connect(wire_target)
    with pytest.raises(errors.ProviderError) as info:
        if stream:
            await collect_stream(adapter, ask("hi"), wire_target)
        else:
            await adapter.chat(ask("hi"), wire_target)
    assert info.value.upstream_status == status
    assert_secret_absent(info.value, OPENAI_KEY, "SECRET")


# -- what is sent, and where -------------------------------------------------------------------
async def test_headers_and_body(connect, make_target, upstream):
    target = make_target(base_url=upstream.openai_base_url + "/")  # a trailing slash is fine
    token = upstream_request_id.set("req_wire_1")
    try:
        await connect(target).chat(ask("hello", temperature=0.5), target)
    finally:
        upstream_request_id.reset(token)
    await connect(target).chat(ask("hello"), target)
    first, second = upstream.requests
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["user-agent"] == "aigateway"
    assert first.headers["x-request-id"] == "req_wire_1"
    assert "x-request-id" not in second.headers
    assert first.headers["host"] == f"127.0.0.1:{URL(upstream.openai_base_url).port}"
    assert first.json == {
        "model": OPENAI_MODEL,
        "messages": [{"role": "user", "content": "hello"}],
        "temperature": 0.5,
    }
    assert b", " not in first.raw and b": " not in first.raw  # compact JSON


def test_the_url_from_the_base_url(monkeypatch):
    def url(base: str) -> URL:
        return OpenAIWire(base, "k", "p").url

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert url("") == URL("https://api.openai.com/v1/chat/completions")
    assert url("http://h:8/v1") == url("http://h:8/v1/") == URL("http://h:8/v1/chat/completions")
    assert url("http://h:8") == URL("http://h:8/chat/completions")
    assert url("https://h/v1?x=1") == URL("https://h/v1/chat/completions?x=1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:9/v1")
    assert url("") == URL("http://env:9/v1/chat/completions")  # as the SDK reads it


async def test_a_proxy_from_the_environment_is_used(monkeypatch, connect, scripted):
    """As through the SDK (httpx honours HTTP(S)_PROXY): the scripted server is the proxy for
    a host that does not exist."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", scripted.url.removesuffix("/v1"))
    target = DeploymentTarget(7, fresh_name("proxied"), "openai", OPENAI_MODEL,
                              "http://upstream.invalid/v1", OPENAI_KEY, "fp-proxied")  # fmt: skip
    scripted.content_type, scripted.pieces = "application/json", [json.dumps(COMPLETION).encode()]
    assert (await connect(target).chat(ask("hi"), target)).content == "hi"
    monkeypatch.setenv("NO_PROXY", "upstream.invalid")
    target = DeploymentTarget(7, fresh_name("direct"), "openai", OPENAI_MODEL,
                              "http://upstream.invalid/v1", OPENAI_KEY, "fp-direct")  # fmt: skip
    with pytest.raises(errors.ConnectionFailed):
        await connect(target).chat(ask("hi"), target)


def test_only_plain_openai_kinds_use_the_wire(upstream):
    openai_adapter = OpenAIAdapter(build_target("openai", upstream))
    azure = AzureOpenAIAdapter(build_target("azure_openai", upstream))
    assert openai_adapter.wire is not None
    assert azure.wire is None


def test_one_adapter_on_two_event_loops(upstream):
    """Sessions belong to a loop: the wire makes a new one when the running loop changes."""
    target = build_target("openai", upstream)
    adapter = OpenAIAdapter(target)
    assert adapter.wire is not None

    async def call() -> tuple[str | None, aiohttp.ClientSession, Http1Pool]:
        answer = await adapter.chat(ask("hello"), target)
        wire = adapter.wire
        assert wire is not None
        return answer.content, wire.session(), wire.pool()

    first_loop, second_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        first, first_session, first_pool = first_loop.run_until_complete(call())
        second, second_session, second_pool = second_loop.run_until_complete(call())
        assert first == second == f"Echo from {OPENAI_MODEL}: hello"
        assert second_session is not first_session
        assert second_pool is not first_pool  # connections belong to a loop too
        first_loop.run_until_complete(first_session.close())
        second_loop.run_until_complete(adapter.aclose())
    finally:
        first_loop.close()
        second_loop.close()


def test_the_host_header_names_the_port_only_when_it_is_not_the_default():
    assert _authority(URL("https://api.openai.com/v1")) == "api.openai.com"
    assert _authority(URL("http://127.0.0.1:18000/v1")) == "127.0.0.1:18000"
    assert _authority(URL("http://[::1]:8080/v1")) == "[::1]:8080"
    assert _authority(URL("https://h:443/v1")) == "h:443"  # as written


def test_a_key_that_cannot_be_a_header_stays_on_aiohttp_which_refuses_it():
    assert OpenAIWire("http://h/v1", "sk-fine", "p")._lean
    assert not OpenAIWire("http://h/v1", "sk-bad\r\nX-Injected: 1", "p")._lean
