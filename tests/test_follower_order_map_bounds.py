"""The order map through the real mode: links of copies that filled are closed and forgotten on a bound."""
from __future__ import annotations

from decimal import Decimal

import signal_factory as sf
from octobot_signals.follower import engine as engine_module
from octobot_signals.follower import order_map as order_map_module
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

SPEC = SimExchangeSpec(portfolio={"USDT": Decimal(100000)}, prices={"BTC/USDT": Decimal(20000)})


async def test_filled_copies_are_swept_and_the_map_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_module, "_SWEEP_MIN_OPEN_LINKS", 4)
    monkeypatch.setattr(order_map_module, "_MAX_REMEMBERED_CLOSED", 3)
    async with follower_on_sim_exchange(SPEC, data_dir=tmp_path) as f:
        resting = await f.apply(sf.create(order_id="REST", order_type="buy_limit", limit_price=15000.0,
                                          target_amount="1%"))
        assert resting[0].result.value == "created"
        for i in range(20):  # market buys fill at once: no signal ever closes their links
            out = await f.apply(sf.create(order_id=f"M{i}", order_type="buy_market", target_amount="1%"))
            assert out[0].result.value == "created"
        order_map = f.mode.get_consumer().engine.order_map
        assert order_map.open_link_count() <= 5
        assert len(order_map.links) <= 5 + 3
        assert order_map.local_id("REST") is not None  # the resting copy's link is kept
        cancel = await f.apply(sf.cancel("REST", order_type="buy_limit", limit_price=15000.0))
        assert cancel[0].result.value == "cancelled"
        # a swept leader order re-sent is still recognised while its closed link is remembered
        again = await f.apply(sf.create(order_id="M19", order_type="buy_market", target_amount="1%"))
        assert again[0].result.value == "skipped" and "already copied" in again[0].reason
