"""Routing strategies (the order deployments are tried in) and the retry backoff."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from aigateway.gateway.strategies import (
    full_jitter_delay,
    latency_order,
    order_deployments,
    weighted_order,
)
from providers.base import DeploymentTarget

DRAWS = 10_000


def _targets(*ids: int) -> list[DeploymentTarget]:
    return [
        DeploymentTarget(
            deployment_id=i, provider_name=f"p{i}", provider_kind="openai", upstream_model="m"
        )
        for i in ids
    ]


def _ids(order: list[DeploymentTarget]) -> list[int | None]:
    return [d.deployment_id for d in order]


def _draw(weights: dict[int | None, int], ids: tuple[int, ...], seed: int = 1234) -> list[list]:
    rng = random.Random(seed)
    targets = _targets(*ids)
    return [_ids(weighted_order(targets, weights, rng)) for _ in range(DRAWS)]


class _Extreme(random.Random):
    """A generator whose uniform() always returns the low (or high) end of its range."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


# -- weighted -------------------------------------------------------------------------------
def test_weighted_first_pick_follows_the_weights():
    orders = _draw({1: 3, 2: 1}, (1, 2))
    share = Counter(order[0] for order in orders)
    assert share[1] / DRAWS == pytest.approx(0.75, abs=0.02)
    assert share[2] / DRAWS == pytest.approx(0.25, abs=0.02)


def test_weighted_later_picks_are_weighted_among_the_rest():
    orders = _draw({1: 5, 2: 3, 3: 2}, (1, 2, 3), seed=99)
    first = Counter(order[0] for order in orders)
    for dep, weight in ((1, 5), (2, 3), (3, 2)):
        assert first[dep] / DRAWS == pytest.approx(weight / 10, abs=0.02)
    # P(1 second) = P(2 first) * 5/7 + P(3 first) * 5/8 = 0.3393
    second = Counter(order[1] for order in orders)
    assert second[1] / DRAWS == pytest.approx(0.3 * 5 / 7 + 0.2 * 5 / 8, abs=0.02)


def test_weighted_every_deployment_appears_exactly_once_per_order():
    ids = (4, 8, 15, 16, 23, 42)
    weights = {4: 1, 8: 0, 15: 7, 16: 2, 42: 3}  # 23 has no weight: it counts as 1
    for order in _draw(weights, ids, seed=7):
        assert sorted(order) == sorted(ids)
    assert Counter(o[0] for o in _draw(weights, ids))[23] > 0


def test_weighted_missing_weights_count_as_one():
    orders = _draw({1: 1}, (1, 2))  # 2 is absent from the weights
    assert Counter(order[0] for order in orders)[2] / DRAWS == pytest.approx(0.5, abs=0.02)


def test_weight_zero_is_never_first():
    orders = _draw({1: 0, 2: 1, 3: 0, 4: -2}, (1, 2, 3, 4))
    assert {order[0] for order in orders} == {2}
    # The zero-weight ones stay fallbacks, in their configured order.
    assert {tuple(order) for order in orders} == {(2, 1, 3, 4)}


@pytest.mark.parametrize("high", [False, True])
def test_weight_zero_is_never_first_even_at_the_ends_of_the_draw(high):
    targets = _targets(1, 2, 3)
    order = _ids(weighted_order(targets, {1: 0, 2: 1, 3: 0}, _Extreme(high)))
    assert order == [2, 1, 3]
    order = _ids(weighted_order(targets, {1: 2, 2: 0, 3: 1}, _Extreme(high)))
    assert order[0] == (3 if high else 1)
    assert order[-1] == 2


def test_all_weights_zero_keeps_the_configured_order():
    targets = _targets(3, 1, 2)
    rng = random.Random(5)
    for _ in range(100):
        assert _ids(weighted_order(targets, {1: 0, 2: 0, 3: 0}, rng)) == [3, 1, 2]


def test_weighted_is_reproducible_with_a_seed_and_leaves_the_input_alone():
    targets = _targets(1, 2, 3, 4)
    weights = {1: 1, 2: 2, 3: 3, 4: 4}
    a = [_ids(weighted_order(targets, weights, random.Random(42))) for _ in range(5)]
    b = [_ids(weighted_order(targets, weights, random.Random(42))) for _ in range(5)]
    assert a == b
    assert _ids(targets) == [1, 2, 3, 4]
    assert weighted_order([], weights, random.Random(1)) == []


# -- lowest latency -------------------------------------------------------------------------
def test_latency_order_puts_unmeasured_first_then_fastest():
    targets = _targets(1, 2, 3, 4, 5)
    latency = {1: 120.0, 2: 30.0, 4: 75.0}
    assert _ids(latency_order(targets, latency)) == [3, 5, 2, 4, 1]


def test_latency_order_ties_keep_the_configured_order():
    targets = _targets(9, 3, 6)
    assert _ids(latency_order(targets, {9: 50.0, 3: 50.0, 6: 10.0})) == [6, 9, 3]
    assert _ids(latency_order(targets, {})) == [9, 3, 6]


# -- order_deployments ----------------------------------------------------------------------
def test_ordered_keeps_the_configured_order():
    targets = _targets(3, 1, 2)
    for _ in range(20):
        order = order_deployments(
            "ordered", targets, weights={1: 100, 2: 0, 3: 0}, latency_ms={3: 900.0, 1: 1.0}
        )
        assert _ids(order) == [3, 1, 2]
    assert order is not targets  # a copy the caller may change


def test_order_deployments_dispatches_per_strategy():
    targets = _targets(1, 2, 3)
    weights = {1: 0, 2: 0, 3: 1}
    latency = {1: 5.0, 2: 1.0, 3: 9.0}
    assert _ids(order_deployments("lowest_latency", targets, weights=weights,
                                  latency_ms=latency)) == [2, 1, 3]  # fmt: skip
    weighted = order_deployments(
        "weighted", targets, weights=weights, latency_ms=latency, rng=random.Random(3)
    )
    assert _ids(weighted) == [3, 1, 2]
    seeded = [
        _ids(order_deployments("weighted", _targets(1, 2, 3, 4), weights={}, latency_ms={},
                               rng=random.Random(11)))
        for _ in range(3)
    ]  # fmt: skip
    assert seeded[0] == seeded[1] == seeded[2]
    # Without an rng it still returns every deployment once.
    assert sorted(_ids(order_deployments("weighted", targets, weights={}, latency_ms={}))) == [
        1, 2, 3,
    ]  # fmt: skip


# -- backoff ---------------------------------------------------------------------------------
@pytest.mark.parametrize("round_index", [0, 1, 2, 3, 4, 5, 8])
def test_full_jitter_stays_within_the_ceiling_and_averages_half_of_it(round_index):
    base, cap = 0.25, 2.0
    ceiling = min(cap, base * 2**round_index)
    rng = random.Random(round_index)
    delays = [full_jitter_delay(round_index, base=base, cap=cap, rng=rng) for _ in range(DRAWS)]
    assert all(0 <= d <= ceiling for d in delays)
    assert sum(delays) / DRAWS == pytest.approx(ceiling / 2, rel=0.03)
    # Full jitter: the draws spread over the whole range, not near the ceiling only.
    assert min(delays) < ceiling * 0.01
    assert max(delays) > ceiling * 0.99


def test_full_jitter_ceiling_grows_exponentially_until_the_cap():
    rng = _Extreme(high=True)
    ceilings = [full_jitter_delay(n, base=0.5, cap=5.0, rng=rng) for n in range(6)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert full_jitter_delay(3, base=0.5, cap=5.0, rng=_Extreme(high=False)) == 0


def test_full_jitter_without_an_rng_uses_the_module_generator():
    for n in range(10):
        assert 0 <= full_jitter_delay(n, base=0.1, cap=1.0) <= min(1.0, 0.1 * 2**n)
