"""Each adapter end to end: the official `openai` SDK → gateway (uvicorn) → adapter on its
own SDK → the wire-level fake upstream, streaming and not, with usage and cost recorded."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from providers.models import ModelPrice, ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

UPSTREAM_KEY = "sk-upstream-SECRET-0123456789abcdef"


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


def _provider(kind: str, upstream: FakeUpstream):
    if kind == ProviderKind.ANTHROPIC:
        return make_provider("anthropic-main", kind, upstream.base_url, secret=UPSTREAM_KEY)
    if kind == ProviderKind.AZURE_OPENAI:
        provider = make_provider("azure-main", kind, upstream.base_url, secret=UPSTREAM_KEY)
        provider.options = {"api_version": "2024-10-21"}
        provider.save()
        return provider
    return make_provider(f"{kind}-main", kind, upstream.openai_base_url, secret=UPSTREAM_KEY)


@pytest.fixture(params=[ProviderKind.OPENAI, ProviderKind.ANTHROPIC, ProviderKind.AZURE_OPENAI,
                        ProviderKind.OPENAI_COMPATIBLE])  # fmt: skip
def client(request, cast, live_gateway, upstream):
    provider = _provider(request.param, upstream)
    ModelPrice.objects.create(
        provider=provider, model="up-model", input_per_million=Decimal("2.5"),
        output_per_million=Decimal("10"),
    )  # fmt: skip
    route = make_route("smart", (provider, "up-model"))
    issued = make_key(cast.team, route)
    sdk = openai.OpenAI(
        base_url=live_gateway.openai_base_url, api_key=issued.raw_key, max_retries=0, timeout=10
    )
    yield sdk, request.param
    sdk.close()


def test_a_completion_through_each_adapter(client, upstream):
    sdk, kind = client
    raw = sdk.chat.completions.with_raw_response.create(
        model="smart",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello gateway"},
        ],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content.endswith("Echo from up-model: Hello gateway")
    assert completion.model == "smart"
    assert completion.choices[0].finish_reason == "stop"
    sent = upstream.requests[-1]
    assert sent.json["model"] == "up-model"
    if kind == ProviderKind.ANTHROPIC:
        assert sent.json["system"] == "Be brief."  # mapped to Anthropic's top-level system
    usage_recorder.flush()
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    expected = (
        record.input_tokens * Decimal("2.5") + record.output_tokens * Decimal("10")
    ) / Decimal(1_000_000)
    assert record.input_tokens > 0 and record.output_tokens > 0
    assert record.cost_usd == pytest.approx(expected)
    assert Decimal(raw.headers["x-aigateway-cost-usd"]) == pytest.approx(
        expected, abs=Decimal("1e-8")
    )


def test_a_stream_through_each_adapter(client):
    sdk, _ = client
    stream = sdk.chat.completions.create(
        model="smart",
        messages=[{"role": "user", "content": "Stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "Echo from up-model: Stream please"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == len(text.split())


def test_tool_calls_through_each_adapter(client):
    sdk, _ = client
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]  # fmt: skip
    completion = sdk.chat.completions.create(
        model="smart", tools=tools, messages=[{"role": "user", "content": "weather in Paris?"}]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.arguments.replace(" ", "") == '{"city":"Paris"}'


def test_upstream_errors_reach_the_sdk_as_openai_errors(client, upstream):
    sdk, _ = client
    upstream.push_fault("401")
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="smart", messages=[{"role": "user", "content": "x"}])
    assert (
        caught.value.status_code == 502
    )  # the gateway's credential was refused: not the caller's fault
    assert caught.value.code == "upstream_auth_failed"
    assert UPSTREAM_KEY not in str(caught.value.body)
    usage_recorder.flush()  # a failed call is still recorded, with why it failed
    record = UsageRecord.objects.get(request_id=caught.value.response.headers["x-request-id"])
    assert (record.status_code, record.error_type) == (502, "upstream_auth_failed")
