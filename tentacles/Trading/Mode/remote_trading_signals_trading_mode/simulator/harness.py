"""Run the real RemoteTradingSignalsTradingMode on an offline simulated exchange.

Shared by `octobot-signals replay`, the demo, the benchmark and the tests, so they all
exercise the same mode instance OctoBot would run.
"""
from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import settings as settings_module
from .sim_exchange import SimExchange, SimExchangeSpec, sim_exchange

_DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "RemoteTradingSignalsTradingMode.json"


def default_trading_config() -> dict[str, Any]:
    """The mode's defaults as shipped in config/RemoteTradingSignalsTradingMode.json."""
    return json.loads(_DEFAULTS_FILE.read_text(encoding="utf-8"))


def trading_config_with(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults + overrides, validated: raises settings.SettingsError naming the key."""
    config = default_trading_config()
    for key, value in overrides.items():
        if key not in settings_module.KEYS:
            raise settings_module.SettingsError(key, "unknown setting")
        config[key] = value
    settings_module.settings_from_config(config)
    return config


@dataclass
class FollowerHarness:
    sim: SimExchange
    mode: Any  # RemoteTradingSignalsTradingMode

    async def apply(self, raw: Any) -> list[Any]:
        return await self.mode.apply_feed_message(raw)


@contextlib.asynccontextmanager
async def follower_on_sim_exchange(
    spec: SimExchangeSpec, overrides: Mapping[str, Any] | None = None, data_dir: Path | None = None,
    live: bool = False,
) -> AsyncIterator[FollowerHarness]:
    """A started mode on a fresh simulated exchange; its order map lives in `data_dir` (temp if None).

    `live`: signals arrive in real time (a hub feed), so their age is judged on the wall clock.
    """
    from ..remote_trading_signals_trading_mode import RemoteTradingSignalsTradingMode

    trading_config = trading_config_with(overrides or {})
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="octobot-signals-follower-")))
        async with sim_exchange(spec) as sim:
            # the simulated clock starts at "now" so live-looking signals are not judged stale
            sim.exchange_manager.backtesting.time_manager.current_timestamp = time.time()
            mode = RemoteTradingSignalsTradingMode(sim.config, sim.exchange_manager)
            mode.data_dir = data_dir
            if live:
                mode.clock = time.time
            await mode.initialize(trading_config=trading_config, auto_start=False)
            sim.exchange_manager.trading_modes.append(mode)
            for producer in mode.producers:
                producer.force_is_ready_to_trade()
            try:
                yield FollowerHarness(sim, mode)
            finally:
                await mode.stop()
