"""What the gateway tells operators about each finished call: one JSON request line, the
Prometheus metrics, and (when enabled) OpenTelemetry spans. Called once per call from the
pipeline's ``_record``.

Prompts and completions appear in the request line only for teams whose policy says so
(``Team.log_prompts``), and then redacted (aigateway/observability/redaction.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aigateway.observability import instruments as m
from aigateway.observability import otel
from aigateway.observability.logging import REQUEST_LOGGER, log_request
from aigateway.observability.redaction import default_redactor
from providers.types import ChatRequest, EmbeddingRequest

if TYPE_CHECKING:
    from aigateway.gateway.pipeline import CallContext, CallOutcome
    from aigateway.observability.trace import DecisionTrace
    from aigateway.usage.recorder import UsageEntry


def observe_call(
    ctx: CallContext,
    request: ChatRequest | EmbeddingRequest,
    entry: UsageEntry,
    outcome: CallOutcome,
    *,
    started: float,
) -> None:
    """Log, count and trace one finished call. ``started``: when recording began."""
    trace = ctx.trace
    upstream = trace.upstream_seconds()
    waited = trace.backoff_seconds()
    total = entry.latency_ms / 1000
    if entry.stream and entry.ttft_ms is not None:
        # A stream's total includes the client reading it: the gateway's share is what it
        # added before the first token.
        overhead = entry.ttft_ms / 1000 - upstream - waited
    else:
        overhead = total - upstream - waited
    overhead = max(0.0, overhead)
    _count(entry, trace, total, upstream, overhead)
    if REQUEST_LOGGER.isEnabledFor(logging.INFO):  # request lines may be switched off
        fields = _log_fields(entry, outcome, upstream, overhead)
        fields["endpoint"] = "embeddings" if isinstance(request, EmbeddingRequest) else "chat"
        if ctx.principal.log_prompts:
            fields.update(_conversation(request, outcome))
        log_request(fields)
    trace.add_stage("record", started)
    otel.export_call(
        trace, entry, retries=outcome.attempts.retries, failovers=outcome.attempts.failovers
    )


def _count(
    entry: UsageEntry, trace: DecisionTrace, total: float, upstream: float, overhead: float
) -> None:
    # A model name nobody configured is the client's free text: counted under route "" so
    # that random names cannot grow the label sets without bound.
    route = "" if entry.error_type == "model_not_found" else entry.route
    served = trace.served
    deployment = str(served.deployment_id or "") if served is not None else ""
    provider = served.provider if served is not None else ""
    m.REQUESTS(route, provider, deployment, str(entry.status_code)).inc()
    m.REQUEST_SECONDS(route, "true" if entry.stream else "false").observe(total)
    m.OVERHEAD_SECONDS(route).observe(overhead)
    if trace.attempts:
        m.UPSTREAM_SECONDS(route, deployment).observe(upstream)
    if entry.stream and entry.ttft_ms is not None:
        m.TTFT_SECONDS(route, deployment).observe(entry.ttft_ms / 1000)
    if entry.input_tokens:
        m.TOKENS(route, deployment, "input").inc(entry.input_tokens)
    if entry.output_tokens:
        m.TOKENS(route, deployment, "output").inc(entry.output_tokens)
    if entry.cost_usd:
        m.COST(route, deployment).inc(float(entry.cost_usd))
    result = m.CACHE_RESULTS.get(trace.cache_status)
    if result is not None:
        m.CACHE_LOOKUPS(route, result).inc()
    for retry in trace.retries:
        m.RETRIES(route, retry.reason).inc()
    for failover in trace.failovers:
        m.FAILOVERS(route, failover.reason).inc()


def _log_fields(
    entry: UsageEntry, outcome: CallOutcome, upstream: float, overhead: float
) -> dict[str, Any]:
    served = outcome.served_by
    return {
        "request_id": entry.request_id,
        "source": entry.source,
        "team_id": entry.team_id,
        "key_prefix": entry.key_prefix,
        "route": entry.route,
        "provider": entry.provider,
        "deployment_id": entry.deployment_id,
        "upstream_model": served.upstream_model if served else "",
        "status": entry.status_code,
        "error": entry.error_type,
        "stream": entry.stream,
        "latency_ms": round(entry.latency_ms, 2),
        "upstream_ms": round(upstream * 1000, 2),
        "overhead_ms": round(overhead * 1000, 3),
        "ttft_ms": round(entry.ttft_ms, 2) if entry.ttft_ms is not None else None,
        "input_tokens": entry.input_tokens,
        "output_tokens": entry.output_tokens,
        "cost_usd": str(entry.cost_usd),
        "cache": entry.cache_status,
        "cache_similarity": outcome.cache_similarity,
        "attempts": outcome.attempts.count,
        "retries": outcome.attempts.retries,
        "failovers": outcome.attempts.failovers,
    }


def _conversation(request: ChatRequest | EmbeddingRequest, outcome: CallOutcome) -> dict[str, Any]:
    """The prompt and the completion, redacted, for teams that log them."""
    redactor = default_redactor()
    if isinstance(request, ChatRequest):
        prompt: list[Any] = [
            {"role": msg.role, "content": redactor.redact(msg.text())} for msg in request.messages
        ]
    else:  # embeddings: the input texts (token-id inputs say nothing readable)
        prompt = [redactor.redact(text) for text in request.inputs if isinstance(text, str)]
    completion = outcome.completion_text
    return {
        "prompt": prompt,
        "completion": redactor.redact(completion) if completion is not None else None,
    }
