"""Drill (c): PostgreSQL stops for ``outage_seconds`` under load (``pg_ctl stop -m fast``:
clients are disconnected, as in a restart), then starts again.

Expected (docs/resilience.md, "When a dependency is down"): the API keeps answering from each
worker's in-process config cache (keys, routes, limits) and buffers its usage rows and audit
entries; dashboard pages answer a short 503 page (no trace) with Retry-After; ``/readyz``
answers 503 naming the database. After the restart the buffers are flushed: every call
answered during the drill has exactly one usage row and one audit entry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.reliability.faults import DEADLINE_MARGIN, check_common
from bench.reliability.report import DrillReport
from bench.reliability.stack import (
    ROUTE_TIMEOUT,
    Sampler,
    Stack,
    check_readyz_cycle,
    ready_again,
    readyz_probe,
)

FRIENDLY_TEXT = "Temporarily unavailable"
INTERNALS = ("Traceback", "OperationalError", "InterfaceError", "psycopg", "Server Error (500)")


@dataclass
class PostgresOutageConfig:
    outage_seconds: float = 20.0
    lead_seconds: float = 3.0  # load before PostgreSQL stops
    after_seconds: float = 6.0  # load after it is back
    rate: float = 20.0


def run(stack: Stack, config: PostgresOutageConfig | None = None) -> DrillReport:
    config = config or PostgresOutageConfig()
    assert stack.gateway is not None
    report = DrillReport("PostgreSQL restart", deadline=ROUTE_TIMEOUT + DEADLINE_MARGIN)
    report.facts.append(f"PostgreSQL down {config.outage_seconds:.0f} s")
    workers_before = stack.gateway.worker_pids()
    stack.sign_in()
    before = stack.page("/teams/")
    seconds = config.lead_seconds + config.outage_seconds + config.after_seconds
    load = stack.load("postgres", seconds, config.rate)
    with Sampler(readyz_probe(stack.base_url), 0.25) as ready:
        try:
            time.sleep(config.lead_seconds + 0.5)  # the load process needs a moment to start
            stack.postgres.stop("fast")
            stopped = time.time()  # gone (the stop waits for the process to exit)
            time.sleep(min(1.0, config.outage_seconds / 3))
            during = stack.page("/teams/")
            time.sleep(max(0.0, stopped + config.outage_seconds - time.time()))
        finally:
            restarting = time.time()  # the outage ends as the restart begins
            if not stack.postgres.up():
                stack.postgres.start()
        restarted = time.time()
        recovered = ready_again(ready)
        after = stack.page("/teams/")
        outcomes = load.wait()
    report.outcomes = outcomes

    def signed_in_page(answer: object) -> bool:
        return getattr(answer, "status", 0) == 200 and b'name="password"' not in answer.body  # type: ignore[attr-defined]

    report.check(
        "the teams page works before the outage", signed_in_page(before), f"HTTP {before.status}"
    )
    in_outage = [o for o in outcomes if stopped <= o.started < restarting]
    served = [o for o in in_outage if o.ok]
    report.check(
        "the API kept serving during the outage (config cache)",
        len(served) == len(in_outage) > 0,
        f"{len(served)} of {len(in_outage)}",
    )
    text = during.body.decode(errors="replace")
    report.check(
        "a page during the outage: friendly 503, no internals",
        during.status == 503
        and FRIENDLY_TEXT in text
        and during.headers.get("content-type", "").startswith("text/html")
        and "retry-after" in during.headers
        and not any(word in text for word in INTERNALS),
        f"HTTP {during.status}, retry-after {during.headers.get('retry-after')}",
    )
    check_readyz_cycle(report, ready, "database", stopped, restarting, restarted, recovered)
    report.check(
        "the teams page works again after the restart",
        signed_in_page(after),
        f"HTTP {after.status}",
    )
    failed = [o for o in outcomes if not o.ok]
    report.check(
        "every call of the drill succeeded",
        not failed,
        f"{len(outcomes) - len(failed)} of {len(outcomes)}",
    )
    check_common(report, stack, workers_before)
    report.facts.append(
        f"calls answered while PostgreSQL was down: {len(served)} "
        f"(their records were buffered and written after the restart)"
    )
    return report
