"""The ASGI lifespan startup pays the one-off costs (URLconf, tokenizer) before the first
request, so the first caller does not wait ~1 s for them (measured in docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import gc

import pytest
from django.urls import get_resolver
from django.urls.resolvers import _get_cached_resolver

from aigateway import asgi


@pytest.mark.django_db
def test_startup_loads_the_urlconf_before_the_first_request() -> None:
    _get_cached_resolver.cache_clear()  # as in a fresh process
    sent: list[dict[str, str]] = []
    messages = iter([{"type": "lifespan.startup"}])

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            raise asyncio.CancelledError  # stop before waiting for shutdown

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(asgi.application({"type": "lifespan"}, receive, send))

    assert sent == [{"type": "lifespan.startup.complete"}]
    assert "url_patterns" in vars(get_resolver())  # loaded by the warm-up, not by a request
    # Startup's objects are frozen out of the collector's full passes (the p99 stalls).
    assert gc.get_freeze_count() > 100_000
    gc.unfreeze()
