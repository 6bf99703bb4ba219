"""octobot-signals: the consumer turns a strategy's signal into my own order, sized to my portfolio."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from ..simulator.harness import follower_on_sim_exchange
from ..simulator.sim_exchange import SimExchangeSpec


def _create(order_id: str, share: str) -> dict:
    content = {"action": "create", "strategy": "s", "symbol": "BTC/USDT", "exchange": "binance",
               "exchange_type": "spot", "side": "buy", "type": "buy_limit", "quantity": 0.01,
               "target_amount": share, "limit_price": 19000.0, "stop_price": 0.0, "current": 20000.0,
               "order_id": order_id}
    return {"u": f"u-{order_id}", "i": "stream-s", "t": "t", "v": "1.0.0", "d": time.time(), "q": 1,
            "s": {"identifier": "s", "version": "1.0.0", "signals": [{"topic": "orders", "content": content,
                                                                    "dependencies": None}]}, "g": None}


async def _apply(message: dict) -> list:
    spec = SimExchangeSpec(portfolio={"USDT": Decimal(1000)}, prices={"BTC/USDT": Decimal(20000)})
    async with follower_on_sim_exchange(spec, {"trading_strategy": "s"}) as follower:
        await follower.apply(message)
        return [(o.side.value, o.origin_quantity, o.origin_price) for o in follower.sim.open_orders()]


def test_a_create_signal_becomes_my_sized_order() -> None:
    # octobot-trading's definition of a buy share: 19% of (1000 USDT / 20000 current price) = 0.0095 BTC
    assert asyncio.run(_apply(_create("L1", "19%"))) == [("buy", Decimal("0.0095"), Decimal(19000))]


def test_a_bad_signal_places_nothing() -> None:
    assert asyncio.run(_apply(_create("L1", "250%"))) == []
