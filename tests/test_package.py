"""`octobot-signals package --output DIR` (cli/package_cmd.py): the tentacles package zip.

That OctoBot really installs it is proven in test_octobot_real.py; here: layout, content and
arguments, through the real command.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from octobot_signals.cli.main import main
from octobot_signals.cli.package_cmd import build_package, package_folder

ROOT = "reference_tentacles/Trading/Mode/remote_trading_signals_trading_mode/"
SERVICE_ROOT = "reference_tentacles/Services/Services_bases/octobot_signals_service/"
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
                     "core/__init__.py", "core/settings.py", "core/signal_schema.py",
                     "core/sizing.py", "core/protocol.py",
                     "follower/__init__.py", "follower/engine.py", "follower/order_map.py", "follower/order_lookup.py",
                     "follower/order_builder.py", "follower/exchange_view.py", "follower/journal.py",
                     "feed/__init__.py", "feed/bridge.py", "feed/subscription.py", "feed/follower_client.py",
                     "feed/publisher_client.py", "feed/outbox.py", "feed/durable_sqlite.py",
                     "simulator/__init__.py", "simulator/harness.py", "simulator/sim_exchange.py",
                     "follower/symbol_map.py",
                     "remote_trading_signals_trading.py", "tests/__init__.py",
                     "tests/test_remote_trading_signals_trading_consumer.py",
                     "tests/test_remote_trading_signals_trading_producer.py"):
        assert required in shipped, required
    assert not [name for name in members if "__pycache__" in name or name.endswith((".pyc", ".pyo"))]


def test_the_zip_holds_only_what_a_bot_runs(tmp_path: Path) -> None:
    """The hub, the command line, the demo, the benchmarks and the chaos run stay in the pip-installed project;
    simulator/ is shipped because the tentacle's own tests/ run the mode on it."""
    members = names(build_package(tmp_path))
    shipped = sorted(name[len(ROOT):] for name in members if name.startswith(ROOT))
    folders = {name.split("/")[0] for name in shipped if "/" in name}
    assert folders == {"config", "core", "feed", "follower", "resources", "simulator", "tests"}
    assert sorted(name for name in shipped if "/" not in name) == [
        "__init__.py", "metadata.json", "remote_trading_signals_trading.py", "remote_trading_signals_trading_mode.py",
    ]
    # and nothing of the pip-only tools slipped in under another name
    for name in shipped:
        assert not name.startswith(("hub/", "cli/", "demo/", "bench/", "chaos/", "local_exchange/")), name
    assert not [name for name in members if not name.startswith((ROOT, SERVICE_ROOT, "reference_tentacles/profiles/"))]


def test_the_zip_ships_the_web_ui_card_as_a_second_tentacle(tmp_path: Path) -> None:
    """service/ goes to Services/Services_bases/<module>/ (where OctoBot lists interfaces), not in the mode."""
    with zipfile.ZipFile(build_package(tmp_path)) as archive:
        members = archive.namelist()
        shipped = sorted(name[len(SERVICE_ROOT):] for name in members if name.startswith(SERVICE_ROOT))
        metadata = json.loads(archive.read(SERVICE_ROOT + "metadata.json"))
        source = archive.read(SERVICE_ROOT + "octobot_signals_service.py").decode()
    assert shipped == ["__init__.py", "metadata.json", "octobot_signals_service.py"]
    assert not [name for name in members if name.startswith(ROOT + "service/")]
    assert metadata == {"version": version(), "origin_package": "octobot-signals",
                        "tentacles": ["OctoBotSignalsService"], "tentacles-requirements": []}
    # it reaches the mode tentacle's code by its installed name, lazily (OctoBot imports Services first)
    assert "tentacles.Trading.Mode.remote_trading_signals_trading_mode" in source
    assert not re.search(r"^(from|import) (tentacles|octobot_signals)\b", source, re.MULTILINE)
    assert not re.search(r"^from \.\.", source, re.MULTILINE)


def _relative_imports(source: str, module: str) -> set[tuple[str, str]]:
    """(package or module, imported name) for each relative import of a module, lazy imports included."""
    import ast

    package = module.split(".")[:-1]
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(package[: len(package) - (node.level - 1)])
            target = ".".join(part for part in (base, node.module or "") if part)
            found.update((target, alias.name) for alias in node.names)
    return found


def unresolved_imports(sources: dict[str, str]) -> list[tuple[str, str]]:
    """Relative imports of the shipped modules that name nothing shipped: what would fail in a bot."""
    modules = {name[:-3].replace("/", ".").removesuffix(".__init__").removesuffix("__init__"): source
               for name, source in sources.items()}
    missing = []
    for name, source in sources.items():
        module = name[:-3].replace("/", ".")
        for target, imported in _relative_imports(source, module):
            submodule = f"{target}.{imported}".strip(".")
            if submodule in modules:
                continue  # `from . import engine`, `from ..core import sizing`
            if target in modules and imported in modules[target]:
                continue  # `from .order_map import OrderMap`: a name the shipped module (or package) defines
            missing.append((name, submodule))
    return missing


def test_every_module_the_shipped_code_imports_is_shipped(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_package(tmp_path)) as archive:
        sources = {name[len(ROOT):]: archive.read(name).decode() for name in archive.namelist()
                   if name.startswith(ROOT) and name.endswith(".py")}
    assert unresolved_imports(sources) == []
    # a bot has no `octobot_signals` package: the shipped code reaches its parts relatively only
    assert [name for name, source in sources.items() if re.search(r"^\s*(from|import) octobot_signals\b", source,
                                                                   re.MULTILINE)] == []
    # the check sees through lazy imports: the mode's live subscription, a hub module would be caught
    assert ("feed.subscription", "subscribe_mode") in _relative_imports(
        sources["remote_trading_signals_trading_mode.py"], "remote_trading_signals_trading_mode")
    assert unresolved_imports({**sources, "feed/extra.py": "def f():\n    from ..hub import server\n"}) == [
        ("feed/extra.py", "hub.server")]
    assert unresolved_imports({**sources, "feed/extra.py": "from ..core import not_shipped\n"}) == [
        ("feed/extra.py", "core.not_shipped")]


def test_the_simulator_is_shipped_for_the_tentacles_own_tests_only(tmp_path: Path) -> None:
    """simulator/ (the offline exchange) is in the zip because tests/ (shipped: they replace the stock mode's tests)
    run the mode on it; what a bot runs never imports it, so it goes the day the tentacle's tests stop needing it."""
    with zipfile.ZipFile(build_package(tmp_path)) as archive:
        sources = {name[len(ROOT):]: archive.read(name).decode() for name in archive.namelist()
                   if name.startswith(ROOT) and name.endswith(".py")}

    def importers_of_the_simulator(prefix: str) -> list[str]:
        return sorted(name for name, source in sources.items() if name.startswith(prefix) and any(
            target.split(".")[0] == "simulator" or (target == "" and imported == "simulator")
            for target, imported in _relative_imports(source, name[:-3].replace("/", "."))))

    assert importers_of_the_simulator("tests/") == ["tests/test_remote_trading_signals_trading_consumer.py"]
    assert [name for name in importers_of_the_simulator("") if not name.startswith(("tests/", "simulator/"))] == []


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


def test_the_card_names_itself_as_the_mode_tentacle_does() -> None:
    """The service module cannot be imported here (no octobot_services): its fallback name must stay in step."""
    from octobot_signals.feed import publish_card

    source = (package_folder() / "service" / "octobot_signals_service.py").read_text()
    assert f'SERVICE_TYPE = "{publish_card.SERVICE_TYPE}"' in source
