"""The pure checks of an edit that grows a copied entry (core/risk.py cap_edit_exposure, core/sizing.py
limit_edit_increase and is_entry_order): what the order locks now is never counted twice, the result never
drops below the current size, decreases and exits pass untouched."""
from __future__ import annotations

from decimal import Decimal

import pytest
from octobot_signals.core import risk, sizing
from octobot_signals.core import settings as settings_module
from octobot_signals.core import signal_schema as schema
from octobot_trading.enums import TraderOrderType

D = Decimal
SYMBOL = "BTC/USDT"
STEP = sizing.MarketLimits(amount_step=D("0.0001"))
# 1000 USDT of portfolio; my copy is a 0.01 BTC buy at 20000 that locks 200 of the 250 exposed
VIEW = risk.RiskView(portfolio_value=D(1000), exposure=D(250), open_copies=1)
ENTRY = risk.EditedEntry(quantity=D("0.01"), locked=D(200))
STOPPED = risk.Skip("drawdown stop: my portfolio fell 12% below its peak 2000 (max 10%)")


def settings(**values: object) -> settings_module.FollowerSettings:
    return settings_module.settings_from_config(values)


def plan(quantity: str, *notes: str) -> sizing.OrderPlan:
    return sizing.OrderPlan(D(quantity), D(20000), None, notes)


def limit(wanted: sizing.OrderPlan, view: risk.RiskView | None = VIEW, drawdown: risk.Skip | None = None,
          entry: risk.EditedEntry = ENTRY, **values: object) -> sizing.OrderPlan | sizing.Skip:
    return sizing.limit_edit_increase(wanted, entry, D(20000), STEP, settings(**values), SYMBOL, view, drawdown)


def test_the_increase_shrinks_to_what_fits_counting_the_copy_once():
    # max 30 % = 300: 50 exposed besides my copy, so the copy may lock 250, i.e. 0.0125 BTC
    out = limit(plan("0.02", "reduced to available funds: 0.03 -> 0.02 BTC"), max_exposure_percent=30)
    assert isinstance(out, sizing.OrderPlan) and out.quantity == D("0.0125")
    assert out.price == D(20000)
    assert out.notes == ("reduced to available funds: 0.03 -> 0.02 BTC",
                         "reduced by max_exposure_percent 30% (25% already exposed, this copy included): "
                         "0.02 -> 0.0125 BTC")


def test_what_fits_is_on_the_market_step_and_the_increase_fits_untouched():
    out = limit(plan("0.02"), max_exposure_percent=D("30.001"))  # 0.0125005 BTC fit: 0.0125 on the step
    assert out.quantity == D("0.0125")
    out = limit(plan("0.012"), max_exposure_percent=30)  # fits: untouched, no note
    assert out == plan("0.012")


def test_nothing_more_fits_keeps_the_current_size():
    out = limit(plan("0.02"), max_exposure_percent=25)
    assert isinstance(out, sizing.Skip)
    assert out.reason == ("max_exposure_percent: 25% of my portfolio already exposed (max 25%): "
                          "my copy stays at 0.01 BTC instead of 0.02")
    # room below one market step above the current size is nothing more
    assert isinstance(limit(plan("0.02"), max_exposure_percent=D("25.0005")), sizing.Skip)
    # already above the cap (the leader moved the price up, say): never shrunk below its size by an edit
    assert isinstance(limit(plan("0.02"), max_exposure_percent=10), sizing.Skip)
    unknown = limit(plan("0.02"), view=risk.RiskView(D(0), D(0), 0), max_exposure_percent=30)
    assert unknown.reason.startswith("max_exposure_percent: my portfolio value in USDT is unknown or 0")


def test_a_filled_part_is_a_holding_already_counted_in_the_exposure():
    # half filled: 0.005 BTC held (100 of the exposure), the open 0.005 locks 100
    entry = risk.EditedEntry(quantity=D("0.01"), locked=D(100), filled=D("0.005"))
    out = limit(plan("0.02"), entry=entry, max_exposure_percent=30)  # 300 - 150 besides = 150 more: 0.0075 open
    assert out.quantity == D("0.0125")


def test_the_drawdown_stop_refuses_the_increase_only():
    out = limit(plan("0.02"), drawdown=STOPPED)
    assert isinstance(out, sizing.Skip)
    assert out.reason == f"{STOPPED.reason}: my copy stays at 0.01 BTC instead of 0.02"
    assert limit(plan("0.005"), drawdown=STOPPED, max_exposure_percent=1) == plan("0.005")  # a decrease
    assert limit(plan("0.01"), drawdown=STOPPED) == plan("0.01")  # the same size (a price edit)


def test_controls_off_or_no_view_leave_the_plan_as_sized():
    assert limit(plan("0.05")) == plan("0.05")  # max_exposure_percent 0
    assert limit(plan("0.05"), view=None, max_exposure_percent=30) == plan("0.05")


def test_drawdown_skip_says_growing_edits_are_refused():
    state = risk.DrawdownState(peak=D(2000), stopped_at=D(1775))
    reason = risk.drawdown_skip(state, settings(drawdown_stop_percent=10)).reason
    assert "exits, cancels and edits that do not grow an entry still apply" in reason


@pytest.mark.parametrize(("side", "order_type", "reduce_only", "exchange_type", "entry"), [
    ("buy", TraderOrderType.BUY_LIMIT, False, "spot", True),
    ("buy", TraderOrderType.BUY_MARKET, False, "spot", True),
    ("sell", TraderOrderType.SELL_LIMIT, False, "spot", False),
    ("sell", TraderOrderType.STOP_LOSS, False, "spot", False),
    ("buy", TraderOrderType.BUY_LIMIT, False, "future", True),
    ("sell", TraderOrderType.SELL_LIMIT, False, "future", True),  # opens a short
    ("sell", TraderOrderType.SELL_LIMIT, True, "future", False),
    ("buy", TraderOrderType.STOP_LOSS, False, "future", False),
    ("sell", TraderOrderType.TAKE_PROFIT_LIMIT, False, "future", False),
    ("sell", TraderOrderType.TRAILING_STOP, False, "future", False),
])
def test_is_entry_order(side: str, order_type: TraderOrderType, reduce_only: bool, exchange_type: str,
                        entry: bool):
    assert sizing.is_entry_order(schema.Side(side), order_type, reduce_only,
                                 schema.ExchangeType(exchange_type)) is entry
