"""Runs in the OctoBot 2.1.1 venv with an installed bot folder as cwd: the publishing path as OctoBot wires it.

OctoBot creates its own community authenticator, then loads the tentacles. With the hub settings in the
environment, loading our tentacle installs the bridge in front of OctoBot's authenticator; a signal bundle
emitted by octobot-commons' own emitter (what octobot-trading calls when a mode with emit_trading_signals
creates an order) must then reach our hub. Prints one JSON line.
"""
from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys

import octobot.community as octobot_community
import octobot_commons.authentication as authentication
import octobot_commons.signals as commons_signals
import octobot_commons.signals.signals_emitter as signals_emitter
import octobot_tentacles_manager.api as tentacles_api

MODULE = "tentacles.Trading.Mode.remote_trading_signals_trading_mode"


async def main(strategy_id: str) -> None:
    # what OctoBot's cli creates first (never contacted here: the backend address is a placeholder)
    community = octobot_community.CommunityAuthentication(config=None, backend_url="https://backend.invalid",
                                                          backend_key="offline")
    sys.path.insert(0, os.getcwd())
    tentacles_api.load_tentacles(verbose=False)
    importlib.import_module(MODULE)  # the bot imports its tentacles: our package reads the environment
    bridge_module = importlib.import_module(f"{MODULE}.feed.bridge")
    instance = authentication.Authenticator.instance()
    content = {"action": "create", "strategy": "probe", "symbol": "BTC/USDT", "exchange": "binance",
               "exchange_type": "spot", "side": "buy", "type": "buy_limit", "quantity": 0.01,
               "target_amount": "5.0%", "limit_price": 19000.0, "current": 20000.0, "order_id": "probe-order-1"}
    bundle = commons_signals.SignalBundle(strategy_id, signals=[commons_signals.Signal("orders", content)])
    await signals_emitter.emit_signal_bundle(bundle)
    flushed = await instance.flush(20)
    result = {
        "bridge_installed": isinstance(instance, bridge_module.FeedAuthenticator),
        "fallback_is_octobot": instance.fallback is community,
        "flushed": flushed,
    }
    await bridge_module.stop_bridge()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
