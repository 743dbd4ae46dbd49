"""The guardrails stage of the one pipeline (aigateway/gateway/pipeline.py calls these).

    route → guardrails (input) → limits → cache → upstream → guardrails (output) → record
                                                            → reveal (the requester's view)

* ``guardrails_admit``: right after the route is resolved, before any quota is taken: a
  blocked request costs nothing; redaction happens before limits count tokens and before
  the cache key is computed, so neither sees a redacted value.
* ``guardrails_answer``: output rules on a complete answer (from upstream or the cache:
  policies may have changed since it was stored), before it is cached, logged or recorded.
* ``guardrails_reveal``: the requester's copy of the answer, placeholders restored when the
  policy is reversible. Everything stored keeps the placeholders.
* Streams: aigateway/guardrails/relay.py (``guard_stream`` and ``reveal_stream``).

A call without any policy costs one dictionary lookup here.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from aigateway.guardrails.engine import (
    CallGuard,
    check_answer,
    check_embedding_request,
    check_request,
    reveal_response,
)
from aigateway.guardrails.policy import policy_for_call
from aigateway.guardrails.relay import guard_stream, reveal_stream
from aigateway.observability.trace import GuardrailNote
from providers.types import ChatRequest, ChatResponse, EmbeddingRequest

if TYPE_CHECKING:
    from aigateway.gateway.pipeline import CallContext, CallOutcome

__all__ = [
    "guard_stream",
    "guardrails_admit",
    "guardrails_answer",
    "guardrails_embeddings",
    "guardrails_reveal",
    "header_value",
    "reveal_stream",
]


async def _guard(ctx: CallContext, route: str) -> CallGuard | None:
    principal = ctx.principal
    policy = await policy_for_call(principal.organisation_id, principal.team_id, route)
    return None if policy is None else CallGuard(policy, ctx.trace)


async def guardrails_admit(
    ctx: CallContext, request: ChatRequest, outcome: CallOutcome, *, provider_kind: str
) -> None:
    """Input rules and limits of the call's policy; raises GuardrailBlocked (400)."""
    guard = await _guard(ctx, request.model)
    if guard is None:
        return
    outcome.guardrails = guard
    with ctx.trace.stage("guardrails"):
        check_request(guard, request, provider_kind=provider_kind)


async def guardrails_embeddings(
    ctx: CallContext, request: EmbeddingRequest, outcome: CallOutcome
) -> None:
    guard = await _guard(ctx, request.model)
    if guard is None:
        return
    outcome.guardrails = guard
    with ctx.trace.stage("guardrails"):
        check_embedding_request(guard, request)


def guardrails_answer(ctx: CallContext, outcome: CallOutcome, response: ChatResponse) -> None:
    """Output rules, in place. A blocked answer is not cached (a later, looser policy must
    not be served the cut version, nor a stricter one the full)."""
    guard = outcome.guardrails
    if guard is None or not guard.policy.output_detectors:
        return
    with ctx.trace.stage("guardrails_output"):
        check_answer(guard, response)
    if guard.output_blocked:
        ctx.cache_control = dataclasses.replace(ctx.cache_control, no_store=True)
    outcome.completion_text = response.content


def guardrails_reveal(outcome: CallOutcome, response: ChatResponse) -> ChatResponse:
    return reveal_response(outcome.guardrails, response)


def header_value(notes: list[GuardrailNote]) -> str:
    """``x-aigateway-guardrails``: the matched rules by action, e.g.
    ``redact=pii.email,pii.card; flag=injection.ignore_previous`` (names only)."""
    by_action: dict[str, list[str]] = {}
    for note in notes:
        names = by_action.setdefault(note.action, [])
        if note.rule not in names:
            names.append(note.rule)
    return "; ".join(f"{action}={','.join(names)}" for action, names in by_action.items())
