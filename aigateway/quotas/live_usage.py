"""Live usage of limits: what the limiter holds for each limit right now, and how to say it.

Every visible, enabled limit of a page is peeked in a single ``peek`` (one Lua script with
Redis), which takes nothing. When the limiter cannot be reached the rows go without usage.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from redis.exceptions import RedisError

from aigateway.quotas.checks import Check, CheckResult
from aigateway.quotas.rules import PER_MINUTE, Demand, Rule, check_for

if TYPE_CHECKING:
    from aigateway.quotas.selectors import LimitRow

logger = logging.getLogger(__name__)

_PEEK_DEMAND = Demand(prompt_tokens=0, total_tokens=0, lease_id="")


def duration_text(seconds: float) -> str:
    """12s, 4m 10s, 5h 3m, 6d 3h."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def count_text(number: float) -> str:
    return f"{int(number):,}"


def dollars_text(number: float) -> str:
    return f"${number:,.2f}"


@dataclass(frozen=True)
class LimitUsage:
    """What the limiter holds for one limit right now (from ``peek``)."""

    kind: str
    limit: float  # the configured value
    capacity: float  # rpm/tpm: the bucket's size (burst, else the value); else the value
    remaining: float
    reset_seconds: float  # bucket: until full again; budget: until the period ends
    soft_threshold_percent: int
    now: datetime

    @property
    def used(self) -> float:
        return max(0.0, self.capacity - max(0.0, self.remaining))

    @property
    def percent_used(self) -> int:
        return min(100, round(100 * self.used / self.capacity)) if self.capacity else 0

    @property
    def over_soft_threshold(self) -> bool:
        return self.percent_used >= self.soft_threshold_percent

    @property
    def resets_at(self) -> datetime:
        return self.now + timedelta(seconds=self.reset_seconds)

    @property
    def summary(self) -> str:
        remaining = max(0.0, self.remaining)
        if self.kind in PER_MINUTE:
            unit = "requests" if self.kind == "rpm" else "tokens"
            return f"{count_text(remaining)} of {count_text(self.capacity)} {unit} available now"
        if self.kind == "concurrent":
            return f"{count_text(self.used)} of {count_text(self.capacity)} in use"
        period = "today" if self.kind.endswith("_day") else "this month"
        if self.kind.startswith("cost_"):
            return f"{dollars_text(self.used)} of {dollars_text(self.limit)} spent {period}"
        return f"{count_text(self.used)} of {count_text(self.limit)} tokens used {period}"

    @property
    def reset_text(self) -> str:
        if self.kind == "concurrent":
            return ""
        if self.kind in PER_MINUTE:
            if self.reset_seconds < 0.5:
                return "full"
            return f"full again in {duration_text(self.reset_seconds)}"
        return f"resets in {duration_text(self.reset_seconds)}"


def _checks(rows: list[LimitRow], now: datetime) -> list[tuple[int, Check]]:
    checks = []
    for index, row in enumerate(rows):
        if not row.enabled or not row.target.exists:
            continue
        rule = Rule(
            limit_id=row.id,
            scope=row.scope,
            scope_id=row.target.scope_id,
            kind=row.kind,
            value=float(row.value),
            burst=float(row.burst) if row.burst is not None else None,
            soft_percent=row.soft_threshold_percent,
        )
        checks.append((index, check_for(rule, _PEEK_DEMAND, tz_name=row.target.time_zone,
                                        now=now)))  # fmt: skip
    return checks


def _peek(checks: list[Check]) -> list[CheckResult] | None:
    """One limiter call for every check of the page; None if the limiter is unreachable."""
    if not checks:
        return []

    async def peek() -> list[CheckResult]:
        from aigateway.gateway.limits import _limiter

        return await _limiter().peek(checks, time.time())

    try:
        return async_to_sync(peek)()
    except (RedisError, OSError):
        logger.warning("live limit usage unavailable: the limiter (Redis) cannot be reached")
        return None


def with_usage(rows: list[LimitRow], now: datetime) -> tuple[list[LimitRow], bool]:
    indexed = _checks(rows, now)
    results = _peek([check for _, check in indexed])
    if results is None:
        return rows, False
    rows = list(rows)
    for (index, check), result in zip(indexed, results, strict=True):
        row = rows[index]
        capacity = check.capacity if check.type == "bucket" else check.limit
        usage = LimitUsage(row.kind, float(row.value), capacity, result.remaining,
                           result.reset_seconds, row.soft_threshold_percent, now)  # fmt: skip
        rows[index] = replace(row, usage=usage)
    return rows, True
