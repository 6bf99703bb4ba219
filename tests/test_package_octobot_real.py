"""The tentacles zip alone runs in the real OctoBot 2.1.1: listed, installed by OctoBot, imported and used
with nothing else of ours on the bot's path (the pip-side hub, CLI, demo, bench and chaos are not in it).
Skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from octobot_real import support
from octobot_signals.cli.package_cmd import build_package

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")

ROOT = "reference_tentacles/Trading/Mode/remote_trading_signals_trading_mode/"


def test_zip_alone_installs_imports_and_copies_in_real_octobot(tmp_path: Path) -> None:
    venv = support.octobot_venv()
    package_zip = build_package(tmp_path / "dist", default_profile=True)
    with zipfile.ZipFile(package_zip) as archive:
        shipped = [name[len(ROOT):] for name in archive.namelist() if name.startswith(ROOT)]
    assert {name.split("/")[0] for name in shipped if "/" in name} == {
        "config", "core", "feed", "follower", "resources", "simulator", "tests"}
    bot_dir = tmp_path / "bot"
    bot_dir.mkdir()
    output = support.install_tentacles(venv, bot_dir, package_zip)
    assert "installed remote_trading_signals_trading_mode tentacle" in output
    installed = bot_dir / "tentacles" / "Trading" / "Mode" / "remote_trading_signals_trading_mode"
    for folder in ("hub", "cli", "demo", "bench", "chaos"):
        assert not (installed / folder).exists(), folder

    # the probe runs from a copy outside the repository: a script's folder is on its path
    probe_script = tmp_path / "probe_package.py"
    shutil.copyfile(support.HERE / "probe_package.py", probe_script)
    probe = support.last_json_line(support.run([support.python_of(venv), probe_script, support.REPO], bot_dir).stdout)
    assert probe["ours_on_path"] == [] and probe["pip_package"] is False
    assert probe["octobot_signals_modules"] == [] and probe["modules_outside_bot"] == []
    assert probe["import_errors"] == {}
    runtime = [name for name in shipped if name.endswith(".py") and not name.startswith("tests/")]
    assert probe["modules_imported"] >= len(runtime)
    assert probe["class"].endswith("remote_trading_signals_trading_mode.RemoteTradingSignalsTradingMode")
    # the installed mode copies a signal, applies a risk control with its reason, and cancels
    assert probe["copied"] == [
        ["A", "created", None, ["0.005"]],
        ["B", "skipped", "max_open_copies: 1 copied entry orders open (max 1)", []],
        ["A", "cancelled", None, ["0.005"]],
    ]
    # the tentacle's own tests run against the installed copy (those that import pytest need a test runner)
    tests = probe["tentacle_tests"]
    assert [name for name, result in tests.items() if result == "passed" and "consumer" in name], tests
    assert set(tests.values()) <= {"passed", "needs pytest"}, tests
