"""The soak's load generator, a process of its own: a fixed request rate (open loop), a mix.

    python -m bench.soak.load --url http://127.0.0.1:18101 --key K --limited-key L \\
        --rate 100 --seconds 600 --window 10 --ids ids.txt

Request ``i`` is sent at ``i / rate`` seconds whether earlier ones have answered or not (a
closed loop would slow down with the gateway and hide its latency). The mix, by ``i % 20``:
5 % streams (50 chunks x 10 ms), 5 % calls with the rate-limited key (mostly 429), 40 %
repeated prompts on the cached route (cache hits), 10 % unique prompts there (misses), 40 %
plain calls. Every ``--window`` seconds one JSON line goes to stdout (see ``Window``); the
last line has ``"final": true`` and the totals. ``--ids`` gets "request_id status" per
answered call, for the records check after the gateway stops (bench/soak/records.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import aiohttp

HIT_PROMPTS = 16  # the cached route's repeated prompts: hits once each has been answered
MAX_IN_FLIGHT = 2000  # beyond this the gateway is not keeping up: count, do not pile on


@dataclass
class Window:
    """What happened in one window: calls are counted when they end."""

    t: float = 0.0  # seconds since the load started, at the window's end
    sent: int = 0
    ok: int = 0
    rate_limited: int = 0  # 429 from the limited key: expected, not an error
    errors: Counter[str] = field(default_factory=Counter)  # kind -> count
    cache: Counter[str] = field(default_factory=Counter)  # x-aigateway-cache of cached calls
    streams_ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # non-streamed 200s
    ttft_ms: list[float] = field(default_factory=list)  # streams: first data event
    lag_ms: float = 0.0  # the worst delay between a call's slot and its send (loadgen health)

    def line(self) -> dict[str, Any]:
        out = asdict(self)
        del out["latencies_ms"], out["ttft_ms"]
        out["errors"], out["cache"] = dict(self.errors), dict(self.cache)
        out["p50_ms"] = percentile(self.latencies_ms, 50)
        out["p99_ms"] = percentile(self.latencies_ms, 99)
        out["ttft_p99_ms"] = percentile(self.ttft_ms, 99)
        return out


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))], 2)


@dataclass(frozen=True)
class Call:
    kind: str  # stream, limited, cache_hit, cache_miss, plain
    model: str
    prompt: str
    limited: bool = False
    stream: bool = False


def call_for(i: int, run: str) -> Call:
    slot = i % 20
    if slot == 0:
        return Call("stream", "gpt-4o-mini", f"soak stream {i}", stream=True)
    if slot == 1:
        return Call("limited", "gpt-4o-mini", f"soak limited {i}", limited=True)
    if slot < 10:
        return Call("cache_hit", "gpt-4o-mini-cached", f"soak repeated {run} {i % HIT_PROMPTS}")
    if slot < 12:
        return Call("cache_miss", "gpt-4o-mini-cached", f"soak unique {run} {i}")
    return Call("plain", "gpt-4o-mini", f"soak plain {i}")


class Load:
    def __init__(self, args: argparse.Namespace, ids: IO[str]) -> None:
        self.args = args
        self.ids = ids
        self.window = Window()
        self.total = Window()
        self.run = secrets.token_hex(4)  # a fresh set of prompts: the cache starts cold

    def _count(self, call: Call, status: int, error: str, request_id: str) -> None:
        for w in (self.window, self.total):
            if status == 200 and not error:
                w.ok += 1
            elif status == 429 and call.limited:
                w.rate_limited += 1
            else:
                w.errors[error or f"http_{status}"] += 1
        if request_id:
            self.ids.write(f"{request_id} {status}\n")

    async def one(self, session: aiohttp.ClientSession, call: Call) -> None:
        key = self.args.limited_key if call.limited else self.args.key
        body: dict[str, Any] = {"model": call.model, "max_tokens": 32,
                                "messages": [{"role": "user", "content": call.prompt}]}  # fmt: skip
        if call.stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        status, error, request_id = 0, "", ""
        try:
            async with session.post(
                f"{self.args.url}/v1/chat/completions", json=body,
                headers={"Authorization": f"Bearer {key}"},
            ) as response:  # fmt: skip
                status, request_id = response.status, response.headers.get("x-request-id", "")
                if call.stream and status == 200:
                    error = await self._read_stream(response, started)
                else:
                    await response.read()
                    if status == 200:
                        elapsed = (time.perf_counter() - started) * 1000
                        for w in (self.window, self.total):
                            w.latencies_ms.append(elapsed)
                if call.kind.startswith("cache") and status == 200:
                    for w in (self.window, self.total):
                        w.cache[response.headers.get("x-aigateway-cache", "?")] += 1
        except TimeoutError:
            error = "timeout"
        except aiohttp.ClientConnectorError:
            error = "connect"
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            error = "disconnected"
        except aiohttp.ClientError as exc:
            error = type(exc).__name__
        self._count(call, status, error, request_id)

    async def _read_stream(self, response: aiohttp.ClientResponse, started: float) -> str:
        first = done = False
        async for line in response.content:
            if not line.startswith(b"data:"):
                continue
            if not first:
                first = True
                for w in (self.window, self.total):
                    w.ttft_ms.append((time.perf_counter() - started) * 1000)
            done = line[5:].strip() == b"[DONE]"
        if not done:
            return "stream_incomplete"
        for w in (self.window, self.total):
            w.streams_ok += 1
        return ""

    async def report(self, started: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.args.window)
            except TimeoutError:
                pass
            self.window.t = round(time.monotonic() - started, 1)
            emit(self.window.line())
            self.window = Window()

    async def main(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.args.timeout)
        connector = aiohttp.TCPConnector(limit=0)
        in_flight: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            started = time.monotonic()
            stop = asyncio.Event()
            reporter = asyncio.create_task(self.report(started, stop))
            total_calls = int(self.args.rate * self.args.seconds)
            for i in range(total_calls):
                due = started + i / self.args.rate
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                lag = (time.monotonic() - due) * 1000
                self.window.lag_ms = max(self.window.lag_ms, round(lag, 1))
                self.window.sent += 1
                self.total.sent += 1
                if len(in_flight) >= MAX_IN_FLIGHT:
                    self._count(call_for(i, self.run), 0, "loadgen_overrun", "")
                    continue
                task = asyncio.create_task(self.one(session, call_for(i, self.run)))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.args.timeout + 5)
            stop.set()
            await reporter
        self.total.t = round(time.monotonic() - started, 1)
        emit(self.total.line() | {"final": True})


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the gateway, e.g. http://127.0.0.1:18101")
    parser.add_argument("--key", required=True)
    parser.add_argument("--limited-key", required=True)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="per call")
    parser.add_argument("--ids", required=True, help="file for 'request_id status' lines")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with open(args.ids, "w") as ids:
        asyncio.run(Load(args, ids).main())


if __name__ == "__main__":
    main()
