"""The track record's figures from a known series, hand-checked (hub/track_record.py is pure: no hub needed)."""
from __future__ import annotations

from decimal import Decimal

from octobot_signals.hub.track_record import (
    DAY_S,
    Point,
    TradeResult,
    compute,
    effective_flow,
    equity_index,
    figure,
    thin,
)

D = Decimal
T0 = 1_700_000_000.0


def day(n: float) -> float:
    return T0 + n * DAY_S


# The known series. V = reported portfolio value, F = reported flow since the previous snapshot.
#   day  0: V = 1000                     first report: index 1
#   day 10: V = 1100                     f = 1100 / 1000          = 1.1   -> index 1.1
#   day 20: V = 990                      f = 990 / 1100           = 0.9   -> index 0.99
#   day 30: V = 2188, F = +1000 deposit  f = (2188 - 1000) / 990  = 1.2   -> index 1.188
#   day 40: V = 2406.8                   f = 2406.8 / 2188        = 1.1   -> index 1.3068
# Naive V_end / V_start - 1 would be +140.68 %: the deposit must not count as profit.
SERIES = [
    Point(day(0), D("1000")),
    Point(day(10), D("1100")),
    Point(day(20), D("990")),
    Point(day(30), D("2188"), D("1000"), reported_flow=D("1000")),
    Point(day(40), D("2406.8")),
]


def test_roi_and_drawdown_of_the_known_series_with_a_deposit() -> None:
    record = compute(SERIES, [])
    assert [figure(i) for i in equity_index(SERIES)] == ["1", "1.1", "0.99", "1.188", "1.3068"]
    # since the first report: index 1.3068 - 1
    assert figure(record.roi_all) == "0.3068"
    # 30 d: window starts at day 10, the last snapshot at or before it is day 10 (index 1.1): 1.3068 / 1.1 - 1
    assert figure(record.roi[30]) == "0.188"
    # 7 d: window starts at day 33, the last snapshot at or before it is day 30 (index 1.188): 1.3068 / 1.188 - 1
    assert figure(record.roi[7]) == "0.1"
    # 90 d: 40 days of history only
    assert record.roi[90] is None
    # max drawdown: peak 1.1 (day 10) to 0.99 (day 20) = 1 - 0.99 / 1.1; the deposit is no new peak by itself
    assert figure(record.max_drawdown) == "0.1"
    assert record.net_flow == D("1000") and record.last_equity == D("2406.8")
    assert record.history_s == 40 * DAY_S and record.age_s(day(41)) == 41 * DAY_S and record.points == 5


def test_a_withdrawal_is_not_a_loss_and_a_crash_after_it_is() -> None:
    # day 41: 406.8 withdrawn, V = 2000: f = (2000 + 406.8) / 2406.8 = 1 -> index stays 1.3068
    # day 42: V = 1000: f = 0.5 -> index 0.6534; drawdown from the 1.3068 peak = 0.5
    series = [*SERIES, Point(day(41), D("2000"), D("-406.8"), reported_flow=D("-406.8")),
              Point(day(42), D("1000"))]
    record = compute(series, [])
    assert [figure(i) for i in equity_index(series)][-2:] == ["1.3068", "0.6534"]
    assert figure(record.roi_all) == "-0.3466"
    assert figure(record.max_drawdown) == "0.5"
    assert record.net_flow == D("593.2")


def test_an_account_funded_after_its_first_report_starts_at_index_one() -> None:
    # day 0: V = 0 (nothing yet); day 1: V = 500 after a 500 deposit: no return on nothing (f = 1)
    # day 2: V = 550: f = 1.1
    series = [Point(day(0), D(0)), Point(day(1), D(500), D(500)), Point(day(2), D(550))]
    assert [figure(i) for i in equity_index(series)] == ["1", "1", "1.1"]


def test_empty_and_single_snapshot_histories_have_no_figures() -> None:
    empty = compute([], [])
    assert empty.empty and empty.roi_all is None and empty.max_drawdown is None and empty.roi == {7: None, 30: None, 90: None}
    single = compute([Point(day(0), D(100))], [])
    assert single.points == 1 and single.roi_all is None and single.max_drawdown is None
    assert single.age_s(day(3)) == 3 * DAY_S and single.history_s == 0


def test_trades_count_and_win_rate_only_count_known_results() -> None:
    trades = [TradeResult(day(1), D("5")), TradeResult(day(2), D("-2")), TradeResult(day(3), D("0")),
              TradeResult(day(4), D("1.5")), TradeResult(day(5), None)]
    series = [Point(day(0), D(100), fills=0), Point(day(5), D(104), fills=7)]
    record = compute(series, trades)
    # 4 results known (the None is not one), 2 of them above zero (break-even is no win): 2 / 4
    assert (record.trades, record.wins, figure(record.win_rate), record.fills) == (4, 2, "0.5", 7)


def test_thinning_keeps_every_time_weighted_figure_exact() -> None:
    # The deposit of day 30 is merged into day 40 (day 30 removed): the effective flow of day 40 must be
    # V40 - V20 x (f30 x f40) = 2406.8 - 990 x 1.2 x 1.1 = 2406.8 - 1306.8 = 1100 (not the 1000 reported).
    assert effective_flow(SERIES[2], SERIES[3:5]) == D("1100")
    changes = thin(SERIES)
    # every other point after the first is merged into the next: day 10 into day 20, day 30 into day 40
    assert [(i, p is None) for i, p in changes] == [(1, True), (2, False), (3, True), (4, False)]
    thinned = [SERIES[0]] + [p for _, p in changes if p is not None]
    assert [p.t for p in thinned] == [day(0), day(20), day(40)]
    assert thinned[2].flow == D("1100") and thinned[2].reported_flow == D("1000")
    before, after = compute(SERIES, []), compute(thinned, [])
    assert figure(after.roi_all) == figure(before.roi_all) == "0.3068"
    assert after.net_flow == before.net_flow and after.history_s == before.history_s
    # resolution is what thinning costs: the day-10 peak is gone, the fall 1 -> 0.99 remains
    assert figure(after.max_drawdown) == "0.01"


def test_figures_are_plain_decimal_strings() -> None:
    assert figure(D("0.123456789")) == "0.12345679"
    assert figure(D("-0.000000001")) == "0" and figure(D("2")) == "2" and figure(None) is None
