"""A bot that dies after the exchange took an order but before it recorded it never places a second copy."""
from __future__ import annotations

from decimal import Decimal

import pytest
import signal_factory as sf
from octobot_signals import RemoteTradingSignalsTradingMode
from octobot_signals.simulator.harness import default_trading_config, follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

SPEC = SimExchangeSpec(portfolio={"USDT": Decimal(1000), "BTC": Decimal(0)}, prices={"BTC/USDT": Decimal(20000)})


class ProcessDied(BaseException):
    """Stands for SIGKILL: nothing after it runs, nothing catches it."""


async def _crash_and_restart(f, tmp_path, message) -> None:
    trader = f.sim.exchange_manager.trader
    real_create = trader.create_order

    async def create_then_die(order, *args, **kwargs):
        await real_create(order, *args, **kwargs)  # the exchange has the order...
        raise ProcessDied()  # ...and the bot dies before recording it

    trader.create_order = create_then_die
    with pytest.raises(ProcessDied):
        await f.apply(message)
    trader.create_order = real_create
    await f.mode.stop()
    # restart: a new mode instance, same data dir, same exchange (a real exchange keeps its orders)
    mode = RemoteTradingSignalsTradingMode(f.sim.config, f.sim.exchange_manager)
    mode.data_dir = tmp_path
    await mode.initialize(trading_config=default_trading_config(), auto_start=False)
    f.mode = mode


async def _crash_then_restart(f, tmp_path, message):
    await _crash_and_restart(f, tmp_path, message)
    return await f.mode.apply_feed_message(message)  # the hub delivers the unrecorded message again


async def test_resting_order_found_after_restart_not_placed_again(tmp_path):
    async with follower_on_sim_exchange(SPEC, data_dir=tmp_path) as f:
        message = sf.create(order_id="CRASH-1", order_type="buy_limit", limit_price=19000.0)
        outcomes = await _crash_then_restart(f, tmp_path, message)
        assert [o.result.value for o in outcomes] == ["skipped"]
        assert "found after a restart" in outcomes[0].reason
        assert len(f.sim.open_orders()) == 1
        # and the recovered copy is the one a later cancel reaches
        cancel = await f.apply(sf.cancel("CRASH-1", order_type="buy_limit", limit_price=19000.0))
        assert [o.result.value for o in cancel] == ["cancelled"]
        assert f.sim.open_orders() == []


async def test_filled_market_order_not_bought_twice_after_restart(tmp_path):
    async with follower_on_sim_exchange(SPEC, data_dir=tmp_path) as f:
        message = sf.create(order_id="CRASH-2", order_type="buy_market", target_amount="10%")
        outcomes = await _crash_then_restart(f, tmp_path, message)
        assert [o.result.value for o in outcomes] == ["skipped"]
        assert "not placing it twice" in outcomes[0].reason
        assert f.sim.portfolio()["USDT"]["total"] == Decimal(900)  # bought once


async def test_cancel_after_restart_reaches_the_order_its_write_ahead_entry_recorded(tmp_path):
    # the create is not delivered again (the leader cancelled meanwhile): the cancel alone must find my
    # order through its write-ahead entry, the one proof that this mode placed it
    async with follower_on_sim_exchange(SPEC, data_dir=tmp_path) as f:
        await _crash_and_restart(f, tmp_path, sf.create(order_id="CRASH-3", order_type="buy_limit",
                                                        limit_price=19000.0))
        assert len(f.sim.open_orders()) == 1
        cancel = await f.apply(sf.cancel("CRASH-3", order_type="buy_limit", limit_price=19000.0))
        assert [o.result.value for o in cancel] == ["cancelled"], [o.reason for o in cancel]
        assert f.sim.open_orders() == []


async def test_died_before_sending_my_own_order_at_the_same_price_is_never_taken_as_the_copy(tmp_path):
    # the write-ahead entry was written, then the bot died before the order left; the user has an order of
    # their own at the same side, type and price (another size): it is not my copy, and the leader's later
    # cancel must not reach it
    import octobot_trading.enums as trading_enums
    import octobot_trading.personal_data as personal_data

    async with follower_on_sim_exchange(SPEC, data_dir=tmp_path) as f:
        em = f.sim.exchange_manager
        mine = personal_data.create_order_instance(
            trader=em.trader, order_type=trading_enums.TraderOrderType.BUY_LIMIT, symbol="BTC/USDT",
            current_price=Decimal(20000), quantity=Decimal("0.002"), price=Decimal("19000.0"))
        await em.trader.create_order(mine)
        message = sf.create(order_id="CRASH-4", order_type="buy_limit", limit_price=19000.0, target_amount="10%")
        trader, real_create = em.trader, em.trader.create_order

        async def die_before_sending(order, *args, **kwargs):
            raise ProcessDied()

        trader.create_order = die_before_sending
        with pytest.raises(ProcessDied):
            await f.apply(message)
        trader.create_order = real_create
        await f.mode.stop()
        mode = RemoteTradingSignalsTradingMode(f.sim.config, em)
        mode.data_dir = tmp_path
        await mode.initialize(trading_config=default_trading_config(), auto_start=False)
        f.mode = mode
        again = await f.mode.apply_feed_message(message)
        assert [o.result.value for o in again] == ["skipped"]
        assert "not placing it twice" in again[0].reason, again[0].reason
        cancel = await f.apply(sf.cancel("CRASH-4", order_type="buy_limit", limit_price=19000.0))
        assert [o.result.value for o in cancel] == ["skipped"], [o.reason for o in cancel]
        assert [o.order_id for o in f.sim.open_orders()] == [mine.order_id], "the user's own order must stay"
