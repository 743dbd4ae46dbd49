"""The ASGI handler's hop-free API path (aigateway/core/asgi_handler.py).

Requests are driven in process through the real ASGI application (no server), so the test can
count how often Django hands work to a thread on the way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref import sync as asgiref_sync

from tests.factories import make_key, make_provider, make_route

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo_key(cast: Any) -> str:
    route = make_route("demo", (make_provider(), "demo"))
    return make_key(cast.team, route).raw_key


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the sync functions run through ``sync_to_async`` while the test runs."""
    hops: list[str] = []
    original = asgiref_sync.SyncToAsync.__call__

    async def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref_sync.SyncToAsync, "__call__", counting)
    yield hops


def asgi_call(
    method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    from aigateway.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    start = sent[0]
    headers_out = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers_out, b"".join(m.get("body", b"") for m in sent[1:])


def chat(key: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"model": "demo", "messages": [{"role": "user", "content": "hi"}]})
    return asgi_call(
        "POST", "/v1/chat/completions", body=body.encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )  # fmt: skip


def test_a_warm_api_call_runs_without_any_thread_hop(demo_key: str, thread_hops: list[str]):
    status, _, _ = chat(demo_key)  # the first call loads the key and route (run_db)
    assert status == 200
    thread_hops.clear()
    status, _, body = chat(demo_key)
    assert status == 200, body
    assert json.loads(body)["object"] == "chat.completion"
    assert thread_hops == []


def test_a_page_still_takes_django_s_stock_path(db: None, thread_hops: list[str]):
    status, _, _ = asgi_call("GET", "/login/")
    assert status == 200
    assert thread_hops  # middlewares (sessions, CSRF, ...) run in threads as usual


def test_api_responses_keep_the_security_headers_of_the_middleware(demo_key: str, settings: Any):
    settings.SECURE_REFERRER_POLICY = "same-origin"
    status, headers, _ = chat(demo_key)
    assert status == 200
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in headers  # no session middleware on the API path


def test_errors_on_the_fast_path_are_openai_shaped(demo_key: str):
    status, headers, body = asgi_call(
        "POST", "/v1/chat/completions", body=b"{not json",
        headers={"authorization": f"Bearer {demo_key}", "content-type": "application/json"},
    )  # fmt: skip
    assert status == 400
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert headers["x-request-id"].startswith("req_")


def test_a_bad_key_is_refused_on_the_fast_path(db: None):
    status, _, body = asgi_call(
        "GET", "/v1/models", headers={"authorization": "Bearer agw-not-a-real-key"}
    )
    assert status == 401
    assert json.loads(body)["error"]["code"] == "invalid_api_key"


def test_a_door_s_fixed_path_is_resolved_once_paths_with_ids_every_time(
    db: None, monkeypatch: pytest.MonkeyPatch
):
    from aigateway.core import asgi_handler

    resolved: list[str] = []
    real = asgi_handler.get_resolver

    class Counting:
        def resolve(self, path: str) -> Any:
            resolved.append(path)
            return real().resolve(path)

    monkeypatch.setattr(asgi_handler, "get_resolver", Counting)
    handler = asgi_handler.GatewayASGIHandler()

    def door(path: str) -> Any:
        return handler._api_door({"type": "http", "path": path, "root_path": ""})

    first, second = door("/v1/chat/completions"), door("/v1/chat/completions")
    assert first is second and first.url_name
    assert resolved == ["/v1/chat/completions"]
    assert door("/v1/files/file-abc") is not None
    assert door("/v1/files/file-abc") is not None
    assert resolved.count("/v1/files/file-abc") == 2  # an id in the path: not cached
    for _ in range(2):  # the API's own 404 door takes the unknown path as an argument
        assert door("/v1/no-such-thing").url_name is None
    assert resolved.count("/v1/no-such-thing") == 2
    assert len(handler._door_matches) == 1
    assert door("/healthz") is None  # not under /v1/: never resolved here
