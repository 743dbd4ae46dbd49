"""The soak's verdict: is memory flat, does latency drift?

RSS: a least-squares line through each worker's RSS over the second half of the run (the
first half holds warm-up: imports, pools, caches filling); the change that line predicts
across the second half, as a share of the mean, must stay within +-10 %. p99: the same line
through the windows' p99 latency, and the median p99 of the last third against the first
third after warm-up, reported (on a shared machine latency is noise-prone: no verdict).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

FLAT_WITHIN = 0.10  # RSS change over the second half, as a share of its mean


@dataclass(frozen=True)
class Trend:
    mean: float
    slope_per_s: float  # units per second
    change: float  # predicted change across the span (slope x span)
    span_s: float

    @property
    def share(self) -> float:
        return self.change / self.mean if self.mean else 0.0

    @property
    def per_hour(self) -> float:
        return self.slope_per_s * 3600


def fit(ts: list[float], ys: list[float]) -> Trend:
    """Least-squares slope of ys over ts (seconds)."""
    if len(ts) < 2:
        return Trend(ys[0] if ys else 0.0, 0.0, 0.0, 0.0)
    t_mean, y_mean = statistics.fmean(ts), statistics.fmean(ys)
    var = sum((t - t_mean) ** 2 for t in ts)
    slope = sum((t - t_mean) * (y - y_mean) for t, y in zip(ts, ys, strict=True)) / var
    span = ts[-1] - ts[0]
    return Trend(y_mean, slope, slope * span, span)


def second_half(ts: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    half = ts[-1] / 2 if ts else 0.0
    pairs = [(t, y) for t, y in zip(ts, ys, strict=True) if t >= half]
    return [t for t, _ in pairs], [y for _, y in pairs]


def rss_verdicts(ts: list[float], rss_by_worker: dict[str, list[float]]) -> dict[str, Trend]:
    return {name: fit(*second_half(ts, values)) for name, values in rss_by_worker.items()}


def flat(trends: dict[str, Trend]) -> bool:
    return all(abs(t.share) <= FLAT_WITHIN for t in trends.values())


def p99_drift(ts: list[float], p99: list[float | None]) -> tuple[Trend, float, float]:
    """The p99 line over the second half, and the median p99 of the first and last thirds
    (the first third starts after the first minute: warm-up)."""
    pairs = [(t, p) for t, p in zip(ts, p99, strict=True) if p is not None]
    if not pairs:
        return Trend(0.0, 0.0, 0.0, 0.0), 0.0, 0.0
    times, values = [t for t, _ in pairs], [p for _, p in pairs]
    end = times[-1]
    first = [p for t, p in pairs if min(60.0, end / 6) <= t < end / 3] or values[:1]
    last = [p for t, p in pairs if t >= 2 * end / 3] or values[-1:]
    return fit(*second_half(times, values)), statistics.median(first), statistics.median(last)
