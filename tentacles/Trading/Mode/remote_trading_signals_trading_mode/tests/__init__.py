"""Tests shipped inside the octobot-signals tentacle (they replace the stock mode's tests of the same names).

Run from a bot folder with the bot's Python: `python -m pytest tentacles/Trading/Mode/remote_trading_signals_trading_mode/tests`.
They drive the installed mode on octobot-trading's offline simulated exchange; no network.
"""
