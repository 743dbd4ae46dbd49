"""Faults under load from a second process (issue "Faults"): shortened drills of
bench/reliability, asserted.

One stack for the module (bench/reliability/stack.py): three fake upstreams in this process,
a private PostgreSQL cluster and redis-server, the gateway under uvicorn with 2 workers (DEBUG
off), configured with ``manage.py gateway apply``. The load is bench/reliability/load.py in
its own process, 20 requests a second, every 4th a stream. The drills run in file order and
each leaves the stack healthy; the fixture stops everything, on failure too (and the harness
again at interpreter exit).

- upstream faults: retries as configured (route with one deployment), then 429 with
  retry-after, a reset mid-stream and a stalled stream on the primary in turn: calls fail
  over, the breaker opens and closes again, no call outlives its deadline, no worker dies;
- Redis down 3 s: calls keep being served (limits fail open, per worker), /readyz says so,
  limits count in Redis again and the breaker works after the restart;
- PostgreSQL down 5 s: the API serves from the config cache, a dashboard page is a friendly
  503, and every call's usage row and audit entry is stored exactly once after the restart.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.reliability import faults, pg_outage, redis_outage
from bench.reliability.report import DrillReport
from bench.reliability.stack import LOW_RPM, Stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack() as running:
        yield running


def _failed_checks(report: DrillReport) -> list[str]:
    return [name for name, ok in report.checks.items() if not ok]


def _explain(report: DrillReport, stack: Stack) -> str:
    """The report, and the end of the gateway's log (for a failure on CI)."""
    assert stack.gateway is not None
    return report.summary() + "\n--- gateway log ---\n" + stack.gateway.log_tail(3000)


def test_upstream_faults_fail_over_open_the_breaker_and_never_outlive_the_deadline(
    stack: Stack,
) -> None:
    modes = ("429", "reset_mid_stream", "stall")
    config = faults.FaultsConfig(modes=modes, fault_seconds=2.5, heal_seconds=3.5, lead_seconds=1)
    report = faults.run(stack, config)
    assert not _failed_checks(report), _explain(report, stack)
    phase_checks = [name for name in report.checks if name.split(":")[0] in modes]
    assert len(phase_checks) == 2 * len(modes), report.summary()  # each mode really ran
    streams_cut = [o for o in report.outcomes if o.error.startswith("stream_error:")]
    served_by_fallback = [o for o in report.outcomes if o.ok and o.served_by.startswith("fallback")]
    assert streams_cut and served_by_fallback, report.summary()
    assert report.max_latency <= report.deadline
    assert report.records is not None and report.records.expected == len(report.outcomes)


def test_redis_outage_keeps_serving_and_limits_and_breakers_resume(stack: Stack) -> None:
    config = redis_outage.RedisOutageConfig(outage_seconds=3, lead_seconds=2, after_seconds=6)
    report = redis_outage.run(stack, config)
    assert not _failed_checks(report), _explain(report, stack)
    assert stack.redis.ping()
    limited = [o for o in report.outcomes if o.error == "http_429:rate_limit_exceeded"]
    assert len(limited) >= LOW_RPM, report.summary()  # the low limits refused calls


def test_postgres_restart_serves_the_api_from_cache_and_loses_no_record(stack: Stack) -> None:
    config = pg_outage.PostgresOutageConfig(outage_seconds=5, lead_seconds=2, after_seconds=3)
    report = pg_outage.run(stack, config)
    assert not _failed_checks(report), _explain(report, stack)
    assert stack.postgres.up()
    records = report.records
    assert records is not None and records.expected == len(report.outcomes) > 0
    assert records.usage_stored == records.audit_stored == records.expected, report.summary()
