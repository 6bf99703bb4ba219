"""The mode's configuration document: one builder for every config we ship.

`config/RemoteTradingSignalsTradingMode.json` (the tentacle's default file), the hub's profile zip and
the packaged profile all come from `mode_config()`, so they cannot drift. Besides our settings the
document carries the keys OctoBot's base classes read from every trading mode config
(`AbstractTradingMode.get_required_strategies_names_and_count` raises without `required_strategies`).
Pure code: no OctoBot import.
"""
from __future__ import annotations

import json
from typing import Any

from .settings import SettingsError, settings_from_config

MODE_CLASS = "RemoteTradingSignalsTradingMode"
CONFIG_FILE = f"config/{MODE_CLASS}.json"


class ModeConfigError(ValueError):
    """A setting cannot go into the mode's config; the message names the key (never a secret's value)."""


# Every setting, in the order the web UI shows them, at the value a fresh config gets. Numbers are
# written the way OctoBot's web UI saves FLOAT inputs (1.0, not 1), so a saved config diffs cleanly.
DEFAULT_SETTINGS: dict[str, Any] = {
    "trading_strategy": "",
    "hub_url": "",
    "follower_token": "",
    "public_key": "",
    "sizing": "portfolio_percent",
    "leader_quantity_ratio": 1.0,
    "fixed_quote_amount": 0.0,
    "max_volume": 100.0,
    "round_to_minimal_size_if_necessary": False,
    "max_signal_age_seconds": 300,
    "max_price_deviation_percent": 5.0,
    "max_exposure_percent": 0.0,
    "max_open_copies": 0,
    "drawdown_stop_percent": 0.0,
    "drawdown_reset": 0,
    "pair_filter": "",
    "pair_filter_mode": "follow_only",
    "quote_mapping": "",
    "journal_path": "",
}

# Keys OctoBot itself reads from a trading mode's config. This mode needs no evaluator: an empty
# list, and a minimum of 0 so that OctoBot never asks the user to activate a strategy for it.
OCTOBOT_KEYS: dict[str, Any] = {
    "required_strategies": [],
    "required_strategies_min_count": 0,
}


def mode_config(**settings: Any) -> dict[str, Any]:
    """The whole config document: defaults, then `settings` (validated like the mode validates them)."""
    unknown = set(settings) - set(DEFAULT_SETTINGS)
    if unknown:
        raise ModeConfigError(f"{sorted(unknown)[0]}: unknown mode setting")
    config = {**DEFAULT_SETTINGS, **settings}
    try:
        checked = settings_from_config(config)
    except SettingsError as err:
        raise ModeConfigError(f"{err.key}: {err.reason}") from None
    config["hub_url"] = checked.hub_url  # normalized (no trailing slash), as the mode will read it
    return {**config, **OCTOBOT_KEYS}


def default_file_text() -> str:
    """The content of config/RemoteTradingSignalsTradingMode.json (the package build writes it from here)."""
    return json.dumps(mode_config(), indent=2) + "\n"
