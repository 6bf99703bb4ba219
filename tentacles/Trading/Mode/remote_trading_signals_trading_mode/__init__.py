"""RemoteTradingSignalsTradingMode: copy a strategy feed's orders, sized to the local portfolio.

The mode is loaded lazily (PEP 562 module __getattr__): the hub, the CLI and the pure cores import
`octobot_signals.<part>` without pulling in the whole OctoBot stack, while OctoBot's tentacle loader
(`from .remote_trading_signals_trading_mode import *`, which reads `__all__`) or any attribute access
gets the mode on first use.
"""
from __future__ import annotations

from typing import Any

__all__ = ["RemoteTradingSignalsTradingMode"]


def __getattr__(name: str) -> Any:
    if name != "RemoteTradingSignalsTradingMode":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .feed.bridge import install_bridge_from_env
    from .remote_trading_signals_trading_mode import RemoteTradingSignalsTradingMode

    # Publishing from any unmodified OctoBot trading mode: when OCTOBOT_SIGNALS_HUB_URL and a publish
    # secret are set in the bot's environment, octobot-trading's emitted signal bundles go to our hub.
    # Done when OctoBot loads the mode, as before, not when a hub process imports a part of the package.
    install_bridge_from_env()
    globals()[name] = RemoteTradingSignalsTradingMode
    return RemoteTradingSignalsTradingMode
