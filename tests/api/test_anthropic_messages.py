"""The Anthropic door end to end: the official `anthropic` SDK, unchanged but for `base_url`,
over real HTTP to the gateway (uvicorn), through the one pipeline to an OpenAI or an
Anthropic deployment on the wire-level fake upstream; streaming and not, tools, usage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import pytest
import requests

from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from providers.models import ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

UPSTREAM_KEY = "sk-upstream-SECRET-0123456789abcdef"
KINDS = [ProviderKind.OPENAI, ProviderKind.ANTHROPIC]
PIXEL_PNG = (  # a 1x1 PNG, base64
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@dataclass
class Door:
    client: anthropic.Anthropic
    upstream: FakeUpstream
    kind: str
    provider_name: str
    raw_key: str

    def chat_requests(self) -> list[dict]:
        """What the upstream received on its chat path (OpenAI or Anthropic), in order."""
        paths = ("/v1/chat/completions", "/v1/messages")
        return [r.json for r in self.upstream.requests if r.path in paths]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


def _provider(kind: str, upstream: FakeUpstream):
    if kind == ProviderKind.ANTHROPIC:
        return make_provider("anthropic-main", kind, upstream.base_url, secret=UPSTREAM_KEY)
    return make_provider("openai-main", kind, upstream.openai_base_url, secret=UPSTREAM_KEY)


@pytest.fixture(params=KINDS)
def door(request, cast, live_gateway, upstream) -> Iterator[Door]:
    """Route "smart" on one deployment of the given kind, and the SDK holding a team key."""
    provider = _provider(request.param, upstream)
    route = make_route("smart", (provider, "up-model"))
    issued = make_key(cast.team, route)
    client = anthropic.Anthropic(
        api_key=issued.raw_key, base_url=live_gateway.base_url, max_retries=0, timeout=10
    )
    yield Door(client, upstream, request.param, provider.name, issued.raw_key)
    client.close()


def _record(request_id: str) -> UsageRecord:
    usage_recorder.flush()
    return UsageRecord.objects.get(request_id=request_id)


# -- plain messages ---------------------------------------------------------------------------
def test_a_message_is_answered_in_anthropic_shape_by_either_kind_of_deployment(door):
    raw = door.client.messages.with_raw_response.create(
        model="smart",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello gateway"}],
        metadata={"user_id": "end-user-7"},
    )
    message = raw.parse()

    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == "smart"  # the route name, not the upstream model
    [block] = message.content
    assert block.type == "text"
    assert block.text.endswith("Echo from up-model: Hello gateway")
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.output_tokens == len(block.text.split())
    assert message.usage.input_tokens > 0

    request_id = raw.headers["x-request-id"]
    assert raw.headers["request-id"] == request_id == message._request_id
    assert raw.headers["x-aigateway-served-by"] == f"{door.provider_name}/up-model"
    assert raw.headers["x-aigateway-cache"] == "BYPASS"  # no temperature 0: not cacheable
    assert float(raw.headers["x-aigateway-cost-usd"]) >= 0

    [sent] = door.chat_requests()
    assert sent["model"] == "up-model" and sent["max_tokens"] == 100
    if door.kind == ProviderKind.ANTHROPIC:
        assert sent["system"] == "Be brief."
        assert sent["metadata"] == {"user_id": "end-user-7"}
    else:  # translated to OpenAI chat: the system prompt is a message, the user id "user"
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["user"] == "end-user-7"

    record = _record(request_id)
    assert (record.status_code, record.route, record.provider) == (200, "smart", door.provider_name)
    assert record.upstream_model == "up-model" and not record.stream
    assert (record.input_tokens, record.output_tokens) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )


def test_max_tokens_cuts_the_answer_with_stop_reason_max_tokens(door):
    message = door.client.messages.create(
        model="smart", max_tokens=3, messages=[{"role": "user", "content": "one two three four"}]
    )
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "Echo from up-model:"
    assert message.usage.output_tokens == 3


def test_content_blocks_and_images_reach_the_upstream(door):
    pixel = PIXEL_PNG
    message = door.client.messages.create(
        model="smart",
        max_tokens=50,
        system=[{"type": "text", "text": "Describe images."}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": pixel}},
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
    )  # fmt: skip
    assert message.content[0].text.endswith("What is this?")
    [sent] = door.chat_requests()
    if door.kind == ProviderKind.ANTHROPIC:
        image = sent["messages"][0]["content"][0]
        assert image == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": pixel},
        }
    else:
        image = sent["messages"][1]["content"][0]
        assert image == {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + pixel},
        }


# -- streaming --------------------------------------------------------------------------------
def test_a_stream_arrives_in_pieces_and_ends_with_the_final_message(door):
    door.upstream.chunk_delay = 0.05  # so "incrementally" is visible on the clock
    arrivals: list[tuple[float, str]] = []
    with door.client.messages.stream(
        model="smart", max_tokens=100, messages=[{"role": "user", "content": "Stream me please"}]
    ) as stream:
        for text in stream.text_stream:
            arrivals.append((time.monotonic(), text))
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
        served_by = stream.response.headers["x-aigateway-served-by"]

    pieces = [text for _, text in arrivals]
    expected = "Echo from up-model: Stream me please"
    assert "".join(pieces) == expected
    assert len(pieces) == len(expected.split())  # one piece per word, as the upstream sent
    assert arrivals[-1][0] - arrivals[0][0] > 0.15  # relayed as they came, not buffered
    assert final.content[0].text == expected
    assert final.stop_reason == "end_turn" and final.model == "smart"
    assert final.usage.output_tokens == len(expected.split())
    assert served_by == f"{door.provider_name}/up-model"

    record = _record(request_id)
    assert record.stream and record.status_code == 200 and record.ttft_ms is not None
    assert record.output_tokens == final.usage.output_tokens
    assert record.input_tokens == final.usage.input_tokens  # message_delta's real count


async def test_the_async_sdk_streams_too(door):
    client = anthropic.AsyncAnthropic(
        api_key=door.raw_key, base_url=str(door.client.base_url), max_retries=0, timeout=10
    )
    async with client.messages.stream(
        model="smart", max_tokens=100, messages=[{"role": "user", "content": "Async hello"}]
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    await client.close()
    assert "".join(pieces) == final.content[0].text == "Echo from up-model: Async hello"


def test_an_upstream_failure_mid_stream_is_an_error_event(door):
    door.upstream.push_fault("error_mid_stream", after=5, error="500")
    pieces: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        door.client.messages.stream(
            model="smart", max_tokens=100, messages=[{"role": "user", "content": "a b c d e f"}]
        ) as stream,
    ):
        pieces.extend(stream.text_stream)
    assert pieces and "".join(pieces).startswith("Echo")  # the stream had started
    error = caught.value.body
    assert error["type"] == "error"
    assert error["error"]["type"] == "api_error"
    assert error["error"]["details"]["error_code"] == "server_error"
    usage_recorder.flush()
    assert UsageRecord.objects.get(stream=True).status_code == 502


def test_a_client_that_leaves_mid_stream_is_recorded_with_what_it_got(door):
    door.upstream.chunk_delay = 0.05
    response = requests.post(
        str(door.client.base_url).rstrip("/") + "/v1/messages",
        json={"model": "smart", "max_tokens": 500, "stream": True,
              "messages": [{"role": "user", "content": "a long answer " * 30}]},
        headers={"x-api-key": door.raw_key}, stream=True, timeout=10,
    )  # fmt: skip
    lines = response.iter_lines()
    received = [next(lines) for _ in range(12)]
    assert b"event: message_start" in received and any(b"text_delta" in r for r in received)
    response.close()  # the client goes away mid-stream

    deadline, record = time.monotonic() + 5, None
    while record is None and time.monotonic() < deadline:
        usage_recorder.flush()
        record = UsageRecord.objects.filter(stream=True).first()
        time.sleep(0.05)
    assert record is not None, "the abandoned stream was never recorded"
    assert record.status_code == 499
    assert 0 < record.output_tokens < 3 + 30 * 3  # what was produced, not the whole answer


# -- tools ------------------------------------------------------------------------------------
def _weather_turn(door: Door, *, stream: bool) -> anthropic.types.Message:
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    if not stream:
        return door.client.messages.create(
            model="smart", max_tokens=100, tools=[WEATHER_TOOL], messages=question
        )
    with door.client.messages.stream(
        model="smart", max_tokens=100, tools=[WEATHER_TOOL], messages=question
    ) as events:
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_tool_use_round_trip(door, stream):
    asked = _weather_turn(door, stream=stream)
    assert asked.stop_reason == "tool_use"
    [call] = [b for b in asked.content if b.type == "tool_use"]
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    assert call.id

    answer = door.client.messages.create(
        model="smart",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto"},
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [b.to_dict() for b in asked.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}
                ],
            },
        ],
    )
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].text.endswith("What is the weather in Paris?")

    sent = door.chat_requests()[-1]
    if door.kind == ProviderKind.ANTHROPIC:
        assert sent["tools"][0]["input_schema"] == WEATHER_TOOL["input_schema"]
        tool_use = sent["messages"][1]["content"][-1]
        assert (tool_use["type"], tool_use["id"], tool_use["input"]) == (
            "tool_use", call.id, {"city": "Paris"},
        )  # fmt: skip
        result = sent["messages"][2]["content"][0]
        assert (result["type"], result["tool_use_id"], result["content"]) == (
            "tool_result", call.id, "Sunny, 21 C",
        )  # fmt: skip
    else:
        assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]
        assert sent["tool_choice"] == "auto"
        assistant, tool = sent["messages"][1], sent["messages"][2]
        assert assistant["tool_calls"][0]["id"] == call.id
        assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
        assert tool == {"role": "tool", "content": "Sunny, 21 C", "tool_call_id": call.id}


def test_tool_choice_names_a_tool(door):
    door.client.messages.create(
        model="smart",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "Hi"}],
    )
    [sent] = door.chat_requests()
    if door.kind == ProviderKind.ANTHROPIC:
        assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    else:
        assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
        assert sent["parallel_tool_calls"] is False


# -- count_tokens -----------------------------------------------------------------------------
def test_count_tokens_estimates_without_calling_the_upstream(door):
    short = door.client.messages.count_tokens(
        model="smart", messages=[{"role": "user", "content": "Hi"}]
    )
    longer = door.client.messages.count_tokens(
        model="smart",
        system="You are a careful assistant who answers at length.",
        messages=[{"role": "user", "content": "Tell me everything about the sea " * 5}],
    )
    assert 0 < short.input_tokens < longer.input_tokens
    assert door.chat_requests() == []
    with pytest.raises(anthropic.NotFoundError):
        door.client.messages.count_tokens(model="nope", messages=[{"role": "user", "content": "x"}])
