"""A stock OctoBot 2.1.1 follows a strategy on our hub over MQTT: OctoBot's own community MQTT feed
(its venv, unmodified; tests/octobot_real/stock_mqtt_follower.py) receives the bundles our hub journaled,
through a real Debian mosquitto configured by `octobot-signals mosquitto-config`; a revoked token's MQTT
username receives nothing more; latency journal -> stock feed is measured (p99 < 50 ms on loopback).
A bundle published with decimal-string numbers reaches the stock feed with JSON numbers, and OctoBot's
stock RemoteTradingSignalsModeConsumer (from its default tentacles zip) rests the limit at its price.

The stock feed always connects to port 1883: the followers' listener takes 127.0.0.1:1883 when it is
free; otherwise the driver sets the feed's MQTT_BROKER_PORT class constant (printed below either way).
"""
from __future__ import annotations

import asyncio
import json
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    admin_create_follower,
    admin_create_strategy,
    auth,
    free_port,
    publish,
    recv_json,
    subscribe,
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
STDOUT_LINE_LIMIT = 1 << 22  # DONE lists every message received: more than asyncio's default 64 KiB line
STOCK_ZIP = Path(__file__).resolve().parents[2] / "shared" / "octobot-2.1.1" / "octobot-default-tentacles-2.1.1.zip"


class StockFollower:
    """The driver in OctoBot's venv, in its own bot folder; reads its stdout lines as they come."""

    def __init__(self, venv: Path, bot_dir: Path, username: str, strategy_id: str, port: int,
                 stock_zip: Path | None = None) -> None:
        self.venv, self.bot_dir, self.username, self.strategy_id, self.port = venv, bot_dir, username, strategy_id, port
        self.stock_zip = stock_zip  # set: the driver also applies orders with the stock mode's consumer
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] | None = None
        self.messages: list[dict[str, Any]] = []
        self.applied: list[dict[str, Any]] = []
        self.done: dict[str, Any] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        defaults = sorted(self.venv.glob("lib/python3.*/site-packages/octobot/config/default_config.json"))
        config = json.loads(defaults[0].read_text(encoding="utf-8"))
        config.setdefault("community", {})["mqtt_uuid"] = self.username  # where a stock bot keeps its MQTT id
        (self.bot_dir / "user").mkdir(parents=True)
        (self.bot_dir / "user" / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
        extra = [] if self.stock_zip is None else [str(self.stock_zip)]
        self.proc = await asyncio.create_subprocess_exec(
            str(python_of(self.venv)), str(DRIVER), self.strategy_id, str(self.port), *extra, cwd=self.bot_dir,
            env=clean_env(COMMUNITY_FEED_URL="127.0.0.1"), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=open(self.bot_dir / "stderr.log", "wb"),
            limit=STDOUT_LINE_LIMIT)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            kind, _, payload = raw.decode().strip().partition(" ")
            if kind == "READY":
                self.ready = json.loads(payload)
            elif kind == "MSG":
                self.messages.append(json.loads(payload))
            elif kind == "APPLIED":
                self.applied.append(json.loads(payload))
            elif kind == "DONE":
                self.done = json.loads(payload)

    async def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.ready is None:
            assert self.done is None, f"stock feed did not subscribe: {self.done} {self.log()}"
            assert asyncio.get_running_loop().time() < deadline, f"stock feed not ready: {self.log()}"
            await asyncio.sleep(0.05)
        return self.ready

    async def wait_for(self, count: int, timeout: float = 20, applied: bool = False) -> None:
        seen = self.applied if applied else self.messages
        deadline = asyncio.get_running_loop().time() + timeout
        while len(seen) < count:
            assert asyncio.get_running_loop().time() < deadline, f"{len(seen)}/{count}: {self.log()}"
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


class _StockRig(NamedTuple):
    venv: Path
    followers_port: int
    hub_port: int
    data: Path
    out: Path
    strategy: dict[str, Any]
    followers: list[dict[str, Any]]


async def _stock_rig(tmp_path: Path, follower_count: int) -> _StockRig:
    """OctoBot's venv, the ports, a hub data dir with strategy grid-1 and its followers, and mosquitto's config."""
    require_mosquitto()
    venv = await asyncio.to_thread(octobot_venv)
    followers_port = STOCK_PORT if port_is_free(STOCK_PORT) else free_port()
    hub_port = free_port()
    data, out = tmp_path / "hub", tmp_path / "mosquitto"
    hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN)
    try:
        strategy = await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "grid-1")
        followers = [await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "grid-1")
                     for _ in range(follower_count)]
    finally:
        await hub.stop()
    await asyncio.to_thread(write_mosquitto_config, data, out, followers_port, hub_port)
    return _StockRig(venv, followers_port, hub_port, data, out, strategy, followers)


def _order_bundle(strategy_id: str, n: int) -> dict[str, Any]:
    content = {"action": "create", "strategy": "stock-mqtt", "symbol": "BTC/USDT", "exchange": "binance",
               "exchange_type": "spot", "side": "buy", "type": "buy_limit", "quantity": 0.01,
               "target_amount": "5.0%", "limit_price": 19000.0, "current": 20000.0, "order_id": f"leader-{n}"}
    return {"identifier": strategy_id, "version": "1.0.0",
            "signals": [{"topic": "orders", "content": content, "dependencies": None}]}


async def test_stock_octobot_feed_follows_over_mqtt_and_revoked_user_gets_nothing(tmp_path: Path) -> None:
    if skip_requested():
        pytest.skip("real OctoBot tests skipped (OCTOBOT_SIGNALS_SKIP_REAL=1)")
    venv, followers_port, hub_port, data, out, strategy, (alice, bob) = await _stock_rig(tmp_path, 2)

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


def _string_number_order(order_id: str, order_type: str, side: str, price: str, **fields: Any) -> dict[str, Any]:
    """Every key octobot-trading's publisher writes, numbers as decimal strings (PROTOCOL.md allows them)."""
    content = {"action": "create", "strategy": "stock-mqtt", "symbol": "BTC/USDT", "exchange": "binance",
               "exchange_type": "spot", "side": side, "trigger_above": None, "type": order_type,
               "quantity": "0.05", "target_amount": "1%", "target_position": None, "updated_target_amount": None,
               "updated_target_position": None, "limit_price": price, "updated_limit_price": "0", "stop_price": "0",
               "updated_stop_price": "0", "current": "20000", "updated_current_price": "0", "reduce_only": False,
               "post_only": False, "group_id": None, "group_type": None, "active_swap_strategy_type": None,
               "active_swap_strategy_timeout": None, "active_swap_strategy_trigger_config": None, "tag": "1",
               "associated_order_ids": None, "update_with_triggering_order_fees": False, "order_id": order_id,
               "trailing_profile_type": None, "trailing_profile": None, "is_active": True,
               "active_trigger_price": None, "active_trigger_above": None, "cancel_policy_type": None,
               "cancel_policy_kwargs": None, "bundled_with": None, "chained_to": None, "additional_orders": []}
    content.update(fields)
    return content


def _string_number_bundle(strategy_id: str) -> dict[str, Any]:
    """A buy limit at 16000 with a take profit chained to it (nested), and a leverage edit, all as strings."""
    take_profit = _string_number_order("leader-tp", "sell_limit", "sell", "24000.5", chained_to="leader-entry")
    entry = _string_number_order("leader-entry", "buy_limit", "buy", "16000", additional_orders=[take_profit])
    leverage = {"action": "edit", "strategy": "stock-mqtt", "symbol": "BTC/USDT", "exchange": "binance",
                "exchange_type": "spot", "side": None, "leverage": "3"}
    return {"identifier": strategy_id, "version": "1.0.0",
            "signals": [{"topic": "orders", "content": entry, "dependencies": None},
                        {"topic": "positions", "content": leverage, "dependencies": None}]}


async def test_stock_mode_gets_json_numbers_and_rests_the_limit_at_its_price(tmp_path: Path) -> None:
    """Published with `"stop_price": "0", "limit_price": "16000"`: the stock feed's callback gets floats and the
    stock consumer (`stop_price or limit_price`) rests the buy at 16000, not 0; /cable and the history keep
    the strings, as journaled."""
    if skip_requested():
        pytest.skip("real OctoBot tests skipped (OCTOBOT_SIGNALS_SKIP_REAL=1)")
    if not STOCK_ZIP.is_file():
        pytest.skip(f"OctoBot's default tentacles zip not at {STOCK_ZIP}")
    venv, followers_port, hub_port, data, out, strategy, (alice,) = await _stock_rig(tmp_path, 1)

    follower: StockFollower | None = None
    with MosquittoProcess(out / "mosquitto.conf", [followers_port, hub_port]):
        settings = MqttSettings(egress=BrokerAddress("127.0.0.1", hub_port), mosquitto_dir=out, acl_interval_s=0.1)
        hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN, mqtt=settings)
        try:
            assert hub.mqtt is not None and hub.mqtt.egress is not None
            username = (await mqtt_identity(hub.base_url, alice["token"]))["username"]
            follower = StockFollower(venv, tmp_path / "alice", username, "grid-1", followers_port, stock_zip=STOCK_ZIP)
            await follower.start()
            await follower.wait_ready()
            await asyncio.wait_for(hub.mqtt.egress.connected.wait(), 10)
            async with aiohttp.ClientSession() as session:
                cable = await ws_connect(session, hub.base_url, alice["token"])
                await subscribe(cable, ["grid-1"])
                ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
                assert (await publish(ws, strategy, bundle=_string_number_bundle("grid-1")))["type"] == "ack"
                delivered = await recv_json(cable)  # the /cable copy
                await follower.wait_for(1, applied=True)
                async with session.get(f"{hub.base_url}/api/strategies/grid-1/signals?after=0",
                                       headers=auth(alice["token"])) as resp:
                    history = await resp.json()
                await ws.close()
                await cable.close()
        finally:
            if follower is not None:
                await follower.stop()
            await hub.stop()

    journaled = _string_number_bundle("grid-1")
    assert history[0]["s"] == journaled and delivered["message"]["s"] == journaled  # as published, strings kept

    # the money path first: what a stock bot would have done with the order
    applied = follower.applied[0]
    assert applied["errors"] == [], applied
    [entry] = applied["orders"]
    assert (entry["order_id"], entry["type"]) == ("leader-entry", "buy_limit")
    assert Decimal(entry["price"]) == Decimal("16000"), f"the stock mode rested the buy at {entry['price']}"
    assert Decimal(entry["quantity"]) == Decimal("0.05")  # 1% of 100 000 USDT / 20 000
    [take_profit] = entry["chained"]
    assert take_profit["order_id"] == "leader-tp"
    assert Decimal(take_profit["price"]) == Decimal("24000.5"), f"chained take profit at {take_profit['price']}"

    # the types the stock feed's callback got (json.loads of what the egress sent)
    order_types, position_types = follower.messages[0]["types"]
    for key in ("quantity", "limit_price", "stop_price", "current", "updated_limit_price", "updated_stop_price",
                "updated_current_price"):
        assert order_types[key] == "float", (key, order_types)
        assert order_types["additional_orders"][0][key] == "float", (key, order_types)
    assert (order_types["target_amount"], order_types["order_id"], order_types["tag"]) == ("str", "str", "str")
    assert order_types["additional_orders"][0]["target_amount"] == "str"
    assert position_types["leverage"] == "float"
