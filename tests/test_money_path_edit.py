"""A leader's edit of an order resizes my copy against everything that copy may use: my free funds plus what
the copy itself locks (the edit releases it). Through the real mode on the octobot-trading simulated exchange."""
from __future__ import annotations

from decimal import Decimal

import signal_factory as sf
from follower_helpers import my_order, only
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

BTC = "BTC/USDT"


def spec(usdt: str, btc: str) -> SimExchangeSpec:
    return SimExchangeSpec(portfolio={"USDT": Decimal(usdt), "BTC": Decimal(btc)}, prices={BTC: Decimal(20000)})


async def test_price_edit_of_a_large_buy_keeps_its_size():
    async with follower_on_sim_exchange(spec(usdt="1000", btc="0")) as f:
        created = only(await f.apply(sf.create(order_id="BIG", order_type="buy_limit", limit_price=20000.0,
                                               target_amount="90%")))
        assert created.result.value == "created" and my_order(f).origin_quantity == Decimal("0.045")
        assert f.sim.portfolio()["USDT"]["available"] == Decimal("100")  # 900 locked by my copy
        # the leader moves its order up by 100 USDT, still 90 % of its portfolio
        edited = only(await f.apply(sf.edit("BIG", order_type="buy_limit", limit_price=20100.0,
                                            updated_limit_price=20100.0, updated_target_amount="90%")))
        assert edited.result.value == "edited", edited.reason
        order = my_order(f)
        # 90 % of my 1000 USDT at my price 20000, as on creation: the 900 my copy locked count as mine to use
        assert order.origin_quantity == Decimal("0.045")
        assert order.origin_price == Decimal("20100")
        assert edited.reason is None  # nothing was reduced: nothing to explain
        assert f.sim.portfolio()["USDT"]["available"] == Decimal("1000") - Decimal("0.045") * Decimal("20100")


async def test_edit_that_cannot_be_afforded_in_full_says_why():
    async with follower_on_sim_exchange(spec(usdt="1000", btc="0")) as f:
        await f.apply(sf.create(order_id="GROW", order_type="buy_limit", limit_price=20000.0, target_amount="90%"))
        # 100 % of 1000/20000 = 0.05 BTC, but at 21000 all my 1000 USDT buy only 0.0476... BTC
        edited = only(await f.apply(sf.edit("GROW", order_type="buy_limit", limit_price=21000.0,
                                            updated_limit_price=21000.0, updated_target_amount="100%")))
        assert edited.result.value == "edited", edited.reason
        assert edited.reason is not None and "reduced to available funds" in edited.reason, edited.reason
        order = my_order(f)
        assert order.origin_quantity == Decimal("0.04761904")  # 1000 / 21000, down to the market's 1e-8 step
        assert f.sim.portfolio()["USDT"]["available"] >= 0


async def test_price_edit_of_a_large_sell_keeps_its_size():
    async with follower_on_sim_exchange(spec(usdt="0", btc="0.1")) as f:
        await f.apply(sf.create(order_id="EXIT", side="sell", order_type="sell_limit", limit_price=21000.0,
                                target_amount="90%"))
        assert my_order(f).origin_quantity == Decimal("0.09")
        edited = only(await f.apply(sf.edit("EXIT", side="sell", order_type="sell_limit", limit_price=21500.0,
                                            updated_limit_price=21500.0, updated_target_amount="90%")))
        assert edited.result.value == "edited", edited.reason
        assert my_order(f).origin_quantity == Decimal("0.09")  # not the 0.01 BTC left free beside it
        assert my_order(f).origin_price == Decimal("21500")
        assert edited.reason is None
