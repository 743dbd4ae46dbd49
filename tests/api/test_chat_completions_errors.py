"""Bad input at the API door: clear OpenAI-style 4xx errors, never a 500 or a stack trace."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from auth.services import api_key_create, api_key_revoke
from tests.factories import make_key, make_provider, make_route

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v1/chat/completions"
HELLO = {"model": "demo", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def demo_key(cast):
    route = make_route("demo", (make_provider(), "demo"))
    return make_key(cast.team, route).raw_key


async def post(body: object, key: str | None, **headers: str):
    client = AsyncClient()
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    sent = {"Authorization": f"Bearer {key}"} if key else {}
    sent.update(headers)
    return await client.post(URL, data=data, content_type="application/json", headers=sent)


def assert_openai_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert "Traceback" not in error["message"]
    assert response["x-request-id"] == error["request_id"]
    if code:
        assert error["code"] == code
    return error


async def test_it_answers_with_a_valid_key(demo_key):
    response = await post(HELLO, demo_key)
    assert response.status_code == 200, response.content
    assert "You said: Hello" in response.json()["choices"][0]["message"]["content"]
    assert response["x-aigateway-served-by"] == "demo/demo"


async def test_it_rejects_a_missing_key(demo_key):
    assert_openai_error(await post(HELLO, None), 401, "invalid_api_key")


async def test_it_rejects_a_wrong_key(demo_key):
    assert_openai_error(await post(HELLO, demo_key + "x"), 401, "invalid_api_key")


async def test_it_accepts_the_key_in_x_api_key(demo_key):
    response = await AsyncClient().post(
        URL,
        data=json.dumps(HELLO),
        content_type="application/json",
        headers={"x-api-key": demo_key},
    )
    assert response.status_code == 200


async def test_it_rejects_an_expired_key(cast):
    route = await sync_to_async(make_route)("demo", (await sync_to_async(make_provider)(), "demo"))
    expired = timezone.now() - timedelta(seconds=1)
    raw = (await sync_to_async(make_key)(cast.team, route, expires_at=expired)).raw_key
    assert_openai_error(await post(HELLO, raw), 401, "expired_api_key")


async def test_it_rejects_a_revoked_key_even_after_it_was_cached(cast):
    route = await sync_to_async(make_route)("demo", (await sync_to_async(make_provider)(), "demo"))
    issued = await sync_to_async(make_key)(cast.team, route)
    assert (await post(HELLO, issued.raw_key)).status_code == 200
    await sync_to_async(api_key_revoke)(api_key=issued.api_key)
    assert_openai_error(await post(HELLO, issued.raw_key), 401, "invalid_api_key")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("{not json", None),
        ("[1, 2]", None),
        ("", None),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 42, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "demo"}, "messages"),
        ({"model": "demo", "messages": []}, "messages"),
        ({"model": "demo", "messages": ["hi"]}, "messages[0]"),
        ({"model": "demo", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({**HELLO, "temperature": "hot"}, "temperature"),
        ({**HELLO, "temperature": 9}, "temperature"),
        ({**HELLO, "max_tokens": 0}, "max_tokens"),
        ({**HELLO, "max_tokens": True}, "max_tokens"),
        ({**HELLO, "stream": "yes"}, "stream"),
        ({**HELLO, "stop": [1]}, "stop"),
        ({**HELLO, "tools": "all"}, "tools"),
        ({**HELLO, "bogus_param": 1}, "bogus_param"),
        (
            {"model": "demo", "messages": [{"role": "assistant", "content": "x", "tool_calls": 5}]},
            "messages[0].tool_calls",
        ),
        (
            {
                "model": "demo",
                "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}],
            },
            "messages[0].content[0].text",
        ),
        (
            {"model": "demo", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
        ),
        (
            {"model": "demo", "messages": [{"role": "user", "content": ["hi"]}]},
            "messages[0].content[0]",
        ),
    ],
)
async def test_it_rejects_malformed_requests_with_a_clear_400(demo_key, body, param):
    error = assert_openai_error(await post(body, demo_key), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_it_rejects_a_huge_body_with_413(demo_key, settings):
    settings.AIGATEWAY_MAX_BODY_BYTES = 1000
    body = {**HELLO, "messages": [{"role": "user", "content": "x" * 5000}]}
    assert_openai_error(await post(body, demo_key), 413, "request_too_large")


async def test_it_answers_404_for_an_unknown_model(demo_key):
    error = assert_openai_error(await post({**HELLO, "model": "gpt-9"}, demo_key), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"


async def test_it_hides_routes_the_team_may_not_use(cast, demo_key):
    provider = await sync_to_async(make_provider)()
    await sync_to_async(make_route)(
        "secret-route", (provider, "demo")
    )  # exists, but not for this team
    error = assert_openai_error(await post({**HELLO, "model": "secret-route"}, demo_key), 404)
    assert error["code"] == "model_not_found"


def _narrow_key(team) -> str:
    provider = make_provider()
    wide, narrow = make_route("wide", (provider, "demo")), make_route("narrow", (provider, "demo"))
    team.allowed_routes.add(wide, narrow)
    return api_key_create(team=team, name="narrow-key", route_names=["narrow"]).raw_key


async def test_a_key_narrowed_to_some_routes_cannot_use_the_others(cast):
    raw = await sync_to_async(_narrow_key)(cast.team)
    assert (await post({**HELLO, "model": "narrow"}, raw)).status_code == 200
    assert_openai_error(await post({**HELLO, "model": "wide"}, raw), 404, "model_not_found")


async def test_get_is_not_allowed(demo_key):
    response = await AsyncClient().get(URL, headers={"Authorization": f"Bearer {demo_key}"})
    assert_openai_error(response, 405, "method_not_allowed")


async def test_unknown_endpoints_answer_json_404():
    response = await AsyncClient().get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_it_echoes_a_sane_request_id_and_replaces_a_hostile_one(demo_key):
    response = await post(HELLO, demo_key, **{"X-Request-ID": "abc-123"})
    assert response["x-request-id"] == "abc-123"
    response = await post(HELLO, demo_key, **{"X-Request-ID": "x" * 500})
    assert response["x-request-id"].startswith("req_")


async def test_models_lists_only_the_routes_this_key_may_use(cast, demo_key):
    await sync_to_async(make_route)("other", (await sync_to_async(make_provider)(), "demo"))
    response = await AsyncClient().get(
        "/v1/models", headers={"Authorization": f"Bearer {demo_key}"}
    )
    assert [m["id"] for m in response.json()["data"]] == ["demo"]
