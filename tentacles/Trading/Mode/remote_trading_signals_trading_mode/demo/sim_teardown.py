"""Workaround for running several simulated exchanges at once in one process.

follower/sim_exchange.py does not pass the spec's bot_id to octobot-backtesting, so every
concurrent simulated exchange asks for the same "Time" channel name: only the first one gets
it, the others keep `time_channel = None` and their `stop_backtesting()` raises, which would
skip the rest of their cleanup (importer database, temp data file). Those exchanges never
owned a time channel, so there is nothing to stop: make their stop a no-op.
"""
from __future__ import annotations

from typing import Any


def tolerate_missing_time_channel(sim: Any) -> None:
    backtesting = getattr(sim.exchange_manager, "backtesting", None)
    if backtesting is not None and getattr(backtesting, "time_channel", None) is None:
        async def _nothing_to_stop() -> None:
            return None

        backtesting.stop = _nothing_to_stop
