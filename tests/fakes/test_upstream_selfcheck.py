"""The fake upstream itself: both protocols through their real SDKs, and faults on the wire."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import anthropic
import openai
import pytest

from tests.fakes.echo import embedding_vector
from tests.fakes.upstream import FakeUpstream
from tests.providers import conftest as adapter_fixtures

# The fake upstream per module, reset around each test: the same fixtures as the adapter tests.
running_upstream = adapter_fixtures.running_upstream
upstream = adapter_fixtures.upstream

KEY = "sk-fake-key"


@pytest.fixture
async def oai(upstream: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=upstream.openai_base_url, api_key=KEY, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def claude(upstream: FakeUpstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=upstream.base_url, api_key=KEY, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


WEATHER = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}


# -- OpenAI protocol ---------------------------------------------------------------------------
async def test_models_and_embeddings(oai):
    models = await oai.models.list()
    assert [m.id for m in models.data] == ["fake-model"]

    # The SDK asks for base64 by default and decodes it; floats on request.
    encoded = await oai.embeddings.create(model="emb", input=["hello world", "bye"])
    plain = await oai.embeddings.create(model="emb", input="hello world", encoding_format="float")
    assert [len(d.embedding) for d in encoded.data] == [8, 8]
    assert plain.data[0].embedding == embedding_vector("hello world")
    assert encoded.data[0].embedding == pytest.approx(embedding_vector("hello world"), abs=1e-6)
    assert encoded.data[1].embedding != encoded.data[0].embedding
    assert encoded.usage.prompt_tokens == 3


async def test_raw_stream_wire_format(upstream, http):
    body = {
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi there"}],
    }
    async with http.post(upstream.openai_base_url + "/chat/completions", json=body) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = await resp.text()
    frames = text.split("\n\n")
    assert frames[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(f.removeprefix("data: ")) for f in frames[:-2]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    words = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert "".join(words) == "Echo from m: hi there"
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}


async def test_stream_without_include_usage_has_no_usage_chunk(oai):
    stream = await oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


async def test_chunk_delay_spaces_out_chunks():
    with FakeUpstream(chunk_delay=0.05) as slow:
        client = openai.AsyncOpenAI(base_url=slow.openai_base_url, api_key=KEY, max_retries=0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "one two"}], stream=True
        )
        chunks = [c async for c in stream]
        await client.close()
    assert len(chunks) == 7  # role, 5 words, finish
    assert loop.time() - started >= 0.05 * 6


async def test_api_key_enforced_when_configured():
    with FakeUpstream(api_key="right") as strict:
        wrong = openai.AsyncOpenAI(base_url=strict.openai_base_url, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.list()
        await wrong.close()
        right = openai.AsyncOpenAI(base_url=strict.openai_base_url, api_key="right", max_retries=0)
        assert (await right.models.list()).data
        await right.close()


# -- Anthropic protocol ------------------------------------------------------------------------
async def test_anthropic_message_with_system_prompt(claude, upstream):
    message = await claude.messages.create(
        model="claude-fake",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello there"}],
    )
    assert message.content[0].text == "[system: Be brief.] Echo from claude-fake: Hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 4
    assert message.usage.output_tokens == 8  # words of the answer
    assert message.id == "msg_fake1"
    [sent] = upstream.requests
    # anthropic SDK 2.x sends api_key as a bearer token (the fake also takes x-api-key).
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["anthropic-version"]


async def test_anthropic_max_tokens_and_tool_use(claude):
    short = await claude.messages.create(
        model="c", max_tokens=2, messages=[{"role": "user", "content": "a b c"}]
    )
    assert (short.content[0].text, short.stop_reason) == ("Echo from", "max_tokens")

    tool = await claude.messages.create(
        model="c",
        max_tokens=100,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "What's the weather?"}],
    )
    assert tool.stop_reason == "tool_use"
    [block] = tool.content
    assert (block.type, block.id, block.name, block.input) == (
        "tool_use",
        "toolu_1",
        "get_weather",
        {"city": "Paris"},
    )


async def test_anthropic_stream(claude):
    async with claude.messages.stream(
        model="c", max_tokens=100, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        events = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert final.content[0].text == "Echo from c: stream me"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 5)
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert set(events) >= {"content_block_start", "content_block_stop", "message_delta"}


async def test_anthropic_tool_use_stream(claude):
    async with claude.messages.stream(
        model="c",
        max_tokens=100,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "weather in Paris"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].input == {"city": "Paris"}


async def test_anthropic_requires_a_key_and_version(upstream, http):
    url = upstream.base_url + "/v1/messages"
    body = {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    version = {"anthropic-version": "2023-06-01"}
    async with http.post(url, json=body, headers=version) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["type"] == "authentication_error"
    async with http.post(url, json=body, headers={"x-api-key": KEY}) as resp:
        assert resp.status == 400
        assert "anthropic-version" in (await resp.json())["error"]["message"]
    async with http.post(url, json=body, headers={"x-api-key": KEY, **version}) as resp:
        assert resp.status == 200
        assert (await resp.json())["content"][0]["text"] == "Echo from c: hi"


@pytest.mark.parametrize(
    ("fault", "error_class", "error_type"),
    [
        ("529", anthropic.InternalServerError, "overloaded_error"),
        ("429", anthropic.RateLimitError, "rate_limit_error"),
    ],
)
async def test_anthropic_error_bodies(claude, upstream, fault, error_class, error_type):
    upstream.push_fault(fault, retry_after=5)
    with pytest.raises(error_class) as info:
        await claude.messages.create(
            model="c", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.body["error"]["type"] == error_type
    assert info.value.response.headers["retry-after"] == "5"
    assert info.value.request_id == "fake-req-1"


async def test_anthropic_error_event_mid_stream(claude, upstream):
    upstream.push_fault("error_mid_stream", error="529")
    with pytest.raises(anthropic.APIStatusError) as info:
        async with claude.messages.stream(
            model="c", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            async for _ in stream:
                pass
    assert info.value.body["error"]["type"] == "overloaded_error"


# -- faults on the wire ------------------------------------------------------------------------
async def test_error_fault_on_the_wire(upstream, http):
    upstream.push_fault("429", retry_after=3)
    async with http.get(upstream.openai_base_url + "/models") as resp:
        assert resp.status == 429
        assert resp.headers["retry-after"] == "3"
        assert resp.headers["x-request-id"] == "fake-req-1"
        error = (await resp.json())["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")


async def test_reset_is_a_connection_reset(upstream):
    upstream.push_fault("reset")
    reader, writer = await asyncio.open_connection("127.0.0.1", upstream.port)
    writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(1024), timeout=5)  # a plain close reads b""
    writer.close()


async def test_malformed_body_is_not_json(upstream, http):
    upstream.push_fault("malformed")
    async with http.get(upstream.openai_base_url + "/models") as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("application/json")
        with pytest.raises(json.JSONDecodeError):
            json.loads(await resp.read())


async def test_reset_mid_stream_cuts_the_stream(oai, upstream):
    upstream.push_fault("reset_mid_stream")
    received = []
    stream = await oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a b c d"}], stream=True
    )
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 2


async def test_slow_and_stall_delay(upstream, http):
    loop = asyncio.get_running_loop()
    upstream.push_fault("slow", delay=0.3)
    started = loop.time()
    async with http.get(upstream.openai_base_url + "/models") as resp:
        assert resp.status == 200
    assert loop.time() - started >= 0.3

    upstream.push_fault("stall", delay=5)
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    timeout = aiohttp.ClientTimeout(sock_read=0.3)
    async with http.post(
        upstream.openai_base_url + "/chat/completions", json=body, timeout=timeout
    ) as resp:
        first = await resp.content.readuntil(b"\n\n")
        assert first.startswith(b"data: ")
        with pytest.raises(asyncio.TimeoutError):
            await resp.content.readuntil(b"\n\n")


# -- the fault queue ---------------------------------------------------------------------------
async def test_faults_are_fifo_counted_and_path_matched(upstream, http):
    upstream.push_fault("500", count=2)
    upstream.push_fault("401")
    upstream.push_fault("503", path="/v1/embeddings")
    statuses = []
    for _ in range(5):
        async with http.get(upstream.openai_base_url + "/models") as resp:
            statuses.append(resp.status)
    assert statuses == [500, 500, 401, 200, 200]
    async with http.post(upstream.openai_base_url + "/embeddings", json={"input": "x"}) as resp:
        assert resp.status == 503
    assert [r.fault for r in upstream.requests] == ["500", "500", "401", None, None, "503"]
    assert [r.headers.get("host") is not None for r in upstream.requests] == [True] * 6

    upstream.push_fault("500")
    upstream.reset()
    assert upstream.requests == []
    async with http.get(upstream.openai_base_url + "/models") as resp:
        assert resp.status == 200
        assert resp.headers["x-request-id"] == "fake-req-1"


def test_unknown_fault_kind_is_refused(upstream):
    with pytest.raises(ValueError, match="unknown fault kind"):
        upstream.push_fault("418")


def test_stop_does_not_wait_for_a_stalled_response():
    fake = FakeUpstream().start()
    fake.push_fault("stall", delay=30)
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")  # headers and half a body
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 3
    fake.stop()  # idempotent
