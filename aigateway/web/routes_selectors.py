"""What the Routes page shows: routes with their deployments and settings (two queries), and
each deployment's live health: its circuit breaker (shared through Redis when configured),
its recent latency (the moving average the lowest-latency strategy uses) and its last
health probe."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.timesince import timesince

from aigateway.gateway.breaker import BreakerConfig, breaker_store
from aigateway.gateway.latency import latency_snapshot
from aigateway.routing.models import Deployment, Route


@dataclass(frozen=True)
class DeploymentHealth:
    deployment_id: int
    breaker: str  # closed, open, half_open, forced_open, forced_closed
    latency_ms: float | None  # recent calls (moving average); None: no call yet
    probe: str  # the last health probe as a phrase
    probe_ok: bool | None

    @property
    def breaker_label(self) -> str:
        return self.breaker.replace("_", " ")


FAILOVER_REASONS = (
    ("fallback_on_errors", "errors"),
    ("fallback_on_rate_limit", "rate limits"),
    ("fallback_on_context_window", "context window"),
    ("fallback_on_content_filter", "content filter"),
)


def failover_text(route: Route) -> str:
    """What the route fails over on, as a phrase ("errors, rate limits" or "nothing")."""
    return ", ".join(label for name, label in FAILOVER_REASONS if getattr(route, name)) or (
        "nothing"
    )


def routes_overview(**filters: object) -> list[Route]:
    """Routes by name with their deployments in priority order (providers and pinned
    credentials joined) and the teams that may call them; ``route.failover_text`` set."""
    deployments = Deployment.objects.select_related("provider", "credential").order_by(
        "priority", "id"
    )
    routes = list(
        Route.objects.filter(**filters)
        .order_by("name")
        .prefetch_related(Prefetch("deployments", queryset=deployments), "teams__organisation")
    )
    for route in routes:
        route.failover_text = failover_text(route)  # type: ignore[attr-defined]
    return routes


def _probe(d: Deployment) -> str:
    if d.last_probe_at is None:
        return "no probe yet"
    when = f"{timesince(d.last_probe_at, timezone.now())} ago"
    latency = f", {d.last_probe_latency_ms:.0f} ms" if d.last_probe_latency_ms is not None else ""
    if d.last_probe_ok:
        return f"probe ok{latency}, {when}"
    return f"probe failed ({d.last_probe_error or 'error'}){latency}, {when}"


def deployments_health(deployments: Iterable[Deployment]) -> dict[int, DeploymentHealth]:
    """Live health per deployment (breaker states and latencies: one round trip each to the
    shared store when it is Redis)."""
    rows = list(deployments)
    cfg, now = BreakerConfig.from_settings(), time.time()

    async def read() -> tuple[list[str], dict[int | None, float]]:
        store = breaker_store()
        states = [(await store.snapshot(d.pk, now, cfg)).state for d in rows]
        return states, await latency_snapshot([d.pk for d in rows])

    states, latencies = async_to_sync(read)() if rows else ([], {})
    return {
        d.pk: DeploymentHealth(d.pk, state, latencies.get(d.pk), _probe(d), d.last_probe_ok)
        for d, state in zip(rows, states, strict=True)
    }
