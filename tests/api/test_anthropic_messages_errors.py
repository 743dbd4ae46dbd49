"""Errors at the Anthropic door: Anthropic-shaped bodies with the statuses the `anthropic` SDK
turns into its typed exceptions; bad input is a 400 naming the parameter, never a 500."""

from __future__ import annotations

import json

import pytest
from django.test import AsyncClient

from aigateway.api.anthropic_serializers import error_body, error_status
from aigateway.gateway.errors import (
    AuthenticationFailed,
    BodyTooLarge,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    UpstreamFailed,
)
from aigateway.gateway.limits import RateLimitExceeded
from providers import errors as provider_errors
from tests.factories import make_key, make_provider, make_route

URL = "/v1/messages"
HELLO = {"model": "demo", "max_tokens": 50, "messages": [{"role": "user", "content": "Hello"}]}
TOOL = {"name": "get_weather", "input_schema": {"type": "object"}}


def _user(*blocks: dict) -> dict:
    return {**HELLO, "messages": [{"role": "user", "content": list(blocks)}]}


@pytest.fixture
def demo_key(cast):
    route = make_route("demo", (make_provider(), "demo"))
    return make_key(cast.team, route).raw_key


async def post(body: object, key: str | None, url: str = URL):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"} if key else {}
    return await AsyncClient().post(url, data=data, content_type="application/json",
                                    headers=headers)  # fmt: skip


def assert_anthropic_error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert "Traceback" not in body["error"]["message"]
    assert response["x-request-id"] == response["request-id"] == body["request_id"]
    return body["error"]


@pytest.mark.django_db(transaction=True)
async def test_a_valid_request_is_answered(demo_key):
    response = await post(HELLO, demo_key)
    assert response.status_code == 200, response.content
    assert response.json()["content"][0]["text"].startswith("[demo]")
    assert response["request-id"] == response["x-request-id"]


@pytest.mark.django_db(transaction=True)
async def test_it_rejects_a_missing_key(demo_key):
    error = assert_anthropic_error(await post(HELLO, None), 401, "authentication_error")
    assert error["details"]["error_code"] == "invalid_api_key"


@pytest.mark.django_db(transaction=True)
async def test_it_refuses_other_methods_in_anthropic_shape(demo_key):
    response = await AsyncClient().get(URL, headers={"x-api-key": demo_key})
    error = assert_anthropic_error(response, 405, "invalid_request_error")
    assert error["details"]["error_code"] == "method_not_allowed"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("{not json", None),
        ("[1, 2]", None),
        ("", None),
        ({**HELLO, "model": None}, "model"),
        ({**HELLO, "model": 42}, "model"),
        ({"model": "demo", "messages": HELLO["messages"]}, "max_tokens"),
        ({**HELLO, "max_tokens": "lots"}, "max_tokens"),
        ({**HELLO, "max_tokens": 0}, "max_tokens"),
        ({**HELLO, "max_tokens": True}, "max_tokens"),
        ({"model": "demo", "max_tokens": 5}, "messages"),
        ({**HELLO, "messages": []}, "messages"),
        ({**HELLO, "messages": ["hi"]}, "messages[0]"),
        ({**HELLO, "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({**HELLO, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({**HELLO, "messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        (_user({"type": "text", "text": 5}), "messages[0].content[0].text"),
        (_user("hi"), "messages[0].content[0]"),
        (_user({"text": "no type"}), "messages[0].content[0].type"),
        (_user({"type": "document", "source": {}}), "messages[0].content[0]"),
        (_user({"type": "image", "source": {"type": "file", "file_id": "f"}}),
         "messages[0].content[0].source.type"),
        (_user({"type": "image", "source": {"type": "base64", "data": "AAAA"}}),
         "messages[0].content[0].source.media_type"),
        (_user({"type": "tool_result", "content": "x"}), "messages[0].content[0].tool_use_id"),
        (_user({"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}),
         "messages[0].content[0].is_error"),
        (_user({"type": "tool_use", "id": "t", "name": "n", "input": {}}),
         "messages[0].content[0]"),
        ({**HELLO, "messages": [{"role": "assistant", "content": [
            {"type": "tool_use", "id": "t", "name": "n", "input": "x"}]}]},
         "messages[0].content[0].input"),
        ({**HELLO, "system": 5}, "system"),
        ({**HELLO, "system": [{"type": "image"}]}, "system[0].type"),
        ({**HELLO, "temperature": 1.5}, "temperature"),
        ({**HELLO, "top_p": "x"}, "top_p"),
        ({**HELLO, "top_k": -1}, "top_k"),
        ({**HELLO, "stop_sequences": "END"}, "stop_sequences"),
        ({**HELLO, "stream": "yes"}, "stream"),
        ({**HELLO, "tools": "all"}, "tools"),
        ({**HELLO, "tools": [{"name": "x"}]}, "tools[0].input_schema"),
        ({**HELLO, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
         "tools[0].type"),
        ({**HELLO, "tools": [TOOL], "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({**HELLO, "tools": [TOOL], "tool_choice": {"type": "tool", "name": "other"}},
         "tool_choice.name"),
        ({**HELLO, "tool_choice": {"type": "any"}}, "tool_choice"),
        ({**HELLO, "metadata": "me"}, "metadata"),
        ({**HELLO, "metadata": {"user_id": 5}}, "metadata.user_id"),
        ({**HELLO, "output_config": {"format": {"type": "xml"}}}, "output_config.format.type"),
        ({**HELLO, "bogus_param": 1}, "bogus_param"),
    ],
)  # fmt: skip
async def test_malformed_input_is_a_400_naming_the_parameter(demo_key, body, param):
    error = assert_anthropic_error(await post(body, demo_key), 400, "invalid_request_error")
    assert error.get("details", {}).get("param") == param
    if param:
        assert param.split("[")[0].split(".")[0] in error["message"]


@pytest.mark.django_db(transaction=True)
async def test_the_chat_ceilings_apply_here_too(demo_key, settings):
    settings.AIGATEWAY_MAX_OUTPUT_TOKENS, settings.AIGATEWAY_MAX_MESSAGES = 100, 2
    too_many = {**HELLO, "messages": [{"role": "user", "content": "x"}] * 3}
    error = assert_anthropic_error(await post(too_many, demo_key), 400, "invalid_request_error")
    assert error["details"] == {"error_code": "array_above_max_length", "param": "messages"}
    error = assert_anthropic_error(await post({**HELLO, "max_tokens": 101}, demo_key), 400,
                                   "invalid_request_error")  # fmt: skip
    assert error["details"] == {"error_code": "invalid_value", "param": "max_tokens"}


@pytest.mark.django_db(transaction=True)
async def test_ignored_hints_are_accepted(demo_key):
    body = {**HELLO, "thinking": {"type": "disabled"}, "service_tier": "auto", "top_k": 5,
            "output_config": {"effort": "low"}}  # fmt: skip
    response = await post(body, demo_key)
    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
async def test_count_tokens_validates_too_but_needs_no_max_tokens(demo_key):
    url = URL + "/count_tokens"
    body = {"model": "demo", "messages": HELLO["messages"]}
    response = await post(body, demo_key, url)
    assert response.status_code == 200 and response.json()["input_tokens"] > 0
    bad = await post({**body, "messages": [{"role": "wizard", "content": "x"}]}, demo_key, url)
    assert assert_anthropic_error(bad, 400, "invalid_request_error")["details"]["param"] == (
        "messages[0].role"
    )
    assert_anthropic_error(await post(body, "agw-wrong-key-000000000000", url), 401,
                           "authentication_error")  # fmt: skip


# -- the status and type of every kind of gateway error (pure mapping) ------------------------
def _upstream(cause: provider_errors.ProviderError) -> UpstreamFailed:
    return UpstreamFailed(cause, attempts=1)


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        (InvalidRequest("x"), 400, "invalid_request_error"),
        (AuthenticationFailed("x"), 401, "authentication_error"),
        (PermissionDenied("x"), 403, "permission_error"),
        (ModelNotFound("x"), 404, "not_found_error"),
        (BodyTooLarge("x"), 413, "request_too_large"),
        (RateLimitExceeded("x"), 429, "rate_limit_error"),
        (_upstream(provider_errors.RateLimited("x", retry_after=2)), 429, "rate_limit_error"),
        (_upstream(provider_errors.ContextTooLong("x")), 400, "invalid_request_error"),
        (_upstream(provider_errors.ServerError("x")), 502, "api_error"),
        (_upstream(provider_errors.AuthFailed("x")), 502, "api_error"),
        (_upstream(provider_errors.Overloaded("x")), 529, "overloaded_error"),
        (_upstream(provider_errors.UpstreamTimeout("x")), 504, "timeout_error"),
    ],
)
def test_each_gateway_error_has_its_anthropic_status_and_type(error, status, error_type):
    assert error_status(error) == status
    body = error_body(error, "req_1")
    assert body["type"] == "error" and body["request_id"] == "req_1"
    assert body["error"]["type"] == error_type
    assert body["error"]["message"] == error.message


def test_an_internal_error_is_an_api_error_without_details_of_the_cause():
    failure = GatewayError("The gateway had an internal error.", code="internal_error")
    failure.status_code = 500
    body = error_body(failure)
    assert error_status(failure) == 500
    assert body == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "The gateway had an internal error.",
            "details": {"error_code": "internal_error"},
        },
    }
