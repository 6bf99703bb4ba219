"""RemoteTradingSignalsTradingMode: copy a strategy feed's orders, sized to the local portfolio."""
