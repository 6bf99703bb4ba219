"""The follower's journey through OctoBot's own web interface, in a real browser (issue 8).

Real parts only: OctoBot 2.1.1 (its own Python 3.12 venv) in a fresh bot folder with OctoBot's default
tentacles installed first (as every real bot has) and our package second, both with OctoBot's own
tentacles manager; our hub on 127.0.0.1 with a strategy and a follower; OctoBot started with its web UI
on 127.0.0.1; Debian's chromium driven by Playwright (tests/browser/support.py: the pages' CDN libraries
come from a local npm install, every other outside request is aborted). Each step asserts what the page
shows; a failing step saves screenshots under .artifacts/screenshots/webui_journey/.

Offline, a live or simulated bot cannot reach its exchange, so OctoBot never creates the trading mode in
live runs here (it logs a binance NetworkError): the last step proves the mode starts with the id saved
through the page by running the same bot folder, same profile and same saved config in a backtest.
Skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser import support as browser_support
from hub_helpers import admin_create_follower, admin_create_strategy, auth, free_port, running_hub
from octobot_real import support
from octobot_real.webui import DEFAULT_TENTACLES_ZIP, WebBot
from octobot_signals.cli.package_cmd import build_package
from octobot_signals.core import profile_zip, standard_activation
from test_webui_schema import _webui_schema

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")

MODE = "RemoteTradingSignalsTradingMode"
MODE_FOLDER = Path("tentacles") / "Trading" / "Mode" / "remote_trading_signals_trading_mode"
STRATEGY_ID = "journey-alpha"
STRATEGY_NAME = "Journey Alpha"
NEW_STRATEGY_ID = "journey-beta"
START = 1704067200  # 2024-01-01 00:00 UTC
HOUR = 3600


def documented_settings() -> list[str]:
    """The keys of the "Mode settings" guide's table (docs/mode-settings.md): the page must show each of them."""
    text = (support.REPO / "docs" / "mode-settings.md").read_text(encoding="utf-8")
    section = text.split("# Mode settings", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


def _install(venv: Path, bot_dir: Path, zip_path: Path) -> str:
    output = support.install_tentacles(venv, bot_dir, zip_path)
    assert "successfully processed" in output, output[-3000:]
    return output


def _check_coexistence(bot_dir: Path) -> None:
    """Our install replaced every stock file of the shared folder; our profile did not collide."""
    folder = bot_dir / MODE_FOLDER
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["origin_package"] == "octobot-signals", metadata
    stock_module = (folder / "remote_trading_signals_trading.py").read_text()
    assert "OCTOBOT_SIGNALS_MARKER" in stock_module  # the stock module name now holds ours
    assert "from .remote_trading_signals_trading_mode import" in (folder / "__init__.py").read_text()
    for stock_test in ("tests/__init__.py", "tests/test_remote_trading_signals_trading_consumer.py",
                       "tests/test_remote_trading_signals_trading_producer.py"):
        assert "octobot-signals" in (folder / stock_test).read_text(), stock_test
    ours = bot_dir / "user" / "profiles" / profile_zip.PACKAGED_PROFILE_NAME / "profile.json"
    assert json.loads(ours.read_text())["profile"]["id"] == profile_zip.PACKAGED_PROFILE_ID
    stock = json.loads((bot_dir / "user" / "profiles" / "copy_trading" / "profile.json").read_text())
    assert stock["profile"]["read_only"] is True  # OctoBot's own, left as it was


def _check_standard_activation(bot_dir: Path) -> None:
    """standard_activation's names are what OctoBot's tentacles manager activated on this real bot."""
    reference = json.loads((bot_dir / "user" / "reference_tentacles_config" / "tentacles_config.json")
                           .read_text())["tentacle_activation"]
    active = {(kind, name) for kind, names in reference.items() for name, on in names.items()
              if on and not name.endswith("TradingMode")}
    ours = {(kind, name) for activation in (standard_activation.STANDARD_ACTIVE, standard_activation.OWN_ACTIVE)
            for kind, names in activation.items() for name in names}
    assert active == ours
    stock_modes = {name for name in reference["Trading"] if name.endswith("TradingMode")} - {MODE}
    assert stock_modes == set(standard_activation.OTHER_TRADING_MODES)


@pytest.fixture(scope="module")
def venv() -> Path:
    return support.octobot_venv()


@pytest.fixture(scope="module")
def titles() -> dict[str, str]:
    schema = asyncio.run(_webui_schema())
    return {key: prop["title"] for key, prop in schema["properties"].items()}


async def _follower_link(hub_url: str, admin_token: str) -> tuple[str, str]:
    await admin_create_strategy(hub_url, admin_token, STRATEGY_ID, name=STRATEGY_NAME, pairs=["BTC/USDT"],
                                exchange="binance", exchange_type="spot")
    token = (await admin_create_follower(hub_url, admin_token, STRATEGY_ID))["token"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.post(f"{hub_url}/api/strategies/{STRATEGY_ID}/profile-link", headers=auth(token)) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["url"], token


async def _download(url: str, target: Path) -> Path:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(url) as response:
            assert response.status == 200, await response.text()
            target.write_bytes(await response.read())
    return target


async def _skip_tour(page: Any) -> None:
    """OctoBot opens a guided tour (intro.js) on a page's first visit: close it as a user would."""
    skip = page.locator(".introjs-skipbutton")
    try:
        await skip.first.wait_for(state="visible", timeout=3000)
    except Exception:  # noqa: BLE001 - no tour on this page
        return
    await skip.first.click()
    await page.locator(".introjs-overlay").wait_for(state="detached", timeout=5000)


async def _open_profile_panel(page: Any, profile_id: str) -> Any:
    """Profile page, sidebar "Edit profiles", then the profile's own panel (which has the import button)."""
    submenu = page.locator("#profilesSubmenu")
    if not await submenu.is_visible():
        await page.locator("#edit-profiles-button").click()
        await submenu.wait_for(state="visible")
    await page.locator(f"#profile-{profile_id}-tab").click()
    panel = page.locator(f"#panelProfile{profile_id}")
    await panel.wait_for(state="visible")
    return panel


async def _open_import_dialog(page: Any, base_url: str) -> None:
    await page.goto(base_url + "/profile")
    await _skip_tour(page)
    current = await page.locator('a[data-role="current-profile-selector"]').get_attribute("data-profile-id")
    panel = await _open_profile_panel(page, current)
    await panel.locator('button[data-target="#importProfileModal"]').click()
    await page.locator("#importProfileModal").wait_for(state="visible")


def _profile_on_disk(bot_dir: Path, name: str) -> tuple[str, Path]:
    for path in sorted((bot_dir / "user" / "profiles").glob("*/profile.json")):
        document = json.loads(path.read_text())
        if document["profile"]["name"] == name:
            return document["profile"]["id"], path.parent
    raise AssertionError(f"no installed profile named {name!r}")


async def _journey(venv: Path, work: Path, titles: dict[str, str]) -> browser_support.Journey:
    bot_dir = work / "bot"
    bot_dir.mkdir()
    timings: dict[str, float] = {}
    started = time.monotonic()
    _install(venv, bot_dir, DEFAULT_TENTACLES_ZIP)  # OctoBot's default tentacles first, as every real bot has
    _install(venv, bot_dir, build_package(work / "dist"))
    timings["install"] = time.monotonic() - started
    _check_coexistence(bot_dir)
    _check_standard_activation(bot_dir)
    _install(venv, bot_dir, support.build_collector_zip(work))  # test data collector, for the last step

    bot = WebBot(venv, bot_dir, free_port(), work / "octobot-output.log")
    journey = browser_support.Journey("webui_journey")
    async with running_hub(work / "hub") as hub, browser_support.browser(cdn=True) as browser:
        assert hub.admin_token
        link, token = await _follower_link(hub.base_url, hub.admin_token)
        profile_name = profile_zip.default_profile_name(STRATEGY_NAME, STRATEGY_ID)
        page = await browser.context.new_page()
        journey.pages.append(page)
        try:
            async with journey.step("start OctoBot and open its web interface") as step:
                await bot.start()
                await page.goto(bot.base_url + "/")
                accept = page.get_by_text("Accept and go to OctoBot")  # a new bot asks for its terms first
                await accept.wait_for(state="visible", timeout=15000)
                async with page.expect_navigation():
                    await accept.click()
                step.saw = f"terms accepted, now at {page.url.removeprefix(bot.base_url)}: {await page.title()!r}"

            async with journey.step("import the profile by URL (OctoBot 2.1.1 answers 415)") as step:
                await _open_import_dialog(page, bot.base_url)
                await page.locator("#inputProfileLink").fill(link)
                async with page.expect_navigation() as navigation:
                    await page.locator('[data-role="download-profile-button"]').click()
                response = await navigation.value
                body = await page.locator("body").inner_text()
                # OctoBot's handler reads request.json on a form post; flask 3.1 refuses: not ours to fix
                assert response.status == 415, (response.status, body[:500])
                assert "Unsupported Media Type" in body
                step.saw = f"HTTP {response.status}: {body.strip().splitlines()[0]!r}"

            async with journey.step("import the downloaded profile zip by upload") as step:
                zip_path = await _download(link, work / f"{STRATEGY_ID}.zip")
                await _open_import_dialog(page, bot.base_url)
                async with page.expect_file_chooser() as chooser:
                    await page.locator(".import-profile-button").click()
                async with page.expect_navigation():
                    await (await chooser.value).set_files(str(zip_path))
                body = await page.locator("body").inner_text()
                assert f"{profile_name} profile successfully imported" in body, body[:1500]
                profile_id, profile_dir = _profile_on_disk(bot_dir, profile_name)
                step.saw = f"'{profile_name} profile successfully imported.'; profile {profile_id!r} in {profile_dir.name}/"

            async with journey.step("use the imported profile") as step:
                await page.goto(bot.base_url + "/profile")
                panel = await _open_profile_panel(page, profile_id)
                async with page.expect_navigation():
                    await panel.locator(".activate-profile-button").first.click()
                selected = page.get_by_text(f"Selected the {profile_name} profile")
                await selected.first.wait_for(state="visible", timeout=10000)
                config = json.loads((bot_dir / "user" / "config.json").read_text())
                assert config["profile"] == profile_id
                shown = (await selected.first.inner_text()).replace("×", "").strip()
                step.saw = f"{shown!r}; user/config.json profile = {profile_id!r}"

            async with journey.step("restart: the web interface is still there") as step:
                await bot.restart()
                assert f"Using {profile_name} profile" in bot.log_of_start(2)
                await page.goto(bot.base_url + "/profile")
                await _skip_tour(page)
                current = page.locator("h1, h2, h3").filter(has_text="Current profile").first
                await current.wait_for(state="visible", timeout=10000)
                assert profile_name in await current.inner_text()
                step.saw = f"{(await current.inner_text()).strip()!r} after restart"

            mode_url = f"{bot.base_url}/config_tentacle?name={MODE}"
            async with journey.step("the mode page shows every setting with its title") as step:
                response = await page.goto(mode_url)
                assert response is not None and response.status == 200
                raw_html = await response.text()
                await _skip_tour(page)
                await page.locator('[data-schemapath="root.trading_strategy"] input').wait_for(timeout=15000)
                assert "is missing in configuration file" not in await page.locator("body").inner_text()
                shown = []
                for key in documented_settings():
                    row = page.locator(f'[data-schemapath="root.{key}"]')
                    label = (await row.locator("label").first.inner_text()).strip()
                    assert label == titles[key], (key, label)
                    shown.append(key)
                assert set(shown) == set(titles), (shown, sorted(titles))
                token_input = page.locator('[data-schemapath="root.follower_token"] input')
                assert await token_input.get_attribute("type") == "password"
                assert await token_input.input_value() == token  # the imported token is there, masked
                assert token not in raw_html and token not in await page.content()
                strategy_input = page.locator('[data-schemapath="root.trading_strategy"] input')
                assert await strategy_input.input_value() == STRATEGY_ID
                step.saw = (f"{len(shown)} settings with their titles; follower_token is a password field whose "
                            f"value is in neither the page source nor the DOM; strategy = {STRATEGY_ID!r}")

            async with journey.step("change the strategy id and save with the page's button") as step:
                strategy_input = page.locator('[data-schemapath="root.trading_strategy"] input')
                await strategy_input.fill(NEW_STRATEGY_ID)
                await strategy_input.press("Tab")  # json-editor takes the value on change
                save = page.locator('button[data-role="saveConfig"]').filter(has_text="restart later")
                async with page.expect_response(lambda r: "action=update" in r.url) as saved:
                    await save.click()
                answer = await saved.value
                assert answer.status == 200, await answer.text()
                step.saw = f"save answered HTTP {answer.status}: {(await answer.text())[:120]!r}"

            async with journey.step("after a reload the page and the profile hold the new id") as step:
                await page.reload()
                strategy_input = page.locator('[data-schemapath="root.trading_strategy"] input')
                await strategy_input.wait_for(timeout=15000)
                assert await strategy_input.input_value() == NEW_STRATEGY_ID
                specific = json.loads((profile_dir / "specific_config" / f"{MODE}.json").read_text())
                assert specific["trading_strategy"] == NEW_STRATEGY_ID
                assert specific["follower_token"] == token and specific["required_strategies"] == []
                step.saw = (f"input shows {NEW_STRATEGY_ID!r}; {profile_dir.name}/specific_config/{MODE}.json "
                            f"trading_strategy = {specific['trading_strategy']!r}")

            async with journey.step("restart: the mode starts with the new id, the token in no log") as step:
                await bot.restart()
                third = bot.log_of_start(3)
                assert f"Using {profile_name} profile" in third
                await bot.stop()
                # offline, live trading stops at the exchange connection before any mode exists: the same
                # bot folder, profile and saved config run as a backtest, where OctoBot creates the mode
                candles = [[START + i * HOUR, 20000, 20100, 19900, 20000, 10] for i in range(12)]
                data_file = await asyncio.to_thread(support.write_data_file, venv, bot_dir, exchange="binance",
                                                    time_frame="1h", candles={"BTC/USDT": candles})
                output = await support.run_async([support.octobot_of(venv), "-b", "-bf", data_file, "-nw", "-nt"],
                                                 bot_dir)
                assert f"Using {profile_name} profile" in output
                started_line = next((line for line in output.splitlines()
                                     if f"following strategy '{NEW_STRATEGY_ID}'" in line), None)
                assert started_line is not None, output[-3000:]
                every_log = bot.log_text() + output
                assert token not in every_log
                said = re.sub(r"\x1b\[[0-9;]*m", "", started_line).split("RemoteTradingSignalsModeProducer", 1)[-1]
                step.saw = f"backtest log: {said.strip()!r}; the token in no log"
        finally:
            await bot.stop()
            print("\n" + journey.report())
            print(f"install {timings['install']:.1f} s; OctoBot starts: {bot.starts}")
    return journey


def test_follower_journey_in_octobots_web_interface(venv: Path, titles: dict[str, str],
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    journey = asyncio.run(_journey(venv, tmp_path_factory.mktemp("webui_journey"), titles))
    assert all(step.ok for step in journey.steps) and len(journey.steps) == 9
