"""The hub's web front over real HTTP (no browser): paths, HEAD, cookies, CSRF, throttling, refusals,
the manage API (update / archive / rotate), expired links (410) and the additive store migration.

The journeys in a real browser are in test_hub_web_browser.py.
"""
from __future__ import annotations

import io
import json
import logging
import re
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_helpers import (
    admin_create_follower,
    admin_create_strategy,
    auth,
    publish,
    running_hub,
    subscribe,
    ws_connect,
)
from octobot_signals.hub.auth import hash_secret
from octobot_signals.hub.server import HubHandle, start_hub
from octobot_signals.hub.store import SqliteStore
from octobot_signals.hub.web.context import WEB_KEY

PAGES = ["/", "/strategies/pub", "/login", "/logout", "/signup", "/me", "/strategies/new"]
TIMEOUT = aiohttp.ClientTimeout(total=15)
PASSWORD = "correct horse battery"


@dataclass
class Browserless:
    """A cookie-keeping HTTP client that fills forms the way a browser would (CSRF from the page)."""

    base: str
    session: aiohttp.ClientSession

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        async with self.session.get(self.base + path, headers={"Accept": "text/html"}, **kwargs) as resp:
            return resp.status, await resp.text()

    async def csrf(self, path: str = "/login") -> str:
        status, text = await self.get(path)
        match = re.search(r'name="csrf" value="([^"]+)"', text)
        assert match, (path, status, text[:500])
        return match.group(1)

    async def post(self, path: str, data: dict[str, str], csrf_from: str | None = "/login",
                   **kwargs: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        if csrf_from is not None and "csrf" not in data:
            data = {**data, "csrf": await self.csrf(csrf_from)}
        async with self.session.post(self.base + path, data=data, allow_redirects=False, **kwargs) as resp:
            return resp.status, await resp.text(), resp


def message_of(text: str) -> str:
    found = re.search(r'data-test="message">([^<]*)<', text) or re.search(r'class="error" role="alert">([^<]*)<', text)
    return found.group(1) if found else ""


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHandle]:
    async with running_hub(tmp_path / "hub") as handle:
        await admin_create_strategy(handle.base_url, handle.admin_token, "pub", name="Public one")
        yield handle


async def new_client(hub: HubHandle) -> Browserless:
    # unsafe=True: aiohttp's jar otherwise drops cookies set by an IP address host (127.0.0.1)
    session = aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True))
    return Browserless(hub.base_url, session)


@pytest.fixture
async def client(hub: HubHandle) -> AsyncIterator[Browserless]:
    web = await new_client(hub)
    try:
        yield web
    finally:
        await web.session.close()


async def invitation(hub: HubHandle) -> str:
    code = f"inv_test_{time.monotonic_ns()}"
    now = time.time()
    await hub.state.store.run(lambda db: db.create_invitation(f"i{time.monotonic_ns()}", hash_secret(code), "",
                                                              now, now + 3600))
    return code


async def sign_up(hub: HubHandle, web: Browserless, username: str) -> None:
    status, text, resp = await web.post("/signup", {"username": username, "password": PASSWORD, "password2": PASSWORD,
                                                    "invitation": await invitation(hub)}, csrf_from="/signup")
    assert (status, resp.headers.get("Location")) == (303, "/me"), message_of(text)


async def test_every_page_answers_get_and_head(hub: HubHandle, client: Browserless) -> None:
    for path in PAGES:
        status, text = await client.get(path)
        assert status in (200, 401), (path, status)
        assert "<!doctype html>" in text and "<h1" in text
        async with client.session.head(hub.base_url + path) as resp:
            assert resp.status == status, path
            assert (await resp.read()) == b""
    # the JSON API and its errors stay as they were
    async with client.session.get(hub.base_url + "/nope") as resp:
        assert resp.status == 404 and (await resp.json())["error"]
    status, text = await client.get("/nope")
    assert status == 404 and "There is no page at this address." in text


async def test_cookie_flags_and_session_rotation(hub: HubHandle, client: Browserless) -> None:
    for _ in range(3):
        async with client.session.get(hub.base_url + "/login") as resp:
            header = resp.headers.get("Set-Cookie", "")
        if header:
            assert header.startswith("hub_csrf=")
            assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header
    # an anonymous visitor's form token lives in its cookie only: page views write nothing to the store
    rows = await hub.state.store.run(lambda db: db._db.execute("SELECT COUNT(*) FROM web_sessions").fetchone())
    assert rows == (0,)
    assert "hub_session" not in {c.key for c in client.session.cookie_jar}
    await sign_up(hub, client, "alice")
    after = {c.key: c.value for c in client.session.cookie_jar}["hub_session"]
    await client.post("/logout", {}, csrf_from="/me")
    status, text, _ = await client.post("/login", {"username": "alice", "password": PASSWORD})
    assert status == 303
    assert {c.key: c.value for c in client.session.cookie_jar}["hub_session"] != after  # a new id at login
    # the pre-login session id no longer opens anything
    stale = aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        stale.cookie_jar.update_cookies({"hub_session": after}, aiohttp.client.URL(hub.base_url))
        async with stale.get(hub.base_url + "/me") as resp:
            assert resp.status == 401
    finally:
        await stale.close()
    # the hashed session id is what the store keeps, never the cookie
    stored = await hub.state.store.run(lambda db: db._db.execute("SELECT id_hash FROM web_sessions").fetchall())
    assert all(after not in row[0] for row in stored)


async def test_secure_cookie_behind_https(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "h", public_url="https://hub.example.org") as hub:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(hub.base_url + "/login") as resp:
            header = resp.headers.getall("Set-Cookie")[0]
    assert header.startswith("__Host-hub_csrf=")  # a sibling subdomain cannot plant it
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


async def test_csrf_missing_or_wrong_is_refused(hub: HubHandle, client: Browserless) -> None:
    status, text, _ = await client.post("/login", {"username": "x", "password": "y"}, csrf_from=None)
    assert status == 403 and "without its security token (CSRF)" in message_of(text)
    await client.csrf()  # a session exists now; a token from elsewhere does not match it
    status, text, _ = await client.post("/login", {"username": "x", "password": "y", "csrf": "forged"})
    assert status == 403 and "does not match your session" in message_of(text)
    # another visitor's genuine token (a cross-site form an attacker filled with theirs) does not match either
    other = await new_client(hub)
    try:
        stolen = await other.csrf()
        status, text, _ = await client.post("/login", {"username": "x", "password": "y", "csrf": stolen})
        assert status == 403 and "does not match your session" in message_of(text)
    finally:
        await other.session.close()


async def test_signup_modes_and_invitations(tmp_path: Path) -> None:
    for mode in ("open", "invite", "closed"):
        hub = await start_hub("127.0.0.1", 0, tmp_path / mode, admin_token="adm_" + "y" * 40, signup=mode)
        web = await new_client(hub)
        try:
            form = {"username": "bob", "password": PASSWORD, "password2": PASSWORD}
            status, text, _ = await web.post("/signup", form)
            expected = {"open": 303, "invite": 403, "closed": 403}[mode]
            assert status == expected, (mode, message_of(text))
            if mode == "invite":
                assert "enter the invitation code" in message_of(text)
                status, text, _ = await web.post("/signup", {**form, "invitation": "inv_nope"}, csrf_from="/signup")
                assert status == 403 and "not valid" in message_of(text)
                code = await invitation(hub)
                status, _, _ = await web.post("/signup", {**form, "invitation": code}, csrf_from="/signup")
                assert status == 303
                other = await new_client(hub)
                status, text, _ = await other.post("/signup", {**form, "username": "carol", "invitation": code},
                                                   csrf_from="/signup")
                assert status == 403 and "already used" in message_of(text)
                await other.session.close()
            if mode == "closed":
                assert "closed" in message_of(text)
        finally:
            await web.session.close()
            await hub.stop()
    with pytest.raises(ValueError):
        await start_hub("127.0.0.1", 0, tmp_path / "bad", signup="everyone")  # type: ignore[arg-type]


async def test_login_is_throttled_per_account(hub: HubHandle, client: Browserless) -> None:
    await sign_up(hub, client, "dora")
    attacker = await new_client(hub)
    try:
        for _ in range(5):
            status, text, _ = await attacker.post("/login", {"username": "dora", "password": "wrong password"})
            assert status == 401 and "Wrong username or password." in message_of(text)
        status, text, resp = await attacker.post("/login", {"username": "dora", "password": PASSWORD})
        assert status == 429 and "Too many failed logins for this account" in message_of(text)
        assert int(resp.headers["Retry-After"]) > 0
    finally:
        await attacker.session.close()


async def test_login_is_throttled_per_address(hub: HubHandle, client: Browserless) -> None:
    for index in range(20):
        status, _, _ = await client.post("/login", {"username": f"nobody{index}", "password": "wrong password"})
        assert status == 401
    status, text, _ = await client.post("/login", {"username": "someone-else", "password": "wrong password"})
    assert status == 429 and "Too many failed logins for your address" in message_of(text)


async def test_manage_api_update_archive_rotate(hub: HubHandle) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        url = f"{hub.base_url}/api/strategies/pub"
        async with session.patch(url, json={"description": "grid", "pairs": ["ETH/USDT"]}) as resp:
            assert resp.status == 401
        async with session.patch(url, json={"description": "grid", "pairs": ["ETH/USDT"]},
                                 headers=auth(hub.admin_token)) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["pairs"] == ["ETH/USDT"] and body["description"] == "grid"
        async with session.patch(url, json={"visibility": "private"}, headers=auth(hub.admin_token)) as resp:
            assert resp.status == 400 and "only name" in (await resp.json())["message"]
        async with session.patch(url, json={"pairs": []}, headers=auth(hub.admin_token)) as resp:
            assert resp.status == 400
        old = await admin_create_strategy(hub.base_url, hub.admin_token, "rot")
        async with session.post(f"{hub.base_url}/api/strategies/rot/publish-secret",
                                headers=auth(hub.admin_token)) as resp:
            new_secret = (await resp.json())["publish_secret"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(hub.base_url.replace("http", "ws") + "/cable", headers=auth(old["publish_secret"]))
        assert refused.value.status == 401
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        ws = await ws_connect(session, hub.base_url, new_secret)
        ack = await publish(ws, {**old})
        assert ack["type"] == "ack"
        async with session.post(f"{hub.base_url}/api/strategies/rot/archive", headers=auth(hub.admin_token)) as resp:
            assert (await resp.json())["archived"] is True
        closed = await ws.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        async with session.post(f"{hub.base_url}/api/strategies/rot/publish-secret",
                                headers=auth(hub.admin_token)) as resp:
            assert resp.status == 409


async def test_expired_link_is_gone_unknown_is_not_found(hub: HubHandle) -> None:
    token = (await admin_create_follower(hub.base_url, hub.admin_token, "pub"))["token"]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.post(f"{hub.base_url}/api/strategies/pub/profile-link", headers=auth(token)) as resp:
            link = (await resp.json())["url"]
        await hub.state.store.run(lambda db: db._db.execute("UPDATE capabilities SET expires_at = expires_at - 901"))
        for _ in range(2):  # still 410 on a second try (the hash is remembered, the row and token copy are gone)
            async with session.get(link) as resp:
                assert resp.status == 410 and (await resp.json())["error"] == "expired"
        async with session.get(link.rsplit("/", 2)[0] + "/unknowncapability/pub.zip") as resp:
            assert resp.status == 404


async def test_follower_flow_without_javascript(hub: HubHandle, client: Browserless) -> None:
    await sign_up(hub, client, "erin")
    status, _, _ = await client.post("/strategies/pub/subscribe", {}, csrf_from="/strategies/pub")
    assert status == 303
    # the copy button's form, posted without JavaScript, renders the page with the link in a box
    status, text, _ = await client.post("/strategies/pub/profile-link", {}, csrf_from="/strategies/pub")
    assert status == 200
    url = re.search(r'data-test="copied-url" value="([^"]+)"', text).group(1)
    async with client.session.get(url) as resp:
        assert resp.status == 200 and resp.content_type == "application/zip"
    async with client.session.get(hub.base_url + "/strategies/pub/profile.zip") as resp:
        assert resp.status == 200 and (await resp.read())[:2] == b"PK"
    status, text, _ = await client.post("/strategies/pub/unsubscribe", {}, csrf_from="/strategies/pub")
    assert status == 303
    async with client.session.get(url) as resp:
        assert resp.status == 404  # revoked with the subscription's token
    async with client.session.get(hub.base_url + "/strategies/pub/profile.zip") as resp:
        assert resp.status == 403


async def test_follower_token_of_a_subscription_follows_the_feed(hub: HubHandle, client: Browserless) -> None:
    await sign_up(hub, client, "frank")
    await client.post("/strategies/pub/subscribe", {}, csrf_from="/strategies/pub")
    account = await hub.state.store.run(lambda db: db.account_by_username("frank"))
    sub = await hub.state.store.run(lambda db: db.get_subscription(account.account_id, "pub"))
    sealer = hub._runner.app[WEB_KEY].sealer
    token = sealer.unseal(sub.token_sealed, sub.token_id)
    assert token.startswith("ft_") and token not in sub.token_sealed  # stored encrypted
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        ws = await ws_connect(session, hub.base_url, token)
        await subscribe(ws, ["pub"])
        await client.post("/strategies/pub/unsubscribe", {}, csrf_from="/strategies/pub")
        closed = await ws.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


def test_old_data_directory_gains_the_web_tables(tmp_path: Path) -> None:
    """A data directory created before the web front: columns are added, rows and the API stay."""
    data = tmp_path / "old"
    data.mkdir()
    db = sqlite3.connect(data / "hub.sqlite3")
    db.executescript(
        "CREATE TABLE strategies (id TEXT PRIMARY KEY, name TEXT NOT NULL, visibility TEXT NOT NULL, pairs TEXT NOT NULL,"
        " exchange_type TEXT NOT NULL, exchange TEXT NOT NULL, public_key TEXT, stream_id TEXT NOT NULL UNIQUE,"
        " publish_secret_hash TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);"
        "INSERT INTO strategies VALUES('old','Old','public','[\"BTC/USDT\"]','spot','binance',NULL,'st_1','h',0);")
    db.commit()
    db.close()
    store = SqliteStore(data / "hub.sqlite3")
    try:
        assert [s.id for s in store.load_strategies()] == ["old"]
        assert store.strategy_details("old").description == "" and not store.strategy_details("old").archived
        columns = {row[1] for row in store._db.execute("PRAGMA table_info(strategies)")}
        assert {"owner_id", "description", "archived"} <= columns
    finally:
        store.close()


def test_page_statistics_match_a_full_count(tmp_path: Path) -> None:
    """The pages' statistics (primary-key lookups and binary search) agree with counting every row."""
    store = SqliteStore(tmp_path / "hub.sqlite3")
    try:
        day = 20_000
        stamps = [day * 86400 + 10, day * 86400 + 50_000, (day + 2) * 86400 + 1, (day + 2) * 86400 + 2,
                  (day + 2) * 86400 + 86_399, (day + 5) * 86400]
        for index, stamp in enumerate(stamps, 1):
            store._db.execute("INSERT INTO journal VALUES('s', ?, ?, '0', '{}', NULL, ?)", (index, f"u{index}", stamp))
        counts = store.daily_signal_counts("s", day - 1, 10)
        assert counts == {day: 2, day + 2: 3, day + 5: 1}
        assert store.daily_signal_counts("s", day + 6, 3) == {}
        assert store.daily_signal_counts("other", day, 3) == {}
        stats = store.strategy_stats("s")
        assert (stats.signals, stats.first_at, stats.last_at) == (6, stamps[0], stamps[-1])
        assert store.strategy_stats("other").signals == 0
    finally:
        store.close()


async def test_copy_button_refusal_is_json(hub: HubHandle, client: Browserless) -> None:
    """The copy button's script asks for JSON: a refusal (not subscribed) answers JSON with the reason."""
    await sign_up(hub, client, "gina")
    status, text, resp = await client.post("/strategies/pub/profile-link", {}, csrf_from="/strategies/pub",
                                           headers={"Accept": "application/json"})
    assert status == 403 and resp.content_type == "application/json"
    assert "Subscribe to this strategy" in text


async def test_no_secret_reaches_the_log(hub: HubHandle, client: Browserless, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await sign_up(hub, client, "hank")
    await client.post("/strategies/pub/subscribe", {}, csrf_from="/strategies/pub")
    _, text, _ = await client.post("/strategies/pub/profile-link", {}, csrf_from="/strategies/pub")
    url = re.search(r'data-test="copied-url" value="([^"]+)"', text).group(1)
    _, text, _ = await client.post("/strategies/new", {"id": "h1", "name": "H", "exchange": "binance",
                                                       "pairs": "BTC/USDT", "visibility": "public",
                                                       "exchange_type": "spot"}, csrf_from="/strategies/new")
    secret = re.search(r'data-test="publish-secret">([^<]+)<', text).group(1)
    _, text, _ = await client.post("/strategies/h1/rotate", {}, csrf_from="/strategies/h1")
    rotated = re.search(r'data-test="publish-secret">([^<]+)<', text).group(1)
    async with client.session.get(hub.base_url + "/strategies/pub/profile.zip") as resp:
        with zipfile.ZipFile(io.BytesIO(await resp.read())) as archive:
            token = json.loads(archive.read("specific_config/RemoteTradingSignalsTradingMode.json"))["follower_token"]
    cookie = {c.key: c.value for c in client.session.cookie_jar}["hub_session"]
    capability = url.split("/")[4]
    logged = caplog.text
    assert "hub_session" not in logged
    assert token.startswith("ft_")
    for value in (PASSWORD, secret, rotated, cookie, capability, token, await client.csrf("/me")):
        assert value not in logged


def test_signup_flag(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "octobot_signals.hub"]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "--signup {open,invite,closed}" in shown
    refused = subprocess.run([*run, "--data", str(tmp_path), "--signup", "everyone"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
