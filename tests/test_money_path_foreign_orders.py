"""A leader's cancel, edit or group change only ever touches an order this mode placed: never an order the
user (or another mode) placed by hand, even at the same side, type and price. Real mode, simulated exchange."""
from __future__ import annotations

from decimal import Decimal

import octobot_trading.enums as trading_enums
import octobot_trading.personal_data as personal_data
import signal_factory as sf
from follower_helpers import only
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

BTC = "BTC/USDT"
SPEC = SimExchangeSpec(portfolio={"USDT": Decimal(1000), "BTC": Decimal(0)}, prices={BTC: Decimal(20000)})
PRICE = 18000.0


async def _tiny_skipped_then_my_own_order_at_its_price(f):
    """The copy of leader order TINY is skipped (below the market minimum), then the user buys by hand at
    exactly TINY's side, type and price."""
    skipped = only(await f.apply(sf.create(order_id="TINY", order_type="buy_limit", limit_price=PRICE,
                                           target_amount="0.0001%")))
    assert skipped.result.value == "skipped" and "minimum" in skipped.reason, skipped.reason
    em = f.sim.exchange_manager
    mine = personal_data.create_order_instance(
        trader=em.trader, order_type=trading_enums.TraderOrderType.BUY_LIMIT, symbol=BTC,
        current_price=Decimal(20000), quantity=Decimal("0.002"), price=Decimal(str(PRICE)))
    await em.trader.create_order(mine)
    assert [o.order_id for o in f.sim.open_orders()] == [mine.order_id]
    return mine


def _untouched(f, mine) -> None:
    orders = f.sim.open_orders()
    assert [o.order_id for o in orders] == [mine.order_id], "the user's own order must stay"
    assert orders[0].origin_price == Decimal(str(PRICE)) and orders[0].origin_quantity == Decimal("0.002")
    assert orders[0].order_group is None


async def test_leader_cancel_of_a_skipped_copy_leaves_my_own_order_alone():
    async with follower_on_sim_exchange(SPEC) as f:
        mine = await _tiny_skipped_then_my_own_order_at_its_price(f)
        out = only(await f.apply(sf.cancel("TINY", order_type="buy_limit", limit_price=PRICE)))
        assert out.result.value == "skipped" and "no local copy" in out.reason, (out.result, out.reason)
        _untouched(f, mine)


async def test_leader_edit_of_a_skipped_copy_leaves_my_own_order_alone():
    async with follower_on_sim_exchange(SPEC) as f:
        mine = await _tiny_skipped_then_my_own_order_at_its_price(f)
        out = only(await f.apply(sf.edit("TINY", order_type="buy_limit", limit_price=PRICE,
                                         updated_limit_price=17000.0, updated_target_amount="50%")))
        assert out.result.value == "skipped" and "no local copy" in out.reason, (out.result, out.reason)
        _untouched(f, mine)


async def test_leader_group_change_of_a_skipped_copy_leaves_my_own_order_alone():
    async with follower_on_sim_exchange(SPEC) as f:
        mine = await _tiny_skipped_then_my_own_order_at_its_price(f)
        grouping = sf.message(sf.signal(sf.order_content(
            "add_to_group", order_id="TINY", order_type="buy_limit", limit_price=PRICE, group_id="oco",
            group_type="OneCancelsTheOtherOrderGroup")))
        out = only(await f.apply(grouping))
        assert out.result.value == "skipped" and "no local copy" in out.reason, (out.result, out.reason)
        _untouched(f, mine)
