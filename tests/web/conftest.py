"""Fixtures of the Limits page tests; their data and helpers are in tests/web/limits_support.py."""

from __future__ import annotations

import pytest

from aigateway.quotas.limiter import InProcessLimiter
from tests.web.limits_support import World, build_world


@pytest.fixture
def fresh_limiter(monkeypatch: pytest.MonkeyPatch) -> InProcessLimiter:
    """A new in-process limiter per test (limit ids repeat across tests). The Limits page
    modules use it for every test (``pytest.mark.usefixtures``)."""
    from aigateway.gateway import limits

    local = InProcessLimiter()
    monkeypatch.setattr(limits, "_local", local)
    return local


@pytest.fixture
def world(cast) -> World:
    return build_world(cast)
