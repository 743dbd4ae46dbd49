"""The order in which a route's deployments are tried, per routing strategy."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from providers.base import DeploymentTarget


def weighted_order(
    deployments: Sequence[DeploymentTarget], weights: Mapping[int | None, int], rng: random.Random
) -> list[DeploymentTarget]:
    """Weighted shuffle: the first is drawn in proportion to weight, then the next from the
    rest, and so on, so the others remain fallbacks in weighted order."""
    pool = list(deployments)
    order = []
    while pool:
        total = sum(max(weights.get(d.deployment_id, 1), 0) for d in pool)
        if total <= 0:
            order.extend(pool)
            break
        pick = rng.uniform(0, total)
        for index, target in enumerate(pool):
            weight = max(weights.get(target.deployment_id, 1), 0)
            if weight == 0:  # never drawn, even when the draw is exactly 0
                continue
            pick -= weight
            if pick <= 0:
                order.append(pool.pop(index))
                break
        else:
            order.append(pool.pop())
    return order


def latency_order(
    deployments: Sequence[DeploymentTarget], latency_ms: Mapping[int | None, float]
) -> list[DeploymentTarget]:
    """Fastest recent first. A deployment without measurements sorts first, so it gets
    measured; ties keep the configured order."""
    return sorted(deployments, key=lambda d: latency_ms.get(d.deployment_id, -1.0))


def order_deployments(
    strategy: str,
    deployments: Sequence[DeploymentTarget],
    *,
    weights: Mapping[int | None, int],
    latency_ms: Mapping[int | None, float],
    rng: random.Random | None = None,
) -> list[DeploymentTarget]:
    if strategy == "weighted":
        return weighted_order(deployments, weights, rng or random.Random())
    if strategy == "lowest_latency":
        return latency_order(deployments, latency_ms)
    return list(deployments)


def full_jitter_delay(
    round_index: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**round))."""
    ceiling = min(cap, base * (2**round_index))
    return (rng or random).uniform(0, ceiling)
