"""What a drill found: counts, failures by reason, latency, records, and named checks."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

from bench.reliability.harness import PostgresCluster
from bench.reliability.outcomes import Outcome


@dataclass
class Records:
    """Usage rows and API-call audit entries stored for the request ids a drill saw."""

    expected: int = 0
    usage_stored: int = 0
    audit_stored: int = 0
    usage_missing: list[str] = field(default_factory=list)
    audit_missing: list[str] = field(default_factory=list)
    audit_duplicated: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return not (self.usage_missing or self.audit_missing or self.audit_duplicated)

    def line(self) -> str:
        return (
            f"records: expected {self.expected}, usage rows {self.usage_stored}, audit entries "
            f"{self.audit_stored} (missing usage {len(self.usage_missing)}, missing audit "
            f"{len(self.audit_missing)}, duplicated audit {len(self.audit_duplicated)})"
        )


def records_check(
    postgres: PostgresCluster, request_ids: list[str], dbname: str, wait: float = 30
) -> Records:
    """Poll until every request id has its usage row and audit entry (they are written in
    batches, about once a second, later after an outage) or ``wait`` passes; then count.
    Usage rows are unique by request id (a constraint); audit entries are counted."""
    ids = sorted(set(request_ids))
    deadline = time.monotonic() + wait
    while True:
        usage = {
            row[0]
            for row in postgres.execute(
                "SELECT request_id FROM usage_usagerecord WHERE request_id = ANY(%s)",
                dbname,
                (ids,),
            )
        }
        audit = dict(
            postgres.execute(
                "SELECT target_id, count(*) FROM audit_auditevent WHERE action = 'api.call' AND "
                "target_id = ANY(%s) GROUP BY target_id",
                dbname,
                (ids,),
            )
        )
        complete = len(usage) == len(ids) and len(audit) == len(ids)
        if complete or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return Records(
        expected=len(ids),
        usage_stored=len(usage),
        audit_stored=sum(audit.values()),
        usage_missing=[i for i in ids if i not in usage],
        audit_missing=[i for i in ids if i not in audit],
        audit_duplicated=[i for i, n in audit.items() if n > 1],
    )


@dataclass
class DrillReport:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)
    records: Records | None = None
    deadline: float = 0.0  # the longest any request may take (route deadline + margin)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks[name + (f" ({detail})" if detail else "")] = passed
        return passed

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    @property
    def max_latency(self) -> float:
        return max((o.latency for o in self.outcomes), default=0.0)

    def summary(self) -> str:
        failed = collections.Counter(
            o.error or f"http_{o.status}" for o in self.outcomes if not o.ok
        )
        succeeded = sum(o.ok for o in self.outcomes)
        failovers = sum(o.ok and o.failovers > 0 for o in self.outcomes)
        latencies = sorted(o.latency for o in self.outcomes)
        p50 = latencies[len(latencies) // 2] if latencies else 0.0
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
        lines = [
            f"== {self.name}: {'PASS' if self.passed else 'FAIL'}",
            f"requests sent {len(self.outcomes)}, succeeded {succeeded} "
            f"(after a failover: {failovers}), failed {len(self.outcomes) - succeeded}",
        ]
        if failed:
            lines.append(
                "failed by reason: " + ", ".join(f"{k} {v}" for k, v in failed.most_common())
            )
        lines.append(
            f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max "
            f"{self.max_latency * 1000:.0f} ms (deadline + margin {self.deadline:.1f} s)"
        )
        if self.records is not None:
            lines.append(self.records.line())
        lines += self.facts
        lines += [f"  [{'ok' if ok else 'FAILED'}] {name}" for name, ok in self.checks.items()]
        return "\n".join(lines)
