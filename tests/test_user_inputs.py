"""The mode's user inputs as OctoBot's web UI renders them, checked against the shipped defaults."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import octobot_signals
from octobot_signals.core import mode_config
from octobot_signals.core import settings as settings_module
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

CONFIG = Path(octobot_signals.__file__).parent / "config" / "RemoteTradingSignalsTradingMode.json"


async def _inputs(live: bool = True) -> dict:
    spec = SimExchangeSpec(portfolio={"USDT": Decimal(10)}, prices={"BTC/USDT": Decimal(20000)})
    async with follower_on_sim_exchange(spec) as f:
        inputs: dict = {}
        f.sim.exchange_manager.is_backtesting = not live  # the offline exchange is a backtesting one
        try:
            f.mode.init_user_inputs(inputs)
        finally:
            f.sim.exchange_manager.is_backtesting = True
        # keyed by "<parent><name>"; outside a bot the parent is None
        return {ui.name: ui.to_dict() for ui in inputs.values()}


async def test_every_setting_is_a_titled_user_input_with_the_shipped_default():
    inputs = await _inputs()
    defaults = {key: value for key, value in json.loads(CONFIG.read_text()).items()
                if key not in mode_config.OCTOBOT_KEYS}
    assert set(defaults) == set(settings_module.KEYS)
    assert set(inputs) == set(defaults)
    for name, ui in inputs.items():
        assert ui["title"] and len(ui["title"]) > 20, name
        assert ui["def_val"] == defaults[name], name
    assert inputs["follower_token"]["other_schema_values"]["format"] == "password"
    assert inputs["sizing"]["options"] == [m.value for m in settings_module.SizingMode]
    assert (inputs["max_volume"]["min_val"], inputs["max_volume"]["max_val"]) == (0, 100)
    assert inputs["max_signal_age_seconds"]["input_type"] == "int"


def test_shipped_defaults_are_valid_settings():
    settings = settings_module.settings_from_config(json.loads(CONFIG.read_text()))
    assert settings == settings_module.FollowerSettings()


async def test_backtests_never_see_the_follower_token():
    # OctoBot saves a backtest's user inputs in its run data
    assert "follower_token" not in await _inputs(live=False)
