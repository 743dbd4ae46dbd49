"""The official `openai` SDK works unchanged against the gateway (real HTTP, live ASGI app,
wire-level fake upstreams): streamed tool calls, response_format and the other OpenAI
parameters (passed to OpenAI-family upstreams, dropped for Anthropic), the usage chunk,
models.list/retrieve per key, and the SDK's own error classes for the gateway's 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import openai
import pytest
from django.utils import timezone

from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from auth.services import api_key_create, api_key_revoke
from providers.models import ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

UPSTREAM_KEY = "sk-compat-SECRET-0123456789abcdef"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
HELLO = [{"role": "user", "content": "Hello"}]
ROUTE_OF_KIND = {ProviderKind.OPENAI: "gpt", ProviderKind.ANTHROPIC: "claude"}


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def sdk(cast, live_gateway, upstream) -> Iterator[openai.OpenAI]:
    """A key for route "gpt" (OpenAI kind) and route "claude" (Anthropic kind), one upstream."""
    gpt = make_provider("openai-main", ProviderKind.OPENAI, upstream.openai_base_url, UPSTREAM_KEY)
    claude = make_provider("anthropic-main", ProviderKind.ANTHROPIC, upstream.base_url,
                           UPSTREAM_KEY)  # fmt: skip
    routes = make_route("gpt", (gpt, "up-gpt")), make_route("claude", (claude, "up-claude"))
    issued = make_key(cast.team, *routes)
    with openai.OpenAI(base_url=live_gateway.openai_base_url, api_key=issued.raw_key,
                       max_retries=0, timeout=10) as client:  # fmt: skip
        yield client


def chat_bodies(upstream: FakeUpstream) -> list[dict[str, Any]]:
    paths = ("/v1/chat/completions", "/v1/messages")
    return [r.json for r in upstream.requests if r.path in paths]


# -- tools, response_format, parameters -------------------------------------------------------
@pytest.mark.parametrize("kind", [ProviderKind.OPENAI, ProviderKind.ANTHROPIC])
def test_streamed_tool_call_deltas_are_assembled_by_the_sdk(sdk, kind):
    with sdk.chat.completions.stream(
        model=ROUTE_OF_KIND[kind],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        argument_deltas = [
            event.arguments_delta
            for event in stream
            if event.type == "tool_calls.function.arguments.delta"
        ]
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.id and call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert len(argument_deltas) >= 2  # really arrived in pieces, and the SDK joined them
    assert "".join(argument_deltas) == call.function.arguments


def test_a_tool_result_round_trip_continues_the_conversation(sdk, upstream):
    first = sdk.chat.completions.create(
        model="gpt", tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "weather in Paris?"}],
    )  # fmt: skip
    call = first.choices[0].message.tool_calls[0]
    second = sdk.chat.completions.create(
        model="gpt",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"  # the turn ends with a tool result
    sent = chat_bodies(upstream)[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2] == {"role": "tool", "content": "Sunny, 21 C", "tool_call_id": call.id}


JSON_SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
# OpenAI parameters the gateway does not model: verbatim to OpenAI-family upstreams.
PASS_THROUGH = {
    "frequency_penalty": 0.5,
    "presence_penalty": -0.5,
    "logit_bias": {"1734": -100},
    "parallel_tool_calls": False,
    "reasoning_effort": "low",
    "metadata": {"ticket": "T-1"},
    "store": False,
    "service_tier": "default",
    "prompt_cache_key": "tenant-7",
    "safety_identifier": "user-hash-1",
    "n": 1,
    "logprobs": False,
}


def test_openai_parameters_reach_openai_upstreams_verbatim(sdk, upstream):
    sdk.chat.completions.create(
        model="gpt", messages=HELLO, response_format=JSON_SCHEMA_FORMAT, seed=7,
        max_completion_tokens=50, tools=[WEATHER_TOOL], tool_choice="auto", **PASS_THROUGH,
    )  # fmt: skip
    sent = chat_bodies(upstream)[-1]
    assert sent["response_format"] == JSON_SCHEMA_FORMAT
    assert {name: sent.get(name) for name in PASS_THROUGH} == PASS_THROUGH
    assert (sent["seed"], sent["tool_choice"]) == (7, "auto")
    # The name the client used: o-series models refuse max_tokens.
    assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent


def test_openai_only_parameters_are_dropped_for_anthropic(sdk, upstream):
    completion = sdk.chat.completions.create(
        model="claude", messages=HELLO, response_format=JSON_SCHEMA_FORMAT, seed=7,
        max_completion_tokens=50, temperature=0.2, user="user-42", stop=["END"],
        **PASS_THROUGH,
    )  # fmt: skip
    assert completion.choices[0].message.content == "Echo from up-claude: Hello"
    sent = chat_bodies(upstream)[-1]
    dropped = set(PASS_THROUGH) | {"response_format", "seed", "temperature", "user",
                                   "max_completion_tokens"}  # fmt: skip
    assert dropped & set(sent) == {"metadata"}  # Anthropic's own field, below
    # What Anthropic has an equivalent for is mapped.
    assert sent["max_tokens"] == 50
    assert sent["metadata"] == {"user_id": "user-42"}  # OpenAI's metadata is not sent
    assert sent["stop_sequences"] == ["END"]


def test_the_usage_chunk_comes_only_when_asked_but_usage_is_always_recorded(sdk):
    plain = list(sdk.chat.completions.create(model="gpt", messages=HELLO, stream=True))
    assert plain and all(chunk.usage is None for chunk in plain)
    usage_recorder.flush()
    record = UsageRecord.objects.get(stream=True)
    assert (record.input_tokens, record.output_tokens) == (1, 4)  # "Echo from up-gpt: Hello"

    asked = list(
        sdk.chat.completions.create(
            model="gpt", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    with_usage = [chunk for chunk in asked if chunk.usage is not None]
    assert with_usage == [asked[-1]]  # one usage chunk, the last, as OpenAI sends it
    assert asked[-1].choices == []
    assert (asked[-1].usage.prompt_tokens, asked[-1].usage.completion_tokens) == (1, 4)


# -- models --------------------------------------------------------------------------------------
def test_models_list_and_retrieve_show_only_what_the_key_may_use(cast, live_gateway):
    provider = make_provider()
    routes = [make_route(name, (provider, "demo")) for name in ("wide", "narrow", "team/slash")]
    cast.team.allowed_routes.add(*routes)
    make_route("other-team", (provider, "demo"))
    narrow_key = api_key_create(team=cast.team, name="narrow", route_names=["narrow"]).raw_key
    team_key = api_key_create(team=cast.team, name="team").raw_key
    base = live_gateway.openai_base_url
    with (
        openai.OpenAI(base_url=base, api_key=narrow_key, max_retries=0) as narrow,
        openai.OpenAI(base_url=base, api_key=team_key, max_retries=0) as team,
    ):
        assert [m.id for m in narrow.models.list()] == ["narrow"]
        assert [m.id for m in team.models.list()] == ["narrow", "team/slash", "wide"]
        model = narrow.models.retrieve("narrow")
        assert (model.id, model.object, model.owned_by) == ("narrow", "model", "aigateway")
        assert team.models.retrieve("team/slash").id == "team/slash"
        # Not allowed to this key, another team's, or nonexistent: one answer, like OpenAI's
        # (a 404, not a 403, so route names do not leak).
        for name in ("wide", "other-team", "gpt-9"):
            with pytest.raises(openai.NotFoundError) as caught:
                narrow.models.retrieve(name)
            assert (caught.value.code, caught.value.param) == ("model_not_found", "model")
        with pytest.raises(openai.NotFoundError):
            narrow.chat.completions.create(model="wide", messages=HELLO)


# -- the SDK's error classes -------------------------------------------------------------------
@pytest.mark.parametrize("case", ["missing", "other-scheme", "garbage", "revoked", "expired"])
def test_bad_credentials_raise_the_sdks_authentication_error(cast, live_gateway, case):
    route = make_route("demo", (make_provider(), "demo"))
    issued = make_key(cast.team, route)
    api_key, headers, per_call = issued.raw_key, {}, {}
    if case == "missing":  # the SDK insists on a key: omit its header from the calls
        per_call = {"extra_headers": {"Authorization": openai.Omit()}}
    elif case == "other-scheme":
        headers = {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}
    elif case == "garbage":
        api_key = "not a key at all"
    elif case == "revoked":
        api_key_revoke(api_key=issued.api_key)
    else:
        api_key = make_key(cast.team, route, name="old",
                           expires_at=timezone.now() - timedelta(minutes=1)).raw_key  # fmt: skip
    with openai.OpenAI(base_url=live_gateway.openai_base_url, api_key=api_key, max_retries=0,
                       default_headers=headers) as client:  # fmt: skip
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="demo", messages=HELLO, **per_call)
        with pytest.raises(openai.AuthenticationError):
            client.models.list(**per_call)
    expected = "expired_api_key" if case == "expired" else "invalid_api_key"
    assert caught.value.code == expected
    assert caught.value.response.headers["x-request-id"] == caught.value.body["request_id"]


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"temperature": "hot"}, "temperature", "invalid_request"),
        ({"messages": HELLO * 4}, "messages", "array_above_max_length"),
        ({"max_tokens": 10**9}, "max_tokens", "invalid_value"),
    ],
    ids=["bad-type", "too-many-messages", "max-tokens-too-large"],
)
def test_bad_requests_raise_the_sdks_bad_request_error(sdk, upstream, settings, kwargs, param,
                                                       code):  # fmt: skip
    """The SDK's class for the gateway's 400s (every rule: test_openai_request_rules.py)."""
    settings.AIGATEWAY_MAX_MESSAGES = 3
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(**{"model": "gpt", "messages": HELLO, **kwargs})
    assert (caught.value.param, caught.value.code) == (param, code)
    assert caught.value.body["type"] == "invalid_request_error"
    assert chat_bodies(upstream) == []  # refused before any upstream call
