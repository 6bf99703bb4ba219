"""Sizing core: shares of my holdings, each sizing mode, caps, funds, market precision and minimums."""
from __future__ import annotations

from decimal import Decimal

import pytest
from octobot_signals.core import settings as settings_module
from octobot_signals.core import signal_schema as schema
from octobot_signals.core import sizing

D = Decimal
SPOT = schema.ExchangeType.SPOT
FUTURE = schema.ExchangeType.FUTURE
PRICE = D(20000)
NO_LIMITS = sizing.MarketLimits(None, None, None, None, None, None)
BINANCE_LIKE = sizing.MarketLimits(amount_step=D("0.0001"), price_step=D("0.01"), min_amount=D("0.0001"),
                                   max_amount=D(9000), min_cost=None, max_cost=None)
# 1000 USDT (800 free), 0.2 BTC (0.1 free)
HOLDINGS = sizing.Holdings(base_total=D("0.2"), base_available=D("0.1"), quote_total=D(1000), quote_available=D(800))


def order(side: str = "buy", order_type: str = "buy_market", share: str | None = "10%", **extra: object
          ) -> schema.OrderSignal:
    """A real, validated signal (through the schema boundary)."""
    symbol = "BTC/USDT:USDT" if extra.get("exchange_type") == "future" else "BTC/USDT"
    content = {"action": "create", "order_id": "L1", "symbol": symbol, "exchange_type": "spot", "side": side,
               "type": order_type, "target_amount": share, "quantity": 0.01, "current": 20000.0,
               "limit_price": 19000.0}
    content.update(extra)
    return schema.parse_order_content(content)


def settings(**values: object) -> settings_module.FollowerSettings:
    return settings_module.settings_from_config(values)


def plan_of(result: sizing.OrderPlan | sizing.Skip) -> sizing.OrderPlan:
    assert isinstance(result, sizing.OrderPlan), result
    assert isinstance(result.quantity, Decimal)
    return result


def skip_of(result: sizing.OrderPlan | sizing.Skip) -> str:
    assert isinstance(result, sizing.Skip), result
    assert "\n" not in result.reason
    return result.reason


# ---- portfolio_percent ------------------------------------------------------------------------
def test_spot_buy_share_of_total_quote() -> None:
    # 10% of (1000 USDT / 20000) = 0.005 BTC
    plan = plan_of(sizing.size_entry(order(), HOLDINGS, PRICE, BINANCE_LIKE, settings(), SPOT))
    assert plan.quantity == D("0.005") and plan.price is None and plan.stop_price is None


def test_spot_buy_share_of_available_quote() -> None:
    # 10% of (800 USDT / 20000) = 0.004 BTC
    plan = plan_of(sizing.size_entry(order(share="10a%"), HOLDINGS, PRICE, BINANCE_LIKE, settings(), SPOT))
    assert plan.quantity == D("0.004")


def test_spot_sell_share_of_total_and_available_base() -> None:
    total = plan_of(sizing.size_entry(order("sell", "sell_market", "25%"), HOLDINGS, PRICE, BINANCE_LIKE,
                                      settings(), SPOT))
    assert total.quantity == D("0.05")
    available = plan_of(sizing.size_entry(order("sell", "sell_market", "25a%"), HOLDINGS, PRICE, BINANCE_LIKE,
                                          settings(), SPOT))
    assert available.quantity == D("0.025")


def test_limit_order_keeps_an_adapted_price_and_stop() -> None:
    signal = order("sell", "stop_loss", "50%", limit_price="18000.004", stop_price="17999.996")
    plan = plan_of(sizing.size_entry(signal, HOLDINGS, PRICE, BINANCE_LIKE, settings(), SPOT))
    assert plan.price == D("18000.00") and plan.stop_price == D("18000.00")
    assert plan.quantity == D("0.1")


def test_edit_uses_the_updated_share_and_price() -> None:
    signal = schema.parse_order_content({"action": "edit", "order_id": "L1", "symbol": "BTC/USDT",
                                         "exchange_type": "spot", "side": "buy", "type": "buy_limit",
                                         "limit_price": 19000, "updated_limit_price": 10000,
                                         "updated_target_amount": "20%"})
    plan = plan_of(sizing.size_entry(signal, HOLDINGS, PRICE, NO_LIMITS, settings(), SPOT,
                                     share=signal.updated_target_amount))
    assert plan.quantity == D("0.01")  # 20% of 1000/20000 (the share is measured at my current price)
    assert plan.price == D(10000)


def test_futures_share_of_max_size() -> None:
    signal = order(exchange_type="future", share="20%")
    plan = plan_of(sizing.size_entry(signal, HOLDINGS, PRICE, BINANCE_LIKE, settings(), FUTURE,
                                     futures_max_size=D(2)))
    assert plan.quantity == D("0.4")
    reason = skip_of(sizing.size_entry(signal, HOLDINGS, PRICE, BINANCE_LIKE, settings(), FUTURE))
    assert "max order size is unknown" in reason


def test_missing_share_is_skipped() -> None:
    signal = order(share=None)
    assert "no target_amount" in skip_of(sizing.size_entry(signal, HOLDINGS, PRICE, NO_LIMITS, settings(), SPOT))


# ---- other sizing modes ---------------------------------------------------------------------------
def test_leader_quantity_ratio() -> None:
    mode = settings(sizing="leader_quantity_ratio", leader_quantity_ratio="0.5")
    plan = plan_of(sizing.size_entry(order(), HOLDINGS, PRICE, BINANCE_LIKE, mode, SPOT))
    assert plan.quantity == D("0.005")
    reason = skip_of(sizing.size_entry(order(quantity=None), HOLDINGS, PRICE, BINANCE_LIKE, mode, SPOT))
    assert "leader quantity missing" in reason


def test_fixed_quote_amount_entries_and_exits() -> None:
    mode = settings(sizing="fixed_quote_amount", fixed_quote_amount=190)
    # entry at the limit price: 190 / 19000 = 0.01
    entry = plan_of(sizing.size_entry(order("buy", "buy_limit"), HOLDINGS, PRICE, BINANCE_LIKE, mode, SPOT))
    assert entry.quantity == D("0.01") and entry.price == D(19000)
    # market entry at my price: 190 / 20000 = 0.0095
    market = plan_of(sizing.size_entry(order(), HOLDINGS, PRICE, BINANCE_LIKE, mode, SPOT))
    assert market.quantity == D("0.0095")
    # exits use the share: 10% of 0.2 BTC
    exit_plan = plan_of(sizing.size_entry(order("sell", "sell_market"), HOLDINGS, PRICE, BINANCE_LIKE, mode, SPOT))
    assert exit_plan.quantity == D("0.02")
    # futures: reduce_only is an exit, anything else an entry
    futures_exit = order("sell", "sell_market", "50%", exchange_type="future", reduce_only=True)
    assert plan_of(sizing.size_entry(futures_exit, HOLDINGS, PRICE, BINANCE_LIKE, mode, FUTURE,
                                     futures_max_size=D(1))).quantity == D("0.5")
    futures_entry = order("sell", "sell_market", "50%", exchange_type="future")
    assert plan_of(sizing.size_entry(futures_entry, HOLDINGS, PRICE, BINANCE_LIKE, mode, FUTURE,
                                     futures_max_size=D(1))).quantity == D("0.0095")


# ---- max_volume and funds ---------------------------------------------------------------------------
def test_max_volume_caps_buys() -> None:
    plan = plan_of(sizing.size_entry(order(share="50%"), HOLDINGS, PRICE, BINANCE_LIKE, settings(max_volume=20), SPOT))
    assert plan.quantity == D("0.01")  # 20% of 0.05 BTC, not 50%
    assert any("max_volume" in note for note in plan.notes)


def test_max_volume_caps_sells() -> None:
    plan = plan_of(sizing.size_entry(order("sell", "sell_market", "100%"), HOLDINGS, PRICE, BINANCE_LIKE,
                                     settings(max_volume="10"), SPOT))
    assert plan.quantity == D("0.02")  # 10% of 0.2 BTC
    assert any("max_volume" in note for note in plan.notes)


def test_max_volume_caps_leader_ratio_and_futures() -> None:
    mode = settings(sizing="leader_quantity_ratio", leader_quantity_ratio=100, max_volume=30)
    plan = plan_of(sizing.size_entry(order(), HOLDINGS, PRICE, BINANCE_LIKE, mode, SPOT))
    assert plan.quantity == D("0.015")  # 1 BTC asked, capped at 30% of 0.05
    futures = order(exchange_type="future", share="90%")
    plan = plan_of(sizing.size_entry(futures, HOLDINGS, PRICE, BINANCE_LIKE, settings(max_volume=50), FUTURE,
                                     futures_max_size=D(3)))
    assert plan.quantity == D("1.5")


def test_insufficient_funds_reduce_to_what_is_available() -> None:
    # 100% of total quote is 0.05 BTC, but only 800 USDT are free: 0.04 BTC
    plan = plan_of(sizing.size_entry(order(share="100%"), HOLDINGS, PRICE, BINANCE_LIKE, settings(), SPOT))
    assert plan.quantity == D("0.04")
    assert any("available funds" in note for note in plan.notes)
    sell = plan_of(sizing.size_entry(order("sell", "sell_market", "100%"), HOLDINGS, PRICE, BINANCE_LIKE,
                                     settings(), SPOT))
    assert sell.quantity == D("0.1")


def test_nothing_available_is_skipped() -> None:
    empty = sizing.Holdings(D(0), D(0), D(0), D(0))
    reason = skip_of(sizing.size_entry(order(), empty, PRICE, BINANCE_LIKE, settings(), SPOT))
    assert reason.startswith("nothing to trade")
    locked = sizing.Holdings(D("0.2"), D(0), D(1000), D(800))
    reason = skip_of(sizing.size_entry(order("sell", "sell_market"), locked, PRICE, BINANCE_LIKE, settings(), SPOT))
    assert reason == "nothing to trade: 0 BTC available"


# ---- market precision and minimums -------------------------------------------------------------------
def test_step_rounding_is_down() -> None:
    limits = sizing.MarketLimits(amount_step=D("0.001"), price_step=None, min_amount=None, max_amount=None,
                                 min_cost=None, max_cost=None)
    # 12.3456% of 0.05 BTC = 0.0061728 -> 0.006
    plan = plan_of(sizing.size_entry(order(share="12.3456%"), HOLDINGS, PRICE, limits, settings(), SPOT))
    assert plan.quantity == D("0.006")


def test_below_minimum_is_skipped_when_rounding_is_off() -> None:
    # 0.08% of 0.05 BTC = 0.00004 BTC, market minimum 0.0001
    reason = skip_of(sizing.size_entry(order(share="0.08%"), HOLDINGS, PRICE, BINANCE_LIKE, settings(), SPOT))
    assert reason == "0.00004 BTC below the market minimum 0.0001 BTC"


def test_below_minimum_rounds_up_when_allowed_and_affordable() -> None:
    mode = settings(round_to_minimal_size_if_necessary=True)
    plan = plan_of(sizing.size_entry(order(share="0.08%"), HOLDINGS, PRICE, BINANCE_LIKE, mode, SPOT))
    assert plan.quantity == D("0.0001")
    assert any("market minimum" in note for note in plan.notes)


def test_round_up_refused_without_funds() -> None:
    mode = settings(round_to_minimal_size_if_necessary=True)
    poor = sizing.Holdings(D(0), D(0), D(1000), D("1"))  # 1 USDT free: 0.00005 BTC at most
    reason = skip_of(sizing.size_entry(order(share="0.08%"), poor, PRICE, BINANCE_LIKE, mode, SPOT))
    assert "below the market minimum 0.0001 BTC" in reason and "afforded" in reason


def test_minimum_cost() -> None:
    limits = sizing.MarketLimits(amount_step=D("0.0001"), price_step=None, min_amount=None, max_amount=None,
                                 min_cost=D(10), max_cost=None)
    # 0.8% of 0.05 = 0.0004 BTC = 8 USDT < 10 USDT
    reason = skip_of(sizing.size_entry(order(share="0.8%"), HOLDINGS, PRICE, limits, settings(), SPOT))
    assert reason == "8 USDT below the market minimum order cost 10 USDT"
    plan = plan_of(sizing.size_entry(order(share="0.8%"), HOLDINGS, PRICE, limits,
                                     settings(round_to_minimal_size_if_necessary="true"), SPOT))
    assert plan.quantity == D("0.0005")  # 10 USDT / 20000 rounded up to the step


def test_market_maximums_cap() -> None:
    limits = sizing.MarketLimits(amount_step=D("0.0001"), price_step=None, min_amount=None, max_amount=D("0.003"),
                                 min_cost=None, max_cost=D(50))
    plan = plan_of(sizing.size_entry(order(share="10%"), HOLDINGS, PRICE, limits, settings(), SPOT))
    assert plan.quantity == D("0.0025")  # max cost 50 USDT at 20000
    assert len(plan.notes) == 2


def test_adapt_price() -> None:
    assert sizing.adapt_price(D("19500.567"), BINANCE_LIKE) == D("19500.57")
    assert sizing.adapt_price(D("0.001"), BINANCE_LIKE) == D("0.01")  # never rounds to zero
    assert sizing.adapt_price(D("1.23456"), NO_LIMITS) == D("1.23456")


# ---- linked orders --------------------------------------------------------------------------------------
def test_linked_orders_follow_the_parent_size() -> None:
    plan = plan_of(sizing.size_linked(D("0.01"), D("0.005"), D("0.01"), BINANCE_LIKE))
    assert plan.quantity == D("0.005")
    half = plan_of(sizing.size_linked(D("0.01"), D("0.005"), D("0.005"), BINANCE_LIKE))
    assert half.quantity == D("0.0025")
    rounded = plan_of(sizing.size_linked(D(3), D("0.001"), D(1), BINANCE_LIKE))
    assert rounded.quantity == D("0.0003")  # 0.000333.. rounded down to the step


def test_linked_orders_respect_minimums_and_bad_inputs() -> None:
    reason = skip_of(sizing.size_linked(D(1), D("0.0001"), D("0.5"), BINANCE_LIKE, symbol="BTC/USDT"))
    assert reason == "0.00005 BTC below the market minimum 0.0001 BTC"
    raised = plan_of(sizing.size_linked(D(1), D("0.0001"), D("0.5"), BINANCE_LIKE, symbol="BTC/USDT",
                                        settings=settings(round_to_minimal_size_if_necessary=True),
                                        available=D(1)))
    assert raised.quantity == D("0.0001")
    assert "quantity missing" in skip_of(sizing.size_linked(D(0), D(1), D(1), BINANCE_LIKE))
    assert "quantity missing" in skip_of(sizing.size_linked(D(1), D(1), D(0), BINANCE_LIKE))


# ---- price deviation and signal age ------------------------------------------------------------------------
@pytest.mark.parametrize(("mine", "leader", "limit", "refused"), [
    (D(21000), D(20000), 5, False),       # exactly 5%: accepted
    (D(21001), D(20000), 5, True),
    (D(18999), D(20000), 5, True),        # below works too
    (D(30000), D(20000), 0, False),       # 0 = no check
    (D(30000), None, 5, False),           # leader price unknown
])
def test_price_deviation(mine: Decimal, leader: Decimal | None, limit: int, refused: bool) -> None:
    result = sizing.check_price_deviation(mine, leader, settings(max_price_deviation_percent=limit))
    assert (result is not None) is refused
    if refused:
        assert "away from the leader's 20000" in result.reason and "max 5%" in result.reason


@pytest.mark.parametrize(("now", "d", "limit", "refused"), [
    (D(1000), D(600), 300, True),
    (D(1000), D(700), 300, False),
    (D(1000), None, 300, False),
    (D(10**9), D(0), 0, False),
])
def test_signal_age(now: Decimal, d: Decimal | None, limit: int, refused: bool) -> None:
    result = sizing.check_signal_age(now, d, settings(max_signal_age_seconds=limit))
    assert (result is not None) is refused
    if refused:
        assert result.reason == "signal is 400 s old (max 300 s)"
