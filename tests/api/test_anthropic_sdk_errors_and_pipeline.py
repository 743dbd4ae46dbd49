"""The Anthropic door goes through the same pipeline as OpenAI chat: limits, cache,
retries and failover apply, and every failure reaches the official `anthropic` SDK (over
real HTTP) as its own typed exception, with retry-after where waiting helps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import anthropic
import openai
import pytest
import requests

from aigateway.quotas.models import Limit
from aigateway.routing.models import Route
from auth.services import api_key_revoke
from providers.models import ProviderKind
from tests.api.resilience_support import SECONDARY, build_gateway, chat_paths
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

UPSTREAM_KEY = "sk-upstream-SECRET-0123456789abcdef"
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def setup(cast, live_gateway, upstream):
    """Route "smart" on one Anthropic deployment, no gateway retries; the key and a client."""
    provider = make_provider("anthropic-main", ProviderKind.ANTHROPIC, upstream.base_url,
                             secret=UPSTREAM_KEY)  # fmt: skip
    route = make_route("smart", (provider, "up-model"))
    Route.objects.filter(pk=route.pk).update(max_retries=0)
    issued = make_key(cast.team, route)
    clients: list[anthropic.Anthropic] = []

    def client(key: str = issued.raw_key, **kwargs) -> anthropic.Anthropic:
        made = anthropic.Anthropic(api_key=key, base_url=live_gateway.base_url, max_retries=0,
                                   **{"timeout": 10, **kwargs})  # fmt: skip
        clients.append(made)
        return made

    yield client, issued, route
    for made in clients:
        made.close()


def _ask(client: anthropic.Anthropic, model: str = "smart", **kwargs) -> anthropic.types.Message:
    return client.messages.create(model=model, max_tokens=50, messages=HELLO, **kwargs)


def _error(exc: anthropic.APIStatusError) -> dict:
    assert exc.body["type"] == "error"
    assert exc.response.headers["request-id"] == exc.body["request_id"]
    return exc.body["error"]


# -- who may call -----------------------------------------------------------------------------
def test_a_wrong_or_revoked_key_is_an_authentication_error(setup):
    client, issued, _ = setup
    with pytest.raises(anthropic.AuthenticationError) as wrong:
        _ask(client("agw-not-a-real-key-0000000000"))
    assert _error(wrong.value)["type"] == "authentication_error"

    assert _ask(client()).content  # works before revoking
    api_key_revoke(api_key=issued.api_key)
    with pytest.raises(anthropic.AuthenticationError) as revoked:
        _ask(client())
    assert _error(revoked.value)["details"]["error_code"] == "invalid_api_key"


def test_an_unknown_model_is_not_found(setup):
    client, _, _ = setup
    with pytest.raises(anthropic.NotFoundError) as caught:
        _ask(client(), model="claude-nope")
    error = _error(caught.value)
    assert error["type"] == "not_found_error"
    assert error["details"] == {"error_code": "model_not_found", "param": "model"}


# -- bad input --------------------------------------------------------------------------------
def test_bad_input_is_a_bad_request_error_naming_the_parameter(setup, live_gateway):
    client, issued, _ = setup
    with pytest.raises(anthropic.BadRequestError) as wrong_type:
        client().messages.create(model="smart", max_tokens="lots", messages=HELLO)  # type: ignore[arg-type]
    assert _error(wrong_type.value)["details"]["param"] == "max_tokens"

    # The SDK will not send a body without max_tokens; its low-level post will.
    with pytest.raises(anthropic.BadRequestError) as missing:
        client().post("/v1/messages", body={"model": "smart", "messages": HELLO},
                      cast_to=anthropic.types.Message)  # fmt: skip
    assert "max_tokens" in _error(missing.value)["message"]

    malformed = requests.post(
        live_gateway.base_url + "/v1/messages", data=b'{"model": "smart", "max_tokens":',
        headers={"x-api-key": issued.raw_key, "content-type": "application/json"}, timeout=10,
    )  # fmt: skip
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "invalid_request_error"
    assert "JSON" in malformed.json()["error"]["message"]


def test_a_huge_body_is_request_too_large(setup, settings):
    client, _, _ = setup
    settings.AIGATEWAY_MAX_BODY_BYTES = 2000
    with pytest.raises(anthropic.APIStatusError) as caught:
        client().messages.create(
            model="smart", max_tokens=50, messages=[{"role": "user", "content": "x" * 5000}]
        )
    assert caught.value.status_code == 413
    assert _error(caught.value)["type"] == "request_too_large"


# -- limits -----------------------------------------------------------------------------------
def test_a_gateway_rate_limit_is_a_rate_limit_error_with_retry_after(setup):
    client, issued, _ = setup
    Limit.objects.create(scope="key", scope_id=issued.api_key.pk, kind="rpm", value=Decimal(1))
    first = client().messages.with_raw_response.create(model="smart", max_tokens=50,
                                                       messages=HELLO)  # fmt: skip
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"

    with pytest.raises(anthropic.RateLimitError) as caught:
        _ask(client())
    assert int(caught.value.response.headers["retry-after"]) >= 1
    error = _error(caught.value)
    assert (error["type"], error["details"]["error_code"]) == (
        "rate_limit_error", "rate_limit_exceeded",
    )  # fmt: skip


def test_an_upstream_rate_limit_passes_its_retry_after_on(setup, upstream):
    client, _, _ = setup
    upstream.push_fault("429", retry_after=7)
    with pytest.raises(anthropic.RateLimitError) as caught:
        _ask(client())
    assert caught.value.response.headers["retry-after"] == "7"
    assert _error(caught.value)["type"] == "rate_limit_error"


# -- upstream failures ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "exception", "status", "error_type", "code"),
    [
        ("529", anthropic.OverloadedError, 529, "overloaded_error", "overloaded"),
        ("500", anthropic.InternalServerError, 502, "api_error", "server_error"),
    ],
)
def test_an_upstream_failure_is_the_sdks_typed_error(
    setup, upstream, fault, exception, status, error_type, code
):
    client, _, _ = setup
    upstream.push_fault(fault)
    with pytest.raises(exception) as caught:
        _ask(client())
    assert caught.value.status_code == status
    error = _error(caught.value)
    assert (error["type"], error["details"]["error_code"]) == (error_type, code)


def test_the_sdks_timeout_bounds_the_call_and_the_gateway_answers_first(setup, upstream):
    """The anthropic SDK sends its timeout as X-Stainless-Timeout; the gateway gives up
    before it (10 % sooner, here 0.2 s: room for a loaded test machine) with a 504 the SDK
    can tell from its own timeout."""
    client, _, _ = setup
    _ask(client())  # warm the process up (first-call imports): the deadline is what is timed
    upstream.push_fault("slow", delay=4)
    started = time.monotonic()
    with pytest.raises(anthropic.APIError) as caught:
        _ask(client(timeout=2.0))
    elapsed = time.monotonic() - started
    assert isinstance(caught.value, anthropic.GatewayTimeoutError), repr(caught.value)
    assert _error(caught.value)["type"] == "timeout_error"
    assert elapsed < 3.0  # well before the upstream (4 s) would have answered


# -- resilience and cache ---------------------------------------------------------------------
def test_a_failing_openai_primary_fails_over_to_the_anthropic_secondary(cast, live_gateway):
    with FakeUpstream() as upstream_a, FakeUpstream() as upstream_b:
        gateway = build_gateway(team=cast.team, base_url=live_gateway.base_url,
                                primary_upstream=upstream_a, secondary_upstream=upstream_b,
                                max_retries=0)  # fmt: skip
        upstream_a.push_fault("500")
        client = anthropic.Anthropic(api_key=gateway.raw_key, base_url=live_gateway.base_url,
                                     max_retries=0, timeout=10)  # fmt: skip
        raw = client.messages.with_raw_response.create(model="smart", max_tokens=50,
                                                       messages=HELLO)  # fmt: skip
        client.close()
        assert raw.parse().content[0].text.endswith(f"Echo from {SECONDARY[1]}: Hello")
        assert raw.headers["x-aigateway-served-by"] == f"{SECONDARY[0]}/{SECONDARY[1]}"
        assert raw.headers["x-aigateway-failovers"] == "1"
        assert len(chat_paths(upstream_a)) == len(chat_paths(upstream_b)) == 1


def test_one_cache_serves_both_doors(setup, upstream, live_gateway):
    """A deterministic request (temperature 0) is cached as a normalized answer, so the
    same question through the OpenAI door is a hit too."""
    client, issued, _ = setup
    ask = {"model": "smart", "max_tokens": 50, "messages": HELLO,
           "extra_body": {"temperature": 0}}  # fmt: skip
    first = client().messages.with_raw_response.create(**ask)
    again = client().messages.with_raw_response.create(**ask)
    assert (first.headers["x-aigateway-cache"], again.headers["x-aigateway-cache"]) == (
        "MISS", "HIT",
    )  # fmt: skip
    assert again.parse().content[0].text == first.parse().content[0].text
    assert again.parse().id != first.parse().id  # each answer has its own message id
    with client().messages.stream(**ask) as stream:  # a hit replays as a proper stream
        assert stream.response.headers["x-aigateway-cache"] == "HIT"
        assert "".join(stream.text_stream) == first.parse().content[0].text
        assert stream.get_final_message().stop_reason == "end_turn"

    sdk = openai.OpenAI(api_key=issued.raw_key, base_url=live_gateway.openai_base_url,
                        max_retries=0)  # fmt: skip
    raw = sdk.chat.completions.with_raw_response.create(model="smart", max_tokens=50,
                                                        messages=HELLO, temperature=0)  # fmt: skip
    sdk.close()
    assert raw.headers["x-aigateway-cache"] == "HIT"
    assert raw.parse().choices[0].message.content == first.parse().content[0].text
    assert len(chat_paths(upstream)) == 1
