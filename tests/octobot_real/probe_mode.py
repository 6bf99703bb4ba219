"""Runs in the OctoBot 2.1.1 venv with an installed bot folder as cwd: loads the tentacles as OctoBot
does and imports the copy-trading mode from its installed location. Prints one JSON line."""
from __future__ import annotations

import importlib
import json
import os
import sys

import octobot.constants as octobot_constants
import octobot_commons.profiles as profiles
import octobot_tentacles_manager.api as tentacles_api

MODULE = "tentacles.Trading.Mode.remote_trading_signals_trading_mode"
PACKAGED_PROFILE = "octobot_signals_copy_trading"  # core.profile_zip.PACKAGED_PROFILE_NAME (this script runs in the bot venv)
SUBMODULES = ("core.protocol", "core.sizing", "core.signal_schema", "core.settings", "core.profile_zip",
              "follower.engine", "follower.journal", "follower.order_map")


def main() -> None:
    sys.path.insert(0, os.getcwd())  # the bot folder: `tentacles` is importable from there, as in OctoBot
    loaded = tentacles_api.load_tentacles(verbose=False)
    package = importlib.import_module(MODULE)
    mode_class = package.RemoteTradingSignalsTradingMode
    submodules = {name: importlib.import_module(f"{MODULE}.{name}").__file__ for name in SUBMODULES}
    profile = profiles.Profile(os.path.join("user", "profiles", PACKAGED_PROFILE),
                               schema_path=octobot_constants.PROFILE_FILE_SCHEMA).read_config()
    profile.validate()  # raises on a schema violation
    with open(profile.get_tentacles_config_path(), encoding="utf-8") as handle:
        activation = json.load(handle)["tentacle_activation"]
    print(json.dumps({
        "tentacles_loaded": bool(loaded),
        "class": f"{mode_class.__module__}.{mode_class.__name__}",
        "is_backtestable": mode_class.is_backtestable(),
        "exchange_types": [t.value for t in mode_class.get_supported_exchange_types()],
        "submodules": submodules,
        "profile": {"id": profile.profile_id, "name": profile.name, "config": profile.config,
                    "activation": activation},
    }))


if __name__ == "__main__":
    main()
