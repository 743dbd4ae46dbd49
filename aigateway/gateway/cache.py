"""Response cache stage: exact answers, tenant-isolated, replayable as a stream.

The key is a canonical hash of the normalized request (aigateway/caching/keys.py) inside a
namespace of the route and the cache scope (API key, team or organisation — never shared
across tenants). By default only deterministic requests are cached (temperature 0, no
tools); a route may opt in to always. ``Cache-Control: no-cache`` skips the lookup,
``no-store`` skips storing. Errors, partial streams and cancelled calls are never stored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aigateway.caching.guard import same_question
from aigateway.caching.keys import context_fingerprint, last_user_text, request_fingerprint
from aigateway.caching.semantic import (
    embed_prompt,
    semantic_add,
    semantic_purge,
    semantic_search,
)
from aigateway.caching.store import PREFIX, answer_store
from aigateway.gateway.principal import Principal
from providers.types import ChatRequest, ChatResponse, ServedBy, ToolCall, Usage

logger = logging.getLogger(__name__)
HIT, SEMANTIC_HIT, MISS, BYPASS = "HIT", "SEMANTIC-HIT", "MISS", "BYPASS"


@dataclass(frozen=True, slots=True)
class CachePolicy:
    mode: str = "deterministic"  # off | deterministic | always
    scope: str = "team"  # key | team | org
    ttl_seconds: int = 3600
    semantic: bool = False
    semantic_threshold: float = 0.97


@dataclass(frozen=True, slots=True)
class CacheControl:
    no_cache: bool = False  # do not look up
    no_store: bool = False  # do not store

    @classmethod
    def from_header(cls, value: str) -> CacheControl:
        directives = {part.strip().lower() for part in value.split(",") if part.strip()}
        return cls(no_cache="no-cache" in directives, no_store="no-store" in directives)


@dataclass(slots=True)
class CacheProbe:
    """What a lookup learned that the store step reuses (the prompt's embedding)."""

    namespace: str = ""
    vector: Any = None  # numpy array when the semantic cache embedded the prompt
    similarity: float | None = None  # the nearest cached prompt's score, hit or not (trace)


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    response: ChatResponse
    status: str  # HIT or SEMANTIC-HIT
    similarity: float | None = None


def cacheable(request: ChatRequest, policy: CachePolicy) -> bool:
    if policy.mode == "off":
        return False
    if policy.mode == "always":
        return True
    return request.temperature == 0 and not request.tools


def namespace(principal: Principal, route: str, scope: str) -> str:
    owner = {
        "key": f"key:{principal.api_key_id or 'user-' + str(principal.user_id)}",
        "org": f"org:{principal.organisation_id}",
    }.get(scope, f"team:{principal.team_id}")
    return f"{owner}:{route}"


def _exact_key(principal: Principal, request: ChatRequest, policy: CachePolicy) -> str:
    owner = namespace(principal, request.model, policy.scope)
    return f"{PREFIX}x:{owner}:{request_fingerprint(request)}"


def encode_answer(response: ChatResponse) -> bytes:
    return json.dumps(
        {
            "content": response.content,
            "finish_reason": response.finish_reason,
            "tool_calls": [[c.id, c.name, c.arguments] for c in response.tool_calls],
            "usage": [response.usage.input_tokens, response.usage.output_tokens],
            "served_by": [
                response.served_by.provider,
                response.served_by.deployment_id,
                response.served_by.upstream_model,
            ],
            "cost_usd": str(response.cost_usd),
            "created": response.created,
        },
        separators=(",", ":"),
    ).encode()


def decode_answer(raw: bytes, *, model: str, response_id: str) -> ChatResponse:
    data = json.loads(raw)
    return ChatResponse(
        id=response_id,
        model=model,
        content=data["content"],
        finish_reason=data["finish_reason"],
        usage=Usage(*data["usage"]),
        served_by=ServedBy(*data["served_by"]),
        tool_calls=[ToolCall(*call) for call in data["tool_calls"]],
        created=data["created"],
        cost_usd=Decimal(data["cost_usd"]),
    )


async def cache_lookup(
    principal: Principal,
    request: ChatRequest,
    policy: CachePolicy,
    control: CacheControl,
    *,
    response_id: str,
    probe: CacheProbe | None = None,
) -> CachedAnswer | None:
    if control.no_cache or not cacheable(request, policy):
        return None
    try:
        raw = await answer_store().get(_exact_key(principal, request, policy))
        if raw is not None:
            answer = decode_answer(raw, model=request.model, response_id=response_id)
            return CachedAnswer(answer, HIT)
        if policy.semantic and probe is not None:
            return await _semantic_lookup(principal, request, policy, probe, response_id)
    except Exception:  # noqa: BLE001 - a cache outage is a miss, never an error
        logger.warning("cache lookup failed; treated as a miss")
    return None


async def _semantic_lookup(
    principal: Principal,
    request: ChatRequest,
    policy: CachePolicy,
    probe: CacheProbe,
    response_id: str,
) -> CachedAnswer | None:
    text = last_user_text(request)
    if not text.strip():
        return None
    probe.namespace = (
        f"{namespace(principal, request.model, policy.scope)}:{context_fingerprint(request)}"
    )
    probe.vector = await embed_prompt(text)
    found = await semantic_search(probe.namespace, probe.vector)
    probe.similarity = float(found[1]) if found is not None else None
    if found is None or found[1] < policy.semantic_threshold:
        return None
    cached_prompt = json.loads(found[0]).get("prompt", "")
    if not same_question(cached_prompt, text):  # numbers, negations, direction, opposites
        return None
    answer = decode_answer(found[0], model=request.model, response_id=response_id)
    return CachedAnswer(answer, SEMANTIC_HIT, similarity=found[1])


async def cache_store(
    principal: Principal,
    request: ChatRequest,
    policy: CachePolicy,
    control: CacheControl,
    response: ChatResponse,
    probe: CacheProbe | None = None,
) -> None:
    """Store a complete answer (never errors or cut-off streams: callers store only those)."""
    if control.no_store or not cacheable(request, policy) or response.finish_reason is None:
        return
    encoded = encode_answer(response)
    try:
        await answer_store().set(
            _exact_key(principal, request, policy), encoded, policy.ttl_seconds
        )
        if policy.semantic and probe is not None and probe.vector is not None:
            # The prompt rides along for the word-level check of later near-matches.
            with_prompt = json.loads(encoded) | {"prompt": last_user_text(request)}
            await semantic_add(
                probe.namespace, probe.vector, json.dumps(with_prompt).encode(), policy.ttl_seconds
            )
    except Exception:  # noqa: BLE001 - failing to store only costs a future miss
        logger.warning("cache store failed")


async def cache_purge(*, scope: str, owner_id: int, route: str = "") -> int:
    """Drop cached answers of one tenant (and optionally one route)."""
    owner = f"{scope}:{owner_id}:" + (f"{route}:" if route else "")
    exact = await answer_store().purge(f"{PREFIX}x:{owner}")
    return exact + await semantic_purge(owner)
