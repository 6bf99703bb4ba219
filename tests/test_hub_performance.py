"""Performance snapshots over a real /cable socket and the track record over HTTP (protocol 3).

A snapshot is acked without q, never journaled, never delivered to a follower; hostile snapshots are nacked
with a reason naming the field; GET /api/strategies/{id}/performance shows the figures to whoever may see the
strategy and the unknown-id 404 to anyone else.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hub_helpers import DEFAULT_ADMIN_TOKEN, HubEnv, auth, recv_json, subscribe
from octobot_signals.core import performance, protocol
from octobot_signals.hub.performance_service import PerformanceSettings
from octobot_signals.hub.server import start_hub

TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest_asyncio.fixture
async def env(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[HubEnv]:
    interval = getattr(request, "param", 10.0)
    hub = await start_hub("127.0.0.1", 0, tmp_path / "hub", admin_token=DEFAULT_ADMIN_TOKEN,
                          performance=PerformanceSettings(min_interval_s=interval))
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            yield HubEnv(hub, session)
    finally:
        await hub.stop()


def snapshot(strategy_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"identifier": strategy_id, "t": round(time.time(), 3), "equity": "1000.5",
                            "currency": "USDT"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def command(strategy: dict[str, Any], value: dict[str, Any] | str, u: str | None = None, private_key: str | None = None,
            feed_id: str | None = None, d: float = 1_800_000_000.0) -> str:
    """A topic "p" publish command; `value` as a str is sent verbatim (NaN, Infinity, 1e999 in raw JSON)."""
    u = u or uuid.uuid4().hex
    g = performance.sign(private_key, d, strategy["id"], value, u) if private_key and isinstance(value, dict) else None
    text = value if isinstance(value, str) else json.dumps(value)
    data = {"topic": "p", "feed_id": feed_id or strategy["feed_id"], "version": "1.0.0", "value": text, "u": u,
            "d": d, "g": g}
    return json.dumps({"command": "message", "identifier": protocol.CHANNEL_IDENTIFIER, "data": json.dumps(data)})


async def send(ws: aiohttp.ClientWebSocketResponse, frame: str) -> dict[str, Any]:
    await ws.send_str(frame)
    return await recv_json(ws)


async def test_a_snapshot_is_acked_without_q_stored_and_never_journaled_or_delivered(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    follower = await env.connect(await env.follower_token("s1"))
    await subscribe(follower, ["s1"])
    publisher = await env.connect(strategy["publish_secret"])
    frame = command(strategy, snapshot("s1", trades=[{"id": "t1", "t": time.time() - 60, "pnl": "2.5"}]), u="p-1")
    assert await send(publisher, frame) == {"type": "ack", "u": "p-1", "topic": "p"}
    # a re-send after a lost ack gets the same ack, and the snapshot is not stored twice
    assert await send(publisher, frame) == {"type": "ack", "u": "p-1", "topic": "p"}
    with pytest.raises(asyncio.TimeoutError):
        await recv_json(follower, 0.3)  # followers never receive a snapshot: nothing to trade on
    assert await env.hub.state.store.last_q("s1") == 0
    head = await env.hub.state.store.run(lambda db: db.performance_head("s1"))
    assert head is not None and head.points == 1 and head.currency == "USDT" and head.signed_points == 0
    # a signal published afterwards still gets q = 1
    signal_ack = await send(publisher, protocol.build_publish_command(
        strategy["feed_id"], {"identifier": "s1", "version": "1.0.0", "signals": []}, "sig-1", time.time(), None))
    assert signal_ack == {"type": "ack", "u": "sig-1", "q": 1}


HOSTILE = [
    ("NaN equity", '{"identifier":"s1","t":%T,"equity":NaN,"currency":"USDT"}', "bad_snapshot: data.value.equity"),
    ("NaN text", '{"identifier":"s1","t":%T,"equity":"NaN","currency":"USDT"}', "bad_snapshot: data.value.equity"),
    ("Infinity flow", '{"identifier":"s1","t":%T,"equity":"1","flow":Infinity,"currency":"USDT"}',
     "bad_snapshot: data.value.flow must be a finite number"),
    ("1e999", '{"identifier":"s1","t":%T,"equity":1e999,"currency":"USDT"}', "bad_snapshot: data.value.equity"),
    ("huge int", '{"identifier":"s1","t":%T,"equity":' + "9" * 400 + ',"currency":"USDT"}',
     "bad_snapshot: data.value.equity must be within a float's range"),
    ("huge int time", '{"identifier":"s1","t":' + "9" * 400 + ',"equity":"1","currency":"USDT"}',
     "bad_snapshot: data.value.t must be within a float's range"),
    ("negative", '{"identifier":"s1","t":%T,"equity":"-5","currency":"USDT"}',
     "bad_snapshot: data.value.equity must not be negative"),
    ("future", '{"identifier":"s1","t":%F,"equity":"1","currency":"USDT"}', "future_time: data.value.t is"),
    ("future trade", '{"identifier":"s1","t":%T,"equity":"1","currency":"USDT","trades":[{"id":"x","t":%F,"pnl":"1"}]}',
     "future_time: data.value.trades[0].t"),
    ("stale", '{"identifier":"s1","t":%S,"equity":"1","currency":"USDT"}', "stale: data.value.t is"),
    ("milliseconds", '{"identifier":"s1","t":%M,"equity":"1","currency":"USDT"}', "bad_snapshot: data.value.t must be unix"),
    ("bool fills", '{"identifier":"s1","t":%T,"equity":"1","currency":"USDT","fills":true}',
     "bad_snapshot: data.value.fills must be an integer"),
    ("unknown key", '{"identifier":"s1","t":%T,"equity":"1","currency":"USDT","q":7}',
     "bad_snapshot: data.value has unknown keys: ['q']"),
    ("bad currency", '{"identifier":"s1","t":%T,"equity":"1","currency":"<b>"}', "bad_snapshot: data.value.currency"),
    ("other strategy", '{"identifier":"s2","t":%T,"equity":"1","currency":"USDT"}',
     "forbidden: this publish secret is for strategy s1, not s2"),
    ("not an object", '[1, 2]', "bad_snapshot: data.value must be a JSON object"),
    ("not JSON", '{"identifier"', "bad_snapshot: data.value is not valid JSON"),
]


@pytest.mark.parametrize("name,value,reason", HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_snapshots_are_nacked_with_a_reason(env: HubEnv, name: str, value: str, reason: str) -> None:
    strategy = await env.strategy("s1")
    await env.strategy("s2")
    now = time.time()
    text = (value.replace("%T", str(round(now, 3))).replace("%F", str(round(now + 3600)))
            .replace("%S", str(round(now - 8 * 86400))).replace("%M", str(int(now * 1000) * 1000)))
    publisher = await env.connect(strategy["publish_secret"])
    answer = await send(publisher, command(strategy, text, u="bad-1"))
    assert answer["type"] == "nack" and answer["u"] == "bad-1", answer
    assert answer["message"].startswith(reason), answer
    assert await env.hub.state.store.run(lambda db: db.performance_head("s1")) is None
    # the link stays up: a good snapshot after it is acked
    assert (await send(publisher, command(strategy, snapshot("s1"))))["type"] == "ack"


async def test_envelope_refusals_signature_and_pace(env: HubEnv) -> None:
    private_key, public_key = protocol.generate_keypair()
    strategy = await env.strategy("k1", public_key=public_key)
    other = await env.strategy("k2")
    publisher = await env.connect(strategy["publish_secret"])
    follower = await env.connect(await env.follower_token("k1"))

    async def refused(ws: aiohttp.ClientWebSocketResponse, frame: str) -> str:
        answer = await send(ws, frame)
        assert answer["type"] == "nack", answer
        return answer["message"]

    assert (await refused(follower, command(strategy, snapshot("k1")))).startswith(
        "forbidden: only a strategy's publish secret may report its performance")
    assert (await refused(publisher, command(strategy, snapshot("k1"), feed_id=other["feed_id"]))).startswith(
        "bad_feed_id: data.feed_id is not the stream id of k1")
    assert (await refused(publisher, command(strategy, snapshot("k1")))).startswith(
        "bad_signature: data.g missing (strategy has a public key)")
    wrong_key, _ = protocol.generate_keypair()
    assert (await refused(publisher, command(strategy, snapshot("k1"), private_key=wrong_key))).startswith(
        "bad_signature: data.g does not verify")
    # a signal's signature over the same fields does not verify a snapshot ("p" vs "s" in the signed payload)
    value = snapshot("k1")
    forged = json.loads(command(strategy, value, u="f-1"))
    data = json.loads(forged["data"])
    data["g"] = protocol.sign_message(private_key, data["d"], "k1", value, "f-1")
    forged["data"] = json.dumps(data)
    assert (await refused(publisher, json.dumps(forged))).startswith("bad_signature: data.g does not verify")
    good = await send(publisher, command(strategy, snapshot("k1"), private_key=private_key))
    assert good["type"] == "ack", good
    # the next one within 10 s: refused with when to retry
    pace = await refused(publisher, command(strategy, snapshot("k1", t=time.time() + 1), private_key=private_key))
    assert pace.startswith("rate_limited: at most one performance snapshot per 10 s for k1, retry in"), pace
    head = await env.hub.state.store.run(lambda db: db.performance_head("k1"))
    assert head is not None and head.points == head.signed_points == 1


@pytest.mark.parametrize("env", [0.0], indirect=True)
async def test_time_goes_forward_and_the_currency_stays(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    publisher = await env.connect(strategy["publish_secret"])
    now = round(time.time(), 3)
    assert (await send(publisher, command(strategy, snapshot("s1", t=now))))["type"] == "ack"
    back = await send(publisher, command(strategy, snapshot("s1", t=now - 5)))
    assert back["message"].startswith("out_of_order: data.value.t must be later"), back
    moved = await send(publisher, command(strategy, snapshot("s1", t=now + 1, currency="BTC")))
    assert moved["message"] == "currency_changed: s1 reports in USDT, not BTC", moved


async def test_performance_json_visibility(env: HubEnv) -> None:
    public = await env.strategy("pub")
    await env.strategy("priv", visibility="private")
    member = await env.follower_token("priv")
    outsider = await env.follower_token("pub")
    store = env.hub.state.store
    t0 = time.time() - 5 * 86400
    # two snapshots a day apart (the store takes `now`: the hub's clock check is the socket's job)
    for strategy_id in ("pub", "priv"):
        for i, (equity, flow) in enumerate((("1000", None), ("1650", "500"))):
            snap = performance.parse_snapshot(snapshot(strategy_id, t=t0 + i * 86400, equity=equity, flow=flow))
            result = await store.run(lambda db, s=snap, n=i: db.add_performance(f"u{n}", s, False, t0 + n * 86400, 10))
            assert result.outcome == "stored"

    async def get(strategy_id: str, token: str | None) -> tuple[int, Any]:
        async with env.session.get(f"{env.url}/api/strategies/{strategy_id}/performance", headers=auth(token)) as resp:
            return resp.status, await resp.json()

    status, body = await get("pub", None)  # anyone, no token
    assert status == 200, body
    # (1650 - 500) / 1000 = 1.15: +15 %, the 500 deposit is not profit
    assert body["figures"]["roi_all"] == "0.15" and body["figures"]["max_drawdown"] == "0"
    assert body["figures"]["roi_7d"] is None and body["figures"]["copiers"] == 1 and body["currency"] == "USDT"
    assert body["signed"] == "none" and body["points"] == 2 and body["reported_by"] == "the publishing bot"
    assert [p["index"] for p in body["series"]] == ["1", "1.15"]
    # the author's amounts stay the author's: relative figures for everyone, values for its secret and the admin
    assert body["amounts"] == "hidden" and "equity" not in body["series"][0] and "last_equity" not in body["figures"]
    for token in (public["publish_secret"], DEFAULT_ADMIN_TOKEN):
        status, body = await get("pub", token)
        assert body["amounts"] == "shown" and body["figures"]["net_flow"] == "500", body
        assert [p["equity"] for p in body["series"]] == ["1000", "1650"] and body["series"][1]["flow"] == "500"
    unknown = await get("nope", None)
    assert unknown[0] == 404
    for token in (None, outsider, public["publish_secret"]):  # a private strategy: the unknown id's very answer
        status, body = await get("priv", token)
        assert (status, body) == (404, {"error": "not_found", "message": "unknown strategy priv"})
    for token in (member, DEFAULT_ADMIN_TOKEN):
        status, body = await get("priv", token)
        assert status == 200 and body["figures"]["roi_all"] == "0.15", body
    status, body = await get("pub", "ft_not_a_token")
    assert status == 401 and body["error"] == "unauthorized"


async def test_info_announces_protocol_3(env: HubEnv) -> None:
    async with env.session.get(f"{env.url}/api/info") as resp:
        assert (await resp.json())["protocol_version"] == 3
