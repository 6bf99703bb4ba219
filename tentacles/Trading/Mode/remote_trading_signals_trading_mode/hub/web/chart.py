"""Published signals per day as an inline SVG bar chart, drawn on the server (no JS, no CDN)."""
from __future__ import annotations

import datetime
from html import escape

from markupsafe import Markup

DAY_S = 86400
WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 12, 28


def _day_label(day: int) -> str:
    return datetime.datetime.fromtimestamp(day * DAY_S, tz=datetime.timezone.utc).strftime("%m-%d")


def signals_per_day_svg(counts: dict[int, int], last_day: int, days: int = 30) -> Markup:
    """Bars for the `days` UTC days ending at `last_day` (unix day number); every value is ours or escaped."""
    first_day = last_day - days + 1
    values = [counts.get(day, 0) for day in range(first_day, last_day + 1)]
    peak = max(values) or 1
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / days
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" '
        f'aria-label="{escape(f"signals published per day, last {days} days, {sum(values)} in total")}">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" class="axis"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" class="tick" text-anchor="end">{peak}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" class="tick" text-anchor="end">0</text>',
    ]
    for index, value in enumerate(values):
        day = first_day + index
        x = LEFT + index * slot + slot * 0.15
        height = plot_h * value / peak
        y = TOP + plot_h - height
        label = escape(f"{_day_label(day)}: {value} signal{'s' if value != 1 else ''}")
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}">'
                     f"<title>{label}</title></rect>")
        if index % 5 == 0 or index == days - 1:
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - 8}" class="tick" text-anchor="middle">'
                         f"{escape(_day_label(day))}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))
