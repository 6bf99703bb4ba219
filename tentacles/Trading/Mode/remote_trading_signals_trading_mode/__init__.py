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
    from .feed import publishing
    from .remote_trading_signals_trading_mode import RemoteTradingSignalsTradingMode

    # Publishing from any stock OctoBot trading mode: when the 'octobot-signals' card of OctoBot's web UI
    # (Accounts > Interfaces, saved in user/config.json) has publishing on, or the OCTOBOT_SIGNALS_*
    # variables name a hub, a strategy and a secret, the active mode's orders go to our hub (feed/publishing).
    # Done when OctoBot loads the mode, not when a hub process imports a part of the package.
    try:
        publishing.install_at_load()
    except Exception as err:  # noqa: BLE001 - a broken publishing setup must not keep the mode from loading
        publishing._logger().error(f"publishing not started: {err!r}")
    globals()[name] = RemoteTradingSignalsTradingMode
    return RemoteTradingSignalsTradingMode
