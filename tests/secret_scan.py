"""Every response the suite sees is scanned for secrets (the "Hostile input" issue, Secrets).

What is scanned: every response body produced through ``django.test.Client`` /
``AsyncClient`` (streamed bodies as they are consumed) and every HTTP response of a live
server (``ASGIHandler.__call__``: uvicorn in a thread, whichever door, HTML pages, JSON,
event streams; /static/ files excepted).

What counts as a leak:
- any provider or team secret the test used, exactly: team keys and admin tokens as they are
  hashed at creation, provider secrets as they are encrypted, the keys of every FakeUpstream;
- any text of a secret's shape (``SECRET_PATTERNS`` of tests/conftest.py: ``agw-…``, ``sk-…``,
  bearer tokens, the fake Entra secrets), unless the request itself carried that text in its
  body or query string (a page or echo showing what its own client just submitted).

The one explicit exception: the response of a POST that issues a key or token (201 from the
endpoints in ``ISSUING``) may show each secret issued *by that request* exactly once.

A leak fails the test in whose time it happened (at teardown, like the log scan), naming
the URL and the masked secret, never the secret itself.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import pytest

MIN_LENGTH = 10  # shorter test values ("right", "x") are words, not secrets
BODY_LIMIT = 8 * 1024 * 1024  # bytes of one body kept for the scan (tests' bodies are small)
# POST endpoints that show a freshly issued secret once: the dashboard's key issue page, the
# management API's key and admin-token creation.
ISSUING = re.compile(r"^/teams/\d+/keys/$|^/api/v1/teams/\d+/keys$|^/api/v1/tokens$")


@dataclass
class _Registry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    seq: int = 0
    values: dict[str, int] = field(default_factory=dict)  # this test's secrets → when added
    always: set[str] = field(default_factory=set)  # FakeUpstream keys: live across tests
    leaks: list[str] = field(default_factory=list)
    scanned: int = 0

    def add(self, value: object, *, always: bool = False) -> None:
        if not isinstance(value, str) or len(value) < MIN_LENGTH:
            return
        with self.lock:
            self.seq += 1
            self.values[value] = self.seq
            if always:
                self.always.add(value)

    def current(self) -> tuple[int, set[str]]:
        """(sequence now, the secrets of the running test)."""
        with self.lock:
            return self.seq, set(self.values) | self.always

    def new_test(self) -> None:
        with self.lock:
            self.values.clear()
            self.leaks.clear()

    def issued_since(self, start: int) -> set[str]:
        with self.lock:
            return {v for v, s in self.values.items() if s > start}


registry = _Registry()


def _mask(secret: str) -> str:
    return f"{secret[:4]}…({len(secret)} chars)"


def _shapes() -> re.Pattern[str]:
    from tests.conftest import SECRET_PATTERNS

    return SECRET_PATTERNS


def find_leaks(
    body: str,
    *,
    known: Iterable[str],
    submitted: str = "",
    issued_once: Iterable[str] = (),
) -> list[str]:
    """Masked secrets found in ``body``: known values, and secret shapes the request did not
    itself submit. ``issued_once``: secrets that may appear exactly once."""
    allowed = set(issued_once)
    found: list[str] = []
    for secret in known:
        count = body.count(secret)
        if count and not (secret in allowed and count == 1):
            found.append(_mask(secret))
    for match in _shapes().finditer(body):
        text = match.group(0)
        if text in allowed or (submitted and text in submitted):
            continue
        if any(text in secret or secret in text for secret in allowed):
            continue
        found.append(_mask(text))
    return found


def _text(data: bytes | bytearray | str) -> str:
    if isinstance(data, str):
        return data
    return bytes(data[:BODY_LIMIT]).decode("utf-8", "replace")


def _submitted(body: bytes | str, query: str) -> str:
    raw = _text(body) + "\n" + query
    return raw + "\n" + unquote_plus(raw)  # forms and query strings arrive percent-encoded


def _check(
    *,
    method: str,
    path: str,
    status: int,
    body: bytes | bytearray | str,
    submitted: str,
    start: int,
) -> None:
    _, known = registry.current()
    issued: set[str] = set()
    if method == "POST" and status == 201 and ISSUING.match(path):
        issued = registry.issued_since(start)
    leaks = find_leaks(_text(body), known=known, submitted=submitted, issued_once=issued)
    with registry.lock:
        registry.scanned += 1
        if leaks:
            registry.leaks.append(f"{method} {path} -> {status}: {', '.join(sorted(set(leaks)))}")


# -- django.test.Client / AsyncClient ------------------------------------------------------
def _scan_response(response: Any, method: str, path: str, submitted: str, start: int) -> Any:
    def done(body: bytes | bytearray | str) -> None:
        _check(
            method=method,
            path=path,
            status=response.status_code,
            body=body,
            submitted=submitted,
            start=start,
        )

    if not getattr(response, "streaming", False):
        done(response.content)
        return response
    if getattr(response, "is_async", False):
        source_async: AsyncIterator[bytes] = response.streaming_content

        async def scanned_async() -> AsyncIterator[bytes]:
            seen = bytearray()
            async for chunk in source_async:
                if len(seen) < BODY_LIMIT:
                    seen.extend(chunk)
                yield chunk
            done(seen)

        response.streaming_content = scanned_async()
    else:
        source: Iterator[bytes] = response.streaming_content

        def scanned() -> Iterator[bytes]:
            seen = bytearray()
            for chunk in source:
                if len(seen) < BODY_LIMIT:
                    seen.extend(chunk)
                yield chunk
            done(seen)

        response.streaming_content = scanned()
    return response


def _patch_clients() -> list[Callable[[], None]]:
    from django.test import client as test_client

    def request_facts(method: str, path: Any, data: Any, kwargs: dict[str, Any]) -> tuple:
        from urllib.parse import urlencode, urlsplit

        parsed = urlsplit(str(path))
        query = parsed.query
        if kwargs.get("query_params"):
            query += "&" + urlencode(kwargs["query_params"], doseq=True)
        if kwargs.get("QUERY_STRING"):
            query += "&" + str(kwargs["QUERY_STRING"])
        body = data if isinstance(data, bytes | str) else ""
        return parsed.path, _submitted(body, query)

    sync_generic = test_client.Client.generic
    async_generic = test_client.AsyncClient.generic

    def generic(self: Any, method: str, path: Any, data: Any = "", *args: Any, **kw: Any) -> Any:
        start = registry.current()[0]
        response = sync_generic(self, method, path, data, *args, **kw)
        url_path, submitted = request_facts(method, path, data, kw)
        return _scan_response(response, method, url_path, submitted, start)

    def agenric(self: Any, method: str, path: Any, data: Any = "", *args: Any, **kw: Any) -> Any:
        start = registry.current()[0]
        pending = async_generic(self, method, path, data, *args, **kw)
        url_path, submitted = request_facts(method, path, data, kw)

        async def scanned() -> Any:
            return _scan_response(await pending, method, url_path, submitted, start)

        return scanned()

    test_client.Client.generic = generic  # type: ignore[method-assign]
    test_client.AsyncClient.generic = agenric  # type: ignore[method-assign]

    def undo() -> None:
        test_client.Client.generic = sync_generic  # type: ignore[method-assign]
        test_client.AsyncClient.generic = async_generic  # type: ignore[method-assign]

    return [undo]


# -- live servers (uvicorn in a thread, any door) ------------------------------------------
def _patch_asgi() -> list[Callable[[], None]]:
    from django.core.handlers.asgi import ASGIHandler

    original = ASGIHandler.__call__

    async def call(self: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope.get("type") != "http" or path.startswith("/static/"):
            await original(self, scope, receive, send)
            return
        start = registry.current()[0]
        request_body = bytearray()
        response_body = bytearray()
        status = 0

        async def receive_kept() -> Any:
            message = await receive()
            if message.get("type") == "http.request" and len(request_body) < BODY_LIMIT:
                request_body.extend(message.get("body", b""))
            return message

        async def send_scanned(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                if len(response_body) < BODY_LIMIT:
                    response_body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    query = scope.get("query_string", b"").decode("latin-1")
                    _check(
                        method=scope.get("method", ""),
                        path=path,
                        status=status,
                        body=response_body,
                        submitted=_submitted(request_body, query),
                        start=start,
                    )
            await send(message)

        await original(self, scope, receive_kept, send_scanned)

    ASGIHandler.__call__ = call  # type: ignore[method-assign]

    def undo() -> None:
        ASGIHandler.__call__ = original  # type: ignore[method-assign]

    return [undo]


# -- where secrets come from ---------------------------------------------------------------
def _registering(function: Callable[..., Any], *, always: bool = False) -> Callable[..., Any]:
    def wrapper(value: Any, *args: Any, **kwargs: Any) -> Any:
        registry.add(value, always=always)
        return function(value, *args, **kwargs)

    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    return wrapper


def _patch_sources() -> list[Callable[[], None]]:
    """Team keys and admin tokens when they are created (the services hash the raw value),
    provider secrets when they are stored (encrypted), FakeUpstream's accepted keys."""
    import auth.admin_tokens
    import auth.services
    import providers.services
    from aigateway.config_as_code import tenancy
    from tests.fakes.upstream import FakeUpstream

    undo: list[Callable[[], None]] = []
    for module, name in (
        (auth.services, "hash_api_key"),
        (tenancy, "hash_api_key"),
        (auth.admin_tokens, "hash_token"),
        (providers.services, "encrypt_secret"),
    ):
        original = getattr(module, name)
        setattr(module, name, _registering(original))
        undo.append(lambda m=module, n=name, o=original: setattr(m, n, o))

    init = FakeUpstream.__init__

    def fake_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        registry.add(self.api_key, always=True)

    FakeUpstream.__init__ = fake_init  # type: ignore[method-assign]
    undo.append(lambda: setattr(FakeUpstream, "__init__", init))
    return undo


@pytest.fixture(scope="session", autouse=True)
def _secret_scan_hooks() -> Iterator[None]:
    undo = _patch_sources() + _patch_clients() + _patch_asgi()
    yield
    for step in reversed(undo):
        step()


@pytest.fixture(autouse=True)
def _no_secret_in_any_response(_secret_scan_hooks: None) -> Iterator[None]:
    """Responses seen while this test ran are scanned; a leak fails it (at teardown)."""
    registry.new_test()
    yield
    with registry.lock:
        leaks = list(registry.leaks)
        registry.leaks.clear()
    if leaks:
        pytest.fail("secret in a response body:\n" + "\n".join(leaks[:5])[:2000])
