"""Recording circuit-breaker transitions: logged at once, stored off the request path."""

from __future__ import annotations

import asyncio
import logging

from django.utils import timezone

from aigateway.core.db import run_db
from aigateway.gateway.breaker import Transition

logger = logging.getLogger(__name__)
_pending: set[asyncio.Task[None]] = set()


def store_transition(transition: Transition, actor_id: int | None = None) -> None:
    from aigateway.routing.models import BreakerEvent, Deployment

    if not Deployment.objects.filter(pk=transition.deployment_id).exists():
        return
    BreakerEvent.objects.create(
        deployment_id=transition.deployment_id,
        created_at=timezone.now(),
        from_state=transition.from_state,
        to_state=transition.to_state,
        reason=transition.reason[:300],
        actor_id=actor_id,
    )


def breaker_transition_recorded(transition: Transition) -> None:
    """Called from the hot path: log now, write the row in the background."""
    logger.warning(
        "breaker of deployment %s: %s → %s (%s)",
        transition.deployment_id,
        transition.from_state,
        transition.to_state,
        transition.reason,
    )
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        store_transition(transition)
        return
    task = loop.create_task(_store(transition))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _store(transition: Transition) -> None:
    try:
        await run_db(store_transition, transition)
    except Exception:
        logger.exception("could not store a breaker transition")


async def breaker_events_flush() -> None:
    """Wait for pending writes (shutdown, tests)."""
    if _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)
