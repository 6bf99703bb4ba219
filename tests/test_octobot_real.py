"""The user path inside the real OctoBot 2.1.1 (issue 5), end to end and offline.

(a) the tentacles package built by `octobot-signals package` installs with OctoBot's own
    `OctoBot tentacles --install`, and OctoBot imports the mode from where it installed it;
(b) our hub hands a follower a personal profile link, and OctoBot's own profile importer
    downloads it, validates it against OctoBot's profile schema and installs it;
(c) `OctoBot -b` backtests that imported profile on a synthetic data file, the mode reading a
    strategy journal: the journal's orders are copied with the expected sizes, and the result
    equals `octobot-signals replay` on the same journal and portfolio.
OctoBot runs in its own Python 3.12 venv (.ci/octobot_venv.sh), driven through subprocesses
with a temporary bot folder as the working directory. Skipped only when
OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import ast
import asyncio
import json
import time
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_helpers import admin_create_follower, admin_create_strategy, auth, running_hub
from octobot_real import support
from octobot_signals.cli.package_cmd import build_package
from octobot_signals.core import mode_config, profile_zip
from signal_factory import message, order_content, signal

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")

MODE = "RemoteTradingSignalsTradingMode"
STRATEGY_ID = "octo-copy"
START = 1704067200  # 2024-01-01 00:00 UTC, a candle boundary
HOUR = 3600
PRICE = 20000
CANDLES = 24


@dataclass
class Bot:
    path: Path
    package_zip: Path
    install_output: str
    install_seconds: float


@pytest.fixture(scope="module")
def venv() -> Path:
    return support.octobot_venv()


@pytest.fixture(scope="module")
def bot(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Bot:
    """A fresh OctoBot folder with our package (and the test history collector) installed by OctoBot."""
    work = tmp_path_factory.mktemp("octobot_real")
    bot_dir = work / "bot"
    bot_dir.mkdir()
    # --default-profile: this bare bot has no OctoBot-Tentacles, so no default profile of its own
    package_zip = build_package(work / "dist", default_profile=True)
    started = time.monotonic()
    output = support.install_tentacles(venv, bot_dir, package_zip)
    install_seconds = time.monotonic() - started
    support.install_tentacles(venv, bot_dir, support.build_collector_zip(work))
    return Bot(bot_dir, package_zip, output, install_seconds)


# ---------------------------------------------------------------------------------------------- (a)
def test_package_installs_and_octobot_imports_the_mode(venv: Path, bot: Bot) -> None:
    assert "installed remote_trading_signals_trading_mode tentacle" in bot.install_output
    installed = bot.path / "tentacles" / "Trading" / "Mode" / "remote_trading_signals_trading_mode"
    # the nested subpackages are kept on install: the mode imports them
    for relative in ("core/protocol.py", "follower/engine.py", "feed/__init__.py", "feed/bridge.py",
                     "metadata.json", f"config/{MODE}.json", f"resources/{MODE}.md"):
        assert (installed / relative).is_file(), relative
    for pip_only in ("hub", "cli", "demo", "bench", "chaos", "local_exchange"):  # pip-side tools stay out of the bot
        assert not (installed / pip_only).exists(), pip_only
    assert not list(installed.rglob("*.pyc"))  # nothing compiled was shipped

    probe = support.last_json_line(support.run([support.python_of(venv), support.HERE / "probe_mode.py"],
                                               bot.path).stdout)
    assert probe["tentacles_loaded"] is True
    assert probe["class"] == f"tentacles.Trading.Mode.remote_trading_signals_trading_mode." \
                             f"remote_trading_signals_trading_mode.{MODE}"
    assert probe["is_backtestable"] is True
    assert sorted(probe["exchange_types"]) == ["future", "spot"]
    for name, file in probe["submodules"].items():  # imported from the bot folder, not from anywhere else
        assert Path(file).resolve().is_relative_to(installed.resolve()), (name, file)
    # the packaged profile was installed, validates, and runs only our mode (plus what a bot needs)
    profile = probe["profile"]
    assert profile["id"] == profile_zip.PACKAGED_PROFILE_ID
    assert {name for name, on in profile["activation"]["Trading"].items() if on and name.endswith("TradingMode")} == {MODE}
    assert profile["config"]["trader"]["enabled"] is False
    assert profile["config"]["trader-simulator"]["enabled"] is True
    packaged = json.loads((bot.path / "user/profiles" / profile_zip.PACKAGED_PROFILE_NAME / "specific_config" / f"{MODE}.json").read_text())
    assert packaged["follower_token"] == "" and packaged["trading_strategy"] == ""


# ---------------------------------------------------------------------------------------------- (b)
async def _import_through_hub(venv: Path, bot_dir: Path, hub_dir: Path, invalid_zip: Path) -> dict[str, Any]:
    async with running_hub(hub_dir) as hub:
        assert hub.admin_token
        await admin_create_strategy(hub.base_url, hub.admin_token, STRATEGY_ID, name="Octo copy",
                                    pairs=["BTC/USDT"], exchange="binance", exchange_type="spot")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, STRATEGY_ID))["token"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.post(f"{hub.base_url}/api/strategies/{STRATEGY_ID}/profile-link",
                                    headers=auth(token)) as response:
                assert response.status == 200, await response.text()
                link = await response.json()
        assert token not in link["url"]  # the link is a capability, not the token
        # OctoBot downloads the link itself (plain unauthenticated GET) while the hub keeps serving
        output = await support.run_async(
            [support.python_of(venv), support.HERE / "import_profile.py", link["url"], invalid_zip], bot_dir)
        return {"result": support.last_json_line(output), "token": token, "hub_url": hub.base_url,
                "link": link, "output": output}


@pytest.fixture(scope="module")
def imported(venv: Path, bot: Bot, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("hub")
    # a profile OctoBot must refuse: its exchange entry carries a key the schema does not allow
    files = profile_zip.build_profile_files(
        {"id": "bad", "name": "bad", "pairs": ["BTC/USDT"], "exchange_type": "spot", "exchange": "binance"},
        settings={}, profile_name="bad", profile_id="bad", description="")
    document = json.loads(files["profile.json"])
    document["config"]["exchanges"]["binance"]["api-key"] = "not allowed in a profile"
    files["profile.json"] = json.dumps(document).encode()
    invalid_zip = work / "invalid_profile.zip"
    invalid_zip.write_bytes(profile_zip.zip_files(files))
    started = time.monotonic()
    result = asyncio.run(_import_through_hub(venv, bot.path, work / "hub_data", invalid_zip))
    result["seconds"] = time.monotonic() - started
    return result


def test_profile_link_imports_through_octobots_importer(imported: dict[str, Any]) -> None:
    result = imported["result"]
    assert imported["link"]["url"].endswith(f"/{STRATEGY_ID}.zip")
    assert result["imported"] is True and result["origin_url_matches"] is True
    assert result["name"] == "Copy Octo copy"
    specific = result["specific"]
    assert set(specific) == set(mode_config.mode_config())  # every setting written explicitly, OctoBot's keys too
    assert specific["trading_strategy"] == STRATEGY_ID
    assert specific["hub_url"] == imported["hub_url"]
    assert specific["follower_token"] == imported["token"]
    assert {name for name, on in result["activation"]["Trading"].items() if on and name.endswith("TradingMode")} == {MODE}
    config = result["config"]
    assert config["exchanges"]["binance"] == {"enabled": True, "exchange-type": "spot"}
    assert config["crypto-currencies"]["BTC"]["pairs"] == ["BTC/USDT"]
    assert config["trading"]["reference-market"] == "USDT"
    assert config["trader"]["enabled"] is False and config["trader-simulator"]["enabled"] is True
    # the same importer refuses a profile that breaks OctoBot's schema, and leaves nothing behind
    assert result["invalid_refused"] and "Invalid imported profile" in result["invalid_refused"]
    assert result["invalid_left_behind"] is False
    logs = [line for line in imported["output"].splitlines() if not line.startswith("{")]  # minus our JSON
    assert imported["token"] not in "\n".join(logs)


# ---------------------------------------------------------------------------------------------- (c)
def _journal(path: Path) -> None:
    """Create a market buy, create then cancel a limit buy, then a market sell; `d` on candle times."""
    def at(hour: int, content: dict[str, Any]) -> dict[str, Any]:
        content["strategy"] = STRATEGY_ID
        return message(signal(content), d=START + hour * HOUR, q=hour, strategy=STRATEGY_ID)

    lines = [
        at(5, order_content("create", order_id="L1", order_type="buy_market", side="buy", target_amount="10%",
                            current=PRICE)),
        at(6, order_content("create", order_id="L2", order_type="buy_limit", side="buy", target_amount="20%",
                            limit_price=15000, current=PRICE)),
        at(8, order_content("cancel", order_id="L2", order_type="buy_limit", side="buy", limit_price=15000)),
        at(10, order_content("create", order_id="L3", order_type="sell_market", side="sell",
                             target_amount="50%", current=PRICE)),
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def _backtest_metadata(bot_dir: Path) -> tuple[dict[str, Any], Path]:
    runs = bot_dir / "user" / "data" / MODE / "default_campaign" / "backtesting"
    metadata = json.loads((runs / "metadata.json").read_text())["metadata"]
    last = max(metadata, key=int)
    return metadata[last], runs / f"backtesting_{last}"


@dataclass
class Backtest:
    output: str
    metadata: dict[str, Any]
    run_dir: Path
    journal: Path
    seconds: float


@pytest.fixture(scope="module")
def backtest(venv: Path, bot: Bot, imported: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Backtest:
    """`OctoBot -b` on a synthetic data file with the imported profile selected and a journal to follow."""
    result = imported["result"]
    journal = tmp_path_factory.mktemp("journal") / "journal.jsonl"
    _journal(journal)
    # what a user does in the web UI: point the imported profile's journal_path at a journal, select it
    specific_path = bot.path / result["path"] / "specific_config" / f"{MODE}.json"
    specific = json.loads(specific_path.read_text())
    specific["journal_path"] = str(journal)
    specific_path.write_text(json.dumps(specific, indent=4))
    support.select_profile(venv, bot.path, result["id"])
    candles = [[START + i * HOUR, PRICE, PRICE + 100, PRICE - 100, PRICE, 10] for i in range(CANDLES)]
    data_file = support.write_data_file(venv, bot.path, exchange="binance", time_frame="1h",
                                        candles={"BTC/USDT": candles})
    started = time.monotonic()
    output = support.run([support.octobot_of(venv), "-b", "-bf", data_file, "-nw", "-nt"], bot.path).stdout
    seconds = time.monotonic() - started
    metadata, run_dir = _backtest_metadata(bot.path)
    print(f"\nwall time: install {bot.install_seconds:.1f}s, profile import {imported['seconds']:.1f}s, "
          f"backtest {seconds:.1f}s")
    return Backtest(output, metadata, run_dir, journal, seconds)


def test_backtest_copies_the_journal_with_expected_sizes(imported: dict[str, Any], backtest: Backtest) -> None:
    output, metadata = backtest.output, backtest.metadata
    assert f"Using {imported['result']['name']} profile" in output
    assert "Loaded 4 journal lines" in output
    inputs = metadata["user inputs"][MODE]
    assert inputs["trading_strategy"] == STRATEGY_ID and inputs["journal_path"] == str(backtest.journal)
    # OctoBot's own trade history: the two market copies, sized on this bot's 1000 USDT
    trades_file = backtest.run_dir / "binance" / "trades_spot_trader-simulator.json"
    trades = json.loads(trades_file.read_text())["all_trades"]
    fills = sorted((t["origin_value"]["timestamp"], t["origin_value"]["side"], t["origin_value"]["type"],
                     Decimal(str(t["origin_value"]["amount"])), Decimal(str(t["origin_value"]["price"])))
                    for t in trades.values())
    # L1: 10% of 1000 USDT at 20000 = 0.005 BTC; L3: 50% of the 0.004995 BTC left after the 0.1% fee
    assert fills == [(START + 5 * HOUR, "buy", "market", Decimal("0.005"), Decimal(PRICE)),
                     (START + 10 * HOUR, "sell", "market", Decimal("0.0024975"), Decimal(PRICE))]
    # L2 (20% of the 900 USDT left = 0.009 BTC at 15000) was placed, then cancelled: OctoBot's order log
    assert "Creating order: BTC/USDT | BUY_LIMIT | Price : 15000" in output
    assert "Quantity : 0.009 " in output
    assert "Cancelling order: BTC/USDT | BUY_LIMIT | Price : 15000" in output
    assert metadata["trades"] == 2

    # the same journal and portfolio through `octobot-signals replay` (offline octobot-trading)
    replay_lines = [json.loads(line) for line in support.run_project_cli(
        "replay", str(backtest.journal), "--portfolio", "USDT=1000", "--price", f"BTC/USDT={PRICE}",
        "--exchange", "binance", "--set", f"trading_strategy={STRATEGY_ID}", "--json").splitlines()]
    summary = replay_lines[-1]
    assert summary["summary"]["created"] == 3 and summary["summary"]["cancelled"] == 1
    replay_market = [(o["side"], Decimal(o["quantity"])) for line in replay_lines[:-1]
                     if line.get("action") == "create" for o in line["orders"] if o["type"].endswith("_market")]
    assert replay_market == [(side, amount) for _, side, _, amount, _ in fills]
    end_portfolio = ast.literal_eval(metadata["end portfolio"])
    for asset, holding in summary["portfolio"].items():
        assert Decimal(str(end_portfolio[asset]["total"])) == Decimal(holding["total"]), asset


def test_backtest_keeps_the_follower_token_out_of_logs_and_run_data(bot: Bot, imported: dict[str, Any],
                                                                    backtest: Backtest) -> None:
    """The imported profile holds the follower token: OctoBot must not print it nor store it in run data."""
    token = imported["token"]
    leaks = []
    if token in backtest.output:
        leaks.append("OctoBot's console output")
    for folder in (bot.path / "logs", bot.path / "user" / "data"):
        for path in folder.rglob("*"):
            if path.is_file() and token.encode() in path.read_bytes():
                leaks.append(str(path.relative_to(bot.path)))
    assert not leaks, f"follower token written to: {leaks}"


def test_built_package_is_a_tentacles_zip(bot: Bot) -> None:
    """Cheap guard on what (a) installed: only OctoBot-extractable members, mode and profiles inside."""
    with zipfile.ZipFile(bot.package_zip) as archive:
        names = archive.namelist()
    assert all(name.startswith("reference_tentacles/") for name in names)
    assert f"reference_tentacles/profiles/{profile_zip.PACKAGED_PROFILE_NAME}/profile.json" in names
    assert "reference_tentacles/profiles/default/profile.json" in names


# ---------------------------------------------------------------------------------------------- publishing
async def _publish_from_octobot(venv: Path, bot_dir: Path, hub_dir: Path, data_dir: Path) -> tuple[dict, list]:
    async with running_hub(hub_dir) as hub:
        assert hub.admin_token
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "octo-publisher", pairs=["BTC/USDT"],
                                               exchange="binance", exchange_type="spot")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "octo-publisher"))["token"]
        env = {"OCTOBOT_SIGNALS_HUB_URL": hub.base_url, "OCTOBOT_SIGNALS_PUBLISH_STRATEGY": "octo-publisher",
               "OCTOBOT_SIGNALS_PUBLISH_SECRET": strategy["publish_secret"], "OCTOBOT_SIGNALS_DATA_DIR": str(data_dir)}
        output = await support.run_async([support.python_of(venv), support.HERE / "publish_probe.py",
                                          "octo-publisher"], bot_dir, env=support.clean_env(**env))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(f"{hub.base_url}/api/strategies/octo-publisher/signals?after=0",
                                   headers=auth(token)) as response:
                assert response.status == 200
                journal = await response.json()
        return support.last_json_line(output), journal


def test_octobot_publishes_through_the_bridge_configured_by_environment(venv: Path, bot: Bot, tmp_path: Path) -> None:
    result, journal = asyncio.run(_publish_from_octobot(venv, bot.path, tmp_path / "hub", tmp_path / "outbox"))
    assert result == {"bridge_installed": True, "fallback_is_octobot": True, "flushed": True}
    assert len(journal) == 1 and journal[0]["q"] == 1
    content = journal[0]["s"]["signals"][0]["content"]
    assert content["order_id"] == "probe-order-1" and content["target_amount"] == "5.0%"
