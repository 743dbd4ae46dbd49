"""Drill (a): the upstream misbehaves in every way it does in production, under load.

The primary deployment of route ``drill`` cycles through the fault modes below: for
``fault_seconds`` every call to it fails that way, then for ``heal_seconds`` it answers
normally. Meanwhile the load process sends 20 requests a second (every 4th a stream). Then:

- failover: every request succeeds through the fallback, except a stream whose first chunk
  had already reached the client when the primary broke (it cannot move any more: it ends
  with an error event, as documented in docs/resilience.md);
- the primary's breaker (its hash in Redis, sampled every 0.1 s) opens in each fault phase
  and is closed again by a successful probe in the following heal phase;
- no request takes longer than the route's deadline plus a margin;
- both workers are the same processes at the end (no crash, no restart);
- every answered request has exactly one usage row and one audit entry.

Before the load, retries are checked on route ``drill-solo`` (one deployment, 3 retries): a
429 with ``retry-after: 1`` is retried after a second, 500/529/reset/malformed are retried,
and 10 failures in a row give up after exactly 4 attempts (the audit entry says how many).
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from bench.reliability.outcomes import Outcome, api_call
from bench.reliability.report import DrillReport, records_check
from bench.reliability.stack import LOAD_KEY, READ_TIMEOUT, ROUTE_TIMEOUT, Sampler, Stack

DEADLINE_MARGIN = 2.0
ENDLESS = 10**6
# A call sent this little before a fault began may reach the upstream after it began (the
# gateway takes a moment on a busy machine): it belongs to the fault phase.
GRACE = 1.0


@dataclass(frozen=True)
class FaultMode:
    kind: str  # a tests/fakes/upstream.py fault kind
    what: str
    options: dict[str, Any] = field(default_factory=dict)


FAULT_MODES = (
    FaultMode("500", "HTTP 500"),
    FaultMode("529", "HTTP 529 overloaded"),
    FaultMode("429", "HTTP 429 with retry-after: 1", {"retry_after": 1}),
    FaultMode("slow", "answers after 5 s, past the 2 s read timeout", {"delay": 5}),
    FaultMode("reset", "TCP reset before any byte"),
    FaultMode("malformed", "200 whose body is not JSON"),
    FaultMode("reset_mid_stream", "part of the answer, then a TCP reset"),
    FaultMode("stall", "part of the answer, then silence for 30 s", {"delay": 30}),
)
MID_STREAM = frozenset({"reset_mid_stream", "stall"})
# A call to a silent upstream fails only after the read timeout: a probe sent just before the
# upstream healed reopens the breaker that much later, so these modes heal for longer.
SILENT = frozenset({"slow", "stall"})


@dataclass
class FaultsConfig:
    modes: tuple[str, ...] = tuple(m.kind for m in FAULT_MODES)
    fault_seconds: float = 3.0
    heal_seconds: float = 3.5
    lead_seconds: float = 2.0  # healthy load before the first fault
    rate: float = 20.0


@dataclass
class Phase:
    mode: FaultMode
    fault_start: float
    heal_start: float
    end: float

    def sent_during(self, outcome: Outcome) -> bool:
        return self.fault_start - GRACE <= outcome.started < self.heal_start


# (fault kind, options, how many calls fail, retries expected; None: gives up)
RETRY_CASES: tuple[tuple[str, dict[str, Any], int, int | None], ...] = (
    ("429", {"retry_after": 1}, 1, 1),
    ("500", {}, 2, 2),
    ("529", {}, 1, 1),
    ("reset", {}, 1, 1),
    ("malformed", {}, 1, 1),
    ("500", {}, 10, None),  # more than 1 + 3 retries: the call gives up after 4 attempts
)


def retry_checks(stack: Stack, report: DrillReport) -> list[Outcome]:
    assert stack.gateway is not None
    outcomes = []
    for kind, options, failures, _ in RETRY_CASES:
        stack.solo.reset()
        stack.solo.push_fault(kind, count=failures, **options)
        outcomes.append(api_call(stack.base_url, LOAD_KEY, "drill-solo", f"retry {kind}"))
    stack.solo.reset()
    details = _audit_details(stack, [o.request_id for o in outcomes])
    for (kind, options, failures, retries), outcome in zip(RETRY_CASES, outcomes, strict=True):
        seen = details.get(outcome.request_id, {})
        name = f"retry: {failures} x {kind}"
        if retries is None:
            report.check(
                name + " gives up after 1 + 3 retries",
                outcome.status >= 500 and seen.get("attempts") == 4,
                f"status {outcome.status}, attempts {seen.get('attempts')}",
            )
            continue
        ok = outcome.ok and seen.get("retries") == retries
        if "retry_after" in options:
            ok = ok and outcome.latency >= options["retry_after"]
        report.check(
            name + f" succeeds after {retries} retr{'y' if retries == 1 else 'ies'}",
            ok,
            f"status {outcome.status}, retries {seen.get('retries')}, "
            f"{outcome.latency * 1000:.0f} ms",
        )
    return outcomes


def _audit_details(stack: Stack, request_ids: list[str], wait: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while True:
        rows = stack.postgres.execute(
            "SELECT target_id, details FROM audit_auditevent WHERE target_id = ANY(%s)",
            "aigateway",
            (request_ids,),
        )
        if len(rows) >= len(request_ids) or time.monotonic() > deadline:
            return {target: details for target, details in rows}
        time.sleep(0.3)


def run(stack: Stack, config: FaultsConfig | None = None) -> DrillReport:
    config = config or FaultsConfig()
    assert stack.gateway is not None
    modes = [m for m in FAULT_MODES if m.kind in config.modes]
    report = DrillReport("upstream faults", deadline=ROUTE_TIMEOUT + DEADLINE_MARGIN)
    workers_before = stack.gateway.worker_pids()
    report.outcomes += retry_checks(stack, report)

    def heal_seconds(mode: FaultMode) -> float:
        return config.heal_seconds + (READ_TIMEOUT if mode.kind in SILENT else 0.0)

    seconds = config.lead_seconds + sum(config.fault_seconds + heal_seconds(m) for m in modes)
    drill_start = time.time()
    load = stack.load("faults", seconds, config.rate)
    phases: list[Phase] = []
    with Sampler(lambda: stack.breaker_state("drill-primary"), 0.1) as breaker:
        try:
            at = time.time() + config.lead_seconds
            for mode in modes:
                time.sleep(max(0.0, at - time.time()))
                stack.primary.reset()
                stack.primary.push_fault(mode.kind, count=ENDLESS, **mode.options)
                fault_start = time.time()
                time.sleep(max(0.0, fault_start + config.fault_seconds - time.time()))
                stack.primary.reset()
                heal_start = time.time()
                at = heal_start + heal_seconds(mode)
                phases.append(Phase(mode, fault_start, heal_start, at))
        finally:
            stack.primary.reset()
        load_outcomes = load.wait()
        time.sleep(0.5)  # a last breaker sample after the load
    report.outcomes += load_outcomes

    for phase in phases:
        _check_phase(report, phase, load_outcomes, breaker)
    in_faults = [o for o in load_outcomes if any(p.sent_during(o) for p in phases)]
    _check_healthy(report, [o for o in load_outcomes if o not in in_faults], phases)
    check_common(report, stack, workers_before)
    report.facts.append(_transitions(stack, "drill-primary", drill_start))
    return report


def _check_healthy(report: DrillReport, outcomes: list[Outcome], phases: list[Phase]) -> None:
    """Calls sent while the primary was healthy all succeed."""
    failed = [o for o in outcomes if not o.ok]
    report.check(
        "calls sent while the upstream was healthy all succeeded",
        not failed,
        f"{len(outcomes)} sent, {len(failed)} failed",
    )
    for o in failed[:5]:
        phase = next((p for p in phases if p.heal_start <= o.started < p.end), None)
        where = (
            f"{o.started - phase.heal_start:.2f} s after {phase.mode.kind} healed"
            if phase
            else "before the first fault"
        )
        report.facts.append(
            f"  failed while healthy: {o.request_id} {o.error} stream={o.stream} "
            f"{o.latency * 1000:.0f} ms, sent {where}"
        )


def _check_phase(
    report: DrillReport, phase: Phase, outcomes: list[Outcome], breaker: Sampler
) -> None:
    kind = phase.mode.kind
    during = [o for o in outcomes if phase.sent_during(o)]
    failed = [o for o in during if not o.ok]
    allowed = [
        o for o in failed if kind in MID_STREAM and o.stream and o.error.startswith("stream_error:")
    ]
    reasons = collections.Counter(o.error for o in failed if o not in allowed)
    moved = sum(o.ok and (o.failovers > 0 or o.served_by.startswith("fallback")) for o in during)
    report.check(
        f"{kind}: every call failed over or is a stream cut after its first chunk",
        len(during) > 0 and not reasons and moved > 0,
        f"{len(during)} sent, {moved} served by the fallback, {len(allowed)} streams cut"
        + (f", other failures {dict(reasons)}" if reasons else ""),
    )
    samples = [(at, s) for at, s in breaker.samples if phase.fault_start <= at <= phase.end]
    opened_at = next((at for at, s in samples if s == "open"), None)
    last_unhealthy = max((at for at, s in samples if s != "closed"), default=None)
    closed_at = next((at for at, s in samples if last_unhealthy and at > last_unhealthy), None)
    report.check(
        f"{kind}: breaker opened, and was closed again by the end of the heal phase",
        opened_at is not None and bool(samples) and samples[-1][1] == "closed",
        f"open {opened_at - phase.fault_start:.1f} s after the fault began"
        if opened_at
        else "never opened",
    )
    if opened_at is not None and closed_at is not None:
        report.facts.append(
            f"{kind}: breaker open {opened_at - phase.fault_start:.1f} s after the fault began, "
            f"closed for good {closed_at - phase.heal_start:.1f} s after the upstream healed"
        )


def check_common(report: DrillReport, stack: Stack, workers_before: set[int]) -> None:
    """What every drill checks at its end: deadline, workers, records."""
    assert stack.gateway is not None
    report.check(
        "no request outlived its deadline",
        report.max_latency <= report.deadline,
        f"max {report.max_latency:.2f} s <= {report.deadline:.0f} s",
    )
    workers_after = stack.gateway.worker_pids()
    report.check(
        "both workers alive, same processes",
        workers_after == workers_before and len(workers_after) == stack.workers,
        f"{sorted(workers_before)} -> {sorted(workers_after)}",
    )
    answered = [o.request_id for o in report.outcomes if o.request_id]
    report.records = records_check(stack.postgres, answered, "aigateway")
    report.check("every answered request stored exactly once", report.records.exactly_once)


def _transitions(stack: Stack, upstream_model: str, since: float) -> str:
    rows = stack.postgres.execute(
        "SELECT from_state, to_state, count(*) FROM routing_breakerevent WHERE deployment_id = "
        "%s AND created_at >= to_timestamp(%s) GROUP BY from_state, to_state ORDER BY 3 DESC",
        "aigateway",
        (stack.deployments[upstream_model], since),
    )
    return "breaker transitions stored: " + ", ".join(f"{a} -> {b} {n}" for a, b, n in rows)
