"""The hub's web front in a real browser (Debian chromium through Playwright, tests/browser/support.py).

Journeys, each on its own hub on 127.0.0.1:
- follower: the operator invites → sign up with the code → subscribe → "Copy download url" (read back from the
  clipboard) → that URL serves a zip OctoBot 2.1.1's own profile importer accepts; "Download profile" too;
- author: create a strategy → copy its id → publish with the secret the page showed, through the publisher
  client → the signal appears on the page; rotate → the old secret is refused, the new one publishes;
- unsubscribe / disable: the subscription's token stops working and its live connection drops;
- refusals: a `<script>` name renders as text, forms without / with a wrong CSRF token are refused, a private
  strategy and another author's edit form stay closed, brute-force login is throttled.

Each journey saves one screenshot under docs/screenshots/ (docs/running-a-hub.md shows them), so they never go
stale.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser import support
from hub_helpers import admin_create_strategy, auth, publish, running_hub, subscribe, ws_connect
from octobot_real import support as real_support
from octobot_signals.core import profile_zip
from octobot_signals.feed.outbox import Outbox
from octobot_signals.feed.publisher_client import PublisherClient
from octobot_signals.hub.auth import hash_secret
from octobot_signals.hub.server import HubHandle
from playwright.async_api import expect
from signal_factory import order_content, signal

DOCS = support.REPO / "docs" / "screenshots"
PASSWORD = "correct horse battery"
TIMEOUT = aiohttp.ClientTimeout(total=15)
STEP_MS = 10_000


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    """A fresh machine has no chromium yet: .ci/webui_cdn.sh installs Debian's (once, then cached)."""
    if not support.CHROMIUM.is_file():
        support.cdn_modules()


async def new_context(b: support.Browser, hub: HubHandle) -> Any:
    """Another browser profile (another person) in the same chromium, with the same offline routing."""
    context = await b.context.browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    await context.route("**/*", lambda route: _local_only(route))
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub.base_url)
    return context


async def _local_only(route: Any) -> None:
    host = re.sub(r"^[a-z]+://([^/:]+|\[[^\]]+\]).*$", r"\1", route.request.url)
    if host in support.LOCAL_HOSTS or route.request.url.startswith(("data:", "about:", "blob:")):
        await route.continue_()
    else:
        await route.abort("internetdisconnected")


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHandle]:
    async with running_hub(tmp_path / "hub") as handle:
        yield handle


async def invitation(hub: HubHandle) -> str:
    """An invitation code as the operator's page makes them (the follower journey clicks that page itself)."""
    code = f"inv_{time.monotonic_ns()}"
    now = time.time()
    await hub.state.store.run(lambda db: db.create_invitation(f"i{time.monotonic_ns()}", hash_secret(code), "",
                                                              now, now + 3600))
    return code


async def sign_up(page: Any, hub: HubHandle, username: str, code: str | None = None) -> None:
    await page.goto(f"{hub.base_url}/signup")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.fill("input[name=password2]", PASSWORD)
    await page.fill("input[name=invitation]", code or await invitation(hub))
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{hub.base_url}/me")


def bundle(strategy_id: str, symbol: str = "BTC/USDT", side: str = "buy", kind: str = "buy_limit",
           share: str = "5%") -> dict[str, Any]:
    content = order_content("create", symbol=symbol, side=side, order_type=kind, target_amount=share,
                            strategy=strategy_id)
    return {"identifier": strategy_id, "version": "1.0.0", "signals": [signal(content)]}


async def publish_bundles(hub: HubHandle, strategy: dict[str, Any], bundles: list[dict[str, Any]]) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
        for item in bundles:
            ack = await publish(ws, strategy, bundle=item)
            assert ack["type"] == "ack", ack
        await ws.close()


def token_in_zip(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        specific = json.loads(archive.read(f"specific_config/{profile_zip.MODE_CLASS}.json"))
    return specific["follower_token"]


async def wait_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await ws.receive(timeout=deadline - time.monotonic())
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return
    raise AssertionError("the connection stayed open")


async def token_status(hub: HubHandle, token: str) -> int:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, \
            session.get(f"{hub.base_url}/api/strategies", headers=auth(token)) as resp:
        return resp.status


async def shot(page: Any, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


async def octobot_import(url: str, work: Path) -> dict[str, Any]:
    """OctoBot 2.1.1's own importer (its Python 3.12 venv) downloads the URL and installs the profile."""
    venv = real_support.octobot_venv()
    files = profile_zip.build_profile_files(
        {"id": "bad", "name": "bad", "pairs": ["BTC/USDT"], "exchange_type": "spot", "exchange": "binance"},
        settings={}, profile_name="bad", profile_id="bad", description="")
    document = json.loads(files["profile.json"])
    document["config"]["exchanges"]["binance"]["api-key"] = "not allowed in a profile"
    files["profile.json"] = json.dumps(document).encode()
    invalid = work / "invalid_profile.zip"
    invalid.write_bytes(profile_zip.zip_files(files))
    bot = work / "bot"
    bot.mkdir()
    output = await real_support.run_async(
        [real_support.python_of(venv), real_support.HERE / "import_profile.py", url, invalid], bot)
    return real_support.last_json_line(output)


# ------------------------------------------------------------------------------------------ follower


async def test_follower_journey(hub: HubHandle, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "grid-btc", name="BTC grid",
                                           pairs=["BTC/USDT", "ETH/USDT"])
    await publish_bundles(hub, strategy, [bundle("grid-btc"), bundle("grid-btc", "ETH/USDT", "sell", "sell_limit", "2%")])
    async with support.browser() as b:
        operator = await new_context(b, hub)
        follower = await new_context(b, hub)
        op_page, page = await operator.new_page(), await follower.new_page()
        op_page.set_default_timeout(STEP_MS)
        page.set_default_timeout(STEP_MS)
        journey = support.Journey("hub_follower", pages=[op_page, page])
        try:
            async with journey.step("the operator logs in with the admin token and creates an invitation") as step:
                await op_page.goto(f"{hub.base_url}/operator/login")
                await op_page.fill("input[name=admin_token]", hub.admin_token or "")
                await op_page.click("button[type=submit]")
                await op_page.wait_for_url(f"{hub.base_url}/operator")
                await op_page.fill("input[name=note]", "for Fiona")
                await op_page.click("[data-test=create-invitation]")
                code = (await op_page.text_content("[data-test=invitation-code]") or "").strip()
                assert code.startswith("inv_")
                step.saw = f"invitation code shown once ({len(code)} chars)"
            async with journey.step("the follower signs up with the invitation") as step:
                await sign_up(page, hub, "fiona", code)
                step.saw = await page.text_content("h1") or ""
            async with journey.step("the strategies page lists the strategy; its page shows the signals") as step:
                await page.goto(hub.base_url + "/")
                await page.click("[data-test=strategy-card][data-id=grid-btc]")
                await page.wait_for_url(f"{hub.base_url}/strategies/grid-btc")
                assert await page.text_content("[data-test=signal-count]") == "2"
                rows = await page.locator("[data-test=signals] tbody tr").all_inner_texts()
                assert any("ETH/USDT" in r and "sell_limit" in r and "2%" in r for r in rows), rows
                assert await page.locator("svg.chart rect.bar").count() == 30
                step.saw = f"{len(rows)} signal rows, chart of 30 days"
            async with journey.step("Subscribe") as step:
                await page.click("[data-test=subscribe]")
                await page.wait_for_selector("[data-test=copy-download-url]")
                assert await page.text_content("[data-test=followers]") == "1"
                step.saw = "subscribed: Copy download url, Download profile, Unsubscribe"
            async with journey.step("Copy download url puts the personal link in the clipboard") as step:
                await page.click("[data-test=copy-download-url]")
                # (locator waits: the hub's CSP forbids the eval a wait_for_function string would need)
                await expect(page.locator("[data-test=copied-url]")).to_have_value(re.compile(r"^http"))
                url = await page.evaluate("navigator.clipboard.readText()")
                assert url == await page.input_value("[data-test=copied-url]")
                assert re.fullmatch(re.escape(hub.base_url) + r"/p/[A-Za-z0-9_-]{32,}/grid-btc\.zip", url), url
                await shot(page, "hub-follower")
                step.saw = "clipboard holds " + url.replace(url.split("/")[4], "<capability>")
            async with journey.step("Download profile gives the zip itself") as step:
                async with page.expect_download() as info:
                    await page.click("[data-test=download-profile]")
                download = await info.value
                data = Path(await download.path()).read_bytes()
                assert download.suggested_filename == "grid-btc.zip"
                assert token_in_zip(data).startswith("ft_")
                step.saw = f"{download.suggested_filename}, {len(data)} bytes"
            async with journey.step("OctoBot 2.1.1's importer accepts the copied url") as step:
                if real_support.skip_requested():
                    step.saw = "skipped (OCTOBOT_SIGNALS_SKIP_REAL=1)"
                else:
                    result = await octobot_import(url, tmp_path)
                    assert result["imported"] and result["origin_url_matches"], result
                    assert result["specific"]["trading_strategy"] == "grid-btc"
                    assert result["specific"]["hub_url"] == hub.base_url
                    assert result["specific"]["follower_token"] == token_in_zip(data)
                    assert result["activation"]["Trading"][profile_zip.MODE_CLASS] is True
                    assert result["invalid_refused"], result
                    step.saw = f"imported profile {result['name']!r}"
        finally:
            print(journey.report())
            await operator.close()
            await follower.close()


# ------------------------------------------------------------------------------------------ author


async def test_author_journey(hub: HubHandle, tmp_path: Path) -> None:
    async with support.browser() as b:
        context = await new_context(b, hub)
        page = await context.new_page()
        page.set_default_timeout(STEP_MS)
        journey = support.Journey("hub_author", pages=[page])
        publishers: list[PublisherClient] = []
        try:
            async with journey.step("sign up, then create a strategy with the form") as step:
                await sign_up(page, hub, "ada")
                await page.click("a[href='/strategies/new']")
                await page.fill("input[name=id]", "ada-dca")
                await page.fill("input[name=name]", "Ada's DCA")
                await page.fill("textarea[name=description]", "Buys BTC every day, sells at +3%.")
                await page.fill("input[name=exchange]", "binance")
                await page.fill("input[name=pairs]", "BTC/USDT, ETH/USDT")
                await page.click("[data-test=save]")
                await page.wait_for_selector("[data-test=publish-secret]")
                secret = (await page.text_content("[data-test=publish-secret]") or "").strip()
                assert secret.startswith("ps_")
                env = await page.text_content("[data-test=publish-env]") or ""
                assert f"OCTOBOT_SIGNALS_PUBLISH_SECRET={secret}" in env
                assert f"OCTOBOT_SIGNALS_HUB_URL={hub.base_url}" in env
                assert "OCTOBOT_SIGNALS_PUBLISH_STRATEGY=ada-dca" in env
                step.saw = "strategy page with the secret (once) and the publishing bot's environment"
            async with journey.step("Copy id") as step:
                await page.click("[data-test=copy-id]")
                await expect(page.locator("[data-test=copy-id]")).to_have_text("Copied")
                assert await page.evaluate("navigator.clipboard.readText()") == "ada-dca"
                step.saw = "clipboard holds ada-dca"
            async with journey.step("publish with the shown secret through the publisher client") as step:
                publisher = PublisherClient(hub.base_url, secret, "ada-dca", Outbox(tmp_path / "outbox"))
                publishers.append(publisher)
                await publisher.start()
                await publisher.publish(bundle("ada-dca", share="7.5%"))
                assert await publisher.flush(10)
                await page.goto(f"{hub.base_url}/strategies/ada-dca")
                assert await page.text_content("[data-test=signal-count]") == "1"
                row = await page.locator("[data-test=signals] tbody tr").first.inner_text()
                assert "BTC/USDT" in row and "buy_limit" in row and "7.5%" in row, row
                await shot(page, "hub-author")
                step.saw = f"signal on the page: {row!r}"
            async with journey.step("edit the description and pairs") as step:
                await page.click("[data-test=edit]")
                await page.fill("textarea[name=description]", "Now on ETH too.")
                await page.fill("input[name=pairs]", "ETH/USDT")
                await page.click("[data-test=save]")
                await page.wait_for_url(f"{hub.base_url}/strategies/ada-dca")
                assert await page.text_content("[data-test=description]") == "Now on ETH too."
                assert await page.text_content("[data-test=pairs]") == "ETH/USDT"
                step.saw = "description and pairs updated"
            async with journey.step("rotate: the old secret is refused, the new one publishes") as step:
                await page.click("[data-test=rotate]")
                await page.wait_for_selector("[data-test=publish-secret]")
                new_secret = (await page.text_content("[data-test=publish-secret]") or "").strip()
                assert new_secret.startswith("ps_") and new_secret != secret
                async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                        await session.ws_connect(hub.ws_url, headers=auth(secret))
                    assert refused.value.status == 401
                await publisher.stop()
                fresh = PublisherClient(hub.base_url, new_secret, "ada-dca", Outbox(tmp_path / "outbox2"))
                publishers.append(fresh)
                await fresh.start()
                await fresh.publish(bundle("ada-dca", "ETH/USDT", share="3%"))
                assert await fresh.flush(10)
                await page.goto(f"{hub.base_url}/strategies/ada-dca")
                assert await page.text_content("[data-test=signal-count]") == "2"
                step.saw = "old secret: 401; new secret: signal 2 on the page"
            async with journey.step("archive") as step:
                await page.fill("input[name=confirm]", "ada-dca")
                await page.click("[data-test=archive]")
                await page.wait_for_selector("[data-test=archived]")
                await page.goto(hub.base_url + "/")
                assert await page.locator("[data-test=strategy-card][data-id=ada-dca]").count() == 0
                step.saw = "archived: gone from the list, page still readable by its author"
        finally:
            for client in publishers:
                await client.stop()
            print(journey.report())
            await context.close()


# ------------------------------------------------------------------------------------------ unsubscribe / disable


async def _subscribe_and_connect(page: Any, hub: HubHandle, session: aiohttp.ClientSession
                                 ) -> tuple[str, aiohttp.ClientWebSocketResponse]:
    await page.goto(f"{hub.base_url}/strategies/grid-eth")
    await page.click("[data-test=subscribe]")
    async with page.expect_download() as info:
        await page.click("[data-test=download-profile]")
    token = token_in_zip(Path(await (await info.value).path()).read_bytes())
    ws = await ws_connect(session, hub.base_url, token)
    await subscribe(ws, ["grid-eth"])
    return token, ws


async def test_unsubscribe_and_disable_journey(hub: HubHandle) -> None:
    await admin_create_strategy(hub.base_url, hub.admin_token, "grid-eth", name="ETH grid", pairs=["ETH/USDT"])
    async with support.browser() as b, aiohttp.ClientSession(timeout=TIMEOUT) as session:
        contexts = [await new_context(b, hub) for _ in range(3)]
        alice, bob, op_page = [await c.new_page() for c in contexts]
        for page in (alice, bob, op_page):
            page.set_default_timeout(STEP_MS)
        journey = support.Journey("hub_unsubscribe_disable", pages=[alice, bob, op_page])
        try:
            async with journey.step("a follower subscribes; the profile's token follows the live feed") as step:
                await sign_up(alice, hub, "alice")
                token_a, ws_a = await _subscribe_and_connect(alice, hub, session)
                assert await token_status(hub, token_a) == 200
                step.saw = "token from the downloaded profile is connected to /cable"
            async with journey.step("Unsubscribe: the token stops working, the live connection drops") as step:
                await alice.click("[data-test=unsubscribe]")
                await alice.wait_for_selector("[data-test=subscribe]")
                await wait_closed(ws_a)
                assert await token_status(hub, token_a) == 401
                step.saw = "connection closed, token 401, Subscribe offered again"
            async with journey.step("the operator disables another follower") as step:
                await sign_up(bob, hub, "bob")
                token_b, ws_b = await _subscribe_and_connect(bob, hub, session)
                await op_page.goto(f"{hub.base_url}/operator/login")
                await op_page.fill("input[name=admin_token]", hub.admin_token or "")
                await op_page.click("button[type=submit]")
                await op_page.click("tr[data-user=bob] [data-test=disable]")
                await op_page.wait_for_selector("tr[data-user=bob] .badge.archived")
                await wait_closed(ws_b)
                assert await token_status(hub, token_b) == 401
                await shot(op_page, "hub-operator")
                step.saw = "bob disabled: connection closed, token 401"
            async with journey.step("the disabled follower's session is gone and login is refused") as step:
                await bob.goto(f"{hub.base_url}/me")
                assert "Log in to see your subscriptions" in (await bob.text_content("[data-test=message]") or "")
                await bob.goto(f"{hub.base_url}/login")
                await bob.fill("input[name=username]", "bob")
                await bob.fill("input[name=password]", PASSWORD)
                await bob.click("button[type=submit]")
                assert "disabled" in (await bob.text_content("[role=alert]") or "")
                step.saw = "logged out; login says the account was disabled"
        finally:
            print(journey.report())
            for context in contexts:
                await context.close()


# ------------------------------------------------------------------------------------------ refusals


async def test_hostile_cases(hub: HubHandle) -> None:
    hostile = "<script>alert(1)</script>"
    async with support.browser() as b:
        author_ctx, other_ctx, attacker_ctx = [await new_context(b, hub) for _ in range(3)]
        author, other, attacker = [await c.new_page() for c in (author_ctx, other_ctx, attacker_ctx)]
        dialogs: list[str] = []
        for page in (author, other, attacker):
            page.set_default_timeout(STEP_MS)
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        journey = support.Journey("hub_refusals", pages=[author, other, attacker])
        try:
            async with journey.step("a strategy named <script>alert(1)</script> renders as text") as step:
                await sign_up(author, hub, "mallory")
                await author.goto(f"{hub.base_url}/strategies/new")
                await author.fill("input[name=id]", "xss")
                await author.fill("input[name=name]", hostile)
                await author.fill("textarea[name=description]", '<img src=x onerror="alert(2)">')
                await author.fill("input[name=exchange]", "binance")
                await author.fill("input[name=pairs]", "BTC/USDT")
                await author.click("[data-test=save]")
                await author.wait_for_selector("[data-test=publish-secret]")
                for path in ("/strategies/xss", "/"):
                    await author.goto(hub.base_url + path)
                    selector = "[data-test=strategy-name]" if path != "/" else "[data-id=xss] h2"
                    assert await author.text_content(selector) == hostile
                    assert "&lt;script&gt;" in await author.inner_html(selector)
                assert await author.locator("img[src=x]").count() == 0
                await asyncio.sleep(0.3)
                assert dialogs == []
                step.saw = "name shown as text on the strategy page and the list; no dialog"
            async with journey.step("forms without or with a wrong CSRF token are refused") as step:
                missing = await author.evaluate("""async () => {
                    const body = new FormData(); body.append('id', 'nocsrf'); body.append('name', 'x');
                    const r = await fetch('/strategies/new', {method: 'POST', body});
                    return [r.status, await r.text()]; }""")
                assert missing[0] == 403 and "without its security token (CSRF)" in missing[1]
                wrong = await author.evaluate("""async () => {
                    const body = new FormData(); body.append('csrf', 'forged-token');
                    const r = await fetch('/strategies/xss/rotate', {method: 'POST', body});
                    return [r.status, await r.text()]; }""")
                assert wrong[0] == 403 and "does not match your session" in wrong[1]
                assert "nocsrf" not in hub.state.strategies
                step.saw = "403 with the reason, nothing created or rotated"
            async with journey.step("a follower cannot open a private strategy or another author's edit form") as step:
                await author.goto(f"{hub.base_url}/strategies/new")
                await author.fill("input[name=id]", "secret-sauce")
                await author.fill("input[name=name]", "Secret sauce")
                await author.select_option("select[name=visibility]", "private")
                await author.fill("input[name=exchange]", "binance")
                await author.fill("input[name=pairs]", "BTC/USDT")
                await author.click("[data-test=save]")
                await author.wait_for_selector("[data-test=publish-secret]")
                await sign_up(other, hub, "oscar")
                response = await other.goto(f"{hub.base_url}/strategies/secret-sauce")
                assert response is not None and response.status == 404
                assert "only once its author invited you" in (await other.text_content("[data-test=message]") or "")
                await other.goto(hub.base_url + "/")
                assert await other.locator("[data-id=secret-sauce]").count() == 0
                response = await other.goto(f"{hub.base_url}/strategies/xss/edit")
                assert response is not None and response.status == 403
                assert "Only this strategy's author" in (await other.text_content("[data-test=message]") or "")
                step.saw = "private page: 404; someone else's edit form: 403"
            async with journey.step("once invited, the follower sees the private strategy and subscribes") as step:
                await author.goto(f"{hub.base_url}/strategies/secret-sauce")
                await author.fill("form[action$=invite] input[name=username]", "oscar")
                await author.click("[data-test=invite]")
                await author.wait_for_selector("text=oscar may now subscribe.")
                await other.goto(f"{hub.base_url}/strategies/secret-sauce")
                await other.click("[data-test=subscribe]")
                await other.wait_for_selector("[data-test=copy-download-url]")
                step.saw = "invited, subscribed"
            async with journey.step("brute-force login is throttled") as step:
                await attacker.goto(f"{hub.base_url}/login")
                for _ in range(5):
                    await attacker.fill("input[name=username]", "mallory")
                    await attacker.fill("input[name=password]", "password123456")
                    await attacker.click("button[type=submit]")
                    assert await attacker.text_content("[role=alert]") == "Wrong username or password."
                await attacker.fill("input[name=username]", "mallory")
                await attacker.fill("input[name=password]", PASSWORD)  # even the right password, for now
                await attacker.click("button[type=submit]")
                alert = await attacker.text_content("[role=alert]") or ""
                assert alert.startswith("Too many failed logins for this account: try again in"), alert
                await shot(attacker, "hub-refusals")
                step.saw = alert
        finally:
            print(journey.report())
            for context in (author_ctx, other_ctx, attacker_ctx):
                await context.close()


# ------------------------------------------------------------------------------------------ demo


async def test_demo_prints_the_page_that_shows_its_signals(tmp_path: Path) -> None:
    """`octobot-signals demo` prints its hub's strategy page; the page shows the signals while the demo runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "octobot_signals.cli.main", "demo", "--seconds", "12",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)})
    assert process.stdout is not None
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, "the demo ended without printing its strategy page"
            found = re.search(r"strategy page: (http://127\.0\.0\.1:\d+/strategies/demo-grid)", line)
            url = found.group(1) if found else None
        drain = asyncio.ensure_future(process.stdout.read())  # keep the pipe flowing while the browser looks
        async with support.browser() as b:
            page = await b.context.new_page()
            journey = support.Journey("hub_demo", pages=[page])
            try:
                async with journey.step("the demo's strategy page shows signals while it runs") as step:
                    count = 0
                    deadline = time.monotonic() + 30
                    while count == 0 and time.monotonic() < deadline and process.returncode is None:
                        await page.goto(url)
                        count = int(await page.text_content("[data-test=signal-count]") or 0)
                        if count == 0:
                            await asyncio.sleep(0.5)
                    assert count > 0 and await page.locator("[data-test=signals] tbody tr").count() > 0
                    assert process.returncode is None  # still running: the page is live, not a report
                    step.saw = f"{count} signals on {url}"
            finally:
                print(journey.report())
        assert await asyncio.wait_for(process.wait(), 90) == 0
        await drain
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
