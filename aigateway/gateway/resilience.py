"""Resilience stage: try a route's deployments in order and fail over on retryable errors.

This first cut does ordered failover with one attempt per deployment. The resilience issue
adds retries with backoff and jitter, the shared circuit breaker and the other strategies
behind the same two functions.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aigateway.gateway.errors import UpstreamFailed
from aigateway.gateway.routes import RouteConfig
from providers.base import DeploymentTarget, get_adapter
from providers.errors import ProviderError, ServerError
from providers.types import ChatChunk, ChatRequest, ChatResponse

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Attempts:
    """What happened on the way to an answer: for headers, usage and the audit log."""

    count: int = 0
    failovers: int = 0
    errors: list[str] = field(default_factory=list)


def _no_deployments(route: RouteConfig) -> UpstreamFailed:
    return UpstreamFailed(
        ServerError(f"route '{route.name}' has no enabled deployment"), attempts=0
    )


async def _run_in_order[T](
    route: RouteConfig,
    attempts: Attempts,
    call: Callable[[DeploymentTarget], Awaitable[T]],
) -> T:
    if not route.deployments:
        raise _no_deployments(route)
    last_error: ProviderError | None = None
    for index, target in enumerate(route.deployments):
        attempts.count += 1
        if index > 0:
            attempts.failovers += 1
        try:
            return await call(target)
        except ProviderError as exc:
            attempts.errors.append(f"{target.provider_name}:{exc.kind}")
            logger.warning(
                "deployment %s (%s) failed: %s",
                target.deployment_id,
                target.provider_name,
                exc.kind,
            )
            last_error = exc
            if not exc.retryable:
                break
    assert last_error is not None
    raise UpstreamFailed(last_error, attempts=attempts.count)


async def resilient_chat(
    route: RouteConfig, request: ChatRequest, attempts: Attempts
) -> ChatResponse:
    async def call(target: DeploymentTarget) -> ChatResponse:
        return await get_adapter(target).chat(request, target)

    return await _run_in_order(route, attempts, call)


@dataclass(slots=True)
class OpenedStream:
    """A stream whose first chunk has arrived: failover is over, the client may see it."""

    target: DeploymentTarget
    first: ChatChunk
    rest: AsyncIterator[ChatChunk]


async def resilient_stream_open(
    route: RouteConfig, request: ChatRequest, attempts: Attempts
) -> OpenedStream:
    async def call(target: DeploymentTarget) -> OpenedStream:
        iterator = aiter(get_adapter(target).chat_stream(request, target))
        try:
            first = await anext(iterator)
        except StopAsyncIteration:
            raise ServerError("the upstream closed the stream without data") from None
        return OpenedStream(target=target, first=first, rest=iterator)

    return await _run_in_order(route, attempts, call)
