"""POST /v1/embeddings end to end: the official `openai` SDK over real HTTP → the live gateway
→ the adapters → wire-level fake upstreams. Both encodings (the SDK asks for base64 unless
told otherwise), batches and token arrays, usage and cost, limits, retry and failover, and
the 4xx answers for what cannot be embedded."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest

from aigateway.quotas.models import Limit
from aigateway.routing.models import Route
from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from providers.models import ModelPrice, ProviderKind
from providers.tokens import count_embedding_tokens
from tests.api.resilience_support import add_deployment
from tests.factories import make_key, make_provider
from tests.fakes.echo import embedding_vector
from tests.fakes.upstream import FakeUpstream

KEY_A = "sk-embed-a-SECRET-0123456789abcdef"
KEY_B = "sk-embed-b-SECRET-fedcba9876543210"
PRICE = Decimal("0.13")  # per million input tokens


@pytest.fixture
def upstream_a() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=KEY_A) as fake:
        yield fake


@pytest.fixture
def upstream_b() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=KEY_B) as fake:
        yield fake


def _route(name: str, *deployments: tuple[object, str]) -> Route:
    # Tiny backoff: a retry round costs milliseconds.
    route = Route.objects.create(name=name, backoff_base_seconds=0.01, backoff_cap_seconds=0.02)
    for provider, model in deployments:
        add_deployment(route, provider, model)
    return route


@pytest.fixture
def gateway(cast, live_gateway, upstream_a, upstream_b):
    """Route "emb": an OpenAI deployment on upstream A, then an OpenAI-compatible one on B.
    Returns (sdk, issued key, route)."""
    first = make_provider("emb-a", ProviderKind.OPENAI, upstream_a.openai_base_url, KEY_A)
    second = make_provider(
        "emb-b", ProviderKind.OPENAI_COMPATIBLE, upstream_b.openai_base_url, KEY_B
    )
    ModelPrice.objects.create(provider=first, model="emb-up", input_per_million=PRICE,
                              output_per_million=Decimal(0))  # fmt: skip
    route = _route("emb", (first, "emb-up"), (second, "emb-up-b"))
    issued = make_key(cast.team, route)
    sdk = openai.OpenAI(
        base_url=live_gateway.openai_base_url, api_key=issued.raw_key, max_retries=0, timeout=10
    )
    yield sdk, issued, route
    sdk.close()


def embedding_calls(upstream: FakeUpstream) -> list:
    return [r for r in upstream.requests if r.path == "/v1/embeddings"]


def test_the_sdk_gets_float_embeddings_with_usage_cost_and_headers(gateway, upstream_a):
    sdk, issued, _ = gateway
    raw = sdk.embeddings.with_raw_response.create(
        model="emb", input="the quick brown fox", encoding_format="float"
    )
    result = raw.parse()
    assert result.model == "emb"
    assert [d.index for d in result.data] == [0]
    assert result.data[0].embedding == embedding_vector("the quick brown fox")
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (4, 4)
    assert raw.headers["x-aigateway-served-by"] == "emb-a/emb-up"
    assert raw.headers["x-aigateway-cache"] == "BYPASS"
    sent = embedding_calls(upstream_a)[-1].json
    assert (sent["model"], sent["input"], sent["encoding_format"]) == (
        "emb-up",
        ["the quick brown fox"],
        "float",
    )

    usage_recorder.flush()
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert (record.route, record.provider, record.status_code, record.stream) == (
        "emb",
        "emb-a",
        200,
        False,
    )
    assert (record.input_tokens, record.output_tokens) == (4, 0)
    assert record.team_id == issued.api_key.team_id and record.key_prefix == issued.api_key.prefix
    assert record.cost_usd == 4 * PRICE / Decimal(1_000_000)
    assert Decimal(raw.headers["x-aigateway-cost-usd"]) == pytest.approx(record.cost_usd)


def test_the_sdk_default_base64_is_decoded_into_the_same_vectors(gateway, upstream_a):
    sdk, _, _ = gateway
    texts = ["alpha beta", "gamma", "delta epsilon zeta"]
    raw = sdk.embeddings.with_raw_response.create(model="emb", input=texts)  # base64 by default
    wire = json.loads(raw.http_response.text)
    assert isinstance(wire["data"][0]["embedding"], str)  # base64 on the wire, as asked
    result = raw.parse()
    assert [d.index for d in result.data] == [0, 1, 2]
    for item, text in zip(result.data, texts, strict=True):
        assert item.embedding == pytest.approx(embedding_vector(text), rel=1e-6)  # float32
    assert result.usage.prompt_tokens == 6
    # The gateway asks its upstream for floats whatever the client wants.
    assert embedding_calls(upstream_a)[-1].json["encoding_format"] == "float"


@pytest.mark.parametrize(
    "tokens",
    [[1820, 4062, 14198], [[1820, 4062], [14198], [3, 4, 5, 6]]],
    ids=["one-token-array", "batch-of-token-arrays"],
)
def test_token_arrays_reach_the_upstream_as_sent(gateway, upstream_a, tokens):
    sdk, _, _ = gateway
    result = sdk.embeddings.create(model="emb", input=tokens, encoding_format="float")
    batch = tokens if isinstance(tokens[0], list) else [tokens]
    assert embedding_calls(upstream_a)[-1].json["input"] == batch
    expected = [embedding_vector(" ".join(map(str, ids))) for ids in batch]
    assert [d.embedding for d in result.data] == expected
    assert result.usage.prompt_tokens == sum(len(ids) for ids in batch)


def test_dimensions_and_user_reach_the_upstream(gateway, upstream_a):
    sdk, _, _ = gateway
    sdk.embeddings.create(model="emb", input="x", dimensions=4, user="user-42")
    sent = embedding_calls(upstream_a)[-1].json
    assert (sent["dimensions"], sent["user"]) == (4, "user-42")


def test_a_5xx_deployment_is_retried_then_failed_over(gateway, upstream_a, upstream_b):
    sdk, _, _ = gateway
    upstream_a.push_fault("500", count=1000, path="/v1/embeddings")
    raw = sdk.embeddings.with_raw_response.create(
        model="emb", input="fail over", encoding_format="float"
    )
    assert raw.parse().data[0].embedding == embedding_vector("fail over")
    assert raw.headers["x-aigateway-served-by"] == "emb-b/emb-up-b"
    assert raw.headers["x-aigateway-failovers"] == "1"
    assert len(embedding_calls(upstream_a)) == 1 and len(embedding_calls(upstream_b)) == 1
    usage_recorder.flush()
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert (record.provider, record.status_code, record.input_tokens) == ("emb-b", 200, 2)


def test_a_503_on_the_only_deployment_is_retried(cast, live_gateway, upstream_a):
    provider = make_provider("solo", ProviderKind.OPENAI, upstream_a.openai_base_url, KEY_A)
    issued = make_key(cast.team, _route("solo-emb", (provider, "emb-up")))
    upstream_a.push_fault("503", count=2, path="/v1/embeddings")
    with openai.OpenAI(base_url=live_gateway.openai_base_url, api_key=issued.raw_key,
                       max_retries=0, timeout=10) as sdk:  # fmt: skip
        result = sdk.embeddings.create(
            model="solo-emb", input="third time", encoding_format="float"
        )
    assert result.data[0].embedding == embedding_vector("third time")
    assert [r.fault for r in embedding_calls(upstream_a)] == ["503", "503", None]


def test_every_deployment_failing_answers_the_upstream_error(gateway, upstream_a, upstream_b):
    sdk, _, _ = gateway
    for upstream in (upstream_a, upstream_b):
        upstream.push_fault("500", count=1000, path="/v1/embeddings")
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.embeddings.create(model="emb", input="nobody answers")
    assert caught.value.status_code == 502
    assert "All attempts failed" in caught.value.message
    usage_recorder.flush()
    record = UsageRecord.objects.get(request_id=caught.value.response.headers["x-request-id"])
    assert (record.status_code, record.error_type) == (502, "server_error")


def test_an_anthropic_only_route_answers_a_clear_400_without_calling_it(
    cast, live_gateway, upstream_a
):
    provider = make_provider("claude", ProviderKind.ANTHROPIC, upstream_a.base_url, KEY_A)
    issued = make_key(cast.team, _route("claude-route", (provider, "claude-up")))
    with (
        openai.OpenAI(base_url=live_gateway.openai_base_url, api_key=issued.raw_key,
                      max_retries=0, timeout=10) as sdk,
        pytest.raises(openai.BadRequestError) as caught,
    ):  # fmt: skip
        sdk.embeddings.create(model="claude-route", input="hello")
    assert caught.value.code == "embeddings_not_supported"
    assert "anthropic" in caught.value.message and caught.value.param == "model"
    assert upstream_a.requests == []


def test_a_mixed_route_embeds_with_the_deployments_that_can(cast, live_gateway, upstream_a):
    claude = make_provider("claude", ProviderKind.ANTHROPIC, upstream_a.base_url, KEY_A)
    gpt = make_provider("gpt", ProviderKind.OPENAI, upstream_a.openai_base_url, KEY_A)
    issued = make_key(cast.team, _route("mixed", (claude, "claude-up"), (gpt, "emb-up")))
    with openai.OpenAI(base_url=live_gateway.openai_base_url, api_key=issued.raw_key,
                       max_retries=0, timeout=10) as sdk:  # fmt: skip
        raw = sdk.embeddings.with_raw_response.create(model="mixed", input="hi")
    assert raw.headers["x-aigateway-served-by"] == "gpt/emb-up"
    assert "x-aigateway-failovers" not in raw.headers  # Anthropic was never tried
    assert [r.path for r in upstream_a.requests] == ["/v1/embeddings"]


def test_unknown_and_forbidden_models_are_not_found(gateway, cast, upstream_a):
    sdk, _, _ = gateway
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.embeddings.create(model="text-embedding-9", input="x")
    assert caught.value.code == "model_not_found"
    # A route that exists but is not this team's: the same 404, so names do not leak.
    _route("other-team-route", (make_provider("emb-a"), "emb-up"))
    with pytest.raises(openai.NotFoundError):
        sdk.embeddings.create(model="other-team-route", input="x")
    assert embedding_calls(upstream_a) == []


def test_too_many_inputs_and_too_long_inputs_are_refused(gateway, upstream_a, settings):
    sdk, _, _ = gateway
    settings.AIGATEWAY_MAX_EMBEDDING_INPUTS = 3
    settings.AIGATEWAY_MAX_EMBEDDING_INPUT_TOKENS = 5
    with pytest.raises(openai.BadRequestError) as many:
        sdk.embeddings.create(model="emb", input=["a", "b", "c", "d"])
    assert many.value.code == "array_above_max_length" and "maximum length 3" in many.value.message
    with pytest.raises(openai.BadRequestError) as long_text:
        sdk.embeddings.create(model="emb", input=["short", "one two three four five six seven"])
    assert (long_text.value.code, long_text.value.param) == ("input_too_long", "input[1]")
    with pytest.raises(openai.BadRequestError) as long_tokens:
        sdk.embeddings.create(model="emb", input=[1, 2, 3, 4, 5, 6])
    assert (long_tokens.value.code, long_tokens.value.param) == ("input_too_long", "input")
    assert embedding_calls(upstream_a) == []
    assert len(sdk.embeddings.create(model="emb", input=["a", "b", "c"]).data) == 3


def test_a_token_limit_counts_the_inputs_tokens(gateway, upstream_a):
    sdk, issued, _ = gateway
    Limit.objects.create(scope="key", scope_id=issued.api_key.pk, kind="tpm", value=1000)
    texts = ["Embeddings count input tokens", "and nothing else"]
    raw = sdk.embeddings.with_raw_response.create(model="emb", input=texts)
    estimate = sum(count_embedding_tokens(texts, provider_kind="openai"))
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 1000 - estimate
    assert raw.headers["x-ratelimit-limit-tokens"] == "1000"


def test_a_rate_limited_key_gets_the_sdks_rate_limit_error_with_retry_after(gateway, upstream_a):
    sdk, issued, _ = gateway
    Limit.objects.create(scope="key", scope_id=issued.api_key.pk, kind="rpm", value=1)
    sdk.embeddings.create(model="emb", input="first")
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.embeddings.create(model="emb", input="second")
    assert caught.value.code == "rate_limit_exceeded"
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 60
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(embedding_calls(upstream_a)) == 1


def test_each_embeddings_call_writes_one_request_line(gateway):
    sdk, issued, _ = gateway
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.dumps(getattr(record, "fields", {})))

    logger = logging.getLogger("aigateway.requests")
    handler = Capture()
    logger.addHandler(handler)
    try:
        raw = sdk.embeddings.with_raw_response.create(model="emb", input="a secret sentence")
    finally:
        logger.removeHandler(handler)
    [line] = lines
    fields = json.loads(line)
    assert fields["request_id"] == raw.headers["x-request-id"]
    assert (fields["endpoint"], fields["route"], fields["status"]) == ("embeddings", "emb", 200)
    assert fields["input_tokens"] == 3 and fields["output_tokens"] == 0
    assert "a secret sentence" not in line and issued.raw_key not in line
