"""The response scan that runs around every test (tests/secret_scan.py) finds what it should:
known secrets and secret shapes in test-client and live-server responses, with the one
exception of a freshly issued key shown once."""

from __future__ import annotations

import asyncio

import pytest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import Client
from django.urls import path

from tests.secret_scan import find_leaks, registry

PROVIDER_SECRET = "plain-provider-secret-4242"  # no secret shape: only the exact value finds it


def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"<p>{request.GET.get('show', '')}</p>")


def _streamed(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter([b"<p>plain-provider-", b"secret-4242</p>"]))


urlpatterns = [path("echo/", _echo), path("streamed/", _streamed)]


@pytest.fixture
def caught():
    """The leaks this test provokes on purpose, taken out of the registry so the scan's own
    teardown check does not fail the test."""
    yield registry.leaks
    registry.leaks.clear()


def test_a_known_secret_is_found_whatever_its_shape():
    assert find_leaks(f"<td>{PROVIDER_SECRET}</td>", known={PROVIDER_SECRET})


def test_secret_shapes_are_found_unless_the_request_submitted_them():
    page = "<input value='sk-proj-abcdefghijklmnop'>"
    assert find_leaks(page, known=set())
    assert not find_leaks(page, known=set(), submitted="text=sk-proj-abcdefghijklmnop")
    # An exactly known secret is a leak even when echoed.
    known = {"sk-proj-abcdefghijklmnop"}
    assert find_leaks(page, known=known, submitted="sk-proj-abcdefghijklmnop")


def test_a_freshly_issued_key_may_be_shown_exactly_once():
    key = "agw-" + "k" * 43
    assert not find_leaks(f"<input value='{key}'>", known={key}, issued_once={key})
    assert find_leaks(f"<input value='{key}'> {key}", known={key}, issued_once={key})


def test_masked_forms_and_prefixes_pass():
    assert not find_leaks("sk-…4242 and agw-AbCd1234 (fingerprint 0a1b2c3d4e5f)", known=set())


@pytest.mark.urls(__name__)
def test_the_test_client_s_responses_are_scanned(caught):
    registry.add(PROVIDER_SECRET)
    Client().get("/echo/", {"show": "harmless"})
    assert caught == []
    Client().get("/echo/", {"show": PROVIDER_SECRET})  # reflected, but an exactly known value
    body = b"".join(Client().get("/streamed/").streaming_content)
    assert PROVIDER_SECRET.encode() in body
    assert len(caught) == 2 and all("plai…(26 chars)" in leak for leak in caught)
    assert PROVIDER_SECRET not in "".join(caught)  # the report masks it


@pytest.mark.urls(__name__)
async def test_live_server_responses_are_scanned(caught):
    from aigateway.asgi import application

    registry.add(PROVIDER_SECRET)
    sent: list[dict] = []

    bodies = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict:
        if bodies:
            return bodies.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/streamed/",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "http_version": "1.1",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
        "root_path": "",
        "asgi": {"version": "3.0"},
    }
    await application(scope, receive, send)
    assert sent[0]["status"] == 200
    assert len(caught) == 1 and caught[0].startswith("GET /streamed/ -> 200")
