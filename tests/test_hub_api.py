"""HTTP API of the hub over real sockets: every endpoint, auth failure and error status."""
from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hub_helpers import (
    admin_create_follower,
    admin_create_strategy,
    auth,
    publish,
    running_hub,
    strategy_body,
    ws_connect,
)
from octobot_signals.core import protocol
from octobot_signals.hub.server import HubHandle


class Env:
    def __init__(self, hub: HubHandle, session: aiohttp.ClientSession) -> None:
        self.hub = hub
        self.session = session
        self.url = hub.base_url
        self.admin = hub.admin_token

    async def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, headers=auth(token), **kwargs) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_hub(tmp_path / "hub") as hub:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            yield Env(hub, session)


@pytest_asyncio.fixture
async def world(env: Env) -> dict[str, Any]:
    """Two public strategies and one private one, with tokens."""
    pub = await admin_create_strategy(env.url, env.admin, "pub")
    other = await admin_create_strategy(env.url, env.admin, "other")
    priv = await admin_create_strategy(env.url, env.admin, "priv", visibility="private")
    member = (await admin_create_follower(env.url, env.admin, "priv"))["token"]
    outsider = (await admin_create_follower(env.url, env.admin, "pub"))["token"]
    return {"pub": pub, "other": other, "priv": priv, "member": member, "outsider": outsider}


def assert_error(status: int, body: Any, expected_status: int, code: str | None = None) -> None:
    assert status == expected_status, body
    assert isinstance(body, dict) and set(body) == {"error", "message"}, body
    if code is not None:
        assert body["error"] == code, body


async def test_info_and_health(env: Env) -> None:
    # version 2: version 1 plus optional fields only (storefront last_q, history pages bounded by bytes);
    # version 3: plus performance snapshots (publish topic "p") and /api/strategies/{id}/performance
    assert await env.call("GET", "/api/info") == (200, {"protocol_version": 3, "feed_version": "1.0.0", "ws_path": "/cable"})
    assert await env.call("GET", "/api/health") == (200, {"ok": True})
    status, body = await env.call("GET", "/nope")
    assert_error(status, body, 404)


async def test_create_strategy(env: Env) -> None:
    _, public_key = protocol.generate_keypair()
    status, body = await env.call(
        "POST", "/api/strategies", env.admin,
        json=strategy_body("s-1", pairs=["BTC/USDT", "ETH/USDT"], public_key=public_key),
    )
    assert status == 200, body
    assert body["id"] == "s-1" and body["pairs"] == ["BTC/USDT", "ETH/USDT"] and body["public_key"] == public_key
    assert body["visibility"] == "public" and body["exchange_type"] == "spot" and body["exchange"] == "binance"
    assert body["publish_secret"].startswith("ps_") and len(body["publish_secret"]) > 40
    assert body["feed_id"]
    # Shown once: never in listings.
    status, listed = await env.call("GET", "/api/strategies", env.admin)
    assert status == 200 and listed[0]["id"] == "s-1" and "publish_secret" not in listed[0]
    status, body = await env.call("POST", "/api/strategies", env.admin, json=strategy_body("s-1"))
    assert_error(status, body, 409, "duplicate")


async def test_futures_strategy(env: Env) -> None:
    status, body = await env.call(
        "POST", "/api/strategies", env.admin,
        json=strategy_body("fut", exchange_type="future", pairs=["BTC/USDT:USDT"]),
    )
    assert status == 200 and body["exchange_type"] == "future", body


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": "bad id"}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"name": ""}, "name"),
        ({"visibility": "secret"}, "visibility"),
        ({"pairs": []}, "pairs"),
        ({"pairs": "BTC/USDT"}, "pairs"),
        ({"pairs": ["BTCUSDT"]}, "pairs"),
        ({"exchange_type": "margin"}, "exchange_type"),
        ({"exchange": ""}, "exchange"),
        ({"exchange": "Not An Exchange!"}, "exchange"),
        ({"public_key": "short"}, "public_key"),
        ({"extra": 1}, "unknown fields"),
        ({"exchange_type": "future", "pairs": ["BTC/USDT"]}, "pairs"),
    ],
)
async def test_create_strategy_bad_input(env: Env, overrides: dict[str, Any], field: str) -> None:
    status, body = await env.call("POST", "/api/strategies", env.admin, json=strategy_body("ok", **overrides))
    assert_error(status, body, 400)
    assert field in body["message"]


async def test_create_strategy_bad_json_and_too_large(env: Env) -> None:
    status, body = await env.call("POST", "/api/strategies", env.admin, data=b"{nope")
    assert_error(status, body, 400, "bad_json")
    status, body = await env.call("POST", "/api/strategies", env.admin, data=b"[1]")
    assert_error(status, body, 400, "bad_json")
    big = json.dumps(strategy_body("big", name="n" * 300_000)).encode()
    status, body = await env.call("POST", "/api/strategies", env.admin, data=big)
    assert_error(status, body, 413, "too_large")


async def test_admin_endpoints_auth(env: Env, world: dict[str, Any]) -> None:
    for token, expected in [
        (None, 401),
        ("wrong-token", 401),
        ("adm_" + "x" * 43, 401),
        (world["member"], 403),
        (world["pub"]["publish_secret"], 403),
    ]:
        status, body = await env.call("POST", "/api/strategies", token, json=strategy_body("z"))
        assert_error(status, body, expected)
        status, body = await env.call("POST", "/api/strategies/pub/followers", token)
        assert_error(status, body, expected)
    # The header must be a Bearer token: a token elsewhere is not read.
    async with env.session.post(env.url + "/api/strategies", headers={"Authorization": env.admin},
                                json=strategy_body("z")) as resp:
        assert resp.status == 401
    status, body = await env.call("POST", "/api/strategies/missing/followers", env.admin)
    assert_error(status, body, 404, "not_found")


async def test_list_strategies_visibility(env: Env, world: dict[str, Any]) -> None:
    status, body = await env.call("GET", "/api/strategies", world["member"])
    assert status == 200 and sorted(s["id"] for s in body) == ["other", "priv", "pub"]
    status, body = await env.call("GET", "/api/strategies", world["outsider"])
    assert status == 200 and sorted(s["id"] for s in body) == ["other", "pub"]
    status, body = await env.call("GET", "/api/strategies")
    assert_error(status, body, 401)
    status, body = await env.call("GET", "/api/strategies", "nope")
    assert_error(status, body, 401)


async def test_storefront_lookup(env: Env, world: dict[str, Any]) -> None:
    assert await env.call("GET", "/api/v2/storefront/feeds/id/pub", world["outsider"]) == (
        200, {"feed_id": world["pub"]["feed_id"], "last_q": 0})
    assert await env.call("GET", "/api/v2/storefront/feeds/id/priv", world["member"]) == (
        200, {"feed_id": world["priv"]["feed_id"], "last_q": 0})
    # The publisher may look up its own stream id (it needs it to publish), not another's.
    assert await env.call("GET", "/api/v2/storefront/feeds/id/pub", world["pub"]["publish_secret"]) == (
        200, {"feed_id": world["pub"]["feed_id"], "last_q": 0})
    status, body = await env.call("GET", "/api/v2/storefront/feeds/id/pub", world["other"]["publish_secret"])
    assert_error(status, body, 403)
    status, body = await env.call("GET", "/api/v2/storefront/feeds/id/priv", world["outsider"])
    assert_error(status, body, 404)  # a private id is not confirmed to exist (issue 17 item 7)
    status, body = await env.call("GET", "/api/v2/storefront/feeds/id/missing", world["outsider"])
    assert_error(status, body, 404)
    status, body = await env.call("GET", "/api/v2/storefront/feeds/id/pub")
    assert_error(status, body, 401)


async def test_signals_history(env: Env, world: dict[str, Any]) -> None:
    pub = world["pub"]
    async with aiohttp.ClientSession() as session:
        ws = await ws_connect(session, env.url, pub["publish_secret"])
        us = []
        for _ in range(5):
            ack = await publish(ws, pub)
            assert ack["type"] == "ack", ack
            us.append(ack["u"])
        await ws.close()
    status, body = await env.call("GET", "/api/strategies/pub/signals", world["outsider"])
    assert status == 200 and [m["q"] for m in body] == [1, 2, 3, 4, 5] and [m["u"] for m in body] == us
    for message in body:
        assert message["i"] == pub["feed_id"] and message["t"] == "t" and message["v"] == "1.0.0"
        assert message["s"]["identifier"] == "pub" and message["g"] is None
        protocol.parse_feed_message(message)
    status, body = await env.call("GET", "/api/strategies/pub/signals?after=2&limit=2", world["outsider"])
    assert status == 200 and [m["q"] for m in body] == [3, 4]
    status, body = await env.call("GET", "/api/strategies/pub/signals?after=5", world["outsider"])
    assert (status, body) == (200, [])
    status, text = await env.call("GET", "/api/strategies/pub/signals?after=3&format=jsonl", world["outsider"])
    assert status == 200 and [json.loads(line)["q"] for line in text.splitlines()] == [4, 5]
    for query in ["after=-1", "after=x", "limit=0", "limit=100000", "format=xml"]:
        status, body = await env.call("GET", f"/api/strategies/pub/signals?{query}", world["outsider"])
        assert_error(status, body, 400)
    status, body = await env.call("GET", "/api/strategies/priv/signals", world["outsider"])
    assert_error(status, body, 404)  # a private id is not confirmed to exist (issue 17 item 7)
    status, body = await env.call("GET", "/api/strategies/pub/signals", world["other"]["publish_secret"])
    assert_error(status, body, 403)
    status, body = await env.call("GET", "/api/strategies/pub/signals")
    assert_error(status, body, 401)
    status, body = await env.call("GET", "/api/strategies/missing/signals", world["outsider"])
    assert_error(status, body, 404)
    status, body = await env.call("GET", "/api/strategies/priv/signals", world["member"])
    assert (status, body) == (200, [])


async def test_profile_link_and_download(env: Env, world: dict[str, Any]) -> None:
    before = time.time()
    status, body = await env.call("POST", "/api/strategies/priv/profile-link", world["member"])
    assert status == 200, body
    assert before + 899 <= body["expires_at"] <= time.time() + 901
    url: str = body["url"]
    prefix = env.url + "/p/"
    assert url.startswith(prefix) and url.endswith("/priv.zip")
    capability = url[len(prefix):].split("/")[0]
    assert len(capability) >= 32  # >= 128 bits of base64url
    assert world["member"] not in url
    async with env.session.get(url) as resp:  # no Authorization: the link is the credential
        assert resp.status == 200
        assert resp.content_type == "application/zip"
        data = await resp.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert "profile.json" in names and "tentacles_config.json" in names
        mode = json.loads(archive.read("specific_config/RemoteTradingSignalsTradingMode.json"))
    assert mode["trading_strategy"] == "priv"
    assert mode["follower_token"] == world["member"]
    assert mode["hub_url"] == env.url
    # Wrong strategy in the path, unknown capability.
    status, body = await env.call("GET", f"/p/{capability}/pub.zip")
    assert_error(status, body, 404)
    status, body = await env.call("GET", "/p/" + "A" * 32 + "/priv.zip")
    assert_error(status, body, 404)


async def test_profile_link_auth(env: Env, world: dict[str, Any]) -> None:
    status, body = await env.call("POST", "/api/strategies/priv/profile-link", world["outsider"])
    assert_error(status, body, 404)  # a private id is not confirmed to exist (issue 17 item 7)
    status, body = await env.call("POST", "/api/strategies/priv/profile-link", env.admin)
    assert_error(status, body, 403)
    status, body = await env.call("POST", "/api/strategies/priv/profile-link", world["priv"]["publish_secret"])
    assert_error(status, body, 403)
    status, body = await env.call("POST", "/api/strategies/priv/profile-link")
    assert_error(status, body, 401)
    status, body = await env.call("POST", "/api/strategies/missing/profile-link", world["member"])
    assert_error(status, body, 404)
    # Public strategy: any follower token.
    status, body = await env.call("POST", "/api/strategies/other/profile-link", world["member"])
    assert status == 200, body


async def test_profile_link_expires(env: Env, world: dict[str, Any]) -> None:
    _, body = await env.call("POST", "/api/strategies/pub/profile-link", world["outsider"])
    async with env.session.get(body["url"]) as resp:
        assert resp.status == 200
    # Age the link in the real store (15 minutes is too long to wait for in a test).
    await env.hub.state.store.run(lambda db: db._db.execute("UPDATE capabilities SET expires_at = expires_at - 901"))
    async with env.session.get(body["url"]) as resp:
        assert resp.status == 410  # expired: Gone (issue 9); unknown links stay 404
    remaining = await env.hub.state.store.run(lambda db: db._db.execute("SELECT COUNT(*) FROM capabilities").fetchone())
    assert remaining == (0,)  # the expired row (and its token copy) is gone


async def test_revoking_a_token_revokes_its_links_and_access(env: Env, world: dict[str, Any]) -> None:
    token = await admin_create_follower(env.url, env.admin, "pub")
    _, link = await env.call("POST", "/api/strategies/pub/profile-link", token["token"])
    status, body = await env.call("DELETE", f"/api/followers/{token['token_id']}", world["member"])
    assert_error(status, body, 403)
    status, body = await env.call("DELETE", f"/api/followers/{token['token_id']}", env.admin)
    assert (status, body) == (200, {"revoked": token["token_id"]})
    async with env.session.get(link["url"]) as resp:
        assert resp.status == 404
    status, body = await env.call("GET", "/api/strategies", token["token"])
    assert_error(status, body, 401)
    status, body = await env.call("DELETE", f"/api/followers/{token['token_id']}", env.admin)
    assert_error(status, body, 404)


async def test_public_url_is_used_in_links(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "h", public_url="https://hub.example.org/") as hub:
        await admin_create_strategy(hub.base_url, hub.admin_token, "s")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "s"))["token"]
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{hub.base_url}/api/strategies/s/profile-link", headers=auth(token)) as resp:
                body = await resp.json()
    assert body["url"].startswith("https://hub.example.org/p/") and body["url"].endswith("/s.zip")


async def test_secrets_are_stored_hashed(env: Env, world: dict[str, Any]) -> None:
    raw = (env.hub.data_dir / "hub.sqlite3").read_bytes()
    wal = env.hub.data_dir / "hub.sqlite3-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    for secret in [env.admin, world["member"], world["outsider"], world["pub"]["publish_secret"]]:
        assert secret.encode() not in raw


async def test_generated_admin_token_is_printed_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from octobot_signals.hub.server import ADMIN_TOKEN_ENV, start_hub

    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    hub = await start_hub("127.0.0.1", 0, tmp_path / "gen")
    try:
        token = hub.admin_token
        assert token and token in capsys.readouterr().out
        await admin_create_strategy(hub.base_url, token, "g")
    finally:
        await hub.stop()
    hub = await start_hub("127.0.0.1", 0, tmp_path / "gen")
    try:
        assert hub.admin_token is None and token not in capsys.readouterr().out
        await admin_create_strategy(hub.base_url, token, "g2")  # still valid after restart
    finally:
        await hub.stop()
