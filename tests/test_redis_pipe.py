"""The auto-pipelined Redis connection (aigateway/core/redis_pipe.py) against real Redis:
replies reach the right callers, failures reach every waiting caller and the next call
reconnects, a caller that gave up does not shift anyone else's reply."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from redis import exceptions as rx

from aigateway.core.redis_pipe import PipelinedRedis, pipelined_for


@pytest.fixture
def pipe(redis_url: str) -> PipelinedRedis:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=2)
    made = pipelined_for(client)
    assert made is not None
    return made


async def test_concurrent_callers_each_get_their_own_reply(pipe):
    replies = await asyncio.gather(*(pipe.execute("ECHO", f"value-{i}") for i in range(300)))
    assert replies == [f"value-{i}".encode() for i in range(300)]


async def test_commands_of_one_loop_iteration_leave_in_one_write(pipe, monkeypatch):
    await pipe.execute("PING")  # connected
    writes: list[bytes] = []
    transport = pipe._transport
    real_write = transport.write
    monkeypatch.setattr(transport, "write", lambda data: (writes.append(data), real_write(data)))
    await asyncio.gather(*(pipe.execute("INCR", "counted") for _ in range(50)))
    assert len(writes) == 1 and writes[0].count(b"INCR") == 50
    assert await pipe.execute("GET", "counted") == b"50"


async def test_an_error_reply_is_raised_to_its_caller_only(pipe):
    results = await asyncio.gather(
        pipe.execute("ECHO", "before"),
        pipe.execute("NOSUCHCOMMAND"),
        pipe.execute("ECHO", "after"),
        return_exceptions=True,
    )
    assert results[0] == b"before" and results[2] == b"after"
    assert isinstance(results[1], rx.ResponseError) and "unknown command" in str(results[1])


async def test_values_are_encoded_as_redis_py_encodes_them(pipe):
    await pipe.execute("SET", "f", 0.1 + 0.2)
    await pipe.execute("SET", "i", 42)
    await pipe.execute("SET", "s", "ünïcode")
    assert await pipe.execute("MGET", "f", "i", "s") == [
        b"0.30000000000000004",
        b"42",
        "ünïcode".encode(),
    ]


async def test_the_url_database_is_selected(redis_url, pipe):
    await pipe.execute("SET", "where", "here")
    assert redis.Redis.from_url(redis_url).get("where") == b"here"
    assert pipe.db == int(redis_url.rsplit("/", 1)[1]) and pipe.db != 0


async def test_a_script_is_loaded_again_after_a_script_flush(redis_url, pipe):
    script = pipe.script("return tonumber(ARGV[1]) + #KEYS")
    assert await script(keys=["a", "b"], args=[40]) == 42
    redis.Redis.from_url(redis_url).script_flush()
    assert await script(keys=["a"], args=[1]) == 2  # NOSCRIPT, then EVAL


async def test_a_killed_connection_fails_its_waiting_callers_and_the_next_call_reconnects(
    redis_url, pipe
):
    connection_id = await pipe.execute("CLIENT", "ID")
    blocked = asyncio.ensure_future(pipe.execute("BLPOP", "never-pushed", 1.5))
    await asyncio.sleep(0.1)
    redis.Redis.from_url(redis_url).client_kill_filter(_id=connection_id)
    with pytest.raises(rx.ConnectionError):
        await blocked
    assert await pipe.execute("ECHO", "again") == b"again"
    assert await pipe.execute("CLIENT", "ID") != connection_id


async def test_a_timeout_drops_the_connection_and_later_replies_stay_matched(redis_url):
    pipe = PipelinedRedis(*_host_port(redis_url), db=int(redis_url.rsplit("/", 1)[1]),
                          timeout=0.2)  # fmt: skip
    with pytest.raises(rx.TimeoutError):
        await pipe.execute("BLPOP", "never-pushed", 1)
    # The BLPOP's late nil must not become the answer of the next call.
    assert await pipe.execute("ECHO", "next") == b"next"
    await asyncio.sleep(1.0)
    assert await pipe.execute("ECHO", "later") == b"later"


async def test_a_cancelled_caller_does_not_shift_the_replies_of_others(pipe):
    slow = asyncio.ensure_future(pipe.execute("BLPOP", "never-pushed", 0.3))
    await asyncio.sleep(0.05)
    slow.cancel()
    after = await pipe.execute("ECHO", "mine")  # queued behind the BLPOP on the connection
    assert after == b"mine"
    assert slow.cancelled()


async def test_nothing_listening_is_a_connection_error():
    pipe = PipelinedRedis("127.0.0.1", 1, timeout=0.5)
    with pytest.raises(rx.ConnectionError):
        await pipe.execute("PING")


async def test_a_wrong_password_is_refused_and_no_command_runs_unauthenticated(redis_url):
    host, port = _host_port(redis_url)
    pipe = PipelinedRedis(host, port, password="not-the-password", timeout=1)
    with pytest.raises(rx.ResponseError):
        await pipe.execute("PING")
    assert pipe._ready is False


def test_clients_it_does_not_speak_keep_redis_py():
    assert pipelined_for(aioredis.Redis(unix_socket_path="/tmp/redis.sock")) is None
    assert pipelined_for(aioredis.Redis.from_url("rediss://127.0.0.1:6380/0")) is None
    made = pipelined_for(aioredis.Redis.from_url("redis://u:secret@127.0.0.1:6390/3"))
    assert made is not None
    assert (made.host, made.port, made.db, made.username, made.password) == (
        "127.0.0.1",
        6390,
        3,
        "u",
        "secret",
    )


def _host_port(url: str) -> tuple[str, int]:
    netloc = url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, port = netloc.rsplit(":", 1)
    return host, int(port)
