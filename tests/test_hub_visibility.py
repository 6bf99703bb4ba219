"""Who may see and follow a strategy, over real sockets (issue 17 items 6 and 7).

- An archived strategy takes no new followers on any path (history, profile links, /cable, the admin API),
  while a follower that existed before the archiving keeps reading its history.
- A private strategy's id is never confirmed to someone who may not see it: every route that takes a
  strategy id answers such a caller exactly as it answers an unknown id.
"""
from __future__ import annotations

import json
import re
import time
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
    recv_json,
    running_hub,
    subscribe,
    ws_connect,
)
from octobot_signals.core import protocol
from octobot_signals.hub.auth import hash_secret
from octobot_signals.hub.server import HubHandle

TIMEOUT = aiohttp.ClientTimeout(total=15)
PASSWORD = "correct horse battery"
UNKNOWN = "nosuch"  # an id no strategy has


async def call(session: aiohttp.ClientSession, method: str, url: str, token: str | None = None,
               **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, url, headers=auth(token), **kwargs) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


# ----------------------------------------------------------------------------- item 6: archived strategies


async def test_archived_strategy_takes_no_new_followers(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    async with running_hub(data) as hub, aiohttp.ClientSession(timeout=TIMEOUT) as session:
        url, admin = hub.base_url, hub.admin_token
        pub = await admin_create_strategy(url, admin, "pub")
        await admin_create_strategy(url, admin, "other")
        member = (await admin_create_follower(url, admin, "pub"))["token"]  # followed it before the archiving
        outsider = (await admin_create_follower(url, admin, "other"))["token"]  # never a follower of pub
        publisher = await ws_connect(session, url, pub["publish_secret"])
        assert (await publish(publisher, pub))["type"] == "ack"
        await publisher.close()
        # a link taken before the archiving by a token that never followed pub
        status, early_link = await call(session, "POST", f"{url}/api/strategies/pub/profile-link", outsider)
        assert status == 200, early_link

        status, body = await call(session, "POST", f"{url}/api/strategies/pub/archive", admin)
        assert status == 200 and body["archived"] is True, body

        # the outsider: no history, no lookup, no profile link, no /cable subscription, absent from its list
        for method, path in [("GET", "/api/strategies/pub/signals"), ("GET", "/api/v2/storefront/feeds/id/pub"),
                             ("POST", "/api/strategies/pub/profile-link")]:
            status, body = await call(session, method, url + path, outsider)
            assert status == 403 and "archived" in body["message"], (path, status, body)
        async with session.get(early_link["url"]) as resp:
            assert resp.status == 404, "a link taken before the archiving must not make a new follower"
        status, listed = await call(session, "GET", f"{url}/api/strategies", outsider)
        assert status == 200 and [s["id"] for s in listed] == ["other"], listed
        ws = await ws_connect(session, url, outsider)
        await ws.send_str(protocol.build_subscribe_command(["pub"]))
        frame = await recv_json(ws)
        assert frame["type"] == "reject_subscription", frame
        await ws.close()
        # no follower token may be created for it any more
        status, body = await call(session, "POST", f"{url}/api/strategies/pub/followers", admin)
        assert status == 409 and body["error"] == "archived", body

        # the follower from before keeps its history, its links and its /cable subscription
        status, history = await call(session, "GET", f"{url}/api/strategies/pub/signals", member)
        assert status == 200 and [m["q"] for m in history] == [1], history
        status, body = await call(session, "POST", f"{url}/api/strategies/pub/profile-link", member)
        assert status == 200, body
        ws = await ws_connect(session, url, member)
        await subscribe(ws, ["pub"], resume={"pub": 0})
        replayed = await recv_json(ws)
        assert replayed["message"]["q"] == 1, replayed
        await ws.close()

    # the archiving survives a restart of the hub (it is read back with the strategies)
    async with running_hub(data) as hub, aiohttp.ClientSession(timeout=TIMEOUT) as session:
        status, body = await call(session, "GET", f"{hub.base_url}/api/strategies/pub/signals", outsider)
        assert status == 403, body
        status, body = await call(session, "GET", f"{hub.base_url}/api/strategies/pub/signals", member)
        assert status == 200 and len(body) == 1, body


# ----------------------------------------------------------------------------- item 7: private ids stay unknown


@dataclass
class Browser:
    """A cookie-keeping HTTP client that posts forms with the CSRF token of its session."""

    base: str
    session: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.base + path, headers={"Accept": "text/html"}) as resp:
            return resp.status, await resp.text()

    async def csrf(self) -> str:
        _, text = await self.get("/login")
        match = re.search(r'name="csrf" value="([^"]+)"', text)
        assert match, text[:500]
        return match.group(1)

    async def post(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        form = {**(data or {}), "csrf": await self.csrf()}
        async with self.session.post(self.base + path, data=form, allow_redirects=False,
                                     headers={"Accept": "text/html"}) as resp:
            return resp.status, await resp.text()


async def sign_up(hub: HubHandle, browser: Browser, username: str) -> None:
    code = f"inv_{username}_{time.monotonic_ns()}"
    now = time.time()
    await hub.state.store.run(lambda db: db.create_invitation(f"i-{username}", hash_secret(code), "", now, now + 3600))
    async with browser.session.get(browser.base + "/signup") as resp:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)
    form = {"username": username, "password": PASSWORD, "password2": PASSWORD, "invitation": code, "csrf": csrf}
    async with browser.session.post(browser.base + "/signup", data=form, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHandle]:
    async with running_hub(tmp_path / "hub") as handle:
        yield handle


@pytest.fixture
async def browsers(hub: HubHandle) -> AsyncIterator[dict[str, Browser]]:
    sessions = [aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(3)]
    try:
        yield {name: Browser(hub.base_url, session) for name, session in zip(("author", "outsider", "anonymous"),
                                                                             sessions, strict=True)}
    finally:
        for session in sessions:
            await session.close()


async def web_private_world(hub: HubHandle, browsers: dict[str, Browser]) -> list[str]:
    """Two private strategies (one made by the operator's API, one by an author on the pages); their ids."""
    await admin_create_strategy(hub.base_url, hub.admin_token, "apriv", visibility="private")
    await sign_up(hub, browsers["author"], "author")
    status, text = await browsers["author"].post("/strategies/new", {
        "id": "wpriv", "name": "Web private", "visibility": "private", "exchange": "binance",
        "exchange_type": "spot", "pairs": "BTC/USDT"})
    assert status == 200, text[:500]
    await sign_up(hub, browsers["outsider"], "outsider")
    return ["apriv", "wpriv"]


WEB_ROUTES: list[tuple[str, str]] = [
    ("GET", "/strategies/{id}"),
    ("GET", "/strategies/{id}/edit"),
    ("POST", "/strategies/{id}/edit"),
    ("POST", "/strategies/{id}/rotate"),
    ("POST", "/strategies/{id}/archive"),
    ("POST", "/strategies/{id}/invite"),
    ("POST", "/strategies/{id}/subscribe"),
    ("POST", "/strategies/{id}/unsubscribe"),
    ("POST", "/strategies/{id}/profile-link"),
    ("GET", "/strategies/{id}/profile.zip"),
]


async def web_answer(browser: Browser, method: str, path: str) -> tuple[int, str]:
    if method == "GET":
        return await browser.get(path)
    return await browser.post(path, {"name": "x", "pairs": "BTC/USDT", "confirm": "x", "username": "author"})


async def differing_web_routes(browser: Browser, private_ids: list[str]) -> list[str]:
    differing = []
    for method, template in WEB_ROUTES:
        unknown = await web_answer(browser, method, template.format(id=UNKNOWN))
        for strategy_id in private_ids:
            answer = await web_answer(browser, method, template.format(id=strategy_id))
            if answer != unknown:
                differing.append(f"{method} {template} ({strategy_id}): {answer[0]} vs unknown {unknown[0]}")
    return differing


async def test_web_pages_answer_a_private_id_like_an_unknown_one_to_an_outsider(
        hub: HubHandle, browsers: dict[str, Browser]) -> None:
    private_ids = await web_private_world(hub, browsers)
    assert await differing_web_routes(browsers["outsider"], private_ids) == []
    # the 404s must not hide what the visitor may see: a public strategy that is not theirs still says why
    await admin_create_strategy(hub.base_url, hub.admin_token, "pub")
    outsider = browsers["outsider"]
    assert (await outsider.get("/strategies/pub"))[0] == 200
    assert (await outsider.get("/strategies/pub/edit"))[0] == 403  # not your strategy
    assert (await outsider.get("/strategies/pub/profile.zip"))[0] == 403  # subscribe first
    status, text = await outsider.post("/strategies/pub/unsubscribe")
    assert status == 404 and "You do not subscribe" in text
    assert (await browsers["author"].get("/strategies/wpriv/edit"))[0] == 200  # the author still edits it


async def test_web_pages_answer_a_private_id_like_an_unknown_one_to_an_anonymous_visitor(
        hub: HubHandle, browsers: dict[str, Browser]) -> None:
    private_ids = await web_private_world(hub, browsers)
    assert await differing_web_routes(browsers["anonymous"], private_ids) == []


API_ROUTES: list[tuple[str, str]] = [
    ("GET", "/api/v2/storefront/feeds/id/{id}"),
    ("GET", "/api/strategies/{id}/signals"),
    ("POST", "/api/strategies/{id}/profile-link"),
    ("POST", "/api/strategies/{id}/followers"),
    ("PATCH", "/api/strategies/{id}"),
    ("POST", "/api/strategies/{id}/archive"),
    ("POST", "/api/strategies/{id}/publish-secret"),
]


def without_id(body: Any, strategy_id: str) -> Any:
    # an error may echo the id the caller sent: that tells the caller nothing it did not know
    return json.loads(json.dumps(body).replace(strategy_id, "<id>"))


async def test_api_answers_a_private_id_like_an_unknown_one_to_an_outsider(hub: HubHandle) -> None:
    url, admin = hub.base_url, hub.admin_token
    pub = await admin_create_strategy(url, admin, "pub")
    await admin_create_strategy(url, admin, "priv", visibility="private")
    await admin_create_follower(url, admin, "priv")
    outsiders = {"follower token of pub": (await admin_create_follower(url, admin, "pub"))["token"],
                 "publish secret of pub": pub["publish_secret"]}
    differing = []
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for who, token in outsiders.items():
            for method, template in API_ROUTES:
                kwargs: dict[str, Any] = {"json": {"name": "x"}} if method == "PATCH" else {}
                status, body = await call(session, method, url + template.format(id="priv"), token, **kwargs)
                unknown = await call(session, method, url + template.format(id=UNKNOWN), token, **kwargs)
                if (status, without_id(body, "priv")) != (unknown[0], without_id(unknown[1], UNKNOWN)):
                    differing.append(f"{who}: {method} {template}: {status} {body} vs unknown {unknown}")
        assert differing == []
        # a caller who may see the strategy but not do that is still told so (403), not "unknown"
        status, body = await call(session, "GET", f"{url}/api/strategies/pub/signals", outsiders["publish secret of pub"])
        assert status == 200, body
        other = await admin_create_strategy(url, admin, "other")
        status, body = await call(session, "GET", f"{url}/api/strategies/pub/signals", other["publish_secret"])
        assert status == 403, body


async def test_cable_refuses_a_private_id_like_an_unknown_one(hub: HubHandle) -> None:
    url, admin = hub.base_url, hub.admin_token
    await admin_create_strategy(url, admin, "pub")
    await admin_create_strategy(url, admin, "priv", visibility="private")
    outsider = (await admin_create_follower(url, admin, "pub"))["token"]
    answers = {}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for strategy_id in ("priv", UNKNOWN):
            ws = await ws_connect(session, url, outsider)
            await ws.send_str(protocol.build_subscribe_command([strategy_id], None))
            frame = await recv_json(ws)
            assert frame["type"] == "reject_subscription", frame
            answers[strategy_id] = frame["message"].replace(strategy_id, "<id>")
            await ws.close()
    assert answers["priv"] == answers[UNKNOWN], answers
