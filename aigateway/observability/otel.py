"""OpenTelemetry traces of gateway calls: optional, off by default.

AIGATEWAY_OTEL_ENABLED=true exports one span per call with a child span per pipeline stage
(auth, route, limits, cache, backoff, stream, record) and per upstream attempt, over
OTLP/HTTP to the standard OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
OTEL_SERVICE_NAME names the service (default "aigateway").

The spans are built when the call is recorded, from its decision trace (which the pipeline
keeps anyway), with the stages' real start and end times. So the request path has no
tracing code of its own, and with tracing off the cost is one settings check: the SDK is
not even imported. Attributes carry the route, deployment, status and token counts; never a
prompt, a completion or a key (credentials by fingerprint).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from aigateway.observability.trace import DecisionTrace
    from aigateway.usage.recorder import UsageEntry

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_provider: TracerProvider | None = None
_tracer: Any = None


def enabled() -> bool:
    return bool(settings.AIGATEWAY_OTEL_ENABLED)


def install(provider: TracerProvider) -> None:
    """Use this tracer provider (tests install one with an in-memory exporter)."""
    global _provider, _tracer
    with _lock:
        _provider, _tracer = provider, provider.get_tracer("aigateway")


def _configured_tracer() -> Any:
    if _tracer is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        name = os.environ.get("OTEL_SERVICE_NAME") or "aigateway"
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        install(provider)
    return _tracer


def shutdown() -> None:
    """Flush spans still queued (ASGI lifespan shutdown)."""
    global _provider, _tracer
    with _lock:
        provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def export_call(trace: DecisionTrace, entry: UsageEntry, *, retries: int, failovers: int) -> None:
    """Emit the call's spans (a no-op unless AIGATEWAY_OTEL_ENABLED)."""
    if not settings.AIGATEWAY_OTEL_ENABLED:
        return
    try:
        _emit(_configured_tracer(), trace, entry, retries, failovers)
    except Exception:  # tracing must never fail a call
        logger.warning("could not export OpenTelemetry spans", exc_info=True)


def _emit(
    tracer: Any, trace: DecisionTrace, entry: UsageEntry, retries: int, failovers: int
) -> None:
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    now = time.perf_counter()
    starts = [trace.origin] + [s.start for s in trace.stages]
    attributes: dict[str, Any] = {
        "aigateway.request_id": entry.request_id,
        "aigateway.source": entry.source,
        "aigateway.route": entry.route,
        "aigateway.stream": entry.stream,
        "aigateway.cache": entry.cache_status,
        "aigateway.retries": retries,
        "aigateway.failovers": failovers,
        "http.response.status_code": entry.status_code,
        "gen_ai.request.model": entry.route,
        "gen_ai.usage.input_tokens": entry.input_tokens,
        "gen_ai.usage.output_tokens": entry.output_tokens,
    }
    if entry.team_id is not None:
        attributes["aigateway.team_id"] = entry.team_id
    if trace.served is not None:
        attributes["aigateway.provider"] = trace.served.provider
        attributes["aigateway.deployment_id"] = trace.served.deployment_id or 0
        attributes["gen_ai.response.model"] = trace.served.upstream_model
    if entry.error_type:
        attributes["error.type"] = entry.error_type
    root = tracer.start_span(
        "gateway.request", kind=SpanKind.SERVER, attributes=attributes,
        start_time=trace.wall_ns(min(starts)),
    )  # fmt: skip
    if entry.status_code >= 500:
        root.set_status(Status(StatusCode.ERROR))
    parent = otel_trace.set_span_in_context(root)
    for stage in trace.stages:
        span = tracer.start_span(
            f"gateway.{stage.name}", context=parent, start_time=trace.wall_ns(stage.start)
        )
        span.end(end_time=trace.wall_ns(stage.end))
    for attempt in trace.attempts:
        span = tracer.start_span(
            "gateway.upstream", context=parent, kind=SpanKind.CLIENT,
            start_time=trace.wall_ns(attempt.start),
            attributes={
                "aigateway.deployment_id": attempt.deployment_id or 0,
                "aigateway.provider": attempt.provider,
                "gen_ai.response.model": attempt.upstream_model,
                "aigateway.credential_fingerprint": attempt.credential,
                "aigateway.outcome": attempt.outcome or "unfinished",
            },
        )  # fmt: skip
        if attempt.outcome not in ("ok", ""):
            span.set_status(Status(StatusCode.ERROR, attempt.outcome))
        span.end(end_time=trace.wall_ns(attempt.end or now))
    root.end(end_time=trace.wall_ns(now))
