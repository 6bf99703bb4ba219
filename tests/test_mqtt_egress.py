"""MQTT egress against a real Debian mosquitto on 127.0.0.1, configured by `octobot-signals mosquitto-config`:
order, latency, broker restart, hub restart, the followers' ACL (revocation, new tokens) and bad input."""
from __future__ import annotations

import asyncio
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    admin_create_follower,
    admin_create_strategy,
    auth,
    free_port,
    publish,
    ws_connect,
)
from mqtt_broker import (
    MosquittoProcess,
    Subscriber,
    assert_in_order,
    mqtt_identity,
    require_mosquitto,
    revoke,
    with_test_persistence,
    write_mosquitto_config,
)
from octobot_signals.hub.mqtt_egress import BrokerAddress, EgressUrlError, backoff_delay, parse_broker_url
from octobot_signals.hub.mqtt_runtime import MqttSettings
from octobot_signals.hub.server import HubHandle, start_hub

FAST_RETRY = {"backoff_base_s": 0.05, "backoff_cap_s": 0.5, "connect_timeout_s": 2.0, "publish_timeout_s": 2.0}


async def _hub_with_strategy(data: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN)
    try:
        strategy = await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
        follower = await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
    finally:
        await hub.stop()
    return strategy, follower


async def _start_hub(data: Path, out: Path, hub_port: int, **tuning: float) -> HubHandle:
    settings = MqttSettings(egress=BrokerAddress("127.0.0.1", hub_port), mosquitto_dir=out,
                            egress_tuning={**FAST_RETRY, **tuning}, acl_interval_s=0.1)
    return await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN, mqtt=settings)


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


async def test_egress_order_latency_broker_restart_and_hub_restart(tmp_path: Path) -> None:
    require_mosquitto()
    data, out = tmp_path / "hub", tmp_path / "mosquitto"
    followers_port, hub_port = free_port(), free_port()
    strategy, follower = await _hub_with_strategy(data)
    # journaled before any egress existed: a broker's first use starts at the present, never replays these
    hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN)
    async with aiohttp.ClientSession() as session:
        ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
        for _ in range(3):
            assert (await publish(ws, strategy))["type"] == "ack"
        await ws.close()
    await hub.stop()

    await asyncio.to_thread(write_mosquitto_config, data, out, followers_port, hub_port)
    (tmp_path / "broker-state").mkdir()
    conf = with_test_persistence(out / "mosquitto.conf", tmp_path / "broker-state")
    with MosquittoProcess(conf, [followers_port, hub_port]) as broker:
        hub = await _start_hub(data, out, hub_port)
        identity = await mqtt_identity(hub.base_url, follower["token"])
        assert identity["topics"] == ["t/s1"] and identity["username"] != follower["token"]
        sub = Subscriber(followers_port, identity["username"], identity["topics"], persistent=True)
        sub.start()
        try:
            await asyncio.wait_for(sub.subscribed.wait(), 10)
            assert hub.mqtt is not None and hub.mqtt.egress is not None
            await asyncio.wait_for(hub.mqtt.egress.connected.wait(), 10)
            async with aiohttp.ClientSession() as session:
                ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
                # 1) live: latency from the publisher's d (before the hub's journal fsync) to the subscriber
                for _ in range(200):
                    assert (await publish(ws, strategy))["type"] == "ack"
                    await asyncio.sleep(0.005)
                await sub.wait_for(200)
                latencies = [(received - message["d"]) * 1000 for received, message in sub.messages]
                p50, p99 = statistics.median(latencies), _percentile(latencies, 99)
                print(f"\nMQTT egress, journaled -> subscriber (n={len(latencies)}): p50 {p50:.2f} ms, "
                      f"p99 {p99:.2f} ms, max {max(latencies):.2f} ms")
                # the 50 ms target is asserted where it is defined, at the stock feed in its own process
                # (test_mqtt_stock_feed.py); this subscriber shares the hub's event loop, hence a looser bound
                assert p99 < 100, latencies
                assert sub.qs()[0] == 4  # the 3 older messages were not replayed

                # 2) broker restart: journaled while it is down, published in order when it is back
                broker.stop()
                for _ in range(20):
                    assert (await publish(ws, strategy))["type"] == "ack"  # the hub never waits on the broker
                await asyncio.sleep(0.3)  # several failed reconnects (backoff) meanwhile
                connections = hub.mqtt.egress.connections
                await asyncio.to_thread(broker.start)
                await sub.wait_for(220)
                assert hub.mqtt.egress.connections == connections + 1
                repeats = assert_in_order(sub.qs(), 4, 223)
                print(f"broker restart: q 4..223 all received in order, {repeats} in-order repeats "
                      f"(unacknowledged when the broker went away)")
                await ws.close()

            # 3) hub restart: the saved position is the last acknowledged q; nothing before it is sent again
            await hub.stop()
            positions = await _positions(data, f"127.0.0.1:{hub_port}")
            assert positions == {"s1": 223}
            before = len(sub.messages)
            hub = await _start_hub(data, out, hub_port)
            async with aiohttp.ClientSession() as session:
                ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
                for _ in range(5):
                    assert (await publish(ws, strategy))["type"] == "ack"
                await ws.close()
            await sub.wait_for(225)
            assert [m["q"] for _, m in sub.messages[before:]] == [224, 225, 226, 227, 228]
            # the stock feed's envelope: plain JSON with the OctoBot community feed keys
            last = sub.messages[-1][1]
            assert set(last) >= {"u", "i", "t", "v", "d", "s"} and last["t"] == "t" and last["v"] == "1.0.0"
            assert last["s"]["identifier"] == "s1" and last["i"] == strategy["feed_id"]
        finally:
            await sub.stop()
            await hub.stop()


async def _positions(data: Path, broker: str) -> dict[str, int]:
    from octobot_signals.hub.store import DB_FILE, SqliteStore

    db = SqliteStore(data / DB_FILE)
    try:
        return db.egress_positions(broker)
    finally:
        db.close()


async def test_followers_acl_follows_tokens_and_revocation(tmp_path: Path) -> None:
    require_mosquitto()
    data, out = tmp_path / "hub", tmp_path / "mosquitto"
    followers_port, hub_port = free_port(), free_port()
    strategy, alice = await _hub_with_strategy(data)
    hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN)
    try:
        bob = await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
        await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "private1", visibility="private")
    finally:
        await hub.stop()
    await asyncio.to_thread(write_mosquitto_config, data, out, followers_port, hub_port)
    with MosquittoProcess(out / "mosquitto.conf", [followers_port, hub_port]) as broker:
        hub = await _start_hub(data, out, hub_port)
        subs: list[Subscriber] = []
        try:
            assert hub.mqtt is not None and hub.mqtt.acl_sync is not None and hub.mqtt.egress is not None
            ids = {name: await mqtt_identity(hub.base_url, f["token"]) for name, f in (("alice", alice), ("bob", bob))}
            # alice also tries a private strategy she is no member of, and bob's topic list is what he may read
            a = Subscriber(followers_port, ids["alice"]["username"], ["t/s1", "t/private1"])
            b = Subscriber(followers_port, ids["bob"]["username"], ids["bob"]["topics"])
            stranger = Subscriber(followers_port, "osf_" + "x" * 32, ["t/s1"])  # a name the hub never issued
            anonymous = Subscriber(followers_port, None, ["t/s1"])
            subs = [a, b, stranger, anonymous]
            for sub in subs:
                sub.start()
            for sub in (a, b, stranger):
                await asyncio.wait_for(sub.subscribed.wait(), 10)
            await asyncio.wait_for(hub.mqtt.egress.connected.wait(), 10)
            async with aiohttp.ClientSession() as session:
                ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
                assert (await publish(ws, strategy))["type"] == "ack"
                await a.wait_for(1)
                await b.wait_for(1)

                reloads, broker_reloads = hub.mqtt.acl_sync.reloads, broker.reloads()
                await revoke(hub.base_url, DEFAULT_ADMIN_TOKEN, bob["token_id"])
                await _until(lambda: hub.mqtt.acl_sync.reloads > reloads)  # type: ignore[union-attr]
                await broker.wait_reloaded(broker_reloads)  # SIGHUP is asynchronous
                acl = (out / "followers.acl").read_text()
                assert ids["bob"]["username"] not in acl and ids["alice"]["username"] in acl
                # a token created while the hub runs gets a username the broker knows within one interval
                carol = await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
                carol_id = await mqtt_identity(hub.base_url, carol["token"])
                await _until(lambda: carol_id["username"] in (out / "followers.acl").read_text())
                await _until(lambda: hub.mqtt.acl_sync.reloads > reloads + 1)  # type: ignore[union-attr]
                await broker.wait_reloaded(broker_reloads + 1)
                c = Subscriber(followers_port, carol_id["username"], ["t/s1"])
                subs.append(c)
                c.start()
                await asyncio.wait_for(c.subscribed.wait(), 10)

                for _ in range(3):
                    assert (await publish(ws, strategy))["type"] == "ack"
                await a.wait_for(4)
                await c.wait_for(3)
                await asyncio.sleep(0.5)  # room for anything that would still reach the others
                await ws.close()
            assert b.subscribed.is_set(), "bob's connection stays open; it just receives nothing any more"
            assert b.qs() == [1], b.qs()  # nothing after the revocation
            assert stranger.messages == [] and anonymous.messages == []
            assert anonymous.refused is not None and "135" in anonymous.refused  # no username: not authorised
            assert {m["s"]["identifier"] for _, m in a.messages} == {"s1"}  # nothing from private1
            # the followers' listener is read-only: alice cannot inject a message
            async with aiomqtt.Client("127.0.0.1", followers_port, username=ids["alice"]["username"]) as client:
                await client.publish("t/s1", b'{"u":"forged","v":"1.0.0","t":"t","s":{}}', qos=1)
            await asyncio.sleep(0.3)
            assert "forged" not in {m["u"] for _, m in a.messages + c.messages}
        finally:
            for sub in subs:
                await sub.stop()
            await hub.stop()


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_wrong_hub_password_is_retried_and_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_mosquitto()
    data, out = tmp_path / "hub", tmp_path / "mosquitto"
    followers_port, hub_port = free_port(), free_port()
    await _hub_with_strategy(data)
    await asyncio.to_thread(write_mosquitto_config, data, out, followers_port, hub_port)
    wrong = "wrong-password-" + "z" * 20
    caplog.set_level(logging.DEBUG)
    with MosquittoProcess(out / "mosquitto.conf", [followers_port, hub_port]):
        settings = MqttSettings(egress=BrokerAddress("127.0.0.1", hub_port), password=wrong, egress_tuning=FAST_RETRY)
        hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN, mqtt=settings)
        try:
            await asyncio.sleep(1.0)
            assert hub.mqtt is not None and hub.mqtt.egress is not None
            assert not hub.mqtt.egress.connected.is_set() and hub.mqtt.egress.connections == 0
        finally:
            await hub.stop()
    retries = [r for r in caplog.records if r.name == "octobot_signals.hub.mqtt_egress" and "retry" in r.getMessage()]
    assert len(retries) >= 2, "the egress keeps retrying"
    assert all(wrong not in r.getMessage() for r in caplog.records)
    assert wrong not in (out / "hub.passwd").read_text()


def test_broker_url_validation_names_the_field() -> None:
    assert parse_broker_url("mqtt://127.0.0.1:1884") == BrokerAddress("127.0.0.1", 1884)
    assert parse_broker_url("mqtt://broker.example").port == 1883
    for bad, expected in [
        ("mqtt://hub:secret@127.0.0.1:1884", "no credentials"),
        ("http://127.0.0.1:1884", "scheme"),
        ("mqtt://127.0.0.1:99999", "port"),
        ("mqtt://127.0.0.1:0", "port"),
        ("mqtt://:1884", "host"),
        ("mqtt://127.0.0.1:1884/x", "nothing after"),
    ]:
        with pytest.raises(EgressUrlError) as err:
            parse_broker_url(bad)
        assert str(err.value).startswith("--mqtt-egress:") and expected in str(err.value), str(err.value)
        assert "secret" not in str(err.value)


def test_backoff_is_capped_and_jittered() -> None:
    assert backoff_delay(0, 0.2, 10, rng=lambda: 1.0) == 0.2
    assert backoff_delay(3, 0.2, 10, rng=lambda: 1.0) == pytest.approx(1.6)
    assert backoff_delay(50, 0.2, 10, rng=lambda: 1.0) == 10
    assert backoff_delay(50, 0.2, 10, rng=lambda: 0.0) == 0


async def test_api_mqtt_username(tmp_path: Path) -> None:
    hub = await start_hub("127.0.0.1", 0, tmp_path / "plain", admin_token=DEFAULT_ADMIN_TOKEN)
    try:
        await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
        follower = await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{hub.base_url}/api/mqtt", headers=auth(follower["token"])) as resp:
                assert resp.status == 404  # a hub without the MQTT options has no such endpoint
    finally:
        await hub.stop()
    hub = await start_hub("127.0.0.1", 0, tmp_path / "mqtt", admin_token=DEFAULT_ADMIN_TOKEN, mqtt=MqttSettings())
    try:
        await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
        await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "p1", visibility="private")
        follower = await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
        member = await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "p1")
        first = await mqtt_identity(hub.base_url, follower["token"])
        assert first == await mqtt_identity(hub.base_url, follower["token"])  # stable
        assert first["topics"] == ["t/s1"] and first["username"].startswith("osf_")
        assert follower["token"] not in first["username"] and len(first["username"]) >= 36
        assert (await mqtt_identity(hub.base_url, member["token"]))["topics"] == ["t/p1", "t/s1"]
        async with aiohttp.ClientSession() as session:
            for headers, status in (({}, 401), (auth("ft_unknown"), 401), (auth(DEFAULT_ADMIN_TOKEN), 403)):
                async with session.get(f"{hub.base_url}/api/mqtt", headers=headers) as resp:
                    body = await resp.json()
                    assert resp.status == status and body["error"], body
        await revoke(hub.base_url, DEFAULT_ADMIN_TOKEN, follower["token_id"])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{hub.base_url}/api/mqtt", headers=auth(follower["token"])) as resp:
                assert resp.status == 401
    finally:
        await hub.stop()
