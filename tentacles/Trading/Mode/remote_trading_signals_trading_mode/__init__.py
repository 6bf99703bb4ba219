"""RemoteTradingSignalsTradingMode: copy a strategy feed's orders, sized to the local portfolio."""
from .remote_trading_signals_trading_mode import RemoteTradingSignalsTradingMode

__all__ = ["RemoteTradingSignalsTradingMode"]
