"""A strategy's equity curve (its time-weighted index) as an inline SVG line, drawn on the server.

Like chart.py: no script, no CDN, nothing the CSP would refuse; every text is ours or escaped. At most
MAX_DRAWN points are drawn (the series is sampled evenly, its first and last points always kept).
"""
from __future__ import annotations

import datetime
from collections.abc import Sequence
from decimal import Decimal
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 28
MAX_DRAWN = 400


def _date(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc).strftime("%Y-%m-%d")


def _pct(level: float) -> str:
    return f"{(level - 1) * 100:+.1f} %"


def sample(index: Sequence[tuple[float, Decimal]], limit: int = MAX_DRAWN) -> list[tuple[float, float]]:
    if len(index) <= limit:
        chosen = list(index)
    else:
        step = (len(index) - 1) / (limit - 1)
        chosen = [index[round(i * step)] for i in range(limit)]
    return [(t, float(level)) for t, level in chosen]


def equity_curve_svg(index: Sequence[tuple[float, Decimal]]) -> Markup:
    """The index (1 = the first report) over time; a flat line at 0 % when there is a single point."""
    points = sample(index)
    if not points:
        return Markup("")
    levels = [level for _, level in points]
    low, high = min(min(levels), 1.0), max(max(levels), 1.0)
    if high - low < 1e-9:
        low, high = low - 0.01, high + 0.01
    first_t, last_t = points[0][0], points[-1][0]
    span = (last_t - first_t) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + plot_w * (t - first_t) / span

    def y(level: float) -> float:
        return TOP + plot_h * (high - level) / (high - low)

    path = " ".join(f"{x(t):.1f},{y(level):.1f}" for t, level in points)
    if len(points) == 1:
        path = f"{LEFT},{y(levels[0]):.1f} {WIDTH - RIGHT},{y(levels[0]):.1f}"
    label = f"equity curve, time-weighted: {_pct(levels[-1])} since the first report on {_date(first_t)}"
    parts = [
        f'<svg class="chart equity" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" '
        f'aria-label="{escape(label)}" data-test="equity-curve">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{y(1.0):.1f}" x2="{WIDTH - RIGHT}" y2="{y(1.0):.1f}" class="base"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" class="tick" text-anchor="end">{escape(_pct(high))}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" class="tick" text-anchor="end">{escape(_pct(low))}</text>',
        f'<polyline class="curve" points="{path}"><title>{escape(label)}</title></polyline>',
        f'<text x="{LEFT}" y="{HEIGHT - 8}" class="tick">{escape(_date(first_t))}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" class="tick" text-anchor="end">{escape(_date(last_t))}</text>',
    ]
    if TOP + 12 < y(1.0) < TOP + plot_h - 12:  # the 0 % line's label, unless it sits on the top or bottom one
        parts.append(f'<text x="{LEFT - 6}" y="{y(1.0) + 4:.1f}" class="tick" text-anchor="end">0 %</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
