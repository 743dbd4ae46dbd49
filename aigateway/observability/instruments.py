"""Per-request Prometheus metrics (prometheus_client), updated once per call.

Several worker processes: set PROMETHEUS_MULTIPROC_DIR (an empty directory, wiped before the
server starts) in the environment of every process *before it starts*; prometheus_client
then keeps each process's values in memory-mapped files there and /metrics sums them
(``exposition``). Each process marks itself dead on a clean exit (``process_exit``, from the
ASGI lifespan shutdown) so its live gauges stop counting; counters and histograms of exited
processes keep their totals, as counters must.

The hot path never builds label sets twice: each metric's children are cached per label
tuple (``_Family``), so an update is a dict lookup plus the increment.
"""

from __future__ import annotations

import os

# prometheus_client picks its multiprocess mode when first imported and then writes into the
# directory at once: make sure it exists (a missing one would fail every import of this).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

# The *_created series double every counter's output and no dashboard here uses them.
disable_created_metrics()

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# The gateway's own share of a call: sub-millisecond when all is well.
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# The cache's status header → the label value of aigateway_cache_lookups_total.
CACHE_RESULTS = {"HIT": "exact", "SEMANTIC-HIT": "semantic", "MISS": "miss", "BYPASS": "bypass"}


class _Family[M: MetricWrapperBase]:
    """A labelled metric with its children cached by label tuple."""

    __slots__ = ("children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], M] = {}

    def __call__(self, *labels: str) -> M:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = self.metric.labels(*labels)
        return child


REQUESTS = _Family(
    Counter(
        "aigateway_requests",
        "Gateway calls by route, serving provider and deployment ('' when no upstream "
        "answered: cache hits, refusals, failures) and HTTP status.",
        ["route", "provider", "deployment", "status"],
    )
)
REQUEST_SECONDS = _Family(
    Histogram(
        "aigateway_request_duration_seconds",
        "Total time of a call in the gateway (streams: until the last chunk).",
        ["route", "stream"],
        buckets=LATENCY_BUCKETS,
    )
)
UPSTREAM_SECONDS = _Family(
    Histogram(
        "aigateway_upstream_duration_seconds",
        "Time spent waiting on upstreams per call, all attempts (streams: until the first "
        "chunk), by the deployment that finally served it.",
        ["route", "deployment"],
        buckets=LATENCY_BUCKETS,
    )
)
OVERHEAD_SECONDS = _Family(
    Histogram(
        "aigateway_gateway_overhead_seconds",
        "The gateway's own time per call: total minus upstream minus retry backoff "
        "(streams: time to first token minus upstream).",
        ["route"],
        buckets=OVERHEAD_BUCKETS,
    )
)
TTFT_SECONDS = _Family(
    Histogram(
        "aigateway_time_to_first_token_seconds",
        "Streams: time from the call's start to the first chunk sent to the client.",
        ["route", "deployment"],
        buckets=LATENCY_BUCKETS,
    )
)
TOKENS = _Family(
    Counter(
        "aigateway_tokens",
        "Tokens by route, deployment and direction (input, output).",
        ["route", "deployment", "direction"],
    )
)
COST = _Family(
    Counter(
        "aigateway_cost_usd",
        "Upstream cost in USD by route and deployment.",
        ["route", "deployment"],
    )
)
CACHE_LOOKUPS = _Family(
    Counter(
        "aigateway_cache_lookups",
        "Response-cache lookups by result: exact or semantic (hits), miss, bypass (not "
        "cacheable or Cache-Control: no-cache).",
        ["route", "result"],
    )
)
RATE_LIMITED = _Family(
    Counter(
        "aigateway_rate_limit_rejections",
        "Limits that refused a call (org, team, key, user) or an attempt on a deployment "
        "(deployment: the call then goes to another deployment or waits).",
        ["scope", "kind"],
    )
)
RETRIES = _Family(
    Counter("aigateway_retries", "Retry rounds by the error that caused them.", ["route", "reason"])
)
FAILOVERS = _Family(
    Counter(
        "aigateway_failovers",
        "Failovers to another deployment by the error that caused them.",
        ["route", "reason"],
    )
)
PROCESSES = Gauge(
    "aigateway_metrics_processes",
    "Processes whose metrics this exposition includes (multiprocess mode: live ones).",
    multiprocess_mode="livesum",
)
PROCESSES.set(1)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition() -> bytes:
    """This process's metrics, or every process's when PROMETHEUS_MULTIPROC_DIR is set."""
    directory = multiprocess_dir()
    if not directory:
        return generate_latest(REGISTRY)
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


def process_exit() -> None:
    """On a clean worker exit: drop this process's live gauges from the shared directory."""
    directory = multiprocess_dir()
    if directory:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(os.getpid(), directory)


def rate_limit_rejected(scope: str, kind: str) -> None:
    RATE_LIMITED(scope, kind).inc()
