"""A strategy's track record computed from its performance snapshots. Pure: no I/O, no clock.

Time-weighted return (what the pages and /api/strategies/{id}/performance show):
- between snapshots i-1 and i the sub-period growth factor is f_i = (V_i - F_i) / V_{i-1}, where V is the
  reported portfolio value and F_i the net deposit (+) / withdrawal (-) reported since snapshot i-1 (taken as
  arriving just before V_i was measured). A deposit therefore never counts as profit, a withdrawal never as loss.
  A sub-period that starts from nothing (V_{i-1} <= 0) has no return (f = 1); a factor never goes below 0.
- the equity index starts at 1 and multiplies the factors: I_n = f_1 x ... x f_n.
- ROI over a window W = I_end / I_start - 1, where `end` is the last snapshot and `start` the last snapshot at
  or before end - W; None when the history is shorter than W ("not enough history" beats a number that
  pretends to cover W). ROI since the first report = I_n - 1.
- max drawdown = the largest fall of the index from a previous peak: max_k (1 - I_k / max_{j<=k} I_j).

`thin` bounds storage: it merges snapshots into later ones with an *effective* flow that keeps every
time-weighted figure exact across the merge (only the curve loses resolution, and a drawdown inside
the merged stretch).
"""
from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

DAY_S = 86400
WINDOWS_DAYS = (7, 30, 90)
ZERO = Decimal(0)
ONE = Decimal(1)
_CONTEXT = decimal.Context(prec=40)  # products of thousands of factors keep their digits
FIGURE_STEP = Decimal("1e-8")  # what a figure is rounded to when shown as text


@dataclass(frozen=True)
class Point:
    t: float
    equity: Decimal
    flow: Decimal = ZERO  # effective net flow since the previous point (what the index uses)
    fills: int = 0
    reported_flow: Decimal = ZERO  # the flows as the publisher reported them (for display)


@dataclass(frozen=True)
class TradeResult:
    t: float
    pnl: Decimal | None


@dataclass(frozen=True)
class TrackRecord:
    points: int
    first_t: float | None
    last_t: float | None
    history_s: float  # last - first report
    roi: dict[int, Decimal | None]  # window in days -> ROI fraction
    roi_all: Decimal | None
    max_drawdown: Decimal | None  # fraction, >= 0
    last_equity: Decimal | None
    net_flow: Decimal  # reported deposits - withdrawals after the first report
    fills: int
    trades: int  # closed trades whose result is known
    wins: int
    index: tuple[tuple[float, Decimal], ...]  # (t, equity index)
    series: tuple[Point, ...] = ()  # the points the figures come from

    @property
    def win_rate(self) -> Decimal | None:
        return None if not self.trades else Decimal(self.wins) / Decimal(self.trades)

    @property
    def empty(self) -> bool:
        return self.points == 0

    def age_s(self, now: float) -> float:
        """Seconds since the first report (0 without one): the one figure that moves with the clock."""
        return 0.0 if self.first_t is None else max(0.0, now - self.first_t)


def factor(previous_equity: Decimal, point: Point) -> Decimal:
    """The growth factor of the sub-period ending at `point` (see module doc)."""
    if previous_equity <= 0:
        return ONE
    grown = _CONTEXT.subtract(point.equity, point.flow)
    return max(ZERO, _CONTEXT.divide(grown, previous_equity))


def equity_index(points: Sequence[Point]) -> list[Decimal]:
    index = []
    level = ONE
    for i, point in enumerate(points):
        if i:
            level = _CONTEXT.multiply(level, factor(points[i - 1].equity, point))
        index.append(level)
    return index


def max_drawdown(index: Sequence[Decimal]) -> Decimal | None:
    if len(index) < 2:
        return None
    peak = index[0]
    worst = ZERO
    for level in index:
        if level > peak:
            peak = level
        if peak > 0:
            worst = max(worst, _CONTEXT.subtract(ONE, _CONTEXT.divide(level, peak)))
    return worst


def window_roi(points: Sequence[Point], index: Sequence[Decimal], days: int) -> Decimal | None:
    if len(points) < 2:
        return None
    start = points[-1].t - days * DAY_S
    if points[0].t > start:
        return None  # shorter history than the window
    base = next(index[i] for i in range(len(points) - 1, -1, -1) if points[i].t <= start)
    if base <= 0:
        return None  # the index was wiped out before the window: no ratio to speak of
    return _CONTEXT.subtract(_CONTEXT.divide(index[-1], base), ONE)


def compute(points: Sequence[Point], trades: Sequence[TradeResult]) -> TrackRecord:
    """Every figure of the page and the API from points sorted by time (oldest first)."""
    index = equity_index(points)
    known = [trade for trade in trades if trade.pnl is not None]
    first_t = points[0].t if points else None
    last_t = points[-1].t if points else None
    return TrackRecord(
        points=len(points),
        first_t=first_t,
        last_t=last_t,
        history_s=(last_t - first_t) if points else 0.0,  # type: ignore[operator]
        roi={days: window_roi(points, index, days) for days in WINDOWS_DAYS},
        roi_all=_CONTEXT.subtract(index[-1], ONE) if len(points) >= 2 else None,
        max_drawdown=max_drawdown(index),
        last_equity=points[-1].equity if points else None,
        net_flow=sum((p.reported_flow for p in points[1:]), ZERO),
        fills=sum(p.fills for p in points),
        trades=len(known),
        wins=sum(1 for trade in known if trade.pnl is not None and trade.pnl > 0),
        index=tuple((p.t, level) for p, level in zip(points, index, strict=True)),
        series=tuple(points),
    )


def effective_flow(previous: Point, merged: Sequence[Point]) -> Decimal:
    """The one flow that gives `merged[-1]` (read after `previous`) the growth of the whole merged stretch:
    F' = V_last - V_previous x (f_1 x ... x f_k), so (V_last - F') / V_previous = f_1 x ... x f_k exactly."""
    growth = ONE
    before = previous.equity
    for point in merged:
        growth = _CONTEXT.multiply(growth, factor(before, point))
        before = point.equity
    return _CONTEXT.subtract(merged[-1].equity, _CONTEXT.multiply(previous.equity, growth))


def thin(points: Sequence[Point]) -> list[tuple[int, Point | None]]:
    """Halve the resolution of `points` (oldest first; the first point and the last one stay).

    Returns (position, replacement) per changed point: None = delete it, a Point = its merged values
    (effective flow, summed fills and reported flows). Every other point is merged into the next one.
    """
    changes: list[tuple[int, Point | None]] = []
    kept = points[0] if points else None
    i = 1
    while i + 1 < len(points):
        removed, into = points[i], points[i + 1]
        assert kept is not None
        merged = Point(into.t, into.equity, effective_flow(kept, [removed, into]), removed.fills + into.fills,
                       removed.reported_flow + into.reported_flow)
        changes.append((i, None))
        changes.append((i + 1, merged))
        kept = merged
        i += 2
    return changes


def figure(value: Decimal | None) -> str | None:
    """A fraction as the JSON API writes it: a plain decimal string rounded to 1e-8 (None stays None)."""
    if value is None:
        return None
    rounded = value.quantize(FIGURE_STEP, context=_CONTEXT)
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
