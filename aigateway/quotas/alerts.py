"""Soft thresholds: when a budget's use crosses its soft share (default 80 %), raise one
alert per limit and period (dashboard) and one audit entry. Runs off the request path."""

from __future__ import annotations

import asyncio
import logging

from aigateway.core.db import run_db
from aigateway.quotas.checks import Check, CheckResult
from aigateway.quotas.rules import BUDGETS, Rule

logger = logging.getLogger(__name__)
_raised: set[tuple[int, str]] = set()  # (limit id, period) already alerted by this process
_pending: set[asyncio.Task[None]] = set()


def _period_of(check: Check) -> str:
    return check.key.rsplit(":", 1)[-1]


def alert_store(rule: Rule, period: str, used: float) -> bool:
    """Create the alert unless another process did; audit it. Returns True if created."""
    from aigateway.audit.services import audit_record
    from aigateway.quotas.models import QuotaAlert

    _, created = QuotaAlert.objects.get_or_create(
        limit_id=rule.limit_id, period=period, defaults={"used": used}
    )
    if created:
        audit_record(
            action="quota.soft_threshold",
            target_type="limit",
            target_id=rule.limit_id,
            target_label=rule.describe(),
            details={
                "period": period,
                "used": used,
                "limit": rule.value,
                "threshold_percent": rule.soft_percent,
            },
        )
    return created


def soft_threshold_check(
    rules: list[Rule], checks: list[Check], results: tuple[CheckResult, ...]
) -> None:
    for rule, check, result in zip(rules, checks, results, strict=False):
        if rule.kind not in BUDGETS:
            continue
        used = rule.value - result.remaining
        if used < rule.value * rule.soft_percent / 100:
            continue
        marker = (rule.limit_id, _period_of(check))
        if marker in _raised:
            continue
        _raised.add(marker)
        logger.warning("quota soft threshold crossed: %s (%.0f of %g)", rule.describe(), used,
                       rule.value)  # fmt: skip
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            alert_store(rule, marker[1], used)
            continue
        task = loop.create_task(_store(rule, marker[1], used))
        _pending.add(task)
        task.add_done_callback(_pending.discard)


async def _store(rule: Rule, period: str, used: float) -> None:
    try:
        await run_db(alert_store, rule, period, used)
    except Exception:
        logger.exception("could not store a quota alert")
