"""RemoteTradingSignalsTradingMode on a simulated futures exchange: leverage edits and futures sizing."""
from __future__ import annotations

from decimal import Decimal

import octobot_trading.enums as trading_enums
import signal_factory as sf
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

PERP = "BTC/USDT:USDT"


def futures_spec(usdt: str = "1000") -> SimExchangeSpec:
    return SimExchangeSpec(portfolio={"USDT": Decimal(usdt)}, prices={PERP: Decimal(20000)}, exchange_type="future")


def leverage_message(leverage: float) -> dict:
    return sf.message(sf.signal({"action": "edit", "strategy": sf.STRATEGY, "symbol": PERP, "exchange": "binance",
                                 "exchange_type": "future", "side": None, "leverage": leverage}, topic="positions"))


def create(**kwargs) -> dict:
    return sf.create(**{"symbol": PERP, "exchange_type": "future", **kwargs})


async def test_leverage_edit_then_share_of_max_order_size():
    async with follower_on_sim_exchange(futures_spec()) as f:
        out = await f.apply(leverage_message(5))
        assert [o.result.value for o in out] == ["edited"]
        contract = f.sim.exchange_manager.exchange.get_pair_future_contract(PERP)
        assert contract.current_leverage == Decimal(5)
        # max order size = 1000 USDT x 5 / 20000 = 0.25 BTC; 10% of it
        limit = (await f.apply(create(order_type="buy_limit", limit_price=19000.0, target_amount="10%")))[0]
        assert limit.result.value == "created", limit.reason
        assert Decimal(limit.orders[0]["quantity"]) == Decimal("0.025")
        market = (await f.apply(create(order_type="buy_market", target_amount="10%")))[0]
        assert market.result.value == "created"
        position = f.sim.exchange_manager.exchange_personal_data.positions_manager.get_symbol_position(
            PERP, trading_enums.PositionSide.BOTH)
        assert position.size == Decimal("0.025")


async def test_reduce_only_sell_with_fixed_quote_amount_follows_share():
    async with follower_on_sim_exchange(futures_spec(), {"sizing": "fixed_quote_amount",
                                                         "fixed_quote_amount": "100"}) as f:
        entry = (await f.apply(create(order_type="buy_market", target_amount="50%")))[0]
        assert Decimal(entry.orders[0]["quantity"]) == Decimal("0.005")  # 100 USDT / 20000
        exit_ = (await f.apply(create(side="sell", order_type="sell_limit", limit_price=21000.0,
                                      target_amount="10%", reduce_only=True)))[0]
        assert exit_.result.value == "created", exit_.reason


async def test_leverage_edit_refused_on_spot():
    spot = SimExchangeSpec(portfolio={"USDT": Decimal(1000)}, prices={"BTC/USDT": Decimal(20000)})
    async with follower_on_sim_exchange(spot) as f:
        out = await f.apply(sf.message(sf.signal({"action": "edit", "strategy": sf.STRATEGY, "symbol": "BTC/USDT",
                                                  "exchange": "binance", "exchange_type": "spot", "side": None,
                                                  "leverage": 3}, topic="positions")))
        assert [o.result.value for o in out] == ["rejected"]


async def test_spot_signal_refused_on_futures_follower():
    async with follower_on_sim_exchange(futures_spec()) as f:
        out = await f.apply(create(order_type="buy_limit", limit_price=19000.0, exchange_type="spot"))
        assert out[0].result.value == "rejected" and "exchange_type" in out[0].reason
        assert f.sim.open_orders() == []
