"""The one pipeline every door calls: limits → cache → route → resilience → usage.

Authentication happens at the door (API key, browser session, batch owner) and produces the
Principal passed in here; everything after that is shared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from aigateway.audit.writer import audit_api_call
from aigateway.core.aio import aclose_quietly
from aigateway.gateway import cache, limits
from aigateway.gateway.errors import GatewayError
from aigateway.gateway.principal import Principal
from aigateway.gateway.replay import StreamAccumulator, replay_chunks
from aigateway.gateway.resilience import (
    Attempts,
    breaker_note,
    health_failure,
    resilient_chat,
    resilient_stream_open,
)
from aigateway.gateway.routes import RouteConfig, route_resolve
from aigateway.guardrails import stage as guardrails
from aigateway.observability.calls import observe_call
from aigateway.observability.trace import DecisionTrace
from aigateway.usage.recorder import UsageEntry, usage_recorder
from providers.base import upstream_request_id
from providers.errors import ProviderError, UpstreamTimeout
from providers.pricing import call_cost
from providers.tokens import count_prompt_tokens
from providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    ServedBy,
    Usage,
)

if TYPE_CHECKING:
    from aigateway.guardrails.engine import CallGuard

# What a call may carry through the shared stages (recording, failures): every endpoint's
# normalized request has the route name in ``model``.
CallRequest = ChatRequest | EmbeddingRequest


@dataclass(slots=True)
class CallContext:
    request_id: str
    principal: Principal
    source: str = "api"  # api, playground, batch
    client_ip: str = ""  # the peer address (REMOTE_ADDR), for the audit entry
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=timezone.now)
    # The caller's own timeout, when it told us (see aigateway/api/views.py: _client_timeout).
    client_timeout: float | None = None
    cache_control: cache.CacheControl = field(default_factory=cache.CacheControl)
    monotonic_start: float = field(default_factory=time.monotonic)
    # What the pipeline checked and decided, stage by stage (aigateway/observability/trace.py).
    trace: DecisionTrace = field(default_factory=DecisionTrace)
    # The caller waits and tries again when our own limiter refuses (batches): such a refusal
    # is a pause, not a call, so it is neither recorded nor logged as one.
    waits_for_quota: bool = False

    def deadline(self, route: RouteConfig) -> float:
        """Retries and failovers never run past the route's or the caller's timeout.

        The caller's clock started before ours (it sent the request before we authenticated
        and parsed it) and our answer still has to reach it, so the gateway gives up a little
        earlier than the caller would: an answer at the caller's very deadline is never read
        (the caller sees its own timeout instead of our 504).
        """
        budget = route.policy.timeout
        if self.client_timeout is not None:
            budget = min(budget, self.client_timeout - client_timeout_margin(self.client_timeout))
        return self.monotonic_start + budget


def client_timeout_margin(client_timeout: float) -> float:
    """How much sooner than the caller's timeout the gateway answers: 10%, at least 50 ms
    and at most 1 s, never more than half of it."""
    return min(1.0, max(0.05, client_timeout * 0.1), client_timeout / 2)


@dataclass(slots=True)
class CallOutcome:
    """Facts about a finished (or opened) call, for response headers and the UI."""

    cache_status: str = cache.MISS
    cache_similarity: float | None = None
    cache_probe: cache.CacheProbe = field(default_factory=cache.CacheProbe)
    served_by: ServedBy | None = None
    attempts: Attempts = field(default_factory=Attempts)
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    # The answer's text, for the request log of teams that log prompts (never stored else).
    completion_text: str | None = None
    trace: DecisionTrace | None = None  # the call's trace (the door may reveal it)
    # The call's guardrails (policy, redaction mapping; memory only), None without a policy.
    guardrails: CallGuard | None = None
    # What was recorded once the call ended (set by ``_record``; a stream's after its last
    # chunk): the playground shows them with each answer.
    usage: Usage | None = None
    cost_usd: Decimal = Decimal(0)
    latency_ms: float | None = None
    ttft_ms: float | None = None


def _record(
    ctx: CallContext,
    request: CallRequest,
    outcome: CallOutcome,
    *,
    status_code: int,
    usage: Usage | None,
    error_type: str = "",
    ttft_ms: float | None = None,
    cost_usd: Decimal = Decimal(0),
    saved_tokens: int = 0,
    saved_cost: Decimal = Decimal(0),
) -> None:
    recording = time.perf_counter()
    served = outcome.served_by
    entry = UsageEntry(
        request_id=ctx.request_id,
        created_at=ctx.created_at,
        source=ctx.source,
        status_code=status_code,
        organisation_id=ctx.principal.organisation_id,
        team_id=ctx.principal.team_id,
        api_key_id=ctx.principal.api_key_id,
        key_prefix=ctx.principal.key_prefix,
        user_id=ctx.principal.user_id,
        route=request.model,
        provider=served.provider if served else "",
        deployment_id=served.deployment_id if served else None,
        upstream_model=served.upstream_model if served else "",
        stream=isinstance(request, ChatRequest) and request.stream,
        error_type=error_type,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        latency_ms=(time.perf_counter() - ctx.started) * 1000,
        ttft_ms=ttft_ms,
        cost_usd=cost_usd,
        cache_status=outcome.cache_status,
        saved_tokens=saved_tokens,
        saved_cost_usd=saved_cost,
    )
    outcome.usage, outcome.cost_usd = usage, cost_usd
    outcome.latency_ms, outcome.ttft_ms = entry.latency_ms, ttft_ms
    usage_recorder.record(entry)
    audit_api_call(ctx, entry, outcome)  # buffered: metadata only, never prompt or answer
    observe_call(ctx, request, entry, outcome, started=recording)  # log line, metrics, spans


def _first_kind(route: RouteConfig) -> str:
    return route.deployments[0].provider_kind if route.deployments else "openai"


def _error_kind(exc: GatewayError) -> str:
    return exc.code or exc.error_type


@asynccontextmanager
async def _recording_failures(
    ctx: CallContext, request: CallRequest, outcome: CallOutcome
) -> AsyncIterator[None]:
    """A call that ends in a GatewayError is still a call: record it, then re-raise."""
    outcome.trace = outcome.attempts.trace = ctx.trace  # resilience notes its attempts there
    request_id = upstream_request_id.set(ctx.request_id)  # sent upstream as X-Request-ID
    try:
        yield
    except GatewayError as exc:
        if (
            ctx.waits_for_quota
            and isinstance(exc, limits.RateLimitExceeded)
            and (exc.retry_after is not None)
        ):
            raise
        for name, value in outcome.rate_limit_headers.items():  # on errors too, as OpenAI
            exc.headers.setdefault(name, value)
        _record(
            ctx, request, outcome, status_code=exc.status_code, usage=None,
            error_type=_error_kind(exc),
        )  # fmt: skip
        if ctx.trace.reveal:  # the door asked for it: errors carry the trace too
            exc.headers["x-aigateway-trace"] = ctx.trace.compact_json()
        raise
    finally:
        upstream_request_id.reset(request_id)


async def _admit(
    ctx: CallContext, request: ChatRequest, outcome: CallOutcome
) -> tuple[RouteConfig, limits.Lease]:
    """Route and limits: the stages every call passes before any upstream is touched."""
    with ctx.trace.stage("route"):
        route = await route_resolve(ctx.principal, request.model)
    # Before limits (a blocked call takes no quota) and the cache key (redacted values never
    # reach either): aigateway/guardrails/stage.py.
    await guardrails.guardrails_admit(ctx, request, outcome, provider_kind=_first_kind(route))
    with ctx.trace.stage("limits"):
        lease = await limits.limits_acquire(
            ctx.principal, route.name, request, provider_kind=_first_kind(route), trace=ctx.trace
        )
    outcome.rate_limit_headers = lease.headers()
    return route, lease


async def _lookup(
    ctx: CallContext, request: ChatRequest, route: RouteConfig, outcome: CallOutcome
) -> cache.CachedAnswer | None:
    outcome.cache_status = (
        cache.MISS if cache.cacheable(request, route.cache) and not ctx.cache_control.no_cache
        else cache.BYPASS
    )  # fmt: skip
    with ctx.trace.stage("cache"):
        cached = await cache.cache_lookup(
            ctx.principal, request, route.cache, ctx.cache_control,
            response_id="chatcmpl-" + ctx.request_id.removeprefix("req_"),
            probe=outcome.cache_probe,
        )  # fmt: skip
    if cached is not None:
        outcome.cache_status = cached.status
        outcome.cache_similarity = cached.similarity
        outcome.served_by = cached.response.served_by
        outcome.completion_text = cached.response.content
    ctx.trace.cache(outcome.cache_status, outcome.cache_probe.similarity)
    return cached


def _record_hit(
    ctx: CallContext, request: ChatRequest, outcome: CallOutcome, cached: cache.CachedAnswer
) -> None:
    """A hit costs nothing upstream: record zero usage and what it saved."""
    _record(
        ctx, request, outcome, status_code=200, usage=Usage(),
        saved_tokens=cached.response.usage.total_tokens, saved_cost=cached.response.cost_usd,
    )  # fmt: skip


async def chat_complete(ctx: CallContext, request: ChatRequest) -> tuple[ChatResponse, CallOutcome]:
    outcome = CallOutcome()
    async with _recording_failures(ctx, request, outcome):
        route, lease = await _admit(ctx, request, outcome)
        cached = await _lookup(ctx, request, route, outcome)
        if cached is not None:
            guardrails.guardrails_answer(ctx, outcome, cached.response)  # policies change
            await lease.settle(Usage())
            _record_hit(ctx, request, outcome, cached)
            cached.response.cost_usd = Decimal(0)  # the caller pays nothing for a hit
            return guardrails.guardrails_reveal(outcome, cached.response), outcome
        try:
            response = await resilient_chat(route, request, outcome.attempts, ctx.deadline(route))
        except GatewayError:
            await lease.settle(None)
            raise
        outcome.served_by = response.served_by
        guardrails.guardrails_answer(ctx, outcome, response)  # before it is cached or logged
        outcome.completion_text = response.content
        response.cost_usd = await call_cost(
            provider=response.served_by.provider,
            model=response.served_by.upstream_model,
            usage=response.usage,
        )
        await lease.settle(response.usage, response.cost_usd)
        await cache.cache_store(
            ctx.principal, request, route.cache, ctx.cache_control, response, outcome.cache_probe
        )
    _record(
        ctx, request, outcome, status_code=200, usage=response.usage, cost_usd=response.cost_usd
    )
    return guardrails.guardrails_reveal(outcome, response), outcome  # the requester's view


@dataclass(slots=True)
class ChatStream:
    """An opened stream: iterate ``chunks``; failover is over once this exists."""

    chunks: AsyncIterator[ChatChunk]
    outcome: CallOutcome
    # Cleanup for a stream whose body never started (the client left before the first byte):
    # release the lease, close the upstream stream, record the call.
    abandon: Callable[[], Coroutine[Any, Any, None]] = field(default=lambda: _nothing())


async def _nothing() -> None:
    return None


async def chat_stream(ctx: CallContext, request: ChatRequest) -> ChatStream:
    """Open a stream (failover allowed until the first chunk) and return it.

    Usage is recorded when the stream ends, is cut by an upstream error, or is cancelled by
    the client (then it counts what was produced so far).
    """
    outcome = CallOutcome()
    async with _recording_failures(ctx, request, outcome):
        route, lease = await _admit(ctx, request, outcome)
        cached = await _lookup(ctx, request, route, outcome)
        if cached is not None:
            guardrails.guardrails_answer(ctx, outcome, cached.response)  # policies change
            await lease.settle(Usage())
            replay = _replay(ctx, request, outcome, cached)
            return ChatStream(chunks=guardrails.reveal_stream(outcome, replay), outcome=outcome)
        try:
            opened = await resilient_stream_open(
                route, request, outcome.attempts, ctx.deadline(route)
            )
        except GatewayError:
            await lease.settle(None)
            raise
    opened = guardrails.guard_stream(ctx, outcome, opened)  # output rules before chunks leave
    target = opened.target
    served = ServedBy(target.provider_name, target.deployment_id, target.upstream_model)
    outcome.served_by = served
    ttft_ms = (time.perf_counter() - ctx.started) * 1000

    started = False

    async def abandon() -> None:
        nonlocal started
        if started:
            return
        started = True
        await aclose_quietly(opened.rest)
        await opened.left()
        usage = Usage(input_tokens=count_prompt_tokens(request), output_tokens=0)
        await lease.settle(usage)
        _record(ctx, request, outcome, status_code=499, usage=usage,
                error_type="client_left_before_stream", ttft_ms=ttft_ms)  # fmt: skip

    # After the first chunk the HTTP client's read timeout bounds each wait for the next one;
    # a route with a shorter timeout bounds every gap by its own (no cost on other routes).
    shorter = route.policy.timeout < settings.AIGATEWAY_UPSTREAM_READ_TIMEOUT
    gap = route.policy.timeout if shorter else None

    async def relay() -> AsyncIterator[ChatChunk]:
        nonlocal started
        started = True
        streaming = time.perf_counter()
        usage: Usage | None = None
        produced_chars = 0
        error_type = ""
        status = 200
        collected = StreamAccumulator()
        chunk: ChatChunk | None = opened.first
        try:
            iterator = opened.rest
            while chunk is not None:
                if chunk.usage is not None:
                    usage = chunk.usage
                produced_chars += len(chunk.content or "")
                collected.add(chunk)
                yield chunk
                if gap is None:
                    chunk = await anext(iterator, None)
                else:
                    chunk = await _next_within(iterator, gap, target.provider_name)
            await opened.succeeded()  # the stream's end is the deployment's verdict
            if collected.complete():  # only a stream that ended normally is cached
                answer = collected.response(
                    model=request.model, response_id=ctx.request_id, served_by=served
                )
                answer.cost_usd = await call_cost(
                    provider=target.provider_name, model=target.upstream_model,
                    usage=answer.usage,
                )  # fmt: skip
                await cache.cache_store(
                    ctx.principal, request, route.cache, ctx.cache_control, answer,
                    outcome.cache_probe,
                )  # fmt: skip
        except BaseException as exc:  # includes client disconnect (CancelledError)
            error_type = getattr(exc, "kind", None) or type(exc).__name__
            status = 499 if not hasattr(exc, "kind") else 502
            if isinstance(exc, ProviderError) and health_failure(exc):
                await breaker_note(target, ok=False)
            elif isinstance(exc, ProviderError):
                await opened.succeeded()  # the upstream answered (a 400 is not unhealthy)
            elif chunk is not None:  # the client left (the breaker learnt nothing)
                await opened.left()
            raise
        finally:
            if chunk is not None:  # left early (closed, cancelled, failed): stop the upstream
                await aclose_quietly(opened.rest)
            ctx.trace.add_stage("stream", streaming)
            outcome.completion_text = "".join(collected.content)
            if usage is None:  # cut short: count what was produced (~4 chars per token)
                usage = Usage(
                    input_tokens=count_prompt_tokens(request, provider_kind=target.provider_kind),
                    output_tokens=(produced_chars + 3) // 4,
                )
            cost = await call_cost(
                provider=target.provider_name, model=target.upstream_model, usage=usage
            )
            await lease.settle(usage, cost)
            _record(ctx, request, outcome, status_code=status, usage=usage,
                    error_type=error_type, ttft_ms=ttft_ms, cost_usd=cost)  # fmt: skip

    chunks = guardrails.reveal_stream(outcome, relay())  # placeholders restored last
    return ChatStream(chunks=chunks, outcome=outcome, abandon=abandon)


async def _next_within(
    iterator: AsyncIterator[ChatChunk], seconds: float, provider: str
) -> ChatChunk | None:
    try:
        async with asyncio.timeout(seconds):
            return await anext(iterator, None)
    except TimeoutError:
        raise UpstreamTimeout(
            f"the upstream sent nothing for {seconds:g} s in the middle of the stream "
            "(the route's timeout)",
            provider=provider,
        ) from None


async def _replay(
    ctx: CallContext, request: ChatRequest, outcome: CallOutcome, cached: cache.CachedAnswer
) -> AsyncIterator[ChatChunk]:
    try:
        for chunk in replay_chunks(cached.response):
            yield chunk
    finally:
        _record_hit(ctx, request, outcome, cached)
