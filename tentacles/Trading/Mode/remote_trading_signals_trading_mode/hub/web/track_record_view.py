"""What the pages show of a track record: figures as text ("+12.34 %", "3 days of history"), the curve."""
from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from ..performance_service import StrategyRecord
from ..track_record import WINDOWS_DAYS
from .equity_chart import equity_curve_svg

METHOD_SENTENCE = ("Returns are time-weighted: each stretch between two reports counts its gain net of the "
                   "deposits and withdrawals the bot reported, and the stretches are chained, so money added or "
                   "taken out is never profit or loss; max drawdown is the worst fall of that chained curve from "
                   "a previous peak.")
DASH = "—"


def percent(fraction: Decimal | None, signed: bool = True) -> str:
    if fraction is None:
        return DASH
    value = fraction * 100
    return f"{value:+.2f} %" if signed else f"{value:.2f} %"


def duration(seconds: float) -> str:
    """'less than a minute', '5 minutes', '7 hours', '3 days' (whole units, rounded down)."""
    if seconds < 60:
        return "less than a minute"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= (2 * size if unit != "minute" else size):
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{int(seconds // 60)} minutes"  # pragma: no cover - the loop always returns


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def signed_text(entry: StrategyRecord, fingerprint: str | None) -> str:
    # the key may have been changed or removed since: the reports were verified with the one set then
    key = f"the strategy's key {fingerprint}" if fingerprint else "the key the strategy had then"
    if entry.signed == "all":
        return f"signed: every report verified with {key}"
    if entry.signed == "partly" and entry.head is not None:
        return f"partly signed: {entry.head.signed_points} of {entry.head.points} reports verified with {key}"
    return "not signed: the strategy has no public key, so the hub cannot verify who sent these reports"


def track_view(entry: StrategyRecord, copiers: int, now: float, fingerprint: str | None) -> dict[str, Any]:
    """The strategy page's track record section."""
    record = entry.record
    history = duration(record.history_s)
    view: dict[str, Any] = {
        "empty": record.empty,
        "copiers": copiers,
        "method": METHOD_SENTENCE,
        "signed": entry.signed,
        "signed_text": signed_text(entry, fingerprint),
    }
    if record.empty:
        return view
    roi = {days: percent(record.roi[days]) for days in WINDOWS_DAYS}
    view.update({
        "history": f"{history} of history" if record.points > 1 else "a single report so far",
        "roi": [(f"{days} d", roi[days], record.roi[days] is None) for days in WINDOWS_DAYS],
        "roi_all": percent(record.roi_all),
        "max_drawdown": percent(record.max_drawdown, signed=False) if record.max_drawdown is not None else DASH,
        "trades": record.trades,
        "win_rate": percent(record.win_rate, signed=False) if record.win_rate is not None else DASH,
        "fills": record.fills,
        "age": duration(record.age_s(now)),
        "first": when(record.first_t),
        "last": when(record.last_t),
        "currency": entry.head.currency if entry.head else "",
        "last_equity": record.last_equity,
        "net_flow": record.net_flow,
        "points": record.points,
        "chart": equity_curve_svg(record.index),
    })
    return view


def row_figures(entry: StrategyRecord | None) -> dict[str, str]:
    """ROI 30 d and max drawdown for a row of the strategies list."""
    if entry is None or entry.record.empty:
        return {"roi30": DASH, "mdd": DASH, "history": "no performance reported yet"}
    record = entry.record
    return {"roi30": percent(record.roi[30]),
            "mdd": percent(record.max_drawdown, signed=False) if record.max_drawdown is not None else DASH,
            "history": f"{duration(record.history_s)} of history" if record.points > 1 else "a single report"}
