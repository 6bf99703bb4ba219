"""RemoteTradingSignalsTradingMode on the real octobot-trading simulated exchange (spot)."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest
import signal_factory as sf
from follower_helpers import only
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

BTC = "BTC/USDT"


def spec(usdt: str = "1000", btc: str = "0.1", price: str = "20000", **kwargs) -> SimExchangeSpec:
    return SimExchangeSpec(portfolio={"USDT": Decimal(usdt), "BTC": Decimal(btc)}, prices={BTC: Decimal(price)},
                           **kwargs)


def placed_qty(outcome) -> Decimal:
    assert outcome.orders, outcome
    return Decimal(outcome.orders[0]["quantity"])


# ---- sizing -----------------------------------------------------------------------------
async def test_spot_buy_uses_share_of_total_quote_holdings():
    async with follower_on_sim_exchange(spec(usdt="1000", btc="0.1")) as f:
        # 10% of (1000 USDT total / 20000) = 0.005 BTC
        out = only(await f.apply(sf.create(order_type="buy_limit", limit_price=19000.0, target_amount="10%")))
        assert out.result.value == "created"
        assert placed_qty(out) == Decimal("0.005")
        assert Decimal(out.orders[0]["price"]) == Decimal("19000")
        # total, not available: a second order of 10% after funds are locked is still 0.005
        out2 = only(await f.apply(sf.create(order_type="buy_limit", limit_price=19000.0, target_amount="10%")))
        assert placed_qty(out2) == Decimal("0.005")


async def test_spot_buy_available_share_uses_available_quote():
    async with follower_on_sim_exchange(spec(usdt="1000")) as f:
        await f.apply(sf.create(order_type="buy_limit", limit_price=20000.0, target_amount="50%"))  # locks 500 USDT
        out = only(await f.apply(sf.create(order_type="buy_limit", limit_price=19000.0, target_amount="10a%")))
        # 10% of 500 available / 20000 = 0.0025
        assert placed_qty(out) == Decimal("0.0025")


async def test_spot_sell_uses_share_of_base_total_and_available():
    async with follower_on_sim_exchange(spec(btc="0.2")) as f:
        out = only(await f.apply(sf.create(side="sell", order_type="sell_limit", limit_price=21000.0,
                                           target_amount="25%")))
        assert placed_qty(out) == Decimal("0.05")
        out2 = only(await f.apply(sf.create(side="sell", order_type="sell_limit", limit_price=21000.0,
                                            target_amount="50a%")))
        assert placed_qty(out2) == Decimal("0.075")  # 50% of the 0.15 left available


async def test_market_buy_fills_and_moves_portfolio():
    async with follower_on_sim_exchange(spec(usdt="1000", btc="0")) as f:
        out = only(await f.apply(sf.create(order_type="buy_market", target_amount="20%")))
        assert out.result.value == "created"
        assert placed_qty(out) == Decimal("0.01")
        portfolio = f.sim.portfolio()
        assert portfolio["BTC"]["total"] > Decimal("0.0099")  # minus fees
        assert portfolio["USDT"]["total"] == Decimal("800")


async def test_leader_quantity_ratio_sizing():
    async with follower_on_sim_exchange(spec(), {"sizing": "leader_quantity_ratio",
                                                 "leader_quantity_ratio": "0.5"}) as f:
        out = only(await f.apply(sf.create(order_type="buy_limit", limit_price=19000.0, quantity=0.004)))
        assert placed_qty(out) == Decimal("0.002")


async def test_fixed_quote_amount_sizing_for_entries_and_share_for_exits():
    async with follower_on_sim_exchange(spec(btc="0.1"), {"sizing": "fixed_quote_amount",
                                                          "fixed_quote_amount": "50"}) as f:
        out = only(await f.apply(sf.create(order_type="buy_limit", limit_price=20000.0, target_amount="90%")))
        assert placed_qty(out) == Decimal("0.0025")  # 50 USDT / 20000
        sell = only(await f.apply(sf.create(side="sell", order_type="sell_limit", limit_price=21000.0,
                                            target_amount="10%")))
        assert placed_qty(sell) == Decimal("0.01")  # exits follow the leader's share


async def test_max_volume_caps_buys_and_sells():
    async with follower_on_sim_exchange(spec(usdt="1000", btc="0.1"), {"max_volume": "5"}) as f:
        buy = only(await f.apply(sf.create(order_type="buy_limit", limit_price=20000.0, target_amount="40%")))
        assert placed_qty(buy) == Decimal("0.0025")  # capped at 5% of 1000/20000
        sell = only(await f.apply(sf.create(side="sell", order_type="sell_limit", limit_price=21000.0,
                                            target_amount="80%")))
        assert placed_qty(sell) == Decimal("0.005")  # capped at 5% of 0.1 BTC


async def test_below_exchange_minimum_skipped_unless_rounding_allowed():
    # 1% of 1 USDT / 20000 = 5e-7 BTC: below the simulated market's 1e-5 BTC minimum
    async with follower_on_sim_exchange(spec(usdt="1", btc="0")) as f:
        out = only(await f.apply(sf.create(order_type="buy_limit", limit_price=20000.0, target_amount="1%")))
        assert out.result.value == "skipped"
        assert "minimum" in out.reason
        assert f.sim.open_orders() == []
    async with follower_on_sim_exchange(spec(usdt="1", btc="0"), {"round_to_minimal_size_if_necessary": True}) as f:
        out = only(await f.apply(sf.create(order_type="buy_limit", limit_price=20000.0, target_amount="1%")))
        assert out.result.value == "created"
        assert placed_qty(out) == Decimal("0.00001")


async def test_rounding_refused_when_funds_do_not_cover_the_minimum():
    async with follower_on_sim_exchange(spec(usdt="0.1", btc="0"), {"round_to_minimal_size_if_necessary": True}) as f:
        out = only(await f.apply(sf.create(order_type="buy_limit", limit_price=20000.0, target_amount="1%")))
        assert out.result.value == "skipped"
        assert f.sim.open_orders() == []


async def test_insufficient_funds_are_reported_not_overdrawn():
    async with follower_on_sim_exchange(spec(usdt="1000", btc="0")) as f:
        await f.apply(sf.create(order_type="buy_limit", limit_price=20000.0, target_amount="100%"))
        out = only(await f.apply(sf.create(order_type="buy_limit", limit_price=20000.0, target_amount="50%")))
        assert out.result.value == "skipped"
        assert f.sim.portfolio()["USDT"]["available"] >= 0
        assert len(f.sim.open_orders()) == 1


async def test_market_copy_refused_when_my_price_deviates():
    async with follower_on_sim_exchange(spec(price="20000"), {"max_price_deviation_percent": "1"}) as f:
        out = only(await f.apply(sf.create(order_type="buy_market", current=22000.0)))
        assert out.result.value == "skipped"
        assert "%" in out.reason


async def test_stale_signal_skipped():
    async with follower_on_sim_exchange(spec(), {"max_signal_age_seconds": 60}) as f:
        old = sf.create(order_type="buy_limit", limit_price=19000.0)
        old["d"] = time.time() - 3600
        out = only(await f.apply(old))
        assert out.result.value == "skipped"
        assert f.sim.open_orders() == []


# ---- actions -----------------------------------------------------------------------------
async def test_edit_price_and_amount_then_cancel():
    async with follower_on_sim_exchange(spec()) as f:
        await f.apply(sf.create(order_id="L1", order_type="buy_limit", limit_price=19000.0, target_amount="10%"))
        out = only(await f.apply(sf.edit("L1", order_type="buy_limit", updated_limit_price=18500.0,
                                         updated_target_amount="20%", limit_price=18500.0)))
        assert out.result.value == "edited", out.reason
        order = f.sim.open_orders()[0]
        assert order.origin_price == Decimal("18500")
        assert order.origin_quantity == Decimal("0.01")
        out = only(await f.apply(sf.cancel("L1", order_type="buy_limit")))
        assert out.result.value == "cancelled"
        assert f.sim.open_orders() == []
        assert f.sim.portfolio()["USDT"]["available"] == Decimal("1000")


async def test_cancel_of_unknown_order_is_skipped():
    async with follower_on_sim_exchange(spec()) as f:
        out = only(await f.apply(sf.cancel("never-seen")))
        assert out.result.value == "skipped"
        assert "no local copy" in out.reason


async def test_stop_loss_and_stop_price_edit():
    async with follower_on_sim_exchange(spec(btc="0.1")) as f:
        out = only(await f.apply(sf.create(order_id="SL", side="sell", order_type="stop_loss",
                                           limit_price=18000.0, stop_price=18000.0, target_amount="50%")))
        assert out.result.value == "created", out.reason
        assert f.sim.open_orders()[0].order_type.value == "stop_loss"
        out = only(await f.apply(sf.edit("SL", side="sell", order_type="stop_loss", updated_limit_price=17500.0,
                                         limit_price=17500.0)))
        assert out.result.value == "edited", out.reason
        assert f.sim.open_orders()[0].origin_price == Decimal("17500")


async def test_entry_with_chained_take_profit_and_stop_loss_group():
    tp = sf.order_content(order_id="TP", side="sell", order_type="sell_limit", quantity=0.004, limit_price=22000.0,
                          target_amount="4%", chained_to="ENTRY", group_id="g1",
                          group_type="OneCancelsTheOtherOrderGroup", update_with_triggering_order_fees=True)
    sl = sf.order_content(order_id="SLC", side="sell", order_type="stop_loss", quantity=0.004, limit_price=18000.0,
                          stop_price=18000.0, target_amount="4%", chained_to="ENTRY", group_id="g1",
                          group_type="OneCancelsTheOtherOrderGroup", update_with_triggering_order_fees=True)
    entry = sf.order_content(order_id="ENTRY", order_type="buy_limit", quantity=0.004, limit_price=19500.0,
                             target_amount="8%", additional_orders=[tp, sl])
    async with follower_on_sim_exchange(spec(usdt="2000", btc="0")) as f:
        outcomes = await f.apply(sf.message(sf.signal(entry)))
        assert [o.result.value for o in outcomes] == ["created"] * 3
        my_entry_qty = Decimal(outcomes[0].orders[0]["quantity"])
        assert my_entry_qty == Decimal("0.008")  # 8% of 2000/20000
        assert Decimal(outcomes[1].orders[0]["quantity"]) == my_entry_qty  # follows the entry's size
        assert len(f.sim.open_orders()) == 1  # TP/SL wait for the entry fill
        await f.sim.move_price(BTC, Decimal("19400"))
        open_types = sorted(o.order_type.value for o in f.sim.open_orders())
        assert open_types == ["sell_limit", "stop_loss"]
        # one cancels the other: the take profit fills, the stop loss goes
        await f.sim.move_price(BTC, Decimal("22100"))
        assert f.sim.open_orders() == []


async def test_chained_order_sent_later_hangs_on_my_copy():
    async with follower_on_sim_exchange(spec(usdt="2000", btc="0")) as f:
        await f.apply(sf.create(order_id="E2", order_type="buy_limit", quantity=0.01, limit_price=19500.0,
                                target_amount="10%"))
        out = only(await f.apply(sf.create(order_id="T2", side="sell", order_type="sell_limit", quantity=0.005,
                                           limit_price=21000.0, target_amount="5%", chained_to="E2")))
        assert out.result.value == "created", out.reason
        assert Decimal(out.orders[0]["quantity"]) == Decimal("0.005")  # half my 0.01 entry, as the leader did


async def test_inactive_order_and_trailing_profile_are_copied():
    trailing = {"steps": [{"trailing_price": 18500.0, "step_price": 21000.0, "trigger_above": True, "reached": False}]}
    async with follower_on_sim_exchange(spec(btc="0.1")) as f:
        out = only(await f.apply(sf.create(order_id="IN", side="sell", order_type="sell_limit", limit_price=22000.0,
                                           target_amount="10%", is_active=False, active_trigger_price=21500.0,
                                           active_trigger_above=True)))
        assert out.result.value == "created", out.reason
        order = f.sim.exchange_manager.exchange_personal_data.orders_manager.get_order(out.orders[0]["id"])
        assert order.is_active is False
        out = only(await f.apply(sf.create(order_id="TR", side="sell", order_type="stop_loss", limit_price=18000.0,
                                           stop_price=18000.0, target_amount="10%",
                                           trailing_profile_type="filled_take_profit", trailing_profile=trailing)))
        assert out.result.value == "created", out.reason
        order = f.sim.exchange_manager.exchange_personal_data.orders_manager.get_order(out.orders[0]["id"])
        assert order.trailing_profile is not None


async def test_duplicate_message_and_duplicate_leader_order_never_copied_twice():
    async with follower_on_sim_exchange(spec()) as f:
        msg = sf.create(order_id="DUP", order_type="buy_limit", limit_price=19000.0)
        assert only(await f.apply(msg)).result.value == "created"
        again = only(await f.apply(msg))
        assert again.result.value == "skipped" and "duplicate" in again.reason
        other_u = sf.create(order_id="DUP", order_type="buy_limit", limit_price=19000.0)
        assert only(await f.apply(other_u)).result.value == "skipped"
        assert len(f.sim.open_orders()) == 1


async def test_restart_with_persisted_map_cancels_the_right_order(tmp_path):
    async with follower_on_sim_exchange(spec(), data_dir=tmp_path) as f:
        await f.apply(sf.create(order_id="KEEP", order_type="buy_limit", limit_price=19000.0))
        await f.apply(sf.create(order_id="GO", order_type="buy_limit", limit_price=19000.0))
        orders = {o.order_id: o for o in f.sim.open_orders()}
        em = f.sim.exchange_manager
        # a restart: a new mode instance on the same exchange, reading the persisted map
        from octobot_signals import RemoteTradingSignalsTradingMode
        from octobot_signals.simulator.harness import default_trading_config

        await f.mode.stop()
        mode = RemoteTradingSignalsTradingMode(f.sim.config, em)
        mode.data_dir = tmp_path
        await mode.initialize(trading_config=default_trading_config(), auto_start=False)
        f.mode = mode
        out = only(await mode.apply_feed_message(sf.cancel("GO", order_type="buy_limit", limit_price=19000.0)))
        assert out.result.value == "cancelled"
        remaining = f.sim.open_orders()
        assert len(remaining) == 1 and remaining[0].order_id in orders
        assert out.orders[0]["id"] != remaining[0].order_id


async def test_an_order_i_placed_by_hand_is_never_taken_for_a_copy():
    # same symbol, side, type and price as the leader's order, but this mode never placed it: not a copy
    async with follower_on_sim_exchange(spec()) as f:
        import octobot_trading.enums as te
        import octobot_trading.personal_data as pd

        em = f.sim.exchange_manager
        manual = pd.create_order_instance(trader=em.trader, order_type=te.TraderOrderType.BUY_LIMIT, symbol=BTC,
                                          current_price=Decimal(20000), quantity=Decimal("0.001"),
                                          price=Decimal(18000))
        await em.trader.create_order(manual)
        out = only(await f.apply(sf.cancel("LEADER-X", order_type="buy_limit", limit_price=18000.0)))
        assert out.result.value == "skipped" and "no local copy" in out.reason
        assert [o.order_id for o in f.sim.open_orders()] == [manual.order_id]


@pytest.mark.parametrize("bad_price", ["nan", "-1"])
async def test_bad_limit_price_places_nothing(bad_price):
    async with follower_on_sim_exchange(spec()) as f:
        out = only(await f.apply(sf.create(order_type="buy_limit", limit_price=bad_price)))
        assert out.result.value == "rejected"
        assert "limit_price" in out.reason
        assert f.sim.open_orders() == []


async def test_group_siblings_packed_together_are_created_independently():
    # octobot-trading packs orders of one group into the first one's additional_orders, without chaining
    sl = sf.order_content(order_id="G-SL", side="sell", order_type="stop_loss", quantity=0.05, limit_price=18000.0,
                          stop_price=18000.0, target_amount="50%", group_id="oco",
                          group_type="OneCancelsTheOtherOrderGroup")
    tp = sf.order_content(order_id="G-TP", side="sell", order_type="sell_limit", quantity=0.05, limit_price=22000.0,
                          target_amount="50%", group_id="oco", group_type="OneCancelsTheOtherOrderGroup",
                          additional_orders=[sl])
    async with follower_on_sim_exchange(spec(btc="0.1")) as f:
        outcomes = await f.apply(sf.message(sf.signal(tp)))
        assert [(o.order_id, o.result.value) for o in outcomes] == [("G-TP", "created"), ("G-SL", "created")]
        assert sorted(o.order_type.value for o in f.sim.open_orders()) == ["sell_limit", "stop_loss"]
        await f.sim.move_price(BTC, Decimal("22100"))
        assert f.sim.open_orders() == []  # the take profit filled, its group cancelled the stop loss


async def test_bundled_stop_loss_follows_entry_size():
    sl = sf.order_content(order_id="B-SL", side="sell", order_type="stop_loss", quantity=0.01, limit_price=18000.0,
                          stop_price=18000.0, target_amount="10%", bundled_with="B-ENTRY",
                          update_with_triggering_order_fees=True)
    entry = sf.order_content(order_id="B-ENTRY", order_type="buy_market", quantity=0.02, target_amount="10%",
                             additional_orders=[sl])
    async with follower_on_sim_exchange(spec(usdt="1000", btc="0")) as f:
        outcomes = await f.apply(sf.message(sf.signal(entry)))
        assert [(o.order_id, o.result.value) for o in outcomes] == [("B-ENTRY", "created"), ("B-SL", "created")]
        # my entry is 10% of 1000/20000 = 0.005; the stop loss is half of it, as the leader's was
        assert Decimal(outcomes[0].orders[0]["quantity"]) == Decimal("0.005")
        # (less the entry's fees, as update_with_triggering_order_fees asks once the entry filled)
        assert Decimal("0.00249") <= Decimal(outcomes[1].orders[0]["quantity"]) <= Decimal("0.0025")
        assert [o.order_type.value for o in f.sim.open_orders()] == ["stop_loss"]


async def test_cancel_of_a_chained_order_still_waiting_for_its_entry():
    tp = sf.order_content(order_id="W-TP", side="sell", order_type="sell_limit", quantity=0.004, limit_price=22000.0,
                          target_amount="4%", chained_to="W-ENTRY", update_with_triggering_order_fees=True)
    entry = sf.order_content(order_id="W-ENTRY", order_type="buy_limit", quantity=0.004, limit_price=19500.0,
                             target_amount="8%", additional_orders=[tp])
    async with follower_on_sim_exchange(spec(usdt="2000", btc="0")) as f:
        await f.apply(sf.message(sf.signal(entry)))
        out = only(await f.apply(sf.cancel("W-TP", side="sell", order_type="sell_limit", limit_price=22000.0)))
        assert out.result.value == "cancelled", out.reason
        await f.sim.move_price(BTC, Decimal("19400"))  # the entry fills
        assert f.sim.open_orders() == [], "a cancelled chained order must not appear when its entry fills"
        assert f.sim.portfolio()["BTC"]["total"] > 0


async def test_edit_of_a_chained_order_still_waiting_for_its_entry():
    tp = sf.order_content(order_id="E-TP", side="sell", order_type="sell_limit", quantity=0.004, limit_price=22000.0,
                          target_amount="4%", chained_to="E-ENTRY", update_with_triggering_order_fees=True)
    entry = sf.order_content(order_id="E-ENTRY", order_type="buy_limit", quantity=0.004, limit_price=19500.0,
                             target_amount="8%", additional_orders=[tp])
    async with follower_on_sim_exchange(spec(usdt="2000", btc="0")) as f:
        await f.apply(sf.message(sf.signal(entry)))
        out = only(await f.apply(sf.edit("E-TP", side="sell", order_type="sell_limit", limit_price=23000.0,
                                         updated_limit_price=23000.0)))
        assert out.result.value == "edited", out.reason
        await f.sim.move_price(BTC, Decimal("19400"))  # the entry fills: the take profit is created as edited
        assert [(o.order_type.value, o.origin_price) for o in f.sim.open_orders()] == [("sell_limit", Decimal(23000))]


async def test_late_cancel_still_cancels_my_copy():
    # a follower that was offline receives the backlog late: it must not open new positions from it,
    # but a cancel of an order it copied earlier must still go through
    async with follower_on_sim_exchange(spec(), {"max_signal_age_seconds": 60}) as f:
        await f.apply(sf.create(order_id="OLD", order_type="buy_limit", limit_price=19000.0))
        late_cancel = sf.cancel("OLD", order_type="buy_limit", limit_price=19000.0)
        late_cancel["d"] = time.time() - 3600
        assert only(await f.apply(late_cancel)).result.value == "cancelled"
        assert f.sim.open_orders() == []


async def test_a_cancelled_leader_order_is_never_copied_again():
    async with follower_on_sim_exchange(spec()) as f:
        await f.apply(sf.create(order_id="ONCE", order_type="buy_limit", limit_price=19000.0))
        await f.apply(sf.cancel("ONCE", order_type="buy_limit", limit_price=19000.0))
        again = only(await f.apply(sf.create(order_id="ONCE", order_type="buy_limit", limit_price=19000.0)))
        assert again.result.value == "skipped" and "already copied" in again.reason
        assert f.sim.open_orders() == []


async def test_cancel_after_my_copy_filled_says_so():
    async with follower_on_sim_exchange(spec()) as f:
        await f.apply(sf.create(order_id="FILLS", order_type="buy_limit", limit_price=19500.0))
        await f.sim.move_price(BTC, Decimal("19400"))
        out = only(await f.apply(sf.cancel("FILLS", order_type="buy_limit", limit_price=19500.0)))
        assert out.result.value == "skipped" and "already closed" in out.reason
