"""A history collector that collects nothing.

OctoBot finds the importer of a backtesting data file through the history collector classes
it has loaded (`<collector>.IMPORTER`); a bot without OctoBot-Tentacles has none and cannot
open any data file. This class only provides that lookup: the data files are written by the
tests themselves (tests/octobot_real/make_data_file.py), offline.
"""
from __future__ import annotations

import octobot_backtesting.collectors as collectors


class SyntheticHistoryCollector(collectors.AbstractExchangeHistoryCollector):
    def _load_all_available_timeframes(self) -> None:
        """Nothing to discover: the time frames are the data file's."""

    async def start(self) -> None:
        raise NotImplementedError("test-only collector: data files are written by the tests")
