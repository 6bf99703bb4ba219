"""RemoteTradingSignalsTradingMode: copy a strategy feed's orders, sized to the local portfolio."""
from .feed.bridge import install_bridge_from_env as _install_bridge_from_env
from .remote_trading_signals_trading_mode import RemoteTradingSignalsTradingMode

# Publishing from any unmodified OctoBot trading mode: when OCTOBOT_SIGNALS_HUB_URL and a publish
# secret are set in the bot's environment, octobot-trading's emitted signal bundles go to our hub.
_install_bridge_from_env()

__all__ = ["RemoteTradingSignalsTradingMode"]
