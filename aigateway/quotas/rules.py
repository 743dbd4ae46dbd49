"""Which limits apply to a call, loaded once per principal and cached with the config."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aigateway.quotas.checks import (
    BUCKET,
    CONCURRENCY,
    COUNTER,
    LEASE_SECONDS,
    Check,
    budget_period,
)

PER_MINUTE = {"rpm", "tpm"}
BUDGETS = {"tokens_day", "tokens_month", "cost_day", "cost_month"}
SCOPE_LABELS = {"org": "organisation", "team": "team", "key": "API key", "user": "user",
                "deployment": "deployment"}  # fmt: skip
KIND_LABELS = {
    "rpm": "requests per minute",
    "tpm": "tokens per minute",
    "concurrent": "concurrent requests",
    "tokens_day": "tokens per day",
    "tokens_month": "tokens per month",
    "cost_day": "spend per day (USD)",
    "cost_month": "spend per month (USD)",
}


@dataclass(frozen=True, slots=True)
class Rule:
    limit_id: int
    scope: str
    scope_id: int
    kind: str
    value: float
    burst: float | None
    soft_percent: int
    scope_label: str = ""  # e.g. the key prefix or team slug, for error messages

    def describe(self) -> str:
        who = f"{SCOPE_LABELS.get(self.scope, self.scope)} {self.scope_label or self.scope_id}"
        return f"{KIND_LABELS.get(self.kind, self.kind)} on {who}"


@dataclass(frozen=True, slots=True)
class Demand:
    """What this call asks for: tokens estimated before the call."""

    prompt_tokens: int
    total_tokens: int  # prompt + requested output (OpenAI's TPM estimate)
    lease_id: str


def check_for(rule: Rule, demand: Demand, *, tz_name: str, now: datetime) -> Check:
    key = f"aigw:q:{rule.scope}:{rule.scope_id}:{rule.kind}"
    if rule.kind in PER_MINUTE:
        capacity = rule.burst or rule.value
        cost = 1.0 if rule.kind == "rpm" else float(demand.total_tokens)
        return Check(key, BUCKET, cost, rule.value, capacity=capacity, rate=rule.value / 60)
    if rule.kind == "concurrent":
        return Check(key, CONCURRENCY, 1, rule.value, ttl=LEASE_SECONDS, member=demand.lease_id)
    period = budget_period(rule.kind, tz_name=tz_name, now=now)
    # Token budgets reserve the prompt estimate; spend budgets admit while under budget and
    # are charged the real cost afterwards (the price is known only once a deployment ran).
    cost = float(demand.prompt_tokens) if rule.kind.startswith("tokens") else 0.0
    return Check(f"{key}:{period.name}", COUNTER, cost, rule.value, ttl=period.seconds_left)


def rules_for_scopes(scopes: list[tuple[str, int]]) -> list[Rule]:
    """Enabled limits of these scopes (one query)."""
    from django.db.models import Q

    from aigateway.quotas.models import Limit

    if not scopes:
        return []
    query = Q()
    for scope, scope_id in scopes:
        query |= Q(scope=scope, scope_id=scope_id)
    return [
        Rule(
            limit_id=row.pk,
            scope=row.scope,
            scope_id=row.scope_id,
            kind=row.kind,
            value=float(row.value),
            burst=float(row.burst) if row.burst is not None else None,
            soft_percent=row.soft_threshold_percent,
        )
        for row in Limit.objects.filter(query, enabled=True).order_by("scope", "kind")
    ]
