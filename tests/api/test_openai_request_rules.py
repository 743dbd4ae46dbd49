"""The OpenAI door's request rules, every case: size limits, parameters it refuses rather
than lose, type checks of pass-through parameters, unknown arguments, and the shapes of
embeddings input. The tables call the parsers directly (no database, milliseconds); the
rest go through the API with django's AsyncClient. No upstream is reached by any of them."""

from __future__ import annotations

import json

import pytest
from django.test import AsyncClient

from aigateway.api.embeddings_wire import parse_embedding_request
from aigateway.api.parsing import parse_chat_request
from aigateway.gateway.errors import InvalidRequest
from tests.factories import make_key, make_provider, make_route

HELLO = {"model": "demo", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def demo_key(cast, transactional_db):
    route = make_route("demo", (make_provider(), "demo"))
    return make_key(cast.team, route).raw_key


async def post(url: str, body: dict, key: str):
    return await AsyncClient().post(
        url, data=json.dumps(body), content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip


def error_of(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert response["x-request-id"] == error["request_id"]
    return error


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"n": 2}, "n", "unsupported_parameter"),
        ({"n": "2"}, "n", "invalid_request"),
        ({"logprobs": True}, "logprobs", "unsupported_parameter"),
        ({"top_logprobs": 3}, "top_logprobs", "unsupported_parameter"),
        ({"modalities": ["text", "audio"]}, "modalities", "unsupported_parameter"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "unsupported_parameter"),
        ({"web_search_options": {}}, "web_search_options", "unsupported_parameter"),
        ({"functions": [{"name": "f"}]}, "functions", "unsupported_parameter"),
        ({"function_call": "auto"}, "function_call", "unsupported_parameter"),
        ({"frequency_penalty": 3}, "frequency_penalty", "invalid_request"),
        ({"presence_penalty": "lots"}, "presence_penalty", "invalid_request"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls", "invalid_request"),
        ({"logit_bias": [1, 2]}, "logit_bias", "invalid_request"),
        ({"metadata": "x"}, "metadata", "invalid_request"),
        ({"reasoning_effort": 3}, "reasoning_effort", "invalid_request"),
        ({"max_completion_tokens": 0}, "max_completion_tokens", "invalid_request"),
        ({"max_completion_tokens": 200_000}, "max_completion_tokens", "invalid_value"),
        ({"top_k": 5}, "top_k", "invalid_request"),
    ],
)
def test_chat_parameters_the_gateway_cannot_honour_are_refused(extra, param, code):
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request({**HELLO, **extra})
    assert (caught.value.param, caught.value.code) == (param, code)
    if code == "unsupported_parameter":
        assert "not supported by this gateway" in caught.value.message


async def test_an_unknown_argument_is_named_as_openai_names_it(demo_key):
    error = error_of(await post("/v1/chat/completions", {**HELLO, "top_k": 5}, demo_key))
    assert error["message"] == "Unrecognized request argument supplied: top_k"


async def test_the_harmless_values_of_refusable_parameters_are_accepted(demo_key):
    body = {**HELLO, "n": 1, "logprobs": False, "modalities": ["text"], "store": False}
    response = await post("/v1/chat/completions", body, demo_key)
    assert response.status_code == 200, response.content


async def test_the_message_limit_counts_messages(demo_key, settings):
    settings.AIGATEWAY_MAX_MESSAGES = 2
    two = {**HELLO, "messages": HELLO["messages"] * 2}
    assert (await post("/v1/chat/completions", two, demo_key)).status_code == 200
    three = {**HELLO, "messages": HELLO["messages"] * 3}
    error = error_of(await post("/v1/chat/completions", three, demo_key))
    assert error["code"] == "array_above_max_length" and "maximum length 2" in error["message"]


async def test_the_output_token_ceiling_is_a_setting(demo_key, settings):
    settings.AIGATEWAY_MAX_OUTPUT_TOKENS = 100
    ok = await post("/v1/chat/completions", {**HELLO, "max_tokens": 100}, demo_key)
    assert ok.status_code == 200, ok.content
    error = error_of(await post("/v1/chat/completions", {**HELLO, "max_tokens": 101}, demo_key))
    assert (error["param"], error["code"]) == ("max_tokens", "invalid_value")
    assert "at most 100" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "demo"}, "input"),
        ({"model": "demo", "input": ""}, "input"),
        ({"model": "demo", "input": []}, "input"),
        ({"model": "demo", "input": None}, "input"),
        ({"model": "demo", "input": ["fine", ""]}, "input[1]"),
        ({"model": "demo", "input": ["text", [1, 2]]}, "input[1]"),
        ({"model": "demo", "input": [[1, 2], [-3]]}, "input[1]"),
        ({"model": "demo", "input": [[1, 2], []]}, "input[1]"),
        ({"model": "demo", "input": [True, False]}, "input[0]"),
        ({"model": "demo", "input": {"text": "x"}}, "input"),
        ({"model": "demo", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "demo", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "demo", "input": "x", "dimensions": "8"}, "dimensions"),
        ({"model": "demo", "input": "x", "user": 7}, "user"),
        ({"model": "demo", "input": "x", "truncate": True}, "truncate"),
    ],
)
def test_malformed_embedding_requests_are_refused(body, param):
    with pytest.raises(InvalidRequest) as caught:
        parse_embedding_request(body)
    assert caught.value.param == param and caught.value.status_code == 400


@pytest.mark.parametrize(
    ("raw", "inputs"),
    [
        ("one text", ["one text"]),
        (["a", "b"], ["a", "b"]),
        ([1, 2, 3], [[1, 2, 3]]),
        ([[1, 2], [3]], [[1, 2], [3]]),
    ],
)
def test_every_openai_input_shape_is_accepted(raw, inputs):
    request, encoding = parse_embedding_request({"model": "m", "input": raw})
    assert (request.inputs, encoding) == (inputs, "float")


async def test_a_malformed_embeddings_body_is_an_openai_400(demo_key):
    body = {"model": "demo", "input": ["fine", ""]}
    error = error_of(await post("/v1/embeddings", body, demo_key))
    assert error["param"] == "input[1]"


async def test_the_demo_provider_embeds_through_the_api(demo_key):
    """The offline demo route serves embeddings too (deterministic unit vectors)."""
    body = {"model": "demo", "input": ["one", "two"], "dimensions": 4}
    response = await post("/v1/embeddings", body, demo_key)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert [len(item["embedding"]) for item in data] == [4, 4]
    assert data[0]["embedding"] != data[1]["embedding"]
    assert response["x-aigateway-served-by"] == "demo/demo"


async def test_embeddings_answer_405_to_get(demo_key):
    response = await AsyncClient().get(
        "/v1/embeddings", headers={"Authorization": f"Bearer {demo_key}"}
    )
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
