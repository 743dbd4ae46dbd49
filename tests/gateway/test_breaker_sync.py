"""How a process keeps the shared (Redis) breakers off the hot path: a closed breaker is trusted
for AIGATEWAY_BREAKER_SYNC_SECONDS, successes and latency samples are written in batches, a
failure writes them first (aigateway/gateway/breaker_sync.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from aigateway.core.loop_refresher import GRACE_INTERVALS
from aigateway.gateway import breaker_sync as breaker_sync_module
from aigateway.gateway import resilience
from aigateway.gateway.breaker import BreakerConfig, Decision, breaker_store
from aigateway.gateway.breaker_redis import RedisBreakerStore
from aigateway.gateway.breaker_sync import breaker_sync
from aigateway.gateway.latency import latency_snapshot
from providers.base import DeploymentTarget

TARGET = DeploymentTarget(
    deployment_id=41, provider_name="p", provider_kind="openai", upstream_model="m"
)


@pytest.fixture
async def shared(redis_url: str, settings: pytest.FixtureRequest) -> RedisBreakerStore:
    settings.AIGATEWAY_BREAKER_SYNC_SECONDS = 60  # type: ignore[attr-defined]
    store = breaker_store()
    assert isinstance(store, RedisBreakerStore)
    return store


async def _snapshot(store: RedisBreakerStore) -> tuple[str, int, int, int]:
    state = await store.snapshot(41, time.time(), BreakerConfig.from_settings())
    return state.state, state.window_ok, state.window_failed, state.consecutive_failures


async def _succeed(times: int, latency_ms: float = 100.0) -> None:
    for _ in range(times):
        decision = await resilience._breaker_decision(TARGET)
        assert decision is Decision.ALLOW
        await resilience._call_succeeded(TARGET, decision, latency_ms)


async def test_successes_are_held_back_then_written_in_one_go(shared: RedisBreakerStore):
    await _succeed(1)  # the first success after start is written at once (nothing was due)
    await _succeed(4, latency_ms=200.0)
    assert await _snapshot(shared) == ("closed", 1, 0, 0)
    await resilience.outcomes_flush()
    assert await _snapshot(shared) == ("closed", 5, 0, 0)
    latency = await latency_snapshot([41])
    assert 100 < latency[41] < 200  # the held-back samples' mean was folded in


async def test_a_failure_writes_the_pending_successes_before_itself(
    shared: RedisBreakerStore,
):
    await _succeed(3)
    await resilience.breaker_note(TARGET, ok=False)
    _, ok, failed, consecutive = await _snapshot(shared)
    assert (ok, failed, consecutive) == (3, 1, 1)


async def test_a_breaker_opened_by_another_process_is_seen_after_the_sync_interval(
    shared: RedisBreakerStore, settings: pytest.FixtureRequest
):
    settings.AIGATEWAY_BREAKER_SYNC_SECONDS = 0.5  # type: ignore[attr-defined]
    await _succeed(1)  # this process now trusts "closed" for 0.5 s
    await shared.force(41, "open")  # as an admin or another worker would, straight in Redis
    assert await resilience._breaker_decision(TARGET) is Decision.ALLOW  # still trusted
    await asyncio.sleep(0.8)  # the refresher re-read it in the background meanwhile
    assert 41 not in breaker_sync.closed_until
    assert await resilience._breaker_decision(TARGET) is Decision.REJECT


def _count_allows(store: RedisBreakerStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    asked: list[int] = []
    allow = store.allow

    async def counting(deployment_id: int, *args: object) -> tuple[Decision, object]:
        asked.append(deployment_id)
        return await allow(deployment_id, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "allow", counting)
    return asked


async def test_calls_after_the_interval_do_not_ask_redis_while_the_refresher_runs(
    shared: RedisBreakerStore, settings: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
):
    settings.AIGATEWAY_BREAKER_SYNC_SECONDS = 0.2  # type: ignore[attr-defined]
    asked = _count_allows(shared, monkeypatch)
    for _ in range(6):  # 1.2 s of calls, six intervals
        assert await resilience._breaker_decision(TARGET) is Decision.ALLOW
        await asyncio.sleep(0.2)
    assert asked == [41]  # only the first call asked; the refresher kept the copy fresh
    assert breaker_sync.closed_within_grace(41)


async def test_a_stalled_refresher_is_trusted_only_for_the_grace_then_calls_ask(
    shared: RedisBreakerStore, settings: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
):
    settings.AIGATEWAY_BREAKER_SYNC_SECONDS = 0.5  # type: ignore[attr-defined]
    await _succeed(1)
    await shared.force(41, "open")
    asked = _count_allows(shared, monkeypatch)
    time.sleep(0.6)  # the loop is blocked: the refresher cannot run
    assert await resilience._breaker_decision(TARGET) is Decision.ALLOW  # within the grace
    time.sleep(GRACE_INTERVALS * 0.5)
    assert await resilience._breaker_decision(TARGET) is Decision.REJECT  # past it: asked
    assert asked == [41]


async def test_a_deployment_no_longer_called_is_no_longer_re_read(
    shared: RedisBreakerStore, settings: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
):
    settings.AIGATEWAY_BREAKER_SYNC_SECONDS = 0.1  # type: ignore[attr-defined]
    monkeypatch.setattr(breaker_sync_module, "IDLE_FORGET_SECONDS", 0.25)
    await _succeed(1)
    await asyncio.sleep(0.15)
    assert 41 in breaker_sync.closed_until  # re-read while it was called recently
    await asyncio.sleep(0.4)  # no call for longer than IDLE_FORGET_SECONDS
    assert 41 not in breaker_sync.closed_until
    assert 41 not in breaker_sync.last_called


@pytest.mark.parametrize(
    ("setup", "closed"),
    [
        ("nothing", True),  # a breaker never written is closed
        ("reset", True),
        ("closed", True),  # forced closed
        ("open", False),  # forced open
        ("opened", False),  # opened by failures (and its recovery time has passed)
    ],
)
async def test_closed_among_answers_as_allow_would_without_changing_anything(
    shared: RedisBreakerStore, settings: pytest.FixtureRequest, setup: str, closed: bool
):
    settings.AIGATEWAY_BREAKER_FAILURES = 1  # type: ignore[attr-defined]
    settings.AIGATEWAY_BREAKER_RECOVERY_SECONDS = 0  # type: ignore[attr-defined]
    if setup == "opened":
        await shared.record(41, time.time(), False, BreakerConfig.from_settings())
    elif setup != "nothing":
        await shared.force(41, setup)
    before = await _snapshot(shared)
    assert await shared.closed_among([41, 42]) == ({41, 42} if closed else {42})
    assert await _snapshot(shared) == before  # read-only: an open breaker stays open
    decision, _ = await shared.allow(41, time.time(), BreakerConfig.from_settings())
    assert (decision is Decision.ALLOW) == closed


async def test_this_process_s_own_failure_forgets_the_trusted_closed_state(
    shared: RedisBreakerStore, settings: pytest.FixtureRequest
):
    settings.AIGATEWAY_BREAKER_FAILURES = 1  # type: ignore[attr-defined]
    await _succeed(1)
    await resilience.breaker_note(TARGET, ok=False)  # opens it (one failure is enough here)
    assert await resilience._breaker_decision(TARGET) is Decision.REJECT


async def test_an_open_breaker_is_asked_every_time(shared: RedisBreakerStore):
    await shared.force(41, "open")
    assert await resilience._breaker_decision(TARGET) is Decision.REJECT
    await shared.force(41, "reset")
    assert await resilience._breaker_decision(TARGET) is Decision.ALLOW


async def test_zero_sync_seconds_writes_every_outcome(
    shared: RedisBreakerStore, settings: pytest.FixtureRequest
):
    settings.AIGATEWAY_BREAKER_SYNC_SECONDS = 0  # type: ignore[attr-defined]
    await _succeed(3)
    assert await _snapshot(shared) == ("closed", 3, 0, 0)
    assert not breaker_sync.closed_until


async def test_the_in_process_backend_writes_every_outcome_directly(db: None):
    await _succeed(2)
    state = await breaker_store().snapshot(41, time.time(), BreakerConfig.from_settings())
    assert state.window_ok == 2
    assert not breaker_sync.pending


async def test_a_read_started_before_this_process_saw_a_failure_does_not_trust_it_again(
    shared: RedisBreakerStore, settings: pytest.FixtureRequest
):
    settings.AIGATEWAY_BREAKER_SYNC_SECONDS = 60  # type: ignore[attr-defined]
    await _succeed(1)
    read_at = time.monotonic()  # the refresher starts reading: the breaker is closed
    await resilience.breaker_note(TARGET, ok=False)  # meanwhile this process sees a failure
    breaker_sync.remember_closed(41)  # and a call admitted before it caches "closed" again
    breaker_sync.refreshed([41], {41}, read_at)  # the read (from before) comes back
    assert 41 not in breaker_sync.closed_until  # the next call asks Redis
