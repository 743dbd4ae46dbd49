"""Response cache stage. Pass-through (always MISS) until the caching issue fills it in."""

from __future__ import annotations

from aigateway.gateway.principal import Principal
from providers.types import ChatRequest, ChatResponse

MISS = "MISS"


async def cache_lookup(principal: Principal, request: ChatRequest) -> ChatResponse | None:
    return None


async def cache_store(principal: Principal, request: ChatRequest, response: ChatResponse) -> None:
    return None
