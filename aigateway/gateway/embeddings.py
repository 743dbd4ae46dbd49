"""The embeddings pipeline: the same stages as chat (route → limits → resilience → usage).

Authentication happened at the door. What differs from chat is small: only deployments whose
provider has an embeddings API take part, the token estimate is the inputs' tokens (there is
no output), and nothing is cached. Recording goes through the pipeline's own ``_record`` (same
package, on purpose), so the usage row, the request log line and whatever else hangs off it
are the same for both.
"""

from __future__ import annotations

import dataclasses

from django.conf import settings

from aigateway.core.ids import unique_hex
from aigateway.gateway import cache, limits
from aigateway.gateway.errors import GatewayError, InvalidRequest
from aigateway.gateway.pipeline import CallContext, CallOutcome, _record, _recording_failures
from aigateway.gateway.resilience import resilient_embeddings
from aigateway.gateway.routes import RouteConfig, route_resolve
from aigateway.guardrails import stage as guardrails
from aigateway.quotas.rules import Demand
from providers.pricing import call_cost
from providers.tokens import count_embedding_tokens
from providers.types import EmbeddingRequest, EmbeddingResponse

# Provider kinds without an embeddings API (their adapters answer BadRequest). Leaving them
# out up front lets a route shared with chat fail over among the deployments that can embed.
NO_EMBEDDINGS_API = frozenset({"anthropic"})


def embedding_route(route: RouteConfig) -> RouteConfig:
    """``route`` with only the deployments that can embed; 400 when none can."""
    usable = tuple(d for d in route.deployments if d.provider_kind not in NO_EMBEDDINGS_API)
    if route.deployments and not usable:
        kinds = ", ".join(sorted({d.provider_kind for d in route.deployments}))
        raise InvalidRequest(
            f"The model '{route.name}' does not support embeddings: its providers ({kinds}) "
            "have no embeddings API.",
            param="model",
            code="embeddings_not_supported",
        )
    return dataclasses.replace(route, deployments=usable)


def embedding_tokens(request: EmbeddingRequest, route: RouteConfig) -> int:
    """The inputs' tokens (the call's whole demand), each input within the allowed length."""
    kind = route.deployments[0].provider_kind if route.deployments else "openai"
    counts = count_embedding_tokens(request.inputs, provider_kind=kind)
    ceiling = settings.AIGATEWAY_MAX_EMBEDDING_INPUT_TOKENS
    for index, count in enumerate(counts):
        if count > ceiling:
            raise InvalidRequest(
                f"Input {index} is {count} tokens long; each input may have at most "
                f"{ceiling} tokens.",
                param=f"input[{index}]" if len(counts) > 1 else "input",
                code="input_too_long",
            )
    return sum(counts)


async def embeddings_create(
    ctx: CallContext, request: EmbeddingRequest
) -> tuple[EmbeddingResponse, CallOutcome]:
    outcome = CallOutcome(cache_status=cache.BYPASS)  # embeddings are never cached
    async with _recording_failures(ctx, request, outcome):
        with ctx.trace.stage("route"):
            route = embedding_route(await route_resolve(ctx.principal, request.model))
        await guardrails.guardrails_embeddings(ctx, request, outcome)  # before tokens are counted
        with ctx.trace.stage("limits"):
            tokens = embedding_tokens(request, route)
            demand = Demand(tokens, tokens, unique_hex())
            lease = await limits.limits_take(ctx.principal, demand, trace=ctx.trace)
        outcome.rate_limit_headers = lease.headers()
        ctx.trace.cache(outcome.cache_status, None)
        try:
            response = await resilient_embeddings(
                route, request, outcome.attempts, ctx.deadline(route), tokens
            )
        except GatewayError:
            await lease.settle(None)
            raise
        outcome.served_by = response.served_by
        response.cost_usd = await call_cost(
            provider=response.served_by.provider,
            model=response.served_by.upstream_model,
            usage=response.usage,
        )
        await lease.settle(response.usage, response.cost_usd)
    _record(
        ctx, request, outcome, status_code=200, usage=response.usage, cost_usd=response.cost_usd
    )
    return response, outcome
