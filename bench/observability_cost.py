"""What observability adds to each call: the decision trace, the metrics, the request line.

    .venv/bin/python -m bench.observability_cost [--n 20000] [--multiprocess]

Times, per simulated call (one process, no I/O besides the log line written to /dev/null
through the JSON formatter, as LOG_FORMAT=json does in production):

* the trace appends a typical call makes (auth, route, limits with four checks, cache,
  one breaker decision, one attempt, record);
* the metric updates of ``observe_call`` (9-10 counters and histograms, labels cached);
* the whole ``observe_call`` (metrics + JSON request line + OTel check), against the request
  line alone (what ``_record`` did before);
* ``trace.as_dict()`` + JSON, paid only when someone reads the trace (audit entry, debug);
* OpenTelemetry on (in-memory exporter): the span building, for comparison.

``--multiprocess`` runs with PROMETHEUS_MULTIPROC_DIR (values in memory-mapped files).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")
os.environ.setdefault("AIGATEWAY_ALLOW_INSECURE_DEFAULTS", "true")
if "--multiprocess" in sys.argv:  # before prometheus_client is imported
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="aigw-metrics-")

import django

django.setup()

from django.conf import settings  # noqa: E402

from aigateway.gateway.pipeline import CallContext, CallOutcome  # noqa: E402
from aigateway.gateway.principal import Principal  # noqa: E402
from aigateway.observability import calls, otel  # noqa: E402
from aigateway.observability.logging import JsonFormatter, log_request  # noqa: E402
from aigateway.observability.trace import DecisionTrace  # noqa: E402
from aigateway.usage.recorder import UsageEntry  # noqa: E402
from providers.base import DeploymentTarget  # noqa: E402
from providers.types import ChatRequest, Message, ServedBy  # noqa: E402

TARGET = DeploymentTarget(7, "openai", "openai", "gpt-4o", credential_fingerprint="0a1b2c3d4e5f")
PRINCIPAL = Principal(organisation_id=1, team_id=2, allowed_routes=frozenset({"gpt-4o"}),
                      api_key_id=3, key_prefix="agw-AbCd1234")  # fmt: skip
REQUEST = ChatRequest(model="gpt-4o", messages=[Message(role="user", content="Hello there")])


def typical_trace(trace: DecisionTrace) -> None:
    """The appends of an ordinary call that one deployment answered."""
    now = time.perf_counter()
    trace.add_stage("auth", now, now)
    with trace.stage("route"):
        pass
    with trace.stage("limits"):
        for scope, kind in (("org", "rpm"), ("team", "tpm"), ("key", "rpm"), ("key", "concurrent")):
            trace.limit(scope, 1, kind, 1000.0, 990.0)
    with trace.stage("cache"):
        pass
    trace.cache("MISS", None)
    trace.breaker(7, "allow")
    record = trace.attempt(TARGET)
    trace.attempt_done(record, "ok")


def finished_call() -> tuple[CallContext, UsageEntry, CallOutcome]:
    ctx = CallContext(request_id="req_bench", principal=PRINCIPAL)
    typical_trace(ctx.trace)
    outcome = CallOutcome(served_by=ServedBy("openai", 7, "gpt-4o"))
    entry = UsageEntry(
        request_id="req_bench", created_at=ctx.created_at, source="api", status_code=200,
        organisation_id=1, team_id=2, api_key_id=3, key_prefix="agw-AbCd1234", route="gpt-4o",
        provider="openai", deployment_id=7, upstream_model="gpt-4o", input_tokens=12,
        output_tokens=40, latency_ms=231.5,
    )  # fmt: skip
    return ctx, entry, outcome


def old_request_line(entry: UsageEntry, outcome: CallOutcome) -> None:
    """What _record logged before this work: the same line without the new fields."""
    log_request({
        "request_id": entry.request_id, "source": entry.source, "team_id": entry.team_id,
        "key_prefix": entry.key_prefix, "route": entry.route, "provider": entry.provider,
        "deployment_id": entry.deployment_id, "status": entry.status_code,
        "error": entry.error_type, "stream": entry.stream,
        "latency_ms": round(entry.latency_ms, 2), "ttft_ms": None,
        "input_tokens": entry.input_tokens, "output_tokens": entry.output_tokens,
        "cost_usd": str(entry.cost_usd), "cache": entry.cache_status,
        "attempts": outcome.attempts.count, "retries": outcome.attempts.retries,
        "failovers": outcome.attempts.failovers,
    })  # fmt: skip


def per_call_us(n: int, body: Callable[[], object], rounds: int = 5) -> tuple[float, float]:
    """Median and best of ``rounds`` runs of ``n`` calls, in µs of CPU per call (CPU time, so
    other processes on a busy machine inflate it less than wall time)."""
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(n):
            body()
        samples.append((time.process_time() - started) / n * 1e6)
    return statistics.median(samples), min(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--multiprocess", action="store_true")
    n = parser.parse_args().n

    sink = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as we do
    sink.setFormatter(JsonFormatter())
    requests_logger = logging.getLogger("aigateway.requests")
    requests_logger.handlers[:] = [sink]
    requests_logger.propagate = False
    requests_logger.setLevel(logging.INFO)

    calls_made = [finished_call() for _ in range(min(n, 2000))]
    ctx, entry, outcome = calls_made[0]

    def observe() -> None:
        ctx.trace.stages.pop() if ctx.trace.stages[-1].name == "record" else None
        calls.observe_call(ctx, REQUEST, entry, outcome, started=time.perf_counter())

    trace_for_dict = finished_call()[0].trace
    rows = [
        ("trace appends of a typical call", lambda: typical_trace(DecisionTrace())),
        ("metric updates (observe_call's share)",
         lambda: calls._count(entry, ctx.trace, 0.23, 0.2, 0.03)),
        ("request line alone (before this work)", lambda: old_request_line(entry, outcome)),
        ("observe_call: metrics + request line + OTel off", observe),
        ("trace.as_dict() + compact JSON (audit/debug only)", trace_for_dict.compact_json),
    ]  # fmt: skip
    mode = "multiprocess (mmap files)" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "single"
    print(f"prometheus_client mode: {mode}; {n} calls x 5 rounds; CPU µs per call (median / best)")
    for name, body in rows:
        median, best = per_call_us(n, body)
        print(f"  {name:<52} {median:7.2f} / {best:6.2f}")

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.install(provider)
    settings.AIGATEWAY_OTEL_ENABLED = True

    def spans() -> None:
        otel.export_call(ctx.trace, entry, retries=0, failovers=0)
        exporter.clear()

    median, best = per_call_us(max(1, n // 10), spans)
    print(f"  {'OTel on: building ~7 spans (in-memory exporter)':<52} {median:7.2f} / {best:6.2f}")


if __name__ == "__main__":
    main()
