"""Inside OctoBot nobody attaches exchange managers to the bridge: it finds the bot's own to size edits."""
from __future__ import annotations

from decimal import Decimal

import octobot_trading.exchanges as trading_exchanges
from octobot_signals.feed import bridge
from octobot_signals.simulator.sim_exchange import SimExchangeSpec, sim_exchange


async def test_edit_share_uses_the_running_exchange_manager():
    spec = SimExchangeSpec(portfolio={"USDT": Decimal(1000), "BTC": Decimal(1)}, prices={"BTC/USDT": Decimal(20000)})
    async with sim_exchange(spec) as sim:
        em = sim.exchange_manager
        authenticator = bridge.FeedAuthenticator(fallback=None)
        content = {"exchange": em.exchange_name, "side": "sell", "symbol": "BTC/USDT"}
        assert await authenticator._share(content, Decimal("0.25")) is None  # no bot exchange running yet
        trading_exchanges.Exchanges.instance().add_exchange(em, None)  # what OctoBot does when it starts one
        try:
            assert await authenticator._share(content, Decimal("0.25")) == "25%"
        finally:
            trading_exchanges.Exchanges.instance().del_exchange(em.exchange_name, em.id)
