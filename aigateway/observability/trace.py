"""The decision trace of one call: what the pipeline checked, saw and chose, and how long
each stage took.

Every call carries one (``CallContext.trace``). Recording is appends of small slotted
records, whether or not anyone asks for the trace; ``as_dict`` builds the JSON-safe form
only when someone reads it (the audit entry, an admin's debug header, the OpenTelemetry
exporter). It never holds prompts, completions or keys: credentials appear by fingerprint.

Times are ``time.perf_counter`` values; ``as_dict`` reports them in milliseconds from the
trace's origin (the moment the call context was created; the auth stage starts before it,
so its offset is negative).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from providers.base import DeploymentTarget


@dataclass(slots=True)
class StageTiming:
    name: str  # auth, route, limits, cache, backoff, stream, record
    start: float
    end: float


@dataclass(slots=True)
class LimitCheck:
    scope: str  # org, team, key, user
    scope_id: int
    kind: str  # rpm, tpm, concurrent, tokens_day, ...
    limit: float
    remaining: float | None  # None: not reached (an earlier check refused the call)
    allowed: bool


@dataclass(slots=True)
class AttemptRecord:
    deployment_id: int | None
    provider: str
    upstream_model: str
    credential: str  # the credential's fingerprint, never the key
    start: float
    end: float = 0.0
    outcome: str = ""  # "ok" or the error kind (rate_limited, timeout, server_error, ...)


@dataclass(slots=True)
class Retry:
    round: int  # the round that just failed (0 = the first)
    reason: str
    wait_seconds: float


@dataclass(slots=True)
class Failover:
    from_deployment: int | None
    to_deployment: int | None
    reason: str


@dataclass(slots=True)
class GuardrailNote:
    """A guardrail rule that matched (names and counts only, never the matched text)."""

    rule: str  # the detector or limit: pii.email, injection.ignore_previous, max_messages, …
    action: str  # block | redact | flag
    direction: str  # input | output
    count: int = 1


@dataclass(slots=True)
class _Stage:
    """``with trace.stage("limits"):`` times a stage even when it raises."""

    trace: DecisionTrace
    name: str
    start: float = 0.0

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.trace.stages.append(StageTiming(self.name, self.start, time.perf_counter()))


@dataclass(slots=True)
class DecisionTrace:
    origin: float = field(default_factory=time.perf_counter)
    origin_wall_ns: int = field(default_factory=time.time_ns)
    stages: list[StageTiming] = field(default_factory=list)
    limits: list[LimitCheck] = field(default_factory=list)
    cache_status: str = ""
    cache_similarity: float | None = None  # the best semantic match, hit or not
    breakers: list[tuple[int | None, str]] = field(default_factory=list)  # (deployment, decision)
    skipped: list[tuple[int | None, str]] = field(default_factory=list)  # (deployment, why)
    attempts: list[AttemptRecord] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    failovers: list[Failover] = field(default_factory=list)
    served: AttemptRecord | None = None
    guardrails: list[GuardrailNote] = field(default_factory=list)  # aigateway/guardrails
    # Set by the door when the caller asked for the trace and may see it.
    reveal: bool = False

    # -- recording (cheap: appends) ----------------------------------------------------------
    def stage(self, name: str) -> _Stage:
        return _Stage(self, name)

    def add_stage(self, name: str, start: float, end: float | None = None) -> None:
        self.stages.append(StageTiming(name, start, time.perf_counter() if end is None else end))

    def limit(
        self, scope: str, scope_id: int, kind: str, limit: float, remaining: float | None,
        *, allowed: bool = True,
    ) -> None:  # fmt: skip
        self.limits.append(LimitCheck(scope, scope_id, kind, limit, remaining, allowed))

    def cache(self, status: str, similarity: float | None) -> None:
        self.cache_status, self.cache_similarity = status, similarity

    def breaker(self, deployment_id: int | None, decision: str) -> None:
        self.breakers.append((deployment_id, decision))

    def skip(self, deployment_id: int | None, why: str) -> None:
        self.skipped.append((deployment_id, why))

    def attempt(self, target: DeploymentTarget) -> AttemptRecord:
        record = AttemptRecord(
            target.deployment_id, target.provider_name, target.upstream_model,
            target.credential_fingerprint, time.perf_counter(),
        )  # fmt: skip
        self.attempts.append(record)
        return record

    def attempt_done(self, record: AttemptRecord, outcome: str) -> None:
        record.end, record.outcome = time.perf_counter(), outcome
        if outcome == "ok":
            self.served = record

    def retry(self, round_index: int, reason: str, wait_seconds: float) -> None:
        self.retries.append(Retry(round_index, reason, wait_seconds))

    def failover(self, from_id: int | None, to_id: int | None, reason: str) -> None:
        self.failovers.append(Failover(from_id, to_id, reason))

    def guardrail(self, rule: str, action: str, direction: str) -> None:
        for note in self.guardrails:
            if note.rule == rule and note.action == action and note.direction == direction:
                note.count += 1
                return
        self.guardrails.append(GuardrailNote(rule, action, direction))

    # -- reading -------------------------------------------------------------------------
    def upstream_seconds(self) -> float:
        """Time spent waiting on upstreams (every attempt; a stream's until its first chunk)."""
        return sum(max(0.0, a.end - a.start) for a in self.attempts if a.end)

    def backoff_seconds(self) -> float:
        return sum(s.end - s.start for s in self.stages if s.name == "backoff")

    def _ms(self, value: float) -> float:
        return round((value - self.origin) * 1000, 3)

    def wall_ns(self, value: float) -> int:
        """A perf_counter value as Unix time in nanoseconds (for OpenTelemetry spans)."""
        return self.origin_wall_ns + int((value - self.origin) * 1e9)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: str keys, and str, int, float, bool, None, lists and dicts as values."""
        data: dict[str, Any] = {
            "stages": [
                {"name": s.name, "start_ms": self._ms(s.start), "duration_ms": _ms(s.end - s.start)}
                for s in self.stages
            ],
            "limits": [
                {
                    "scope": c.scope,
                    "scope_id": c.scope_id,
                    "kind": c.kind,
                    "limit": c.limit,
                    "remaining": c.remaining,
                    "allowed": c.allowed,
                }
                for c in self.limits
            ],
            "cache": {"status": self.cache_status, "similarity": self.cache_similarity},
            "breakers": [{"deployment_id": d, "decision": s} for d, s in self.breakers],
            "skipped": [{"deployment_id": d, "reason": r} for d, r in self.skipped],
            "attempts": [self._attempt(a) for a in self.attempts],
            "retries": [
                {"round": r.round, "reason": r.reason, "wait_ms": _ms(r.wait_seconds)}
                for r in self.retries
            ],
            "failovers": [
                {
                    "from_deployment_id": f.from_deployment,
                    "to_deployment_id": f.to_deployment,
                    "reason": f.reason,
                }
                for f in self.failovers
            ],
            "served_by": None if self.served is None else _served(self.served),
        }
        if self.guardrails:  # only calls a guardrail matched carry the key
            data["guardrails"] = [
                {"rule": g.rule, "action": g.action, "direction": g.direction, "count": g.count}
                for g in self.guardrails
            ]
        return data

    def _attempt(self, a: AttemptRecord) -> dict[str, Any]:
        return {
            **_served(a),
            "start_ms": self._ms(a.start),
            "duration_ms": _ms(a.end - a.start) if a.end else None,
            "outcome": a.outcome or "unfinished",
        }

    def compact_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), allow_nan=False)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _served(a: AttemptRecord) -> dict[str, Any]:
    return {
        "deployment_id": a.deployment_id,
        "provider": a.provider,
        "upstream_model": a.upstream_model,
        "credential_fingerprint": a.credential,
    }
