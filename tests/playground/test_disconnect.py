"""Stop: the browser aborts its fetch mid-stream. Over real HTTP (uvicorn, the app's stock
ASGI path): the server notices the disconnect, the pipeline's stream is closed down to the
upstream connection (the fake upstream sees it dropped before its last frame), the usage row
counts the tokens produced so far, and the run is kept as stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from django.test import Client

from aigateway.playground.models import PlaygroundRun
from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from tests.fakes.upstream import FakeUpstream
from tests.playground.support import STREAM_URL, UPSTREAM_KEY, build_world, conversation

CSRF = "playgroundcsrftoken0123456789abc"  # any 32 letters/digits: cookie and header match
WORDS = " ".join(f"w{i}" for i in range(27))  # the echo has 30 words: 30 chunks


@pytest.fixture
def slow_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY, chunk_delay=0.05) as fake:
        yield fake


def browser_session(user) -> requests.Session:
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    session.cookies.set("csrftoken", CSRF)
    session.headers["X-CSRFToken"] = CSRF
    return session


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_stopping_closes_the_upstream_and_records_the_partial_answer(
    cast, slow_upstream, live_gateway
):
    build_world(cast, slow_upstream)
    session = browser_session(cast.carol)
    url = live_gateway.base_url + STREAM_URL
    tokens = 0
    payload = conversation(cast.team, WORDS)
    with session.post(url, json=payload, stream=True, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if line == b"event: token":
                tokens += 1
                if tokens == 5:
                    break
    # The connection is closed (as an aborted fetch closes it) with ~25 chunks still to come.
    _wait_for(lambda: slow_upstream.streams_cut)
    cut = slow_upstream.streams_cut[0]
    assert cut.path == "/v1/chat/completions"
    assert 5 <= cut.frames_sent < cut.frames_total - 10

    def recorded() -> bool:
        usage_recorder.flush()
        return UsageRecord.objects.filter(request_id=request_id).exists()

    _wait_for(recorded)
    row = UsageRecord.objects.get(request_id=request_id)
    assert (row.source, row.user_id, row.team_id, row.status_code) == (
        "playground", cast.carol.pk, cast.team.pk, 499,
    )  # fmt: skip
    # What was produced: a few words (~4 characters a token), far from the full 30.
    assert 1 <= row.output_tokens < 20
    _wait_for(lambda: PlaygroundRun.objects.filter(request_id=request_id).exists())
    run = PlaygroundRun.objects.get(request_id=request_id)
    assert run.meta["status"] == "stopped"
    assert run.answer.startswith("Echo from up-model:") and len(run.answer.split()) < 30
    assert len(slow_upstream.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_full_stream_is_not_cut(cast, slow_upstream, live_gateway):
    build_world(cast, slow_upstream)
    session = browser_session(cast.carol)
    response = session.post(
        live_gateway.base_url + STREAM_URL, json=conversation(cast.team, "short one"), timeout=10
    )
    assert response.status_code == 200
    assert response.text.rstrip().split("\n\n")[-1].startswith("event: meta")
    assert slow_upstream.streams_cut == []


@pytest.mark.django_db(transaction=True)
def test_a_post_without_the_csrf_token_is_refused(cast, slow_upstream, live_gateway):
    build_world(cast, slow_upstream)
    session = browser_session(cast.carol)
    del session.headers["X-CSRFToken"]
    response = session.post(
        live_gateway.base_url + STREAM_URL, json=conversation(cast.team), timeout=10
    )
    assert response.status_code == 403
    assert slow_upstream.requests == []
