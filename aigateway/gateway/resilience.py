"""Resilience: retries with backoff and jitter, the circuit breaker, and failover.

A *round* tries each deployment of the route once, in the route's strategy order, skipping
deployments whose breaker is open. Failing over to the next deployment happens at once
(no sleep) when the route allows it for that error. When a round ends without an answer and
a retry can help, the call waits — the upstream's ``retry-after`` if it sent one, else
exponential backoff with full jitter — and starts another round, at most ``max_retries``
times, never past the request's deadline. Errors caused by the caller's input (400) are
neither retried nor failed over. A stream may fail over only until its first chunk.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aigateway.core.ids import unique_hex
from aigateway.core.loop_refresher import LoopRefresher
from aigateway.gateway.breaker import (
    BreakerConfig,
    Decision,
    breaker_store,
    breaker_store_is_shared,
)
from aigateway.gateway.breaker_events import breaker_transition_recorded
from aigateway.gateway.breaker_redis import RedisBreakerStore
from aigateway.gateway.breaker_sync import breaker_sync
from aigateway.gateway.errors import UpstreamFailed
from aigateway.gateway.latency import latency_record, latency_snapshot
from aigateway.gateway.limits import deployment_take
from aigateway.gateway.routes import RetryPolicy, RouteConfig
from aigateway.gateway.strategies import full_jitter_delay, order_deployments
from aigateway.quotas.rules import Demand
from providers import errors
from providers.base import DeploymentTarget, get_adapter
from providers.tokens import count_prompt_tokens
from providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Usage,
)

if TYPE_CHECKING:
    from aigateway.observability.trace import AttemptRecord, DecisionTrace

logger = logging.getLogger(__name__)
MAX_LIMIT_WAIT_SECONDS = 2.0


@dataclass(slots=True)
class Attempts:
    """What happened on the way to an answer: for headers, usage and the error trail."""

    count: int = 0
    failovers: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    trace: DecisionTrace | None = None  # the call's decision trace (set by the pipeline)

    def note(self, target: DeploymentTarget, kind: str) -> None:
        where = f"{target.provider_name}/{target.upstream_model}"
        self.errors.append(f"{where} (deployment {target.deployment_id}): {kind}")

    # The trace hooks below cost an attribute check when there is no trace.
    def breaker_seen(self, target: DeploymentTarget, decision: Decision) -> None:
        if self.trace is not None:
            self.trace.breaker(target.deployment_id, decision.value)

    def skip(self, target: DeploymentTarget, why: str) -> None:
        self.note(target, why)
        if self.trace is not None:
            self.trace.skip(target.deployment_id, why)

    def begin(
        self, target: DeploymentTarget, previous: int | None, reason: str
    ) -> AttemptRecord | None:
        """An attempt starts; moving to another deployment than the last one is a failover."""
        if self.count and target.deployment_id != previous:
            self.failovers += 1
            if self.trace is not None:
                self.trace.failover(previous, target.deployment_id, reason)
        self.count += 1
        return self.trace.attempt(target) if self.trace is not None else None

    def end(self, target: DeploymentTarget, record: AttemptRecord | None, outcome: str) -> None:
        if outcome != "ok":
            self.note(target, outcome)
        if record is not None and self.trace is not None:
            self.trace.attempt_done(record, outcome)

    async def wait(self, round_index: int, reason: str, delay: float) -> None:
        """Back off before the next round."""
        self.retries += 1
        if self.trace is not None:
            self.trace.retry(round_index, reason, delay)
        started = time.perf_counter()
        await asyncio.sleep(delay)
        if self.trace is not None:
            self.trace.add_stage("backoff", started)


def health_failure(exc: errors.ProviderError) -> bool:
    """Does this error say the deployment is unhealthy (as opposed to a bad request)?"""
    return exc.retryable or isinstance(exc, errors.AuthFailed)


def _may_fail_over(exc: errors.ProviderError, policy: RetryPolicy) -> bool:
    if isinstance(exc, errors.RateLimited):
        return policy.on_rate_limit
    if isinstance(exc, errors.ContextTooLong):
        return policy.on_context_window
    if isinstance(exc, errors.ContentFiltered):
        return policy.on_content_filter
    if isinstance(exc, errors.BadRequest):
        return False
    return policy.on_errors  # server errors, timeouts, resets, refused credentials


async def breaker_note(target: DeploymentTarget, *, ok: bool) -> None:
    """Feed a call's outcome to the deployment's breaker now (fail open if Redis is down).
    A failure first writes this process's pending successes (aigateway/gateway/breaker_sync.py)
    so the shared breaker sees them in order."""
    if target.deployment_id is None:
        return
    if not ok:
        breaker_sync.forget(target.deployment_id)
        await outcomes_flush(target.deployment_id)
    await _breaker_record(target.deployment_id, ok=ok)
    if not ok:  # a call admitted meanwhile may have cached "closed" from before this failure
        breaker_sync.forget(target.deployment_id)


async def _breaker_record(deployment_id: int, *, ok: bool, count: int = 1) -> None:
    try:
        transition = await breaker_store().record(
            deployment_id, time.time(), ok, BreakerConfig.from_settings(), count
        )
    except Exception:  # noqa: BLE001 - the breaker must not fail the call
        logger.warning("breaker store unreachable; outcome not recorded")
        return
    if transition is not None:
        breaker_transition_recorded(transition)


async def outcomes_flush(deployment_id: int | None = None) -> None:
    """Write the successes and latency samples this process holds back (all, or one
    deployment's): on the first call after the sync interval, before a failure, at shutdown."""
    for pending_id, pending in breaker_sync.take(deployment_id).items():
        await _breaker_record(pending_id, ok=True, count=pending.successes)
        if pending.samples:
            await latency_record(pending_id, pending.latency_total_ms / pending.samples)


async def _call_succeeded(target: DeploymentTarget, decision: Decision, latency_ms: float) -> None:
    deployment_id = target.deployment_id
    if (
        deployment_id is None
        or decision is Decision.PROBE  # its success closes the breaker: write it now
        or not breaker_store_is_shared(breaker_store())
    ):
        await breaker_note(target, ok=True)
        await latency_record(deployment_id, latency_ms)
        return
    breaker_sync.add_success(deployment_id, latency_ms)
    if breaker_sync.flush_due():
        await outcomes_flush()


async def _breaker_decision(target: DeploymentTarget) -> Decision:
    if target.deployment_id is None:
        return Decision.ALLOW
    store = breaker_store()
    shared = breaker_store_is_shared(store)
    if shared and (
        breaker_sync.known_closed(target.deployment_id)
        or (
            breaker_sync.closed_within_grace(target.deployment_id)
            and _breaker_refresher.ensure_running()
        )
    ):
        return Decision.ALLOW
    try:
        decision, transition = await store.allow(
            target.deployment_id, time.time(), BreakerConfig.from_settings()
        )
    except Exception:  # noqa: BLE001 - fail open
        logger.warning("breaker store unreachable; allowing the call")
        return Decision.ALLOW
    if transition is not None:
        breaker_transition_recorded(transition)
    if shared and decision is Decision.ALLOW:
        breaker_sync.remember_closed(target.deployment_id)
        _breaker_refresher.ensure_running()
    return decision


async def _closed_breakers_refresh() -> None:
    """The refresher's round: re-read the cached closed breakers still being called."""
    store = breaker_store()
    if not isinstance(store, RedisBreakerStore):
        return
    deployment_ids = breaker_sync.to_refresh()
    if deployment_ids:
        read_at = time.monotonic()
        closed = await store.closed_among(deployment_ids)
        breaker_sync.refreshed(deployment_ids, closed, read_at)


_breaker_refresher = LoopRefresher(
    "closed breakers", _closed_breakers_refresh, breaker_sync.interval
)


async def _release_probe(target: DeploymentTarget) -> None:
    try:
        await breaker_store().release_probe(target.deployment_id)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - the lease then simply expires
        logger.warning("breaker store unreachable; probe lease not released")


async def _ordered(route: RouteConfig) -> list[DeploymentTarget]:
    latency = {}
    if route.strategy == "lowest_latency":
        latency = await latency_snapshot([d.deployment_id for d in route.deployments])
    return order_deployments(
        route.strategy, route.deployments, weights=route.weights, latency_ms=latency
    )


def _keep_estimate(result: object) -> Usage | None:
    return None


async def _run_resilient[T](
    route: RouteConfig,
    attempts: Attempts,
    deadline: float,
    call: Callable[[DeploymentTarget], Awaitable[T]],
    demand: Demand,
    usage_of: Callable[[T], Usage | None] = _keep_estimate,
    hold: Callable[[T, Decision, float], None] | None = None,
) -> T:
    """The one retry/failover loop, whatever the call (chat, stream opening, embeddings).

    ``usage_of`` gives a successful result's real usage, to reconcile the deployment's own
    token limits; None keeps the estimate (a stream's usage is known only at its end).
    ``hold``: the success is not the breaker's to hear yet (an opened stream may still break);
    it gets the breaker decision and latency, and the caller reports the outcome later.
    """
    policy = route.policy
    candidates = await _ordered(route)
    last_error: errors.ProviderError | None = None
    last_target: int | None = None
    limited_wait = math.inf  # the soonest a deployment at its own limit has room again
    for round_index in range(policy.max_retries + 1):
        retry_after: float | None = None
        retry_helps = False
        context_floor = -1  # after a context overflow, only larger windows are worth trying
        for target in list(candidates):
            if (
                context_floor >= 0
                and route.max_context.get(target.deployment_id, 0) <= context_floor
            ):
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            decision = await _breaker_decision(target)
            attempts.breaker_seen(target, decision)
            if decision is Decision.REJECT:
                attempts.skip(target, "circuit_open")
                continue
            deployment_lease, wait = await deployment_take(
                route.deployment_rules.get(target.deployment_id, []), demand
            )
            if deployment_lease is None:  # this deployment is at its own limit: go elsewhere
                if decision is Decision.PROBE:
                    await _release_probe(target)  # the probe did not happen: let another try
                attempts.skip(target, "deployment_rate_limited")
                limited_wait = min(limited_wait, wait if wait is not None else math.inf)
                continue
            attempt = attempts.begin(target, last_target, last_error.kind if last_error else "")
            last_target = target.deployment_id
            started = time.monotonic()
            try:
                async with asyncio.timeout(remaining):
                    result = await call(target)
            except TimeoutError:
                exc: errors.ProviderError = errors.UpstreamTimeout(
                    "the request deadline passed", provider=target.provider_name
                )
            except errors.ProviderError as caught:
                exc = caught
            else:
                attempts.end(target, attempt, "ok")
                usage = usage_of(result)
                if usage is not None:
                    await deployment_lease.settle(usage)
                latency_ms = (time.monotonic() - started) * 1000
                if hold is None:
                    await _call_succeeded(target, decision, latency_ms)
                else:
                    hold(result, decision, latency_ms)
                return result
            attempts.end(target, attempt, exc.kind)
            await deployment_lease.settle(None)
            await breaker_note(target, ok=not health_failure(exc))
            last_error = exc
            if isinstance(exc, errors.RateLimited) and exc.retry_after is not None:
                # Also when this route does not fail over on rate limits: the retry on this
                # same deployment must wait for what it asked.
                retry_after = max(retry_after or 0.0, exc.retry_after)
            if not _may_fail_over(exc, policy):
                if not exc.retryable:
                    raise UpstreamFailed(exc, attempts=attempts.count, trail=attempts.errors)
                candidates = [target]  # retry here only: this route does not fail over for it
                retry_helps = True
                break
            if isinstance(exc, errors.ContextTooLong):
                context_floor = route.max_context.get(target.deployment_id, 0) or math.inf  # type: ignore[assignment]
            if exc.retryable:
                retry_helps = True
        if last_error is None and limited_wait <= MAX_LIMIT_WAIT_SECONDS:
            # Only deployment limits stood in the way and one has room very soon: wait for it
            # rather than answer 429. Longer waits answer 429 with Retry-After at once.
            retry_helps, retry_after = True, limited_wait
        if not retry_helps or round_index == policy.max_retries:
            break
        delay = (
            retry_after
            if retry_after is not None
            else full_jitter_delay(round_index, base=policy.backoff_base, cap=policy.backoff_cap)
        )
        if time.monotonic() + delay >= deadline:
            break  # waiting would outlast the caller's deadline
        await attempts.wait(
            round_index, last_error.kind if last_error else "deployment_rate_limited", delay
        )
    if last_error is None and limited_wait < math.inf:
        last_error = errors.RateLimited(
            f"every deployment of route '{route.name}' is at its rate limit",
            retry_after=limited_wait,
        )
    if last_error is None:
        last_error = errors.Overloaded(
            f"no deployment of route '{route.name}' is available (circuit breakers open)"
            if route.deployments
            else f"route '{route.name}' has no enabled deployment"
        )
    raise UpstreamFailed(last_error, attempts=attempts.count, trail=attempts.errors)


async def resilient_chat(
    route: RouteConfig, request: ChatRequest, attempts: Attempts, deadline: float
) -> ChatResponse:
    async def call(target: DeploymentTarget) -> ChatResponse:
        return await get_adapter(target).chat(request, target)

    return await _run_resilient(
        route, attempts, deadline, call, _demand(request), usage_of=_response_usage
    )


def _response_usage(result: ChatResponse | EmbeddingResponse) -> Usage:
    return result.usage


async def resilient_embeddings(
    route: RouteConfig,
    request: EmbeddingRequest,
    attempts: Attempts,
    deadline: float,
    input_tokens: int,
) -> EmbeddingResponse:
    async def call(target: DeploymentTarget) -> EmbeddingResponse:
        return await get_adapter(target).embeddings(request, target)

    demand = Demand(input_tokens, input_tokens, unique_hex())
    return await _run_resilient(route, attempts, deadline, call, demand, usage_of=_response_usage)


def _demand(request: ChatRequest) -> Demand:
    prompt = count_prompt_tokens(request)
    return Demand(prompt, prompt + (request.max_tokens or 0), unique_hex())


@dataclass(slots=True)
class OpenedStream:
    """A stream whose first chunk has arrived: failover is over, the client may see it.

    The deployment's breaker hears how the stream ends, not that it opened: the pipeline
    calls ``succeeded`` at its normal end, ``breaker_note(ok=False)`` when the upstream breaks
    it, ``left`` when the client goes. Counting the first chunk as a success made a stream
    that breaks mid-way a success *and* a failure, so a deployment whose streams all stall
    after their first chunk kept resetting its consecutive failures and could stay closed.
    """

    target: DeploymentTarget
    first: ChatChunk
    rest: AsyncIterator[ChatChunk]
    decision: Decision = Decision.ALLOW
    latency_ms: float = 0.0  # until the first chunk: the deployment's latency sample

    async def succeeded(self) -> None:
        await _call_succeeded(self.target, self.decision, self.latency_ms)

    async def left(self) -> None:
        """Neither verdict (the client went away): a probe gives its lease back."""
        if self.decision is Decision.PROBE:
            await _release_probe(self.target)


def _hold_stream_outcome(opened: OpenedStream, decision: Decision, latency_ms: float) -> None:
    opened.decision, opened.latency_ms = decision, latency_ms


async def resilient_stream_open(
    route: RouteConfig, request: ChatRequest, attempts: Attempts, deadline: float
) -> OpenedStream:
    async def call(target: DeploymentTarget) -> OpenedStream:
        iterator = aiter(get_adapter(target).chat_stream(request, target))
        try:
            first = await anext(iterator)
        except StopAsyncIteration:
            raise errors.ServerError("the upstream closed the stream without data") from None
        return OpenedStream(target=target, first=first, rest=iterator)

    return await _run_resilient(
        route, attempts, deadline, call, _demand(request), hold=_hold_stream_outcome
    )
