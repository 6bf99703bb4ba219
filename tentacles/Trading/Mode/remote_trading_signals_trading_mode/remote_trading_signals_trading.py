"""The stock mode's module name, kept so that nothing stale stays importable beside ours.

OctoBot's default tentacles ship their own RemoteTradingSignalsTradingMode in this same folder, in a
module of this name, and the tentacles manager merges packages folder by folder. Installing this
package overwrites that module with this one: whatever imports the old name gets our mode. If the
default tentacles are reinstalled later, they overwrite it back; `octobot-signals doctor` tells.
"""
from .remote_trading_signals_trading_mode import (
    RemoteTradingSignalsModeConsumer,
    RemoteTradingSignalsModeProducer,
    RemoteTradingSignalsTradingMode,
)

# What `doctor` looks for in an installed tentacle folder to tell ours from the stock mode.
OCTOBOT_SIGNALS_MARKER = "octobot-signals"

__all__ = ["RemoteTradingSignalsModeConsumer", "RemoteTradingSignalsModeProducer", "RemoteTradingSignalsTradingMode"]
