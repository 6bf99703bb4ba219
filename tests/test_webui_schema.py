"""Every config we ship, checked the way OctoBot's web UI checks it (no browser needed).

The schema is built from the mode's own `init_user_inputs` by octobot-commons' display translator (what
the mode's configuration page renders and validates on save); each shipped config (the tentacle's
default file, the hub's profile, the packaged profile) must validate against it, must answer OctoBot's
`get_required_strategies_names_and_count`, and a profile must keep the web interface active.
"""
from __future__ import annotations

import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import octobot_commons.display as commons_display
import octobot_signals
import pytest
from octobot_signals import RemoteTradingSignalsTradingMode
from octobot_signals.cli.package_cmd import build_package
from octobot_signals.core import mode_config, profile_zip, standard_activation
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

MODE = "RemoteTradingSignalsTradingMode"
CONFIG_FILE = Path(octobot_signals.__file__).parent / "config" / f"{MODE}.json"
STRATEGY = {"id": "alpha-1", "name": "Alpha", "pairs": ["BTC/USDT"], "exchange_type": "spot", "exchange": "binance"}
TOKEN = "ft_" + "x" * 40
PUBLIC_KEY = "A" * 43 + "="


async def _webui_schema() -> dict[str, Any]:
    """The JSON schema the mode's configuration page uses, as the web UI builds it (live bot: token shown)."""
    spec = SimExchangeSpec(portfolio={"USDT": Decimal(10)}, prices={"BTC/USDT": Decimal(20000)})
    async with follower_on_sim_exchange(spec) as follower:
        inputs: dict = {}
        follower.sim.exchange_manager.is_backtesting = False  # the web UI edits a live bot's config
        try:
            follower.mode.init_user_inputs(inputs)
        finally:
            follower.sim.exchange_manager.is_backtesting = True
    translator = commons_display.display_translator_factory()
    translator.add_user_inputs([user_input.to_dict() for user_input in inputs.values()])
    elements = translator.to_json()["data"]["elements"]
    (element,) = [e for e in elements if e["tentacle"] == MODE]
    return element["schema"]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    import asyncio
    return asyncio.run(_webui_schema())


def _shipped_configs(tmp_path: Path) -> dict[str, dict[str, Any]]:
    configs = {"default file": json.loads(CONFIG_FILE.read_text(encoding="utf-8"))}
    hub_zip = profile_zip.build_profile_zip({**STRATEGY, "public_key": PUBLIC_KEY}, "https://hub.example.org", TOKEN)
    with zipfile.ZipFile(io.BytesIO(hub_zip)) as archive:
        configs["hub profile"] = json.loads(archive.read(f"specific_config/{MODE}.json"))
    package = build_package(tmp_path / "dist")
    with zipfile.ZipFile(package) as archive:
        name = profile_zip.PACKAGED_PROFILE_NAME
        configs["package profile"] = json.loads(archive.read(f"reference_tentacles/profiles/{name}/specific_config/{MODE}.json"))
        configs["package default file"] = json.loads(archive.read(
            f"reference_tentacles/Trading/Mode/remote_trading_signals_trading_mode/config/{MODE}.json"))
    return configs


def test_every_shipped_config_validates_against_the_web_ui_schema(schema: dict[str, Any], tmp_path: Path) -> None:
    validator = jsonschema.Draft7Validator(schema)
    for label, config in _shipped_configs(tmp_path).items():
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(config)]
        assert not errors, (label, errors)


def test_optional_texts_may_be_empty_and_bad_values_are_refused(schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(schema)
    empty = {**mode_config.mode_config(), "trading_strategy": "", "hub_url": "", "follower_token": "",
             "public_key": "", "journal_path": ""}
    assert not list(validator.iter_errors(empty))  # what a user saves before filling anything in
    for key, bad in (("trading_strategy", "no spaces"), ("hub_url", "ftp://x"), ("hub_url", "https://u:p@h"),
                     ("public_key", "not base64"), ("follower_token", "has space")):
        assert list(validator.iter_errors({**empty, key: bad})), (key, bad)
    assert schema["properties"]["follower_token"]["format"] == "password"


def test_the_web_ui_shows_every_setting_with_a_title(schema: dict[str, Any]) -> None:
    properties = schema["properties"]
    assert set(properties) == set(mode_config.DEFAULT_SETTINGS)
    for key, prop in properties.items():
        assert len(prop["title"]) > 20, key


def test_octobot_finds_its_own_keys_in_every_shipped_config(tmp_path: Path) -> None:
    for label, config in _shipped_configs(tmp_path).items():
        # raises "'required_strategies' is missing in configuration file" without them
        strategies, count = RemoteTradingSignalsTradingMode.get_required_strategies_names_and_count(
            None, trading_mode_config=config)
        assert (strategies, count) == ([], 0), label


def test_the_default_file_is_the_builders_output() -> None:
    assert json.loads(CONFIG_FILE.read_text(encoding="utf-8")) == mode_config.mode_config()


def test_a_profile_keeps_the_web_interface_and_a_standard_bot_running() -> None:
    activation = profile_zip.tentacles_config()["tentacle_activation"]
    for service in ("WebInterface", "WebService", "WebNotifier"):
        assert activation["Services"][service] is True, service
    assert activation["Backtesting"]["GenericExchangeDataImporter"] is True
    assert activation["Trading"][MODE] is True
    trading_modes = [name for name, on in activation["Trading"].items() if name.endswith("TradingMode") and on]
    assert trading_modes == [MODE]
    assert set(standard_activation.OTHER_TRADING_MODES) <= set(activation["Trading"])


def test_the_packaged_profile_name_cannot_collide_with_octobots_own() -> None:
    # OctoBot's default tentacles ship a read-only `copy_trading` profile and never overwrite a profile
    assert profile_zip.PACKAGED_PROFILE_NAME != "copy_trading"
    assert profile_zip.PACKAGED_PROFILE_ID == profile_zip.PACKAGED_PROFILE_NAME
