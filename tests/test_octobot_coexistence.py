"""Living beside OctoBot's default tentacles, which ship a stock mode in the same folder (issue 8, point 5).

Real OctoBot 2.1.1 tentacles manager in a fresh bot folder: default tentacles, then ours (every stock file
replaced, the stock module name imports our class), then the default tentacles again (the stock mode is
back: `octobot-signals doctor` says so and how to restore), then ours again (restored).
Skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from octobot_real import support
from octobot_real.webui import DEFAULT_TENTACLES_ZIP
from octobot_signals.cli.package_cmd import build_package

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")

# Imports the tentacle as OctoBot does (from the bot folder), through both module names.
PROBE = """
import json, octobot_tentacles_manager.api as api
api.load_tentacles(verbose=False)
import tentacles.Trading.Mode.remote_trading_signals_trading_mode as package
import tentacles.Trading.Mode.remote_trading_signals_trading_mode.remote_trading_signals_trading as stock_name
print(json.dumps({"class": package.RemoteTradingSignalsTradingMode.__module__,
                  "stock_name_class": stock_name.RemoteTradingSignalsTradingMode.__module__}))
"""


def _doctor(bot_dir: Path) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, "-m", "octobot_signals.cli.main", "doctor", "--bot", str(bot_dir),
                             "--json"], capture_output=True, text=True, timeout=60, check=False)
    return result.returncode, json.loads(result.stdout)


def _probe(venv: Path, bot_dir: Path) -> dict:
    return support.last_json_line(support.run([support.python_of(venv), "-c", PROBE], bot_dir).stdout)


def test_install_replaces_the_stock_mode_and_doctor_tells_when_it_comes_back(tmp_path: Path) -> None:
    venv = support.octobot_venv()
    bot_dir = tmp_path / "bot"
    bot_dir.mkdir()
    ours_zip = build_package(tmp_path / "dist")
    ours_module = "tentacles.Trading.Mode.remote_trading_signals_trading_mode.remote_trading_signals_trading_mode"

    support.install_tentacles(venv, bot_dir, DEFAULT_TENTACLES_ZIP)
    code, before = _doctor(bot_dir)
    assert (code, before["status"], before["origin_package"]) == (1, "stock", "OctoBot-Default-Tentacles")

    support.install_tentacles(venv, bot_dir, ours_zip)
    code, installed = _doctor(bot_dir)
    assert (code, installed["status"], installed["not_ours"]) == (0, "ours", [])
    # no stock code left importable: the stock module's name now gives our class
    assert _probe(venv, bot_dir) == {"class": ours_module, "stock_name_class": ours_module}

    support.install_tentacles(venv, bot_dir, DEFAULT_TENTACLES_ZIP)  # a user reinstalls OctoBot's defaults
    code, overwritten = _doctor(bot_dir)
    assert (code, overwritten["status"]) == (1, "stock")
    assert "octobot-signals files are still there" in overwritten["message"]
    assert "OctoBot tentacles --install --all --location" in overwritten["fix"]
    stock_module = "tentacles.Trading.Mode.remote_trading_signals_trading_mode.remote_trading_signals_trading"
    assert _probe(venv, bot_dir)["class"] == stock_module  # what the bot would now run

    support.install_tentacles(venv, bot_dir, ours_zip)  # the fix doctor prints
    code, restored = _doctor(bot_dir)
    assert (code, restored["status"]) == (0, "ours")
    assert _probe(venv, bot_dir)["class"] == ours_module
