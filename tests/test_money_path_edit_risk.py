"""A leader's edit that grows a copied entry is checked like an entry (issue 12): max exposure shrinks the
increase to what fits or keeps my quantity, the drawdown stop refuses the increase; the price part of the same
edit, a decrease and an exit always apply. Through the real mode on the octobot-trading simulated exchange."""
from __future__ import annotations

import logging
from decimal import Decimal

import signal_factory as sf
from follower_helpers import my_order, only
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

BTC = "BTC/USDT"
PERP = "BTC/USDT:USDT"


def spec(portfolio: dict[str, str], price: str = "20000") -> SimExchangeSpec:
    return SimExchangeSpec(portfolio={k: Decimal(v) for k, v in portfolio.items()}, prices={BTC: Decimal(price)})


def buy(order_id: str, share: str, price: float = 20000.0):
    return sf.create(order_id=order_id, order_type="buy_limit", limit_price=price, current=price, target_amount=share)


def grow(order_id: str, share: str, price: float = 20000.0, **extra):
    return sf.edit(order_id, order_type="buy_limit", limit_price=price, updated_target_amount=share, **extra)


# ---- (a) max exposure -------------------------------------------------------------------------------------
async def test_max_exposure_keeps_a_copy_at_the_cap_when_the_leader_doubles_it():
    async with follower_on_sim_exchange(spec({"USDT": "1000"}), {"max_exposure_percent": "20"}) as f:
        created = only(await f.apply(buy("CAP", "20%")))  # 200 USDT: exactly the 20 % cap
        assert created.result.value == "created" and created.reason is None
        assert my_order(f).origin_quantity == Decimal("0.01")
        edited = only(await f.apply(grow("CAP", "40%")))  # the leader doubles it: nothing more fits
        assert my_order(f).origin_quantity == Decimal("0.01")
        assert f.sim.portfolio()["USDT"]["available"] == Decimal("800")
        assert edited.result.value == "skipped"  # a quantity-only edit: nothing left to apply
        assert edited.reason == ("max_exposure_percent: 20% of my portfolio already exposed (max 20%): "
                                 "my copy stays at 0.01 BTC instead of 0.02"), edited.reason


async def test_max_exposure_shrinks_the_increase_to_what_fits_without_counting_the_copy_twice():
    async with follower_on_sim_exchange(spec({"USDT": "1000"}), {"max_exposure_percent": "30"}) as f:
        await f.apply(buy("HALF", "20%"))  # 200 of the 300 USDT allowed
        assert my_order(f).origin_quantity == Decimal("0.01")
        edited = only(await f.apply(grow("HALF", "40%")))  # 400 wanted: 300 fit, my copy's 200 included
        assert edited.result.value == "edited", edited.reason
        assert my_order(f).origin_quantity == Decimal("0.015")
        assert f.sim.portfolio()["USDT"]["available"] == Decimal("700")
        assert edited.reason == ("reduced by max_exposure_percent 30% (20% already exposed, this copy included): "
                                 "0.02 -> 0.015 BTC"), edited.reason


# ---- (b) drawdown stop --------------------------------------------------------------------------------------
async def test_drawdown_stop_refuses_the_increase_and_applies_the_price(caplog):
    # 1000 USDT + 0.05 BTC at 20000: worth 2000 when following begins
    async with follower_on_sim_exchange(spec({"USDT": "1000", "BTC": "0.05"}), {"drawdown_stop_percent": "10"}) as f:
        await f.apply(buy("DD", "5%", price=15000.0))  # 5 % of 1000 / 20000 = 0.0025 BTC
        assert my_order(f).origin_quantity == Decimal("0.0025")
        await f.sim.move_price(BTC, Decimal(15500))  # 1775: 11.25 % below the peak, the stop trips
        caplog.clear()
        with caplog.at_level(logging.INFO):
            edited = only(await f.apply(grow("DD", "10%", price=15000.0, updated_limit_price=14000.0)))
        assert edited.result.value == "edited", edited.reason
        order = my_order(f)
        assert order.origin_quantity == Decimal("0.0025")  # not 10 % of 1000 / 15500
        assert order.origin_price == Decimal("14000")
        assert edited.reason.startswith("drawdown stop: my portfolio fell 11.25% below its peak 2000 (max 10%)")
        assert "my copy stays at 0.0025 BTC" in edited.reason, edited.reason
        assert any("drawdown stop" in r.getMessage() and "edit DD" in r.getMessage() for r in caplog.records)
        # a decrease still applies while stopped
        shrunk = only(await f.apply(grow("DD", "1%", price=14000.0)))
        assert shrunk.result.value == "edited" and shrunk.reason is None, shrunk.reason
        assert my_order(f).origin_quantity == Decimal("0.00064516")  # 1 % of 1000 / 15500, at the 1e-8 step


# ---- (c) decreases and exits are never blocked ----------------------------------------------------------------
async def test_a_shrinking_edit_applies_unchanged_with_the_controls_on():
    async with follower_on_sim_exchange(spec({"USDT": "1000"}), {"max_exposure_percent": "20",
                                                                 "drawdown_stop_percent": "10"}) as f:
        await f.apply(buy("DOWN", "20%"))
        edited = only(await f.apply(grow("DOWN", "10%", updated_limit_price=19000.0)))
        assert edited.result.value == "edited" and edited.reason is None, edited.reason
        assert my_order(f).origin_quantity == Decimal("0.005")
        assert my_order(f).origin_price == Decimal("19000")


async def test_an_exit_edit_that_grows_is_not_limited():
    # 1000 USDT + 0.05 BTC: half my portfolio is BTC, far above the 20 % cap
    async with follower_on_sim_exchange(spec({"USDT": "1000", "BTC": "0.05"}), {"max_exposure_percent": "20"}) as f:
        await f.apply(sf.create(order_id="OUT", side="sell", order_type="sell_limit", limit_price=21000.0,
                                target_amount="50%"))
        assert my_order(f).origin_quantity == Decimal("0.025")
        edited = only(await f.apply(sf.edit("OUT", side="sell", order_type="sell_limit", limit_price=21000.0,
                                            updated_target_amount="100%")))
        assert edited.result.value == "edited" and edited.reason is None, edited.reason
        assert my_order(f).origin_quantity == Decimal("0.05")


# ---- futures: non-reduce-only entries are capped, reduce-only exits are not --------------------------------------
async def test_futures_entry_edit_is_capped_and_reduce_only_edit_is_not():
    futures = SimExchangeSpec(portfolio={"USDT": Decimal(1000)}, prices={PERP: Decimal(20000)}, exchange_type="future")
    leverage = sf.message(sf.signal({"action": "edit", "strategy": sf.STRATEGY, "symbol": PERP, "exchange": "binance",
                                     "exchange_type": "future", "side": None, "leverage": 5}, topic="positions"))

    def order(action: str, order_id: str, **extra):
        return sf.message(sf.signal(sf.order_content(action, order_id=order_id, symbol=PERP, exchange_type="future",
                                                     **extra)))

    async with follower_on_sim_exchange(futures, {"max_exposure_percent": "150"}) as f:
        await f.apply(leverage)  # max order size 1000 x 5 / 20000 = 0.25 BTC; the cap: 1500 USDT of notional
        await f.apply(order("create", "FE", order_type="buy_limit", limit_price=19000.0, target_amount="20%"))
        await f.apply(order("create", "FX", side="sell", order_type="sell_limit", limit_price=25000.0,
                            target_amount="10%", reduce_only=True))
        entry = next(o for o in f.sim.open_orders() if not o.reduce_only)
        assert entry.origin_quantity == Decimal("0.05")  # 950 USDT of notional
        edited = only(await f.apply(order("edit", "FE", order_type="buy_limit", limit_price=19000.0,
                                          updated_target_amount="60%")))  # 0.15 wanted: 1500 / 19000 fit
        assert edited.result.value == "edited", edited.reason
        assert entry.origin_quantity == Decimal("0.07894736")  # 1500 / 19000, down to the market's 1e-8 step
        assert edited.reason.startswith("reduced by max_exposure_percent 150%"), edited.reason
        exit_ = only(await f.apply(order("edit", "FX", side="sell", order_type="sell_limit", limit_price=25000.0,
                                         updated_target_amount="30%", reduce_only=True)))
        assert exit_.result.value == "edited" and exit_.reason is None, exit_.reason
        assert next(o for o in f.sim.open_orders() if o.reduce_only).origin_quantity == Decimal("0.075")


# ---- (d) controls off: an edit is sized as before -----------------------------------------------------------------
async def test_without_controls_a_doubling_edit_doubles_the_copy():
    async with follower_on_sim_exchange(spec({"USDT": "1000"})) as f:
        await f.apply(buy("FREE", "20%"))
        edited = only(await f.apply(grow("FREE", "40%")))
        assert edited.result.value == "edited" and edited.reason is None, edited.reason
        assert my_order(f).origin_quantity == Decimal("0.02")
