"""A stream's deployment hears how the stream ended, not that it opened.

Found by the upstream-faults drill (bench/reliability/faults.py): when every stream of a
deployment broke after its first chunk, each counted as a success (at the first chunk) and
then a failure, so the consecutive-failure count kept going back to zero and the breaker could
stay closed under a deployment that never finished a stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from aigateway.routing.models import BreakerEvent
from tests.api.resilience_support import (
    Gateway,
    breaker_transition_stored,
    build_gateway,
    sse_events,
)

FAILURES = 3
RECOVERY = 0.5


@pytest.fixture(autouse=True)
def _quick_breaker(settings) -> None:
    settings.AIGATEWAY_BREAKER_FAILURES = FAILURES
    settings.AIGATEWAY_BREAKER_RECOVERY_SECONDS = RECOVERY
    settings.AIGATEWAY_BREAKER_PROBE_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def gateway(cast, live_gateway, upstream_a) -> Iterator[Gateway]:
    built = build_gateway(
        team=cast.team, base_url=live_gateway.openai_base_url, primary_upstream=upstream_a,
        secondary_upstream=None, max_retries=0,
    )  # fmt: skip
    yield built
    built.close()


def _stream_events(gateway: Gateway) -> list[str]:
    response = gateway.raw_stream()
    assert response.status_code == 200
    return sse_events(response)


def test_streams_broken_after_their_first_chunk_open_the_breaker(
    backend, gateway, upstream_a
) -> None:
    upstream_a.push_fault("reset_mid_stream", count=FAILURES, after=2)
    for _ in range(FAILURES):
        events = _stream_events(gateway)
        assert '"error"' in events[-2]  # cut after content: an in-stream error event
    assert breaker_transition_stored(gateway.primary, "closed", "open")


def test_a_stream_that_ends_normally_closes_the_breaker_as_its_probe(
    backend, gateway, upstream_a
) -> None:
    upstream_a.push_fault("reset_mid_stream", count=FAILURES, after=2)
    for _ in range(FAILURES):
        _stream_events(gateway)
    assert breaker_transition_stored(gateway.primary, "closed", "open")
    time.sleep(RECOVERY + 0.1)

    events = _stream_events(gateway)  # the probe: a complete stream
    assert events[-1] == "[DONE]" and '"error"' not in events[-2]
    assert breaker_transition_stored(gateway.primary, "half_open", "closed")
    assert not BreakerEvent.objects.filter(
        deployment=gateway.primary, from_state="half_open", to_state="open"
    ).exists()


def test_a_stream_that_stalls_mid_way_ends_at_the_routes_timeout(
    cast, live_gateway, upstream_a
) -> None:
    """After its first chunk a stream is bounded per gap by the route's timeout (when shorter
    than the HTTP client's read timeout), not by the upstream's silence."""
    route_timeout = 1.0
    built = build_gateway(
        team=cast.team, base_url=live_gateway.openai_base_url, primary_upstream=upstream_a,
        secondary_upstream=None, max_retries=0, timeout_seconds=route_timeout,
    )  # fmt: skip
    try:
        upstream_a.push_fault("stall", count=1, after=1, delay=30)
        started = time.monotonic()
        events = _stream_events(built)
        elapsed = time.monotonic() - started
    finally:
        built.close()
    assert route_timeout <= elapsed < route_timeout + 5, elapsed
    assert '"content"' in events[0]  # the chunk before the stall reached the client
    assert '"error"' in events[-2] and "timeout" in events[-2]
