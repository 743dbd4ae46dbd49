"""The circuit breaker contract, run against both backends (in-process and Redis).

Every test passes explicit ``now`` values, so nothing sleeps. The last tests run a second OS
process (tests/gateway/breaker_peer.py) against the same Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from aigateway.gateway.breaker import (
    BreakerConfig,
    BreakerState,
    BreakerStore,
    Decision,
    InProcessBreakerStore,
    Transition,
    breaker_store,
)
from aigateway.gateway.breaker_redis import RedisBreakerStore

ROOT = Path(__file__).resolve().parents[2]
CFG = BreakerConfig(
    failures=3, failure_rate=0.5, min_requests=10, window_seconds=10, recovery_seconds=5,
    probe_timeout=2,
)  # fmt: skip
DEP = 7
T0 = 100.0
PROBE_REASON = "recovery timeout elapsed; admitting one probe"


def _store(backend: str) -> BreakerStore:
    """The store the app would use; checks that the backend under test is the one in use."""
    store = breaker_store()
    expected = RedisBreakerStore if backend == "redis" else InProcessBreakerStore
    assert isinstance(store, expected)
    return store


async def _record(
    store: BreakerStore, outcomes: str, now: float, dep: int = DEP, cfg: BreakerConfig = CFG
) -> list[Transition | None]:
    """Record outcomes in order: ``+`` a success, ``x`` a failure."""
    return [await store.record(dep, now, c == "+", cfg) for c in outcomes]


async def _open(store: BreakerStore, now: float = T0, dep: int = DEP) -> None:
    transitions = await _record(store, "xxx", now, dep)
    assert transitions[-1] == Transition(dep, "closed", "open", "3 consecutive failures")


async def _half_open(store: BreakerStore, dep: int = DEP) -> None:
    """Open at T0, then take the probe at T0 + recovery."""
    await _open(store, dep=dep)
    decision, _ = await store.allow(dep, T0 + CFG.recovery_seconds, CFG)
    assert decision is Decision.PROBE


# -- closed -------------------------------------------------------------------------------
async def test_closed_allows(backend):
    store = _store(backend)
    assert await store.allow(DEP, T0, CFG) == (Decision.ALLOW, None)
    assert await _record(store, "+x+", T0) == [None, None, None]
    assert await store.allow(DEP, T0, CFG) == (Decision.ALLOW, None)


async def test_opens_after_consecutive_failures(backend):
    store = _store(backend)
    transitions = await _record(store, "xxx", T0)
    assert transitions == [None, None, Transition(DEP, "closed", "open", "3 consecutive failures")]
    assert await store.allow(DEP, T0, CFG) == (Decision.REJECT, None)


async def test_a_success_resets_the_consecutive_count(backend):
    store = _store(backend)
    assert await _record(store, "xx+xx+xx", T0) == [None] * 8
    assert (await store.snapshot(DEP, T0, CFG)).consecutive_failures == 2
    assert await store.allow(DEP, T0, CFG) == (Decision.ALLOW, None)
    transitions = await _record(store, "x", T0 + 1)
    assert transitions == [Transition(DEP, "closed", "open", "3 consecutive failures")]


async def test_opens_on_failure_rate_once_min_requests_is_reached(backend):
    store = _store(backend)
    # 6 failures in 10 calls, never 3 in a row; the rate is checked when a failure lands.
    transitions = await _record(store, "+xx+xx+x+x", T0)
    assert transitions[:-1] == [None] * 9
    assert transitions[-1] == Transition(DEP, "closed", "open", "failure rate 60% over 10 calls")
    assert (await store.allow(DEP, T0, CFG))[0] is Decision.REJECT


@pytest.mark.parametrize(
    ("min_requests", "outcomes", "reason"),
    [
        (10, "+x+x+x+x+x", "failure rate 50% over 10 calls"),  # exactly at the threshold
        (13, "+xx+xx+xx+x+x", "failure rate 62% over 13 calls"),  # 61.5% rounds up
        (12, "+xx+xx+x+x+x", "failure rate 58% over 12 calls"),  # 58.3% rounds down
        (8, "+xx+x+xx", "failure rate 63% over 8 calls"),  # 62.5%: half rounds up
        (10, "++++x+x+x+xx+xx+xx", "failure rate 50% over 18 calls"),  # below 50% until then
    ],
)
async def test_failure_rate_reason_is_the_same_text_on_both_backends(
    backend, min_requests, outcomes, reason
):
    cfg = dataclasses.replace(CFG, min_requests=min_requests)
    store = _store(backend)
    transitions = [await store.record(DEP, T0, c == "+", cfg) for c in outcomes]
    assert transitions == [None] * (len(outcomes) - 1) + [Transition(DEP, "closed", "open", reason)]


async def test_below_the_rate_or_below_min_requests_stays_closed(backend):
    store = _store(backend)
    assert await _record(store, "+x+x+x+xx", T0) == [None] * 9  # 5/9 but only 9 calls
    assert await _record(store, "++", T0) == [None, None]  # successes never open it
    assert await _record(store, "x", T0, dep=DEP + 1) == [None]
    assert await _record(store, "x+" * 3 + "+" * 4 + "x", T0, dep=DEP + 2) == [None] * 11  # 4/11
    assert (await store.allow(DEP, T0, CFG))[0] is Decision.ALLOW
    assert (await store.allow(DEP + 2, T0, CFG))[0] is Decision.ALLOW


async def test_old_buckets_fall_out_of_the_window(backend):
    store = _store(backend)
    for dep in (1, 2):
        assert await _record(store, "+x+x+x+x", T0, dep=dep) == [None] * 8
    # 10 s later the bucket of T0 is out of the window: 1 failure in 2 calls, stays closed.
    assert await _record(store, "+x", T0 + CFG.window_seconds, dep=1) == [None, None]
    snap = await store.snapshot(1, T0 + CFG.window_seconds, CFG)
    assert (snap.state, snap.window_ok, snap.window_failed) == ("closed", 1, 1)
    # Just inside the window the old calls still count: 5 failures in 10 calls opens it.
    transitions = await _record(store, "+x", T0 + CFG.window_seconds - 0.5, dep=2)
    assert transitions == [None, Transition(2, "closed", "open", "failure rate 50% over 10 calls")]


async def test_the_window_slides_bucket_by_bucket(backend):
    cfg = dataclasses.replace(CFG, failure_rate=0.9)  # 50% failures: it stays closed
    store = _store(backend)
    for second in range(10):  # one success and one failure in each 1 s bucket, T0 .. T0+9
        assert await _record(store, "+x", T0 + second + 0.25, cfg=cfg) == [None, None]
    for now, expected in ((T0 + 9.5, 10), (T0 + 10, 9), (T0 + 14.9, 5), (T0 + 19, 0)):
        snap = await store.snapshot(DEP, now, cfg)
        assert (snap.window_ok, snap.window_failed) == (expected, expected), now


# -- open and half-open ---------------------------------------------------------------------
async def test_open_rejects_until_recovery_then_admits_one_probe(backend):
    store = _store(backend)
    await _open(store)
    for now in (T0, T0 + 1, T0 + CFG.recovery_seconds - 0.001):
        assert await store.allow(DEP, now, CFG) == (Decision.REJECT, None)
    probe_at = T0 + CFG.recovery_seconds
    assert await store.allow(DEP, probe_at, CFG) == (
        Decision.PROBE,
        Transition(DEP, "open", "half_open", PROBE_REASON),
    )
    assert (await store.snapshot(DEP, probe_at, CFG)).state == "half_open"
    # While the lease is held everyone else is rejected.
    for now in (probe_at, probe_at + 1, probe_at + CFG.probe_timeout - 0.001):
        assert await store.allow(DEP, now, CFG) == (Decision.REJECT, None)
    # The probe never reported back: once the lease expires the next caller gets it.
    regrant_at = probe_at + CFG.probe_timeout
    assert await store.allow(DEP, regrant_at, CFG) == (Decision.PROBE, None)
    assert await store.allow(DEP, regrant_at + 1, CFG) == (Decision.REJECT, None)
    assert await store.allow(DEP, regrant_at + CFG.probe_timeout, CFG) == (Decision.PROBE, None)


async def test_probe_success_closes(backend):
    store = _store(backend)
    await _half_open(store)
    now = T0 + CFG.recovery_seconds + 0.5
    transition = await store.record(DEP, now, True, CFG)
    assert transition == Transition(DEP, "half_open", "closed", "probe succeeded")
    assert await store.allow(DEP, now, CFG) == (Decision.ALLOW, None)
    snap = await store.snapshot(DEP, now, CFG)
    # The window starts afresh: the failures that opened it no longer count.
    assert (snap.state, snap.consecutive_failures, snap.window_ok, snap.window_failed) == (
        "closed", 0, 0, 0,
    )  # fmt: skip
    assert await _record(store, "xx", now) == [None, None]  # needs 3 new consecutive failures


async def test_probe_failure_reopens_and_restarts_the_recovery_clock(backend):
    store = _store(backend)
    await _half_open(store)
    failed_at = T0 + CFG.recovery_seconds + 1
    transition = await store.record(DEP, failed_at, False, CFG)
    assert transition == Transition(DEP, "half_open", "open", "probe failed")
    snap = await store.snapshot(DEP, failed_at, CFG)
    assert (snap.state, snap.opened_at) == ("open", failed_at)
    # Rejected for a full recovery period from the probe's failure, not from T0.
    assert await store.allow(DEP, failed_at + CFG.recovery_seconds - 0.001, CFG) == (
        Decision.REJECT, None,
    )  # fmt: skip
    assert await store.allow(DEP, failed_at + CFG.recovery_seconds, CFG) == (
        Decision.PROBE,
        Transition(DEP, "open", "half_open", PROBE_REASON),
    )


async def test_late_results_while_open_change_nothing(backend):
    store = _store(backend)
    await _open(store)
    assert await _record(store, "+x+", T0 + 1) == [None, None, None]  # calls started earlier
    snap = await store.snapshot(DEP, T0 + 1, CFG)
    assert (snap.state, snap.opened_at) == ("open", T0)
    assert await store.allow(DEP, T0 + CFG.recovery_seconds - 0.001, CFG) == (
        Decision.REJECT, None,
    )  # fmt: skip


async def test_exactly_one_probe_under_concurrency(backend):
    store = _store(backend)
    await _open(store)
    results = await asyncio.gather(
        *(store.allow(DEP, T0 + CFG.recovery_seconds, CFG) for _ in range(50))
    )
    decisions = [decision for decision, _ in results]
    assert decisions.count(Decision.PROBE) == 1
    assert decisions.count(Decision.REJECT) == 49
    transitions = [t for _, t in results if t is not None]
    assert transitions == [Transition(DEP, "open", "half_open", PROBE_REASON)]


async def test_exactly_one_probe_when_the_lease_expires_under_concurrency(backend):
    store = _store(backend)
    await _half_open(store)
    regrant_at = T0 + CFG.recovery_seconds + CFG.probe_timeout
    results = await asyncio.gather(*(store.allow(DEP, regrant_at, CFG) for _ in range(50)))
    assert [d for d, _ in results].count(Decision.PROBE) == 1
    assert all(t is None for _, t in results)


async def test_breakers_are_per_deployment(backend):
    store = _store(backend)
    await _open(store, dep=1)
    assert (await store.allow(1, T0, CFG))[0] is Decision.REJECT
    assert (await store.allow(2, T0, CFG))[0] is Decision.ALLOW
    assert await store.snapshot(2, T0, CFG) == BreakerState()


# -- forcing ------------------------------------------------------------------------------
async def test_force_open_rejects_even_when_healthy(backend):
    store = _store(backend)
    await _record(store, "+++", T0)
    assert await store.force(DEP, "open") == Transition(DEP, "closed", "forced_open", "forced open")
    for now in (T0, T0 + 1000):  # no recovery from a forced state
        assert await store.allow(DEP, now, CFG) == (Decision.REJECT, None)
    assert await _record(store, "++", T0 + 1) == [None, None]
    assert (await store.snapshot(DEP, T0 + 1, CFG)).state == "forced_open"


async def test_force_closed_allows_an_open_breaker_and_records_do_not_open_it(backend):
    store = _store(backend)
    await _open(store)
    assert await store.force(DEP, "closed") == Transition(
        DEP, "open", "forced_closed", "forced closed"
    )
    assert await store.allow(DEP, T0 + 1, CFG) == (Decision.ALLOW, None)
    assert await _record(store, "x" * 12, T0 + 1) == [None] * 12
    assert await store.allow(DEP, T0 + 1, CFG) == (Decision.ALLOW, None)
    snap = await store.snapshot(DEP, T0 + 1, CFG)
    assert snap.state == "forced_closed"
    # Outcomes still count in the window; the consecutive count is frozen while forced.
    assert (snap.consecutive_failures, snap.window_failed) == (3, 15)


async def test_reset_returns_to_closed_with_counts_cleared(backend):
    store = _store(backend)
    await _record(store, "x+", T0 - 1)
    await _open(store)
    assert await store.force(DEP, "reset") == Transition(DEP, "open", "closed", "forced reset")
    assert await store.snapshot(DEP, T0, CFG) == BreakerState()
    assert await store.allow(DEP, T0, CFG) == (Decision.ALLOW, None)
    assert await _record(store, "xx", T0) == [None, None]  # a fresh count of consecutive ones


@pytest.mark.parametrize(
    ("setup", "steps"),
    [
        ("closed", [("open", "closed", "forced_open"), ("reset", "forced_open", "closed")]),
        ("closed", [("closed", "closed", "forced_closed"), ("reset", "forced_closed", "closed")]),
        (
            "open",
            [
                ("open", "open", "forced_open"),
                ("closed", "forced_open", "forced_closed"),
                ("open", "forced_closed", "forced_open"),
                ("reset", "forced_open", "closed"),
                ("reset", "closed", "closed"),
            ],
        ),
        ("half_open", [("open", "half_open", "forced_open"), ("reset", "forced_open", "closed")]),
        ("half_open", [("reset", "half_open", "closed")]),
    ],
)
async def test_force_transitions_report_effective_states(backend, setup, steps):
    store = _store(backend)
    if setup == "open":
        await _open(store)
    elif setup == "half_open":
        await _half_open(store)
    for mode, before, after in steps:
        assert await store.force(DEP, mode) == Transition(DEP, before, after, f"forced {mode}")
        assert (await store.snapshot(DEP, T0, CFG)).state == after


async def test_after_reset_the_breaker_works_normally_again(backend):
    store = _store(backend)
    await store.force(DEP, "open")
    await store.force(DEP, "reset")
    await _open(store, now=T0 + 50)
    assert (await store.allow(DEP, T0 + 55, CFG))[0] is Decision.PROBE


# -- snapshot -----------------------------------------------------------------------------
async def test_snapshot_reports_state_and_counts(backend):
    store = _store(backend)
    assert await store.snapshot(DEP, T0, CFG) == BreakerState("closed", 0, 0, 0, 0.0)
    await _record(store, "+x", T0 - 3)
    await _record(store, "++xx", T0)
    assert await store.snapshot(DEP, T0, CFG) == BreakerState("closed", 2, 3, 3, 0.0)
    await _record(store, "x", T0 + 1)
    assert await store.snapshot(DEP, T0 + 1, CFG) == BreakerState("open", 3, 3, 4, T0 + 1)
    # 8 s later only the calls of T0 and T0+1 remain in the window.
    assert await store.snapshot(DEP, T0 + 8, CFG) == BreakerState("open", 3, 2, 3, T0 + 1)


async def test_snapshot_uses_the_same_buckets_as_record(backend):
    # 0.1 s buckets: 1.0 // 0.1 == 9.0 but floor(1.0 / 0.1) == 10, the bucket record() uses.
    cfg = dataclasses.replace(CFG, window_seconds=1.0)
    store = _store(backend)
    await store.record(DEP, 0.0, False, cfg)
    assert (await store.snapshot(DEP, 0.95, cfg)).window_failed == 1
    assert (await store.snapshot(DEP, 1.0, cfg)).window_failed == 0
    await store.record(DEP, 1.0, True, cfg)  # record() agrees: bucket 0 is pruned at 1.0
    snap = await store.snapshot(DEP, 1.0, cfg)
    assert (snap.window_ok, snap.window_failed) == (1, 0)


async def test_wall_clock_times_keep_full_precision(backend):
    """time.time() values: opened_at and the probe lease must not be rounded (a Lua
    tostring() keeps 14 digits, which moved them by up to 50 µs in Redis only)."""
    store = _store(backend)
    now = 1_780_000_000.987654
    await _open(store, now=now)
    assert (await store.snapshot(DEP, now, CFG)).opened_at == now
    probe_at = now + CFG.recovery_seconds
    assert (await store.allow(DEP, probe_at - 1e-5, CFG))[0] is Decision.REJECT
    assert (await store.allow(DEP, probe_at, CFG))[0] is Decision.PROBE
    regrant_at = probe_at + CFG.probe_timeout
    assert (await store.allow(DEP, regrant_at - 1e-5, CFG))[0] is Decision.REJECT
    assert (await store.allow(DEP, regrant_at, CFG))[0] is Decision.PROBE
    failed_at = regrant_at + 0.000123
    await store.record(DEP, failed_at, False, CFG)
    assert (await store.snapshot(DEP, failed_at, CFG)).opened_at == failed_at


# -- two OS processes sharing Redis -------------------------------------------------------
async def _peer(
    redis_url: str, dep: int, action: str, count: int = 1, *, now: float, wait_for: str = ""
) -> list[dict]:
    proc = await _start_peer(redis_url, dep, action, count, now=now, wait_for=wait_for)
    return await _peer_output(proc)


async def _start_peer(
    redis_url: str, dep: int, action: str, count: int, *, now: float, wait_for: str = ""
) -> asyncio.subprocess.Process:
    args = [
        str(ROOT / "tests/gateway/breaker_peer.py"), redis_url, str(dep), action, str(count),
        "--now", repr(now), "--config", json.dumps(dataclasses.asdict(CFG)),
    ]  # fmt: skip
    if wait_for:
        args += ["--wait-for", wait_for]
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT, env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _peer_output(proc: asyncio.subprocess.Process) -> list[dict]:
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    return [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]


async def test_two_processes_share_one_breaker(redis_url):
    store = breaker_store()
    assert isinstance(store, RedisBreakerStore)

    lines = await _peer(redis_url, DEP, "fail", 3, now=T0)
    assert [line["transition"] for line in lines] == [
        None, None, ["closed", "open", "3 consecutive failures"],
    ]  # fmt: skip
    assert await store.allow(DEP, T0 + 1, CFG) == (Decision.REJECT, None)
    snap = await store.snapshot(DEP, T0 + 1, CFG)
    assert (snap.state, snap.consecutive_failures, snap.opened_at) == ("open", 3, T0)

    probe_at = T0 + CFG.recovery_seconds
    lines = await _peer(redis_url, DEP, "allow", now=probe_at)
    assert lines == [{"decision": "probe", "transition": ["open", "half_open", PROBE_REASON]}]
    assert await store.allow(DEP, probe_at, CFG) == (Decision.REJECT, None)  # one probe in all

    transition = await store.record(DEP, probe_at + 0.5, True, CFG)
    assert transition == Transition(DEP, "half_open", "closed", "probe succeeded")
    lines = await _peer(redis_url, DEP, "allow", now=probe_at + 0.5)
    assert lines == [{"decision": "allow", "transition": None}]


async def test_exactly_one_probe_across_processes_racing(redis_url):
    store = breaker_store()
    await _open(store)
    go = f"aigw:test:go:{uuid.uuid4().hex}"
    probe_at = T0 + CFG.recovery_seconds
    peers = [await _start_peer(redis_url, DEP, "allow", 25, now=probe_at, wait_for=go)
             for _ in range(2)]  # fmt: skip
    # Wait until both are connected and waiting (polling: the app's client has a 2 s socket
    # timeout, too short for a blocking pop on a loaded machine), then release them at once.
    deadline = asyncio.get_running_loop().time() + 60
    while await store.client.llen(f"{go}:ready") < len(peers):
        assert asyncio.get_running_loop().time() < deadline, "the peers did not start"
        await asyncio.sleep(0.02)
    await store.client.rpush(go, *["go"] * len(peers))
    mine = await asyncio.gather(*(store.allow(DEP, probe_at, CFG) for _ in range(25)))
    theirs = [line for proc in peers for line in await _peer_output(proc)]

    decisions = [str(d) for d, _ in mine] + [line["decision"] for line in theirs]
    assert len(decisions) == 75
    assert decisions.count("probe") == 1
    assert decisions.count("reject") == 74
    transitions = [t for _, t in mine if t] + [x["transition"] for x in theirs if x["transition"]]
    assert len(transitions) == 1


async def test_an_unused_probe_lease_can_be_given_back(backend):
    """A probe that never ran (the call stopped before reaching the upstream) must not
    keep the breaker half-open and closed to everyone for the whole probe timeout."""
    from aigateway.gateway.breaker import BreakerConfig, Decision, breaker_store

    cfg = BreakerConfig(failures=1, failure_rate=1.0, min_requests=100, window_seconds=10,
                        recovery_seconds=5, probe_timeout=30)  # fmt: skip
    store = breaker_store()
    await store.record(77, 1000.0, False, cfg)
    assert (await store.allow(77, 1006.0, cfg))[0] is Decision.PROBE
    assert (await store.allow(77, 1006.5, cfg))[0] is Decision.REJECT
    await store.release_probe(77)
    assert (await store.allow(77, 1007.0, cfg))[0] is Decision.PROBE
    assert (await store.allow(77, 1007.5, cfg))[0] is Decision.REJECT
