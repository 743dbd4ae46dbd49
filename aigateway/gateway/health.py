"""Health probes: a cheap call per provider credential (list models), run by Celery beat.

Results feed each deployment's circuit breaker and the dashboard's health panel (latency,
last error). Deployments that share a provider and credential share one probe. A breaker
that is open and still inside its recovery time is probed for the panel only; once its
recovery time is over, the probe takes the half-open slot and its result closes or
reopens the breaker, exactly like a real call would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from django.utils import timezone

from aigateway.core.db import run_db
from aigateway.gateway.breaker import BreakerConfig, Decision, breaker_store
from aigateway.gateway.breaker_events import breaker_transition_recorded
from aigateway.gateway.resilience import breaker_note, health_failure
from providers.base import DeploymentTarget, get_adapter
from providers.errors import ProviderError

logger = logging.getLogger(__name__)
PROBE_TIMEOUT_SECONDS = 10.0
CONCURRENCY = 10


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    latency_ms: float
    error: str = ""


def _enabled_targets() -> list[DeploymentTarget]:
    from aigateway.gateway.routes import deployment_target
    from aigateway.routing.models import Deployment

    deployments = Deployment.objects.filter(enabled=True, provider__enabled=True).select_related(
        "provider", "credential"
    )
    return [t for t in (deployment_target(d) for d in deployments) if t is not None]


def _save(results: dict[int, ProbeResult]) -> None:
    from aigateway.routing.models import Deployment

    now = timezone.now()
    for deployment_id, result in results.items():
        # update(): runtime data must not bump the config version (no signals).
        Deployment.objects.filter(pk=deployment_id).update(
            last_probe_at=now,
            last_probe_ok=result.ok,
            last_probe_latency_ms=result.latency_ms,
            last_probe_error=result.error,
        )


async def _probe(target: DeploymentTarget) -> ProbeResult:
    started = time.monotonic()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await get_adapter(target).health_check(target)
    except TimeoutError:
        return ProbeResult(False, (time.monotonic() - started) * 1000, "timeout")
    except ProviderError as exc:
        ok = not health_failure(exc)  # a 4xx still proves the upstream answers
        return ProbeResult(ok, (time.monotonic() - started) * 1000, "" if ok else exc.kind)
    return ProbeResult(True, (time.monotonic() - started) * 1000)


async def _feed_breaker(target: DeploymentTarget, result: ProbeResult) -> None:
    assert target.deployment_id is not None
    store, cfg = breaker_store(), BreakerConfig.from_settings()
    try:
        decision, transition = await store.allow(target.deployment_id, time.time(), cfg)
    except Exception:  # noqa: BLE001 - probes go on without the breaker
        logger.warning("breaker store unreachable during probes")
        return
    if transition is not None:
        breaker_transition_recorded(transition)
    if decision is not Decision.REJECT:
        await breaker_note(target, ok=result.ok)


async def probe_all() -> dict[int, ProbeResult]:
    targets = await run_db(_enabled_targets)
    groups: dict[tuple[str, str, str, str], list[DeploymentTarget]] = {}
    for target in targets:
        groups.setdefault(target.pool_key, []).append(target)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def probe_group(members: list[DeploymentTarget]) -> list[tuple[int, ProbeResult]]:
        async with limit:
            result = await _probe(members[0])
        for member in members:
            await _feed_breaker(member, result)
        return [(m.deployment_id, result) for m in members if m.deployment_id is not None]

    results: dict[int, ProbeResult] = {}
    for pairs in await asyncio.gather(*(probe_group(g) for g in groups.values())):
        results.update(pairs)
    await run_db(_save, results)
    return results
