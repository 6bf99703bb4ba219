"""A stock OctoBot 2.1.1 follows a strategy on our hub over MQTT: OctoBot's own community MQTT feed
(its venv, unmodified; tests/octobot_real/stock_mqtt_follower.py) receives the bundles our hub journaled,
through a real Debian mosquitto configured by `octobot-signals mosquitto-config`; a revoked token's MQTT
username receives nothing more; latency journal -> stock feed is measured (p99 < 50 ms on loopback).

The stock feed always connects to port 1883: the followers' listener takes 127.0.0.1:1883 when it is
free; otherwise the driver sets the feed's MQTT_BROKER_PORT class constant (printed below either way).
"""
from __future__ import annotations

import asyncio
import json
import statistics
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    admin_create_follower,
    admin_create_strategy,
    free_port,
    publish,
    ws_connect,
)
from mqtt_broker import (
    MosquittoProcess,
    mqtt_identity,
    port_is_free,
    require_mosquitto,
    revoke,
    write_mosquitto_config,
)
from octobot_real.support import clean_env, octobot_venv, python_of, skip_requested
from octobot_signals.hub.mqtt_egress import BrokerAddress
from octobot_signals.hub.mqtt_runtime import MqttSettings
from octobot_signals.hub.server import start_hub

DRIVER = Path(__file__).parent / "octobot_real" / "stock_mqtt_follower.py"
STOCK_PORT = 1883
LIVE_MESSAGES = 200


class StockFollower:
    """The driver in OctoBot's venv, in its own bot folder; reads its stdout lines as they come."""

    def __init__(self, venv: Path, bot_dir: Path, username: str, strategy_id: str, port: int) -> None:
        self.venv, self.bot_dir, self.username, self.strategy_id, self.port = venv, bot_dir, username, strategy_id, port
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] | None = None
        self.messages: list[dict[str, Any]] = []
        self.done: dict[str, Any] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        defaults = sorted(self.venv.glob("lib/python3.*/site-packages/octobot/config/default_config.json"))
        config = json.loads(defaults[0].read_text(encoding="utf-8"))
        config.setdefault("community", {})["mqtt_uuid"] = self.username  # where a stock bot keeps its MQTT id
        (self.bot_dir / "user").mkdir(parents=True)
        (self.bot_dir / "user" / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
        self.proc = await asyncio.create_subprocess_exec(
            str(python_of(self.venv)), str(DRIVER), self.strategy_id, str(self.port), cwd=self.bot_dir,
            env=clean_env(COMMUNITY_FEED_URL="127.0.0.1"), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=open(self.bot_dir / "stderr.log", "wb"))
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            kind, _, payload = raw.decode().strip().partition(" ")
            if kind == "READY":
                self.ready = json.loads(payload)
            elif kind == "MSG":
                self.messages.append(json.loads(payload))
            elif kind == "DONE":
                self.done = json.loads(payload)

    async def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.ready is None:
            assert self.done is None, f"stock feed did not subscribe: {self.done} {self.log()}"
            assert asyncio.get_running_loop().time() < deadline, f"stock feed not ready: {self.log()}"
            await asyncio.sleep(0.05)
        return self.ready

    async def wait_for(self, count: int, timeout: float = 20) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < count:
            assert asyncio.get_running_loop().time() < deadline, f"{len(self.messages)}/{count}: {self.log()}"
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"stop\n")
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)

    def log(self) -> str:
        return (self.bot_dir / "stderr.log").read_text(errors="replace")[-3000:]


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def _order_bundle(strategy_id: str, n: int) -> dict[str, Any]:
    content = {"action": "create", "strategy": "stock-mqtt", "symbol": "BTC/USDT", "exchange": "binance",
               "exchange_type": "spot", "side": "buy", "type": "buy_limit", "quantity": 0.01,
               "target_amount": "5.0%", "limit_price": 19000.0, "current": 20000.0, "order_id": f"leader-{n}"}
    return {"identifier": strategy_id, "version": "1.0.0",
            "signals": [{"topic": "orders", "content": content, "dependencies": None}]}


async def test_stock_octobot_feed_follows_over_mqtt_and_revoked_user_gets_nothing(tmp_path: Path) -> None:
    if skip_requested():
        pytest.skip("real OctoBot tests skipped (OCTOBOT_SIGNALS_SKIP_REAL=1)")
    require_mosquitto()
    venv = await asyncio.to_thread(octobot_venv)
    followers_port = STOCK_PORT if port_is_free(STOCK_PORT) else free_port()
    hub_port = free_port()
    data, out = tmp_path / "hub", tmp_path / "mosquitto"

    hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN)
    try:
        strategy = await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "grid-1")
        alice = await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "grid-1")
        bob = await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "grid-1")
    finally:
        await hub.stop()
    await asyncio.to_thread(write_mosquitto_config, data, out, followers_port, hub_port)

    followers: list[StockFollower] = []
    with MosquittoProcess(out / "mosquitto.conf", [followers_port, hub_port]) as broker:
        settings = MqttSettings(egress=BrokerAddress("127.0.0.1", hub_port), mosquitto_dir=out, acl_interval_s=0.1)
        hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN, mqtt=settings)
        try:
            assert hub.mqtt is not None and hub.mqtt.egress is not None and hub.mqtt.acl_sync is not None
            names = {who: (await mqtt_identity(hub.base_url, f["token"]))["username"] for who, f in
                     (("alice", alice), ("bob", bob))}
            followers = [StockFollower(venv, tmp_path / who, names[who], "grid-1", followers_port)
                         for who in ("alice", "bob")]
            for follower in followers:
                await follower.start()
            ready = [await follower.wait_ready() for follower in followers]
            print(f"\nstock CommunityMQTTFeed ready: {ready[0]}")
            a, b = followers
            await asyncio.wait_for(hub.mqtt.egress.connected.wait(), 10)

            async with aiohttp.ClientSession() as session:
                ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
                first = await publish(ws, strategy, bundle=_order_bundle("grid-1", 0))
                assert first["type"] == "ack"
                await a.wait_for(1)
                await b.wait_for(1)  # bob's name works while his token is live
                assert a.messages[0]["identifier"] == "grid-1"
                assert a.messages[0]["signals"] == [{"topic": "orders", "order_id": "leader-0"}]

                reloads, broker_reloads = hub.mqtt.acl_sync.reloads, broker.reloads()
                await revoke(hub.base_url, DEFAULT_ADMIN_TOKEN, bob["token_id"])
                deadline = asyncio.get_running_loop().time() + 10
                while hub.mqtt.acl_sync.reloads == reloads:
                    assert asyncio.get_running_loop().time() < deadline, "ACL not reloaded after the revocation"
                    await asyncio.sleep(0.02)
                await broker.wait_reloaded(broker_reloads)  # the revocation holds from here on

                for n in range(1, LIVE_MESSAGES + 1):
                    assert (await publish(ws, strategy, bundle=_order_bundle("grid-1", n)))["type"] == "ack"
                    await asyncio.sleep(0.005)
                await a.wait_for(LIVE_MESSAGES + 1)
                await asyncio.sleep(1.0)  # anything still on its way to bob would arrive meanwhile
                await ws.close()
        finally:
            for follower in followers:
                await follower.stop()
            await hub.stop()

    assert [m["q"] for m in a.messages] == list(range(1, LIVE_MESSAGES + 2)), "in q order, none lost or repeated"
    assert [m["signals"][0]["order_id"] for m in a.messages] == [f"leader-{n}" for n in range(LIVE_MESSAGES + 1)]
    assert [m["q"] for m in b.messages] == [1], "the revoked token's MQTT user received nothing after revocation"
    assert a.done is not None and len(a.done["received"]) == LIVE_MESSAGES + 1
    latencies = [(m["recv"] - m["d"]) * 1000 for m in a.messages[1:]]
    p50, p99 = statistics.median(latencies), _percentile(latencies, 99)
    print(f"journaled -> stock OctoBot CommunityMQTTFeed callback (n={len(latencies)}, from the publisher's d, "
          f"so the hub's journal fsync is included): p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {max(latencies):.2f} ms; "
          f"followers' listener 127.0.0.1:{followers_port} (port constant patched: {ready[0]['port_constant_patched']})")
    assert p99 < 50, latencies
