"""The soak harness's own logic (bench/soak): the trend verdict, the load mix, the chart.
The soak itself runs for minutes and is not part of the suite (`make soak`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

from bench.soak import analysis, load
from bench.soak.chart import Panel, chart, nice_max

TS = [10.0 * i for i in range(1, 61)]  # a 10-minute run sampled every 10 s


def test_a_steady_rss_is_flat_and_a_leak_is_not() -> None:
    steady = [240.0 + (0.8 if i % 3 == 0 else -0.4) for i in range(60)]  # noise, no trend
    leaking = [240.0 + 0.2 * i for i in range(60)]  # +0.2 MiB every 10 s: +6 MiB over 300 s
    trends = analysis.rss_verdicts(TS, {"steady": steady, "leaking": leaking})
    assert abs(trends["steady"].share) < 0.01
    assert round(trends["leaking"].slope_per_s, 9) == 0.02  # the second half's line...
    assert round(trends["leaking"].change, 6) == 6.0  # ...from 300 s to 600 s
    assert analysis.flat({"steady": trends["steady"]})
    fast = analysis.rss_verdicts(TS, {"fast": [100.0 + 1.0 * i for i in range(60)]})
    assert not analysis.flat(fast)  # +29 MiB on a mean of ~145: 20 %


def test_p99_drift_compares_thirds_after_warm_up_and_skips_empty_windows() -> None:
    p99: list[float | None] = [500.0] * 6 + [20.0] * 14 + [None] * 20 + [40.0] * 20
    line, first, last = analysis.p99_drift(TS, p99)
    assert (first, last) == (20.0, 40.0)  # the first minute's 500 ms is warm-up
    assert line.slope_per_s == 0.0  # the second half: only the flat 40 ms windows


def test_the_load_mix_is_what_the_docs_say() -> None:
    kinds = Counter(load.call_for(i, "run").kind for i in range(1000))
    assert kinds == {"plain": 400, "cache_hit": 400, "cache_miss": 100, "stream": 50,
                     "limited": 50}  # fmt: skip
    hits = {load.call_for(i, "run").prompt for i in range(1000)
            if load.call_for(i, "run").kind == "cache_hit"}  # fmt: skip
    assert len(hits) == load.HIT_PROMPTS  # repeated prompts: hits after the first of each
    assert load.percentile([float(v) for v in range(1, 101)], 99) == 100.0
    assert load.percentile([], 50) is None


def test_the_chart_is_valid_svg_with_a_line_per_series_broken_at_gaps() -> None:
    panels = [
        Panel("p99", "ms", {"p99": [12.0, None, 14.0, 15.0]}),
        Panel("RSS", "MiB", {"worker 1": [240.0] * 4, "worker 2": [250.0] * 4}),
    ]
    svg = chart([10.0, 20.0, 30.0, 40.0], panels, "a <soak> & more")
    root = ET.fromstring(svg)  # well-formed, title escaped
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 1 + 1 + 2  # p99 in two runs around its gap, one per worker
    assert (nice_max(241), nice_max(0.7), nice_max(1300), nice_max(10)) == (250, 0.8, 1500, 10)
