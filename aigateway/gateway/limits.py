"""Quota and rate-limit stage: every call takes all its limits in one atomic step.

``limits_acquire`` runs before the upstream call with a token estimate and either admits
the call (returning a Lease) or raises RateLimitExceeded (429, naming the limit, with
Retry-After). ``Lease.settle`` runs afterwards with the real usage and cost (or None when
the call failed) to reconcile tokens and budgets and release the concurrency lease.
Deployment limits are taken per attempt by the resilience layer (``deployment_take``), so a
deployment at its limit is skipped for another one instead of answering 429.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings

from aigateway.core.config_cache import config_cache
from aigateway.core.ids import unique_hex
from aigateway.core.redis import get_async_redis
from aigateway.gateway.errors import GatewayError, ServiceUnavailable
from aigateway.gateway.principal import Principal
from aigateway.observability.instruments import rate_limit_rejected
from aigateway.quotas.alerts import soft_threshold_check
from aigateway.quotas.checks import Check, CheckResult, Verdict
from aigateway.quotas.limiter import Adjustment, InProcessLimiter, Limiter
from aigateway.quotas.limiter_redis import redis_limiter
from aigateway.quotas.rules import BUDGETS, Demand, Rule, check_for, rules_for_scopes
from providers.tokens import count_prompt_tokens
from providers.types import ChatRequest, Usage

if TYPE_CHECKING:
    from aigateway.observability.trace import DecisionTrace

logger = logging.getLogger(__name__)
_local = InProcessLimiter()  # single-process backend, and the fail-open fallback


class RateLimitExceeded(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"
    # Seconds until the refusing limit has room (unrounded, unlike Retry-After); None when
    # waiting cannot help (the call is larger than the limit). Batches wait exactly this long.
    retry_after: float | None = None


def _limiter() -> Limiter:
    client = get_async_redis()
    return redis_limiter(client) if client is not None else _local


async def _run(operation: str, limiter: Limiter, *args: object) -> object:
    """Call the limiter; if Redis fails, follow AIGATEWAY_LIMITS_REDIS_FAILURE."""
    try:
        return await getattr(limiter, operation)(*args)
    except Exception:
        if limiter is _local:
            raise
        if settings.AIGATEWAY_LIMITS_REDIS_FAILURE == "closed":
            if operation == "settle":
                # Failing closed is for admission: this call already ran (and was paid for);
                # its answer must not turn into a 503 because its usage cannot be recorded.
                logger.error("rate limiter unavailable (Redis); usage not settled")
                return None
            logger.error("rate limiter unavailable (Redis); failing closed")
            raise ServiceUnavailable(
                "Rate limits cannot be checked right now; retry shortly.",
                headers={"Retry-After": "1"},
            ) from None
        logger.error("ALERT rate limiter degraded: Redis unreachable, limiting per process")
        return await getattr(_local, operation)(*args)


def _duration(seconds: float) -> str:
    """OpenAI's reset format: 20ms, 1s, 6m0s."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _headers(rules: list[Rule], results: tuple[CheckResult, ...]) -> dict[str, str]:
    """x-ratelimit-* for the tightest requests and tokens limit, as OpenAI sends them."""
    headers: dict[str, str] = {}
    for kind, suffix in (("rpm", "requests"), ("tpm", "tokens")):
        pairs = [(r, res) for r, res in zip(rules, results, strict=False) if r.kind == kind]
        if not pairs:
            continue
        rule, result = min(pairs, key=lambda pair: pair[1].remaining)
        headers[f"x-ratelimit-limit-{suffix}"] = str(int(rule.value))
        headers[f"x-ratelimit-remaining-{suffix}"] = str(max(0, int(result.remaining)))
        headers[f"x-ratelimit-reset-{suffix}"] = _duration(result.reset_seconds)
    return headers


@dataclass(slots=True)
class Lease:
    principal: Principal
    estimated_tokens: int
    rules: list[Rule] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    demand: Demand | None = None
    rate_headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False

    async def settle(self, usage: Usage | None, cost_usd: Decimal = Decimal(0)) -> None:
        """Reconcile with what really happened (usage None: the call produced nothing)."""
        if self.settled or not self.checks or self.demand is None:
            return
        self.settled = True
        total = usage.total_tokens if usage is not None else 0
        adjustments = []
        for rule, check in zip(self.rules, self.checks, strict=True):
            if rule.kind == "tpm":
                adjustments.append(Adjustment(check, total - self.demand.total_tokens))
            elif rule.kind.startswith("tokens_"):
                adjustments.append(Adjustment(check, total - self.demand.prompt_tokens))
            elif rule.kind.startswith("cost_") and cost_usd:
                adjustments.append(Adjustment(check, float(cost_usd)))
            elif rule.kind == "concurrent":
                adjustments.append(Adjustment(check, 0))
        if adjustments:
            _settle_later(adjustments)

    def headers(self) -> dict[str, str]:
        return self.rate_headers


# Reconciling after a call would cost one more Redis round trip (and ~0.3 ms of CPU). It is
# queued instead and rides along with this process's next admission (one script: settle,
# then take), so each request costs one round trip. With no next request a timer flushes
# the queue after FLUSH_AFTER_SECONDS, and shutdown flushes it.
FLUSH_AFTER_SECONDS = 0.05
_queued: list[Adjustment] = []
_flush_task: asyncio.Task[None] | None = None


def _take_queued() -> list[Adjustment]:
    global _queued
    items, _queued = _queued, []
    return items


def _settle_later(adjustments: list[Adjustment]) -> None:
    global _flush_task
    _queued.extend(adjustments)
    if _flush_task is None or _flush_task.done():
        _flush_task = asyncio.get_running_loop().create_task(_flush_soon())


async def _flush_soon() -> None:
    await asyncio.sleep(FLUSH_AFTER_SECONDS)
    await settles_flush()


async def settles_flush() -> None:
    """Apply every queued reconciliation now (timer, shutdown, tests)."""
    pending = _take_queued()
    if pending:
        await _run("settle", _limiter(), pending, time.time())


def estimate_tokens(request: ChatRequest, *, provider_kind: str = "openai") -> int:
    """Pre-call estimate for token limits: counted prompt plus the requested output."""
    return count_prompt_tokens(request, provider_kind=provider_kind) + (request.max_tokens or 0)


def _load_rules(principal: Principal) -> tuple[list[Rule], str]:
    from auth.models import Organisation

    scopes = [("org", principal.organisation_id), ("team", principal.team_id)]
    if principal.api_key_id is not None:
        scopes.append(("key", principal.api_key_id))
    if principal.user_id is not None:
        scopes.append(("user", principal.user_id))
    rules = [_labelled(rule, principal) for rule in rules_for_scopes(scopes)]
    tz = (
        Organisation.objects.filter(pk=principal.organisation_id)
        .values_list("time_zone", flat=True)
        .first()
    )
    return rules, tz or "UTC"


def _labelled(rule: Rule, principal: Principal) -> Rule:
    label = principal.key_prefix if rule.scope == "key" else ""
    return Rule(**{**{f: getattr(rule, f) for f in rule.__slots__}, "scope_label": label})  # type: ignore[arg-type]


def _refusal_headers(rules: list[Rule], verdict: Verdict) -> dict[str, str]:
    """x-ratelimit-* on the 429 too: what the checks before the refusal left, then the
    refusing per-minute limit itself (none remaining, reset when it has room)."""
    headers = _headers(rules[: len(verdict.results)], verdict.results)
    rule = rules[verdict.failed_index]
    suffix = {"rpm": "requests", "tpm": "tokens"}.get(rule.kind)
    if suffix:
        headers[f"x-ratelimit-limit-{suffix}"] = str(int(rule.value))
        headers[f"x-ratelimit-remaining-{suffix}"] = "0"
        headers[f"x-ratelimit-reset-{suffix}"] = _duration(verdict.retry_after or 0.0)
    return headers


def _refusal(rule: Rule, verdict: Verdict, demand: Demand) -> RateLimitExceeded:
    what = rule.describe()
    if verdict.retry_after is None:
        message = (
            f"Request too large for the {what}: limit {rule.value:g}, requested "
            f"{demand.total_tokens}. Reduce the prompt or max_tokens."
        )
        return RateLimitExceeded(message, code="request_too_large_for_limit")
    wait = max(1, int(verdict.retry_after + 0.999))
    kind = "budget_exceeded" if rule.kind in BUDGETS else (
        "concurrency_limit_exceeded" if rule.kind == "concurrent" else "rate_limit_exceeded"
    )  # fmt: skip
    message = f"Limit reached for {what}: limit {rule.value:g}. Retry after {_duration(wait)}."
    refusal = RateLimitExceeded(message, code=kind, headers={"Retry-After": str(wait)})
    refusal.retry_after = verdict.retry_after
    return refusal


async def limits_acquire(
    principal: Principal,
    route: str,
    request: ChatRequest,
    *,
    provider_kind: str = "openai",
    trace: DecisionTrace | None = None,
) -> Lease:
    prompt = count_prompt_tokens(request, provider_kind=provider_kind)
    demand = Demand(prompt, prompt + (request.max_tokens or 0), unique_hex())
    return await limits_take(principal, demand, trace=trace)


async def limits_take(
    principal: Principal, demand: Demand, *, trace: DecisionTrace | None = None
) -> Lease:
    """Admit a call of this estimated size against every limit of the principal, or raise
    RateLimitExceeded. Chat and embeddings differ only in how they estimate ``demand``."""
    lease = Lease(principal=principal, estimated_tokens=demand.total_tokens, demand=demand)
    cache_key = ("limits", principal.organisation_id, principal.team_id, principal.api_key_id,
                 principal.user_id)  # fmt: skip
    rules, tz = await config_cache.get_or_load(cache_key, _load_rules, principal)
    if not rules:
        return lease
    now = time.time()
    wall = datetime.fromtimestamp(now, UTC)
    checks = [check_for(rule, demand, tz_name=tz, now=wall) for rule in rules]
    verdict: Verdict = await _run("take", _limiter(), checks, now, _take_queued())  # type: ignore[assignment]
    if trace is not None:
        _trace_checks(trace, rules, verdict)
    if not verdict.allowed:
        rule = rules[verdict.failed_index]
        rate_limit_rejected(rule.scope, rule.kind)
        logger.info("limit refused: %s (limit id %s)", rule.describe(), rule.limit_id)
        refusal = _refusal(rule, verdict, demand)
        refusal.headers = {**_refusal_headers(rules, verdict), **refusal.headers}
        raise refusal
    lease.rules, lease.checks = rules, checks
    lease.rate_headers = _headers(rules, verdict.results)
    soft_threshold_check(rules, checks, verdict.results)
    return lease


def _trace_checks(trace: DecisionTrace, rules: list[Rule], verdict: Verdict) -> None:
    """Each limit checked and what it has left (after this call's share); the refusing one
    has nothing left, the ones after it were not reached."""
    for index, rule in enumerate(rules):
        refused = index == verdict.failed_index
        result = verdict.results[index] if index < len(verdict.results) else None
        remaining = 0.0 if refused else (result.remaining if result is not None else None)
        trace.limit(
            rule.scope, rule.scope_id, rule.kind, rule.value, remaining, allowed=not refused
        )


@dataclass(slots=True)
class DeploymentLease:
    checks: list[tuple[Rule, Check]]
    demand: Demand

    async def settle(self, usage: Usage | None) -> None:
        total = usage.total_tokens if usage is not None else 0
        adjustments = [
            Adjustment(check, total - self.demand.total_tokens)
            for rule, check in self.checks
            if rule.kind == "tpm"
        ]
        if adjustments:
            _settle_later(adjustments)


async def deployment_take(
    rules: list[Rule], demand: Demand
) -> tuple[DeploymentLease | None, float | None]:
    """Take a deployment's own rpm/tpm limits for one attempt. Returns (lease, None) when
    admitted, else (None, seconds until it has room)."""
    if not rules:
        return DeploymentLease([], demand), None
    wall = datetime.now(UTC)
    checks = [check_for(rule, demand, tz_name="UTC", now=wall) for rule in rules]
    verdict: Verdict = await _run("take", _limiter(), checks, time.time())  # type: ignore[assignment]
    if not verdict.allowed:
        rate_limit_rejected("deployment", rules[verdict.failed_index].kind)
        return None, verdict.retry_after
    return DeploymentLease(list(zip(rules, checks, strict=True)), demand), None
