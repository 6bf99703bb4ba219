"""The publisher's hub account card in OctoBot's own web interface, in a real browser (issue 19).

Same real parts as test_webui_journey.py (and its helpers): OctoBot 2.1.1 in its own Python 3.12 venv, a fresh
bot folder with OctoBot's default tentacles then our package installed by OctoBot's tentacles manager, our hub on
127.0.0.1 with a strategy, Debian's chromium through Playwright with the pages' CDN libraries served locally.

The journey: Accounts -> Interfaces -> "Add a new interface" -> octobot-signals -> Add; fill the hub URL, the
strategy id, the publish secret, a signing key; switch publishing on; Save; reload; restart the bot. It asserts
that the page source never holds a secret (before and after the restart), that user/config.json holds the card
with both secrets encrypted by OctoBot's own fields_utils (the signing key field only masked), that after the
restart the bot says it publishes to the hub and strategy of the card, and that no log holds a secret.
Saves docs/screenshots/publish-card-add.png and publish-card-saved.png. Skipped only when
OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import octobot_commons.configuration.fields_utils as fields_utils
import pytest
from browser import support as browser_support
from hub_helpers import admin_create_strategy, free_port, running_hub
from octobot_real import support
from octobot_real.webui import DEFAULT_TENTACLES_ZIP, WebBot
from octobot_signals.cli.package_cmd import build_package
from octobot_signals.core import protocol
from octobot_signals.feed import publish_card
from test_webui_journey import _install, _skip_tour

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")

STRATEGY_ID = "card-alpha"
DOCS = support.REPO / "docs" / "screenshots"
CARD = publish_card.SERVICE_TYPE
FIELD = "services_" + CARD + "_{}"


def _signing_key() -> tuple[str, str]:
    """(private, public) base64 Ed25519 keys."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


def _card_on_disk(bot_dir: Path) -> dict[str, Any]:
    config = json.loads((bot_dir / "user" / "config.json").read_text(encoding="utf-8"))
    return config["services"][CARD]


async def _open_interfaces(page: Any, base_url: str) -> str:
    """Accounts page, Interfaces tab; returns the HTML the bot sent (before any script ran)."""
    response = await page.goto(base_url + "/accounts")
    assert response is not None and response.status == 200
    raw_html = await response.text()
    await _skip_tour(page)
    await page.locator("#panelServices-tab").click()
    await page.locator("#panelServices").wait_for(state="visible")
    return raw_html


def _card_locator(page: Any) -> Any:
    """The card in the Interfaces deck (not the hidden template OctoBot keeps for "Add")."""
    return page.locator(f'#panelServices .config-container div.card-body[name="{CARD}"]').locator("..")


async def _edit_text(page: Any, card: Any, key: str, value: str) -> None:
    """What a user does with OctoBot's inline editors: click the value, type, press Enter."""
    await card.locator(f'a[config-key="{FIELD.format(key)}"]').click()
    editor = card.locator(".editable-input input").first
    await editor.wait_for(state="visible", timeout=5000)
    await editor.fill(value)
    await editor.press("Enter")
    await editor.wait_for(state="detached", timeout=5000)


async def _screenshot(page: Any, name: str) -> None:
    """The Interfaces panel (picker and cards), once jQuery's fade-ins are over: docs/screenshots/<name>.png."""
    await page.wait_for_function("() => window.jQuery && jQuery(':animated').length === 0")
    await page.evaluate("() => window.toastr && toastr.remove()")  # e.g. "OctoBot is starting": not the subject
    DOCS.mkdir(parents=True, exist_ok=True)
    await page.locator("#panelServices > .card").screenshot(path=str(DOCS / f"{name}.png"))


async def _journey(venv: Path, work: Path) -> browser_support.Journey:
    bot_dir = work / "bot"
    bot_dir.mkdir()
    started = time.monotonic()
    _install(venv, bot_dir, DEFAULT_TENTACLES_ZIP)  # OctoBot's default tentacles first, as every real bot has
    _install(venv, bot_dir, build_package(work / "dist"))
    installed = time.monotonic() - started
    assert (bot_dir / "tentacles" / "Services" / "Services_bases" / "octobot_signals_service").is_dir()

    signing_key, public_key = _signing_key()
    bot = WebBot(venv, bot_dir, free_port(), work / "octobot-output.log")
    journey = browser_support.Journey("webui_publish_card")
    async with running_hub(work / "hub") as hub, browser_support.browser(cdn=True, viewport=(1280, 1100)) as browser:
        assert hub.admin_token
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, STRATEGY_ID, name="Card Alpha",
                                               public_key=public_key)
        secret = strategy["publish_secret"]
        secrets = (secret, signing_key)
        page = await browser.context.new_page()
        journey.pages.append(page)
        try:
            async with journey.step("start OctoBot, accept its terms") as step:
                await bot.start()
                await page.goto(bot.base_url + "/")
                accept = page.get_by_text("Accept and go to OctoBot")
                await accept.wait_for(state="visible", timeout=15000)
                async with page.expect_navigation():
                    await accept.click()
                step.saw = f"at {page.url.removeprefix(bot.base_url)}"

            async with journey.step("Accounts > Interfaces > Add a new interface > octobot-signals") as step:
                await _open_interfaces(page, bot.base_url)
                picker = page.locator("#panelServices .bootstrap-select").first
                await picker.locator("button").click()
                await picker.locator(".dropdown-menu").get_by_text(CARD, exact=True).click()
                await page.locator("#AddService").click()
                card = _card_locator(page)
                await card.wait_for(state="visible", timeout=5000)
                labels = [re.sub(r"\s+", " ", text).strip(" :") for text in
                          await card.locator(".text-capitalize, .custom-control-label").all_inner_texts()]
                assert [label.lower() for label in labels if label] == [CARD, *publish_card.CARD_KEYS], labels
                tooltips = await card.locator("[data-toggle=tooltip]").evaluate_all(
                    "els => els.map(e => e.getAttribute('title') || e.getAttribute('data-original-title'))")
                assert len([t for t in tooltips if t]) == len(publish_card.CARD_KEYS), tooltips
                assert "author page" in " ".join(tooltips)
                await _screenshot(page, "publish-card-add")
                step.saw = f"card {CARD!r} with fields {labels[1:]} and {len(tooltips)} tooltips"

            async with journey.step("fill it in, switch publishing on, save") as step:
                card = _card_locator(page)
                await _edit_text(page, card, publish_card.KEY_HUB_URL, hub.base_url)
                await _edit_text(page, card, publish_card.KEY_STRATEGY, STRATEGY_ID)
                await _edit_text(page, card, publish_card.KEY_SECRET, secret)
                await _edit_text(page, card, publish_card.KEY_SIGNING_KEY, signing_key)
                await card.locator(f'label[for="{FIELD.format(publish_card.KEY_PUBLISH)}"]').click()
                async with page.expect_response(lambda r: r.url.endswith("/config") and
                                                r.request.method == "POST") as saved:
                    await page.locator("#save-config").click()
                answer = await saved.value
                assert answer.status == 200, await answer.text()
                stored = _card_on_disk(bot_dir)
                assert stored[publish_card.KEY_HUB_URL] == hub.base_url
                assert stored[publish_card.KEY_STRATEGY] == STRATEGY_ID
                assert stored[publish_card.KEY_PUBLISH] is True
                # both secrets encrypted the way OctoBot encrypts exchange API keys
                assert stored[publish_card.KEY_SECRET] != secret
                assert fields_utils.decrypt(stored[publish_card.KEY_SECRET]) == secret
                assert stored[publish_card.KEY_SIGNING_KEY] == publish_card.MASK
                assert fields_utils.decrypt(stored[publish_card.KEY_SIGNING_KEY_STORED]) == signing_key
                on_disk = (bot_dir / "user" / "config.json").read_text(encoding="utf-8")
                assert not any(value in on_disk for value in secrets)
                step.saw = (f"save answered HTTP {answer.status}; user/config.json services.{CARD}: "
                            f"{sorted(stored)}, password and signing key encrypted")

            async with journey.step("reload: the card shows its values, never a secret") as step:
                raw_html = await _open_interfaces(page, bot.base_url)
                card = _card_locator(page)
                await card.wait_for(state="visible", timeout=5000)
                for html in (raw_html, await page.content()):
                    assert not any(value in html for value in secrets)
                    assert stored[publish_card.KEY_SECRET] not in html  # nor their encrypted forms
                    assert stored[publish_card.KEY_SIGNING_KEY_STORED] not in html
                shown = await card.locator(f'a[config-key="{FIELD.format(publish_card.KEY_SECRET)}"]').inner_text()
                assert shown.strip() == publish_card.MASK
                assert (await card.locator(f'a[config-key="{FIELD.format(publish_card.KEY_HUB_URL)}"]')
                        .inner_text()).strip() == hub.base_url
                assert await card.locator(f'#{FIELD.format(publish_card.KEY_PUBLISH)}').is_checked()
                step.saw = f"password shows {shown.strip()!r}; no secret in the page source or the DOM"

            async with journey.step("restart: the bot publishes with the card's settings") as step:
                await bot.restart()
                log = bot.log_of_start(2)
                expected = f"publishing to {hub.base_url} strategy {STRATEGY_ID} (signed;"
                line = next((line for line in log.splitlines() if expected in line), None)
                assert line is not None, log[-4000:]
                raw_html = await _open_interfaces(page, bot.base_url)
                assert not any(value in raw_html for value in secrets)
                assert not any(value in raw_html for value in (stored[publish_card.KEY_SECRET],
                                                               stored[publish_card.KEY_SIGNING_KEY_STORED]))
                status = re.sub(r"\s+", " ", await _card_locator(page).inner_text())
                assert f"Publishing now: to strategy {STRATEGY_ID} on {hub.base_url}" in status, status
                assert _card_on_disk(bot_dir) == stored  # OctoBot's own saves at start kept it as it was
                await _screenshot(page, "publish-card-saved")
                said = re.sub(r"\x1b\[[0-9;]*m", "", line).split("octobot-signals", 1)[-1].strip()
                step.saw = f"bot log: {said!r}; the card says 'Publishing now: to strategy {STRATEGY_ID}'"

            async with journey.step("no log holds a secret") as step:
                await bot.stop()
                every_log = bot.log_text()
                assert not any(value in every_log for value in secrets)
                step.saw = f"{len(every_log)} characters of logs, no secret"
        finally:
            await bot.stop()
            print("\n" + journey.report())
            print(f"install {installed:.1f} s; OctoBot starts: {bot.starts}")
    return journey


def test_publish_card_in_octobots_web_interface(tmp_path_factory: pytest.TempPathFactory) -> None:
    venv = support.octobot_venv()
    journey = asyncio.run(_journey(venv, tmp_path_factory.mktemp("webui_publish_card")))
    assert all(step.ok for step in journey.steps) and len(journey.steps) == 6
    assert protocol.validate_strategy_id(STRATEGY_ID)
