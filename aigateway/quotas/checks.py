"""What one request asks of the limiter: a list of checks, taken all-or-nothing.

Each configured limit becomes one check on one key:
- ``bucket`` (requests or tokens per minute): a token bucket refilled continuously at
  limit/60 per second up to its capacity (burst); the request takes ``cost`` tokens.
- ``counter`` (token or cost budgets per day or month, in the organisation's time zone):
  admitted while used + cost stays within the limit.
- ``concurrency``: a set of leases that expire on their own, so a crashed process cannot
  leak capacity; the request holds one lease until it ends.
Both backends (in-process and Redis) implement exactly these semantics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

BUCKET, COUNTER, CONCURRENCY = "bucket", "counter", "concurrency"
LEASE_SECONDS = 900.0  # a concurrency lease outlives any request (deadline ≤ 600 s)


@dataclass(frozen=True, slots=True)
class Check:
    key: str
    type: str  # bucket | counter | concurrency
    cost: float
    limit: float  # the configured limit (per minute, per period, or concurrent)
    capacity: float = 0.0  # bucket only
    rate: float = 0.0  # bucket only: refill per second
    ttl: float = 0.0  # counter: seconds until the period ends (key expiry, reset time)
    member: str = ""  # concurrency: this request's lease id


@dataclass(frozen=True, slots=True)
class CheckResult:
    remaining: float
    reset_seconds: float


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    failed_index: int  # which check refused (-1 when allowed)
    retry_after: float | None  # seconds; None when waiting cannot help
    results: tuple[CheckResult, ...]


@dataclass(frozen=True, slots=True)
class Period:
    name: str  # e.g. 2026-11-25 or 2026-11
    seconds_left: float


def budget_period(kind: str, *, tz_name: str, now: datetime) -> Period:
    """The current day or month in the organisation's time zone, and time until it ends."""
    try:
        tz = ZoneInfo(tz_name)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    if kind.endswith("_day"):
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
        name = local.strftime("%Y-%m-%d")
    else:
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        name = local.strftime("%Y-%m")
    # Subtract in UTC: aware datetimes sharing a tzinfo subtract as wall clocks (DST-blind).
    left = (end.astimezone(UTC) - now.astimezone(UTC)).total_seconds()
    return Period(name=name, seconds_left=max(1.0, left))
