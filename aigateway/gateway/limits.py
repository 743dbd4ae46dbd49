"""Quota and rate-limit stage. Pass-through until the quotas issue fills it in.

The interface is what the pipeline relies on: ``limits_acquire`` is called before the
upstream call with an estimate and returns a lease; ``lease.settle`` is called afterwards
with real usage (reconciliation) whether the call succeeded or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from aigateway.gateway.principal import Principal
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


def estimate_tokens(request: ChatRequest) -> int:
    """Rough pre-call estimate (4 characters per token) plus the requested output."""
    characters = sum(len(m.text()) for m in request.messages)
    return characters // 4 + (request.max_tokens or 0)


async def limits_acquire(principal: Principal, route: str, request: ChatRequest) -> Lease:
    return Lease(principal=principal, estimated_tokens=estimate_tokens(request))
