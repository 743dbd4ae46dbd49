"""One batch request through the same pipeline as the synchronous API (source "batch").

The request runs as the key that created the batch, so its routes and the team's limits
apply. When our own limiter refuses it (429 with a time to wait), the request waits and
tries again instead of failing; every run's requests share one QuotaGate, so they pause
together instead of each hammering the limiter.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aigateway.api.embeddings_wire import embedding_response_to_openai, parse_embedding_request
from aigateway.api.parsing import parse_chat_request
from aigateway.api.serializers import chat_response_to_openai
from aigateway.batches.store import ItemResult, ItemWork
from aigateway.core.config_cache import ConfigUnavailable
from aigateway.gateway.embeddings import embeddings_create
from aigateway.gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    ServiceUnavailable,
)
from aigateway.gateway.limits import RateLimitExceeded
from aigateway.gateway.pipeline import CallContext, chat_complete
from aigateway.gateway.principal import Principal
from providers.types import Usage

logger = logging.getLogger(__name__)
Handler = Callable[[CallContext, dict[str, Any]], Awaitable[tuple[dict[str, Any], Usage]]]
UNAVAILABLE_RETRIES = 5  # the gateway itself cannot serve (Redis or config down): brief waits


class QuotaGate:
    """When the team's quota has room again. Requests wait for the gate before each try.

    While the quota paces a run, waiting requests take turns one refill interval apart (the
    limiter's wait for one more request) instead of all trying the moment the gate opens:
    with N requests in flight, that would be N-1 refused tries, each a limiter round trip
    and a trip through the pipeline's first stages, for every request admitted.
    """

    MAX_SPACING = 1.0  # seconds: never pace slower than one try a second

    def __init__(self) -> None:
        self.open_at = 0.0  # time.monotonic()
        self.spacing = 0.0
        self.refusals = 0  # quota refusals not yet reported (see BatchRun.take_refusals)

    def hold(self, seconds: float, spacing: float = 0.0) -> None:
        self.open_at = max(self.open_at, time.monotonic() + seconds)
        self.spacing = min(spacing, self.MAX_SPACING)

    def refused(self, seconds: float) -> None:
        self.refusals += 1
        self.hold(seconds, spacing=seconds)

    def take_refusals(self) -> int:
        count, self.refusals = self.refusals, 0
        return count

    def wait_seconds(self) -> float:
        return max(0.0, self.open_at - time.monotonic())

    async def wait(self, stop: asyncio.Event) -> bool:
        """Wait for this request's turn; False when the run is stopping meanwhile."""
        now = time.monotonic()
        if self.open_at <= now:
            return not stop.is_set()
        turn = self.open_at
        self.open_at = turn + self.spacing  # the next waiter goes one interval later
        try:
            await asyncio.wait_for(stop.wait(), timeout=turn - now)
        except TimeoutError:
            return not stop.is_set()
        return False


async def _chat(ctx: CallContext, body: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
    request = parse_chat_request(body)
    if request.stream:
        raise InvalidRequest("Streaming is not available in a batch; remove 'stream'.",
                             param="stream")  # fmt: skip
    result, _ = await chat_complete(ctx, request)
    return chat_response_to_openai(result), result.usage


async def _embeddings(ctx: CallContext, body: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
    request, encoding = parse_embedding_request(body)
    result, _ = await embeddings_create(ctx, request)
    return embedding_response_to_openai(result, encoding), result.usage


HANDLERS: dict[str, Handler] = {"/v1/chat/completions": _chat, "/v1/embeddings": _embeddings}


def _line(item: ItemWork, request_id: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "batch_req_" + secrets.token_hex(12),
        "custom_id": item.custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": None,
    }


def _failure(item: ItemWork, request_id: str, exc: GatewayError) -> ItemResult:
    return ItemResult(exc.status_code, _line(item, request_id, exc.status_code,
                                             exc.body(request_id)))  # fmt: skip


async def item_execute(
    *,
    endpoint: str,
    principal: Principal | None,
    item: ItemWork,
    gate: QuotaGate,
    stop: asyncio.Event,
) -> ItemResult | None:
    """The item's result, or None when the run stopped while the item waited for quota
    (it then goes back to the queue, never having reached an upstream)."""
    handler = HANDLERS[endpoint]
    unavailable = 0
    while True:
        if not await gate.wait(stop):
            return None
        request_id = "req_" + uuid.uuid4().hex
        if principal is None:
            return _failure(item, request_id, AuthenticationFailed(
                "The API key that created this batch was revoked, deleted or has expired."
            ))  # fmt: skip
        ctx = CallContext(
            request_id=request_id, principal=principal, source="batch", waits_for_quota=True
        )
        try:
            body, usage = await handler(ctx, item.body)
        except RateLimitExceeded as exc:
            if exc.retry_after is None:  # larger than the limit: waiting cannot help
                return _failure(item, request_id, exc)
            gate.refused(exc.retry_after)
            continue
        except (ServiceUnavailable, ConfigUnavailable) as exc:
            unavailable += 1
            if unavailable > UNAVAILABLE_RETRIES:
                return _failure(item, request_id, exc if isinstance(exc, GatewayError) else (
                    ServiceUnavailable("The gateway cannot read its configuration right now.")
                ))  # fmt: skip
            gate.hold(min(2.0**unavailable, 30.0))  # everyone waits: the gateway itself is down
            continue
        except GatewayError as exc:
            return _failure(item, request_id, exc)
        except Exception:
            logger.exception("batch request failed unexpectedly (request %s)", request_id)
            failure = GatewayError("The gateway had an internal error.", code="internal_error")
            failure.status_code, failure.error_type = 500, "api_error"
            return _failure(item, request_id, failure)
        return ItemResult(
            200, _line(item, request_id, 200, body),
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        )  # fmt: skip
