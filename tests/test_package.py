"""`octobot-signals package --output DIR` (cli/package_cmd.py): the tentacles package zip.

That OctoBot really installs it is proven in test_octobot_real.py; here: layout, content and
arguments, through the real command.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from octobot_signals.cli.main import main
from octobot_signals.cli.package_cmd import build_package, package_folder

ROOT = "reference_tentacles/Trading/Mode/remote_trading_signals_trading_mode/"
MODE = "RemoteTradingSignalsTradingMode"


def version() -> str:
    return json.loads((package_folder() / "metadata.json").read_text())["version"]


def names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_command_writes_the_zip_and_prints_its_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["package", "--output", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out.strip()
    expected = tmp_path / "out" / f"octobot-signals-tentacles-{version()}.zip"
    assert printed == str(expected) and expected.is_file()
    assert not list((tmp_path / "out").glob("*.partial"))


def test_layout_holds_what_the_mode_needs(tmp_path: Path) -> None:
    members = names(build_package(tmp_path))
    assert all(name.startswith("reference_tentacles/") for name in members)  # all OctoBot extracts
    shipped = {name[len(ROOT):] for name in members if name.startswith(ROOT)}
    for required in ("__init__.py", "metadata.json", f"config/{MODE}.json", f"resources/{MODE}.md",
                     "remote_trading_signals_trading_mode.py",
                     "core/__init__.py", "core/profile_zip.py", "core/settings.py", "core/signal_schema.py",
                     "core/sizing.py", "core/protocol.py",
                     "follower/__init__.py", "follower/engine.py", "follower/order_map.py", "follower/order_lookup.py",
                     "follower/order_builder.py", "follower/exchange_view.py", "follower/journal.py",
                     "feed/__init__.py", "feed/bridge.py", "feed/subscription.py", "feed/follower_client.py",
                     "feed/publisher_client.py", "feed/outbox.py", "feed/durable_sqlite.py",
                     "hub/__init__.py", "hub/server.py", "hub/store.py", "cli/__init__.py", "cli/main.py"):
        assert required in shipped, required
    assert not [name for name in members if "__pycache__" in name or name.endswith((".pyc", ".pyo"))]


def test_a_tentacle_folder_ships_its_files_and_no_caches(tmp_path: Path) -> None:
    source = tmp_path / "my_mode"
    for relative in ("__init__.py", "my_mode.py", "sub/__init__.py", "sub/deep/x.py", "config/MyMode.json",
                     "resources/MyMode.md", "data/sample.jsonl", "__pycache__/my_mode.cpython-311.pyc",
                     "sub/__pycache__/x.cpython-311.pyc", "stale.pyc", "stale.pyo", ".pytest_cache/v/cache",
                     ".ruff_cache/0.1/x", ".mypy_cache/3.11/x.json", "my_mode.py.swp", "my_mode.py~"):
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_text("x")
    (source / "metadata.json").write_text(json.dumps({"version": "9.9.9", "tentacles": ["MyMode"]}))
    members = names(build_package(tmp_path / "out", source=source))
    root = "reference_tentacles/Trading/Mode/my_mode/"
    assert sorted(name for name in members if not name.startswith("reference_tentacles/profiles/")) == [
        root + "__init__.py", root + "config/MyMode.json", root + "data/sample.jsonl", root + "metadata.json",
        root + "my_mode.py", root + "resources/MyMode.md", root + "sub/__init__.py", root + "sub/deep/x.py",
    ]


def test_tentacle_metadata_names_the_mode(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_package(tmp_path)) as archive:
        metadata = json.loads(archive.read(ROOT + "metadata.json"))
    assert metadata["tentacles"] == [MODE] and metadata["version"] == version()
    assert isinstance(metadata["tentacles-requirements"], list)


def test_profiles(tmp_path: Path) -> None:
    plain = names(build_package(tmp_path / "a"))
    profiles = sorted(name for name in plain if name.startswith("reference_tentacles/profiles/"))
    assert profiles == ["reference_tentacles/profiles/octobot_signals_copy_trading/profile.json",
                        f"reference_tentacles/profiles/octobot_signals_copy_trading/specific_config/{MODE}.json",
                        "reference_tentacles/profiles/octobot_signals_copy_trading/tentacles_config.json"]
    with_default = names(build_package(tmp_path / "b", default_profile=True))
    assert "reference_tentacles/profiles/default/profile.json" in with_default


def test_packaged_profile_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["package", "--output", str(tmp_path), "--exchange", "kucoin", "--exchange-type", "future",
                 "--pairs", "ETH/USDT:USDT, BTC/USDT:USDT"]) == 0
    with zipfile.ZipFile(capsys.readouterr().out.strip()) as archive:
        profile = json.loads(archive.read("reference_tentacles/profiles/octobot_signals_copy_trading/profile.json"))
    config = profile["config"]
    assert config["exchanges"] == {"kucoin": {"enabled": True, "exchange-type": "future"}}
    assert [pair for entry in config["crypto-currencies"].values() for pair in entry["pairs"]] == [
        "ETH/USDT:USDT", "BTC/USDT:USDT"]


def test_same_sources_same_bytes(tmp_path: Path) -> None:
    assert build_package(tmp_path / "a").read_bytes() == build_package(tmp_path / "b").read_bytes()


@pytest.mark.parametrize("extra", [
    ["--pairs", "BTCUSDT"],
    ["--exchange", "Not An Exchange"],
    ["--exchange-type", "future", "--pairs", "BTC/USDT"],
])
def test_unusable_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    assert main(["package", "--output", str(tmp_path), *extra]) == 2
    assert "octobot-signals package:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_output_that_is_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["package", "--output", str(target)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_missing_output_and_bad_choice_exit_2() -> None:
    for args in (["package"], ["package", "--output", "x", "--exchange-type", "margin"]):
        result = subprocess.run([sys.executable, "-m", "octobot_signals.cli.main", *args], capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 2, result
        assert "usage:" in result.stderr
