"""The hub over real sockets on both stores (SQLite and PostgreSQL): the same API, /cable and web-front
behaviour whichever engine keeps the state (patterns of test_hub_api.py, test_hub_ws.py, test_hub_web.py)."""
from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    HubEnv,
    admin_create_follower,
    admin_create_strategy,
    auth,
    make_bundle,
    publish,
    publish_command,
    recv_json,
    subscribe,
    ws_connect,
)
from octobot_signals.hub.auth import hash_secret
from octobot_signals.hub.server import HubHandle, start_hub
from pg_helpers import pg_server, store_url  # noqa: F401  (fixtures)

TIMEOUT = aiohttp.ClientTimeout(total=10)
PASSWORD = "correct horse battery"


async def open_hub(data: Path, url: str | None) -> HubHandle:
    hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN, store_url=url)
    assert hub.state.store.shared is (url is not None) and (hub.replicas is not None) is (url is not None)
    return hub


@pytest_asyncio.fixture
async def env(tmp_path: Path, store_url: str | None) -> AsyncIterator[HubEnv]:  # noqa: F811
    hub = await open_hub(tmp_path / "hub", store_url)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            yield HubEnv(hub, session)
    finally:
        await hub.stop()


async def collect(ws: aiohttp.ClientWebSocketResponse, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    return [(await recv_json(ws, timeout))["message"] for _ in range(n)]


async def assert_silent(ws: aiohttp.ClientWebSocketResponse, seconds: float = 0.3) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await recv_json(ws, seconds)


async def assert_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = await ws.receive(timeout=timeout)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return
    raise AssertionError("connection still open")


async def test_publish_ack_delivery_resend_and_resume(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    token = (await env.follower("s1"))["token"]
    live = await env.connect(token)
    await subscribe(live, ["s1"])
    publisher = await env.connect(strategy["publish_secret"])
    acks = [await publish(publisher, strategy) for _ in range(10)]
    assert [a["q"] for a in acks] == list(range(1, 11))
    assert [(m["u"], m["q"]) for m in await collect(live, 10)] == [(a["u"], a["q"]) for a in acks]
    # the same u through a new connection: the first ack, no second journal entry, no delivery
    bundle = make_bundle("s1")
    first = await publish(publisher, strategy, bundle=bundle, u="same", d=5.0)
    other = await env.connect(strategy["publish_secret"])
    assert await publish(other, strategy, bundle=bundle, u="same", d=5.0) == first == {"type": "ack", "u": "same",
                                                                                         "q": 11}
    assert [m["q"] for m in await collect(live, 1)] == [11]
    await assert_silent(live)
    late = await env.connect(token)
    await subscribe(late, ["s1"], resume={"s1": 7})
    assert [m["q"] for m in await collect(late, 4)] == [8, 9, 10, 11]
    assert (await publish(publisher, strategy))["q"] == 12
    assert [m["q"] for m in await collect(late, 1)] == [12]


async def test_resume_during_live_publishing_is_gapless(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    token = (await env.follower("s1"))["token"]
    publisher = await env.connect(strategy["publish_secret"])
    for _ in range(150):
        await publisher.send_str(publish_command(strategy)[0])

    async def publish_more() -> None:
        for _ in range(50):
            await publisher.send_str(publish_command(strategy)[0])
            await asyncio.sleep(0)

    follower = await env.connect(token)
    task = asyncio.create_task(publish_more())
    await asyncio.sleep(0.01)
    await subscribe(follower, ["s1"], resume={"s1": 0})
    messages = await collect(follower, 200, timeout=15)
    await task
    assert [m["q"] for m in messages] == list(range(1, 201))
    await assert_silent(follower)


async def test_history_lookup_and_profile_links(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    token = (await env.follower("s1"))["token"]
    publisher = await env.connect(strategy["publish_secret"])
    for _ in range(5):
        await publish(publisher, strategy)
    async with env.session.get(f"{env.url}/api/v2/storefront/feeds/id/s1", headers=auth(token)) as resp:
        assert await resp.json() == {"feed_id": strategy["feed_id"], "last_q": 5}
    async with env.session.get(f"{env.url}/api/strategies/s1/signals?after=2&limit=2&format=jsonl",
                               headers=auth(token)) as resp:
        assert resp.status == 200 and [line for line in (await resp.text()).splitlines()][0].count('"q":3') == 1
    async with env.session.post(f"{env.url}/api/strategies/s1/profile-link", headers=auth(token)) as resp:
        link = (await resp.json())["url"]
    async with env.session.get(link) as resp:
        assert resp.status == 200 and (await resp.read())[:2] == b"PK"
    await env.hub.state.store.run(lambda db: db._db.execute("UPDATE capabilities SET expires_at = expires_at - 901"))
    async with env.session.get(link) as resp:
        assert resp.status == 410


async def test_revoke_and_rotate_close_live_connections(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    follower = await env.follower("s1")
    ws = await env.connect(follower["token"])
    await subscribe(ws, ["s1"])
    publisher = await env.connect(strategy["publish_secret"])
    async with env.session.delete(f"{env.url}/api/followers/{follower['token_id']}",
                                  headers=auth(DEFAULT_ADMIN_TOKEN)) as resp:
        assert resp.status == 200
    await assert_closed(ws)
    async with env.session.get(f"{env.url}/api/strategies", headers=auth(follower["token"])) as resp:
        assert resp.status == 401
    async with env.session.post(f"{env.url}/api/strategies/s1/publish-secret", headers=auth(DEFAULT_ADMIN_TOKEN)) as r:
        new_secret = (await r.json())["publish_secret"]
    await assert_closed(publisher)
    async with env.session.get(f"{env.url}/api/strategies", headers=auth(strategy["publish_secret"])) as resp:
        assert resp.status == 401
    fresh = await env.connect(new_secret)
    assert (await publish(fresh, strategy))["type"] == "ack"


async def test_web_front_signup_subscribe_unsubscribe(env: HubEnv) -> None:
    await env.strategy("pub", name="Public one")
    code = "inv_contract_code"
    now = time.time()
    await env.hub.state.store.run(lambda db: db.create_invitation("i1", hash_secret(code), "", now, now + 3600))
    async with aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async def post(path: str, form_page: str, data: dict[str, str]) -> aiohttp.ClientResponse:
            async with browser.get(env.url + form_page, headers={"Accept": "text/html"}) as page:
                csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)  # type: ignore[union-attr]
            async with browser.post(env.url + path, data={**data, "csrf": csrf}, allow_redirects=False) as resp:
                await resp.read()
                return resp

        signup = {"username": "Erin", "password": PASSWORD, "password2": PASSWORD, "invitation": code}
        assert (await post("/signup", "/signup", signup)).status == 303
        again = {**signup, "username": "erin"}  # the code is spent, and the name is taken whatever its case
        assert (await post("/signup", "/signup", again)).status != 303
        assert (await post("/strategies/pub/subscribe", "/strategies/pub", {})).status == 303
        account = await env.hub.state.store.run(lambda db: db.account_by_username("erin"))
        subscription = await env.hub.state.store.run(lambda db: db.get_subscription(account.account_id, "pub"))
        assert subscription is not None
        async with browser.get(env.url + "/me", headers={"Accept": "text/html"}) as page:
            assert page.status == 200 and "Public one" in await page.text()
        assert (await post("/strategies/pub/unsubscribe", "/strategies/pub", {})).status == 303
        assert await env.hub.state.store.run(lambda db: db.get_subscription(account.account_id, "pub")) is None
        async with browser.get(env.url + "/strategies/pub", headers={"Accept": "text/html"}) as page:
            assert page.status == 200 and "Public one" in await page.text()


async def test_state_survives_a_hub_restart(tmp_path: Path, store_url: str | None) -> None:  # noqa: F811
    hub = await open_hub(tmp_path / "hub", store_url)
    try:
        strategy = await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
        token = (await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1"))["token"]
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            publisher = await ws_connect(session, hub.base_url, strategy["publish_secret"])
            for _ in range(3):
                await publish(publisher, strategy)
            await publisher.close()
    finally:
        await hub.stop()
    hub = await open_hub(tmp_path / "hub", store_url)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            publisher = await ws_connect(session, hub.base_url, strategy["publish_secret"])
            assert (await publish(publisher, strategy))["q"] == 4
            follower = await ws_connect(session, hub.base_url, token)
            await subscribe(follower, ["s1"], resume={"s1": 0})
            assert [m["q"] for m in await collect(follower, 4)] == [1, 2, 3, 4]
    finally:
        await hub.stop()
