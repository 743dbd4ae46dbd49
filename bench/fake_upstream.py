"""A cheap fake OpenAI upstream for benchmarks: raw asyncio (uvloop) HTTP/1.1 with keep-alive.

    python -m bench.fake_upstream --port 18000 --latency-ms 0 --chunks 50 --chunk-delay-ms 10

POST /v1/chat/completions answers like OpenAI (with ``usage``); with ``stream: true`` it sends
SSE: ``--chunks`` content chunks, each ``--chunk-delay-ms`` after the previous one, a final
chunk with ``finish_reason``, a usage chunk when ``stream_options.include_usage`` is set, and
``data: [DONE]``. GET /v1/models lists models; GET /stats counts the chat completions served.

One process serves every scenario; the behaviour of a request is chosen by
- the model name: ``...-latency-300ms`` waits 300 ms before answering (or before the first
  chunk), so a gateway route only has to name that upstream model (bench/gateway.yaml);
- headers, for direct use: ``x-fake-latency-ms``, ``x-fake-chunks``, ``x-fake-chunk-delay-ms``;
- otherwise the command-line defaults.

It must stay cheap (it shares 2 cores with the gateway and the load generator): no framework,
no task per request; responses are written from ``data_received`` or ``call_at`` callbacks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

LATENCY_IN_MODEL = re.compile(r"latency-(\d+)ms")
ANSWER = "This is the fake upstream's answer."
_ids = itertools.count(1)
# GET /stats: lets a harness see whether a call reached the upstream (a cache hit does not).
served: dict[str, Any] = {"chat_completions": 0}
MODEL_LIST = {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"}
              for m in ("gpt-4o-mini", "gpt-4o-mini-latency-300ms")]}  # fmt: skip
GETS: dict[str, dict[str, Any]] = {"/v1/models": MODEL_LIST, "/models": MODEL_LIST,
                                   "/stats": served, "/healthz": {"status": "ok"}}  # fmt: skip


@dataclass(frozen=True)
class Behaviour:
    latency_ms: float = 0.0
    chunks: int = 50
    chunk_delay_ms: float = 10.0


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def parse_request(buf: bytearray) -> tuple[Request, int] | None:
    """One complete request from the start of ``buf`` and its length, or None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise ValueError("headers too large")
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)  # ValueError: a bad request line
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    start = end + 4
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, pos = bytearray(), start
        while True:  # chunked request body (some clients send one)
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2 + size + 2  # after this chunk's data and its CRLF
            if len(buf) < pos:
                return None
            body += buf[line_end + 2 : pos - 2]
            if size == 0:
                return Request(method, path, headers, bytes(body)), pos
    length = int(headers.get("content-length", "0"))
    if len(buf) < start + length:
        return None
    return Request(method, path, headers, bytes(buf[start : start + length])), start + length


def head(status: str, content_type: str, length: int | None) -> bytes:
    size = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
    return f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{size}\r\n\r\n".encode()


def json_response(status: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return head(status, "application/json", len(body)) + body


def error_response(status: str, message: str) -> bytes:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return json_response(status, {"error": error})


def sse_chunk(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    data = f"data: {text}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def prompt_tokens(body: dict[str, Any]) -> int:
    """Words of the text messages (a part list or anything else counts one)."""
    texts = [m.get("content") if isinstance(m, dict) else None for m in body.get("messages") or []]
    return max(1, sum(len(t.split()) if isinstance(t, str) else 1 for t in texts))


def behaviour_of(request: Request, model: str, default: Behaviour) -> Behaviour:
    headers = request.headers
    match = LATENCY_IN_MODEL.search(model)
    latency = float(match.group(1)) if match else default.latency_ms
    return Behaviour(
        latency_ms=float(headers.get("x-fake-latency-ms", latency)),
        chunks=int(headers.get("x-fake-chunks", default.chunks)),
        chunk_delay_ms=float(headers.get("x-fake-chunk-delay-ms", default.chunk_delay_ms)),
    )


class Connection(asyncio.Protocol):
    """One client connection; requests on it are answered in order (HTTP/1.1 pipelining)."""

    def __init__(self, default: Behaviour) -> None:
        self.default = default
        self.buf = bytearray()
        self.busy = False
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.next_request()

    def next_request(self) -> None:
        while not self.busy and self.transport is not None:
            try:
                parsed = parse_request(self.buf)
            except ValueError:
                self.transport.write(error_response("400 Bad Request", "malformed request"))
                self.transport.close()
                return
            if parsed is None:
                return
            request, used = parsed
            del self.buf[:used]
            self.busy = True
            self.close_after = request.headers.get("connection", "").lower() == "close"
            self.dispatch(request)

    def finish(self, data: bytes) -> None:
        """The current response is complete: write its tail, then serve the next request."""
        self.timer = None
        if self.transport is None:
            return
        self.transport.write(data)
        self.busy = False
        if self.close_after:
            self.transport.close()
            return
        self.next_request()

    def dispatch(self, request: Request) -> None:
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method == "GET" and path in GETS:
            self.finish(json_response("200 OK", GETS[path]))
            return
        if request.method != "POST" or path not in {"/v1/chat/completions", "/chat/completions"}:
            self.finish(error_response("404 Not Found", f"no route {request.method} {path}"))
            return
        try:
            body = json.loads(request.body)
            model = str(body.get("model", ""))
        except (ValueError, AttributeError):
            self.finish(error_response("400 Bad Request", "the body is not a JSON object"))
            return
        served["chat_completions"] += 1
        behaviour = behaviour_of(request, model, self.default)
        if body.get("stream"):
            self.start_stream(body, model, behaviour)
            return
        response = json_response("200 OK", completion(body, model))
        if behaviour.latency_ms <= 0:
            self.finish(response)  # at once, from data_received: no timer, no task
        else:
            delay = behaviour.latency_ms / 1000
            self.timer = asyncio.get_running_loop().call_later(delay, self.finish, response)

    def start_stream(self, body: dict[str, Any], model: str, behaviour: Behaviour) -> None:
        assert self.transport is not None
        self.transport.write(head("200 OK", "text/event-stream", None))
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        stream = Stream(self, model, behaviour, prompt_tokens(body), include_usage)
        stream.schedule(0)


class Stream:
    """Chunks of one streamed answer, each written by a ``call_at`` on a fixed schedule
    (first chunk at latency + delay, then every delay), so timer drift does not accumulate."""

    def __init__(
        self, conn: Connection, model: str, b: Behaviour, prompt: int, include_usage: bool
    ) -> None:
        self.conn, self.behaviour, self.include_usage = conn, b, include_usage
        self.base = {"id": f"chatcmpl-fake{next(_ids)}", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": model}  # fmt: skip
        self.prompt = prompt
        self.start = asyncio.get_running_loop().time() + b.latency_ms / 1000

    def schedule(self, index: int) -> None:
        when = self.start + (index + 1) * self.behaviour.chunk_delay_ms / 1000
        self.conn.timer = asyncio.get_running_loop().call_at(when, self.send, index)

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse_chunk({**self.base, "choices": [choice]})

    def send(self, index: int) -> None:
        transport = self.conn.transport
        if transport is None:
            return
        n = self.behaviour.chunks
        if index < n:
            delta = {"content": f"tok{index} "}
            if index == 0:
                delta = {"role": "assistant", **delta}
            transport.write(self.chunk(delta))
            self.schedule(index + 1)
            return
        tail = self.chunk({}, "stop")
        if self.include_usage:
            tail += sse_chunk({**self.base, "choices": [], "usage": usage(self.prompt, n)})
        self.conn.finish(tail + sse_chunk("[DONE]") + b"0\r\n\r\n")


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


def completion(body: dict[str, Any], model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": ANSWER, "refusal": None}
    return {
        "id": f"chatcmpl-fake{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage(prompt_tokens(body), len(ANSWER.split())),
        "system_fingerprint": "fp_fake",
    }


async def serve(host: str, port: int, default: Behaviour) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(default), host, port, backlog=1024)
    print(f"fake upstream on http://{host}:{port}/v1 ({default})", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--chunk-delay-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    default = Behaviour(args.latency_ms, args.chunks, args.chunk_delay_ms)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # plain asyncio works too, at a higher CPU cost
        runner = asyncio.run  # type: ignore[assignment]
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port, default))


if __name__ == "__main__":
    main()
