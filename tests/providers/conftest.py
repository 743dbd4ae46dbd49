"""Fixtures for the adapter tests: the wire-level fake upstream (tests/fakes/upstream.py), fresh
targets for an adapter kind, and the adapters built from them (their HTTP pools closed after
the test). A test module says which kind it tests by overriding the ``kind`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from providers.base import DeploymentTarget, ProviderAdapter, get_adapter
from tests.fakes.upstream import FakeUpstream
from tests.providers.support import Connect, MakeTarget, build_target


def _forget(upstream: FakeUpstream) -> None:
    """Back to a fresh fake: no requests, faults, tokens, required key or extra keys."""
    upstream.reset()
    upstream.issued_tokens.clear()
    upstream.token_requests.clear()
    upstream.entra_token_lifetime = 3600
    upstream.api_key = None
    upstream.extra_keys.clear()


@pytest.fixture(scope="module")
def running_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def upstream(running_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The module's fake upstream, forgetting what the previous test did to it."""
    _forget(running_upstream)
    yield running_upstream
    _forget(running_upstream)


@pytest.fixture
def kind() -> str:
    raise pytest.UsageError("override the `kind` fixture: which adapter kind the module tests")


@pytest.fixture
def make_target(kind: str, upstream: FakeUpstream) -> MakeTarget:
    """``make_target(**fields)``: a target of this kind (or ``kind=…``) with a fresh provider
    name, so a fresh adapter built with the current settings."""

    def make(kind: str = kind, **overrides: Any) -> DeploymentTarget:
        return build_target(kind, upstream, **overrides)

    return make


@pytest.fixture
def target(make_target: MakeTarget) -> DeploymentTarget:
    return make_target()


@pytest.fixture
async def adapters() -> AsyncIterator[list[ProviderAdapter]]:
    """Adapters the test built; their HTTP pools are closed afterwards."""
    built: list[ProviderAdapter] = []
    yield built
    for adapter in built:
        close = getattr(adapter, "aclose", None) or adapter.client.close  # type: ignore[attr-defined]
        await close()


@pytest.fixture
def connect(adapters: list[ProviderAdapter]) -> Connect:
    def connect(target: DeploymentTarget) -> ProviderAdapter:
        adapter = get_adapter(target)
        if adapter not in adapters:
            adapters.append(adapter)
        return adapter

    return connect


@pytest.fixture
async def adapter(connect: Connect, target: DeploymentTarget) -> ProviderAdapter:
    return connect(target)  # async: adapters are cached per running event loop


@pytest.fixture
def short_read_timeout(settings: Any) -> float:
    settings.AIGATEWAY_UPSTREAM_READ_TIMEOUT = 0.5
    return 0.5
