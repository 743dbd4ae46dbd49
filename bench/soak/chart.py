"""A small hand-written SVG: stacked panels of series over time (no plotting dependency).

    svg = chart(ts, [Panel("p99 latency", "ms", {"p99": values}), ...], title="...")

Each panel gets its own y axis from 0 to a rounded maximum, a line per series and a legend;
all share the x axis (minutes). Gaps (None) break a line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

WIDTH, PANEL_HEIGHT, LEFT, RIGHT, TOP, GAP, BOTTOM = 760, 170, 64, 16, 56, 44, 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    series: dict[str, list[float | None]]


def nice_max(value: float) -> float:
    """The smallest 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x 10^k at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= value)


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value:.0f}"


def chart(ts: list[float], panels: list[Panel], title: str) -> str:
    height = TOP + len(panels) * (PANEL_HEIGHT + GAP) + BOTTOM - GAP
    plot_w = WIDTH - LEFT - RIGHT
    t_max = max(ts) if ts else 1.0
    x_max = nice_max(round(t_max / 60, 1))  # 10.005 minutes is a 10-minute axis
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]

    def x(t: float) -> float:
        return LEFT + plot_w * (t / 60) / x_max

    for n, panel in enumerate(panels):
        top = TOP + n * (PANEL_HEIGHT + GAP)
        values = [v for s in panel.series.values() for v in s if v is not None]
        y_max = nice_max(max(values) if values else 1.0)

        def y(v: float, top: int = top, y_max: float = y_max) -> float:
            return top + PANEL_HEIGHT * (1 - v / y_max)

        out.append(f'<text x="{LEFT}" y="{top - 6}" font-weight="bold">'
                   f'{escape(panel.title)} ({escape(panel.unit)})</text>')  # fmt: skip
        for i in range(5):  # horizontal grid and y labels
            v = y_max * i / 4
            out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                       f'stroke="#ddd"/>')  # fmt: skip
            out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
                       f"{_fmt(v)}</text>")  # fmt: skip
        for i in range(6):  # vertical grid
            m = x_max * i / 5
            out.append(f'<line x1="{x(m * 60):.1f}" x2="{x(m * 60):.1f}" y1="{top}" '
                       f'y2="{top + PANEL_HEIGHT}" stroke="#eee"/>')  # fmt: skip
        for k, (name, series) in enumerate(panel.series.items()):
            colour = COLOURS[k % len(COLOURS)]
            for run in _runs(ts, series):
                points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
                out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                           f'points="{points}"/>')  # fmt: skip
            lx = WIDTH - RIGHT - 150 * (len(panel.series) - k)
            out.append(f'<rect x="{lx}" y="{top - 15}" width="10" height="10" fill="{colour}"/>')
            out.append(f'<text x="{lx + 14}" y="{top - 6}">{escape(name)}</text>')
        out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_HEIGHT}" '
                   f'fill="none" stroke="#888"/>')  # fmt: skip
    axis = TOP + len(panels) * (PANEL_HEIGHT + GAP) - GAP
    for i in range(6):
        m = x_max * i / 5
        out.append(f'<text x="{x(m * 60):.1f}" y="{axis + 14}" text-anchor="middle">'
                   f"{_fmt(m)}</text>")  # fmt: skip
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{axis + 30}" text-anchor="middle">'
               "minutes since the load started</text>")  # fmt: skip
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _runs(ts: list[float], series: list[float | None]) -> list[list[tuple[float, float]]]:
    """The series split at its gaps: one polyline per unbroken run."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in zip(ts, series, strict=True):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((t, v))
    return [r for r in runs if r]
