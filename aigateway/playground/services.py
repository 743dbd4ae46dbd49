"""Writes for the playground, and the facts shown with each answer.

The facts come from the pipeline (``CallOutcome``: what ``_record`` recorded, and the
decision trace), so the page shows what usage and audit hold, not a second measurement.
"""

from __future__ import annotations

from typing import TypedDict

from django.urls import reverse
from django.utils.http import urlencode

from aigateway.gateway.pipeline import CallContext, CallOutcome
from aigateway.playground.inputs import PlaygroundInput
from aigateway.playground.models import PlaygroundRun
from providers.types import ChatRequest

MAX_SEARCH_TEXT = 100_000


class RunMeta(TypedDict):
    request_id: str
    route: str
    status: str  # ok | stopped | error
    finish_reason: str | None
    provider: str
    upstream_model: str
    deployment_id: int | None
    failovers: int
    failover_reasons: list[str]
    attempts: int
    latency_ms: float | None
    ttft_ms: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: str
    cache: str  # HIT | SEMANTIC-HIT | MISS | BYPASS
    cache_similarity: float | None
    guardrails: list[str]  # rule names that matched (never the text)
    audit_url: str | None  # only for users who may read the audit log


def audit_url_for(request_id: str) -> str:
    return reverse("web:audit") + "?" + urlencode({"request_id": request_id})


def run_meta(
    ctx: CallContext,
    outcome: CallOutcome,
    *,
    route: str,
    status: str,
    finish_reason: str | None,
    ttft_ms: float | None,
    show_audit_link: bool,
) -> RunMeta:
    served, usage, trace = outcome.served_by, outcome.usage, ctx.trace
    return RunMeta(
        request_id=ctx.request_id,
        route=route,
        status=status,
        finish_reason=finish_reason,
        provider=served.provider if served else "",
        upstream_model=served.upstream_model if served else "",
        deployment_id=served.deployment_id if served else None,
        failovers=outcome.attempts.failovers,
        failover_reasons=[f.reason for f in trace.failovers],
        attempts=len(trace.attempts),
        latency_ms=_round(outcome.latency_ms),
        # The pipeline's is the first upstream chunk; a cache replay has none: the page's.
        ttft_ms=_round(outcome.ttft_ms if outcome.ttft_ms is not None else ttft_ms),
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        cost_usd=f"{outcome.cost_usd:.8f}",
        cache=outcome.cache_status,
        cache_similarity=outcome.cache_similarity,
        guardrails=sorted({f"{g.action} {g.rule}" for g in trace.guardrails}),
        audit_url=audit_url_for(ctx.request_id) if show_audit_link else None,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _stored_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The messages as the pipeline left them: guardrail redaction happens in place, so these
    hold placeholders, never the values a policy redacted."""
    return [{"role": m.role, "content": m.text()} for m in request.messages]


def playground_run_save(
    *,
    user_id: int,
    data: PlaygroundInput,
    request: ChatRequest,
    answer: str,
    meta: RunMeta,
) -> PlaygroundRun:
    messages = _stored_messages(request)
    search = "\n".join([*(m["content"] for m in messages), answer])[:MAX_SEARCH_TEXT]
    return PlaygroundRun.objects.create(
        user_id=user_id,
        team_id=data.team_id,
        route=data.route,
        messages=messages,
        params=data.params(),
        answer=answer,
        meta=dict(meta),
        search_text=search,
        request_id=meta["request_id"],
    )
