"""The drills' load: a second process that sends chat completions at a steady rate and writes
one JSON line per request (bench/reliability/harness.py: Outcome).

    python -m bench.reliability.load --base-url http://127.0.0.1:8000 --key-env KEY_VAR \
        --seconds 30 --rate 20 --model drill --stream-every 4 --out outcomes.jsonl

Open loop: a request starts every 1/rate seconds whether or not earlier ones have answered
(at most --max-in-flight at once), so a slow or hung gateway shows as latency, not as a
lower request count. Every 'stream-every'th request streams; a stream counts as succeeded only
when it ends with ``data: [DONE]`` and carried no error event. The key is read from the
environment variable named by --key-env (never from the command line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp


def _error_code(body: bytes) -> str:
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return "unparseable_body"
    return str(error.get("code") or error.get("type") or "unknown")


def _stream_error(body: bytes) -> str:
    """'' for a complete stream without error events; else what went wrong."""
    done = False
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            continue
        if b'"error"' in data:
            try:
                error = json.loads(data).get("error") or {}
                return "stream_error:" + str(error.get("code") or error.get("type") or "unknown")
            except (ValueError, AttributeError):
                return "stream_error:unparseable"
    return "" if done else "stream_incomplete"


async def one(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    model: str,
    stream: bool,
    number: int,
    timeout: float,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": f"load {number}"}],
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    started_wall, started = time.time(), time.monotonic()
    outcome: dict[str, Any] = {
        "started": started_wall,
        "model": model,
        "stream": stream,
        "status": 0,
        "error": "",
    }
    try:
        async with asyncio.timeout(timeout):
            async with session.post(url, json=body, headers=headers) as response:
                payload = await response.read()
                outcome["status"] = response.status
                outcome["request_id"] = response.headers.get("x-request-id", "")
                outcome["served_by"] = response.headers.get("x-aigateway-served-by", "")
                outcome["failovers"] = int(response.headers.get("x-aigateway-failovers", "0"))
                if response.status != 200:
                    outcome["error"] = f"http_{response.status}:{_error_code(payload)}"
                elif stream:
                    outcome["error"] = _stream_error(payload)
    except TimeoutError:
        outcome["error"] = "client_timeout"
    except (aiohttp.ClientError, OSError) as exc:
        outcome["error"] = "connection:" + type(exc).__name__
    outcome["latency"] = time.monotonic() - started
    return outcome


async def run(args: argparse.Namespace) -> None:
    key = os.environ[args.key_env]
    url = args.base_url.rstrip("/") + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {key}"}
    limit = asyncio.Semaphore(args.max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=0)
    with Path(args.out).open("w") as out:
        async with aiohttp.ClientSession(connector=connector) as session:

            async def send(number: int, stream: bool) -> None:
                try:
                    outcome = await one(
                        session, url, headers, args.model, stream, number, args.timeout
                    )
                    out.write(json.dumps(outcome) + "\n")
                finally:
                    limit.release()

            started = time.monotonic()
            number = 0
            while time.monotonic() - started < args.seconds:
                await limit.acquire()
                every = args.stream_every
                task = asyncio.create_task(send(number, every > 0 and number % every == every - 1))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                number += 1
                await asyncio.sleep(max(0.0, started + number / args.rate - time.monotonic()))
            if tasks:
                await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key-env", required=True, help="environment variable with the key")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20, help="requests per second")
    parser.add_argument("--model", default="drill")
    parser.add_argument("--stream-every", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=60, help="client timeout per request")
    parser.add_argument("--max-in-flight", type=int, default=500)
    parser.add_argument("--out", required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
