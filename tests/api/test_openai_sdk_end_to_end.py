"""The thin slice end to end: the official `openai` SDK over real HTTP to the ASGI app under
uvicorn, through the pipeline to a provider, streaming and not; usage is recorded."""

from __future__ import annotations

import openai
import pytest

from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from tests.factories import make_key, make_provider, make_route


@pytest.fixture
def demo_client(cast, live_gateway):
    route = make_route("demo", (make_provider(), "demo"))
    issued = make_key(cast.team, route)
    client = openai.OpenAI(
        base_url=live_gateway.openai_base_url, api_key=issued.raw_key, max_retries=0, timeout=10
    )
    yield client, issued
    client.close()


def test_the_sdk_gets_a_completion_from_the_demo_provider(demo_client):
    client, issued = demo_client
    raw = client.chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": "Hello there"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("[demo]")
    assert "You said: Hello there" in completion.choices[0].message.content
    assert completion.usage.prompt_tokens == 2
    assert completion.model == "demo"
    assert raw.headers["x-aigateway-served-by"] == "demo/demo"

    usage_recorder.flush()
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert record.team_id == issued.api_key.team_id
    assert record.key_prefix == issued.api_key.prefix
    assert (record.status_code, record.route, record.provider) == (200, "demo", "demo")
    assert record.output_tokens == completion.usage.completion_tokens


def test_the_sdk_streams_from_the_demo_provider(demo_client):
    client, _ = demo_client
    stream = client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "Stream me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    text = "".join(pieces)
    assert text.startswith("[demo]") and "You said: Stream me" in text
    assert len([p for p in pieces if p]) > 5  # really arrived in pieces
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == len(text.split())

    usage_recorder.flush()
    record = UsageRecord.objects.get(stream=True)
    assert record.status_code == 200 and record.ttft_ms is not None


def test_the_sdk_raises_its_own_error_types_for_gateway_errors(demo_client, live_gateway):
    client, _ = demo_client
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert not_found.value.code == "model_not_found"
    stranger = openai.OpenAI(
        base_url=live_gateway.openai_base_url, api_key="agw-wrong", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(model="demo", messages=[{"role": "user", "content": "x"}])


def test_models_lists_the_routes(demo_client):
    client, _ = demo_client
    assert [m.id for m in client.models.list()] == ["demo"]


def test_a_client_that_disconnects_mid_stream_is_recorded_with_what_it_got(demo_client):
    import time

    import requests

    client, issued = demo_client
    response = requests.post(
        str(client.base_url) + "chat/completions",
        json={"model": "demo", "stream": True,
              "messages": [{"role": "user", "content": "a long answer " * 30}]},
        headers={"Authorization": f"Bearer {issued.raw_key}"},
        stream=True, timeout=10,
    )  # fmt: skip
    lines = response.iter_lines()
    received = [next(lines) for _ in range(6)]
    assert any(b'"content"' in line for line in received)
    response.close()  # the client goes away mid-stream
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        usage_recorder.flush()
        record = UsageRecord.objects.filter(stream=True).first()
        if record is not None:
            break
        time.sleep(0.05)
    assert record is not None, "the cancelled stream was never recorded"
    assert record.status_code == 499
    full_answer_words = 15 + 30 * 3
    assert 0 < record.output_tokens < full_answer_words  # counts what was produced, not all
