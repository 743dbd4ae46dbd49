"""Quota and rate-limit stage. Pass-through until the quotas issue fills it in.

The interface is what the pipeline relies on: ``limits_acquire`` is called before the
upstream call with an estimate and returns a lease; ``lease.settle`` is called afterwards
with real usage (reconciliation) whether the call succeeded or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from aigateway.gateway.principal import Principal
from providers.tokens import count_prompt_tokens
from providers.types import ChatRequest, Usage


@dataclass(slots=True)
class Lease:
    principal: Principal
    estimated_tokens: int

    async def settle(self, usage: Usage | None) -> None:
        return None

    def headers(self) -> dict[str, str]:
        """Rate-limit headers for the response (x-ratelimit-*); none while pass-through."""
        return {}


def estimate_tokens(request: ChatRequest, *, provider_kind: str = "openai") -> int:
    """Pre-call estimate for token limits: counted prompt plus the requested output."""
    return count_prompt_tokens(request, provider_kind=provider_kind) + (request.max_tokens or 0)


async def limits_acquire(
    principal: Principal, route: str, request: ChatRequest, *, provider_kind: str = "openai"
) -> Lease:
    return Lease(
        principal=principal,
        estimated_tokens=estimate_tokens(request, provider_kind=provider_kind),
    )
