"""One live world for the tests that run real OctoBots: the local exchange, our hub, a strategy and its leader.

Everything in-process but the bots: the exchange (tests/local_exchange) and the hub share the test's event
loop, so each bot's REST polls and feed link are served while the test awaits. The leader publishes with our
own PublisherClient and its durable outbox, the way a publishing bot's bridge does.
"""
from __future__ import annotations

import asyncio
import contextlib
import getpass
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from hub_helpers import DEFAULT_ADMIN_TOKEN, admin_create_follower, admin_create_strategy, auth, free_port
from local_exchange import LocalExchange
from mqtt_broker import MosquittoProcess, port_is_free, require_mosquitto
from octobot_signals.feed.outbox import Outbox
from octobot_signals.feed.publisher_client import PublisherClient
from octobot_signals.hub.mqtt_egress import BrokerAddress
from octobot_signals.hub.mqtt_runtime import MqttSettings
from octobot_signals.hub.server import HubHandle, start_hub
from signal_factory import order_content

from . import live

STRATEGY_ID = "live-alpha"
STOCK_MQTT_PORT = 1883  # the only port OctoBot's stock community feed connects to
SYMBOL = "BTC/USDT"
MARKET = "btc-usdt"
START_PRICE = 30000


@dataclass
class Leader:
    """Publishes order signals on the strategy, shaped like octobot-trading's own contents."""

    client: PublisherClient
    published: list[dict[str, Any]] = field(default_factory=list)  # (u, content) in publish order

    async def send(self, *contents: dict[str, Any], flush: bool = True) -> str:
        bundle = {"identifier": STRATEGY_ID, "version": "1.0.0",
                  "signals": [{"topic": "orders", "content": content, "dependencies": None} for content in contents]}
        u = await self.client.publish(bundle)
        self.published.append({"u": u, "contents": contents})
        if flush:
            assert await self.client.flush(20), "the hub did not acknowledge the leader's bundle"
        return u

    @staticmethod
    def order(action: str, order_id: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("exchange", live.EXCHANGE)
        fields.setdefault("current", START_PRICE)
        content = order_content(action, order_id=order_id, symbol=SYMBOL, **fields)
        content["strategy"] = STRATEGY_ID
        return content


@dataclass
class World:
    exchange: LocalExchange
    hub_url: str
    admin_token: str
    leader: Leader
    work: Path
    broker_host: str | None = None  # with MQTT: where stock followers connect (COMMUNITY_FEED_URL), port 1883

    async def follower_link(self) -> tuple[str, str]:
        """(personal profile link, follower token): what a follower gets from the hub's strategy page."""
        token = (await admin_create_follower(self.hub_url, self.admin_token, STRATEGY_ID))["token"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.post(f"{self.hub_url}/api/strategies/{STRATEGY_ID}/profile-link",
                                    headers=auth(token)) as response:
                assert response.status == 200, await response.text()
                return (await response.json())["url"], token

    async def exchange_requests(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        return [row for row in self.exchange.requests()
                if (method is None or row["method"] == method) and (path is None or row["path"].startswith(path))]


def exchange_config(accounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"markets": {MARKET: {"price": START_PRICE, "increment_size": 0.0001, "increment_price": 0.1,
                                 "min_size": 0.0001}},
            "accounts": accounts}


def stock_broker_host() -> str:
    """A loopback address whose port 1883 is free (a system broker may hold 127.0.0.1:1883)."""
    for last in range(1, 10):
        host = f"127.0.0.{last}"
        if port_is_free(STOCK_MQTT_PORT, host):
            return host
    raise AssertionError("port 1883 is taken on 127.0.0.1-9: the stock follower test needs one of them")


async def _create_strategy(hub_url: str) -> dict[str, Any]:
    return await admin_create_strategy(hub_url, DEFAULT_ADMIN_TOKEN, STRATEGY_ID, name="Live Alpha",
                                       pairs=[SYMBOL], exchange=live.EXCHANGE, exchange_type="spot")


@contextlib.asynccontextmanager
async def _hub(work: Path, mqtt: bool) -> AsyncIterator[tuple[HubHandle, dict[str, Any], str | None]]:
    """Our hub with the strategy; with `mqtt`, its egress to Debian's mosquitto set up the way the README says."""
    data = work / "hub"
    if not mqtt:
        hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN)
        try:
            yield hub, await _create_strategy(hub.base_url), None
        finally:
            await hub.stop()
        return
    require_mosquitto()
    first = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN)
    try:
        strategy = await _create_strategy(first.base_url)
    finally:
        await first.stop()
    host, hub_port, out = stock_broker_host(), free_port(), work / "mosquitto"
    result = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "octobot_signals.cli.main", "mosquitto-config", "--data", str(data), "--out", str(out),
        "--listen", f"{host}:{STOCK_MQTT_PORT}", "--hub-listen", f"127.0.0.1:{hub_port}", "--user", getpass.getuser()],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with MosquittoProcess(out / "mosquitto.conf", [hub_port]):
        settings = MqttSettings(egress=BrokerAddress("127.0.0.1", hub_port), mosquitto_dir=out, acl_interval_s=0.2)
        hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN, mqtt=settings)
        try:
            yield hub, strategy, host
        finally:
            await hub.stop()


@contextlib.asynccontextmanager
async def live_world(work: Path, accounts: list[dict[str, Any]] | None = None, *,
                     mqtt: bool = False) -> AsyncIterator[World]:
    async with LocalExchange(exchange_config(accounts or [])) as exchange, _hub(work, mqtt) as (hub, strategy, host):
        outbox = Outbox(work / f"leader-outbox-{uuid.uuid4().hex[:6]}")
        client = PublisherClient(hub.base_url, strategy["publish_secret"], STRATEGY_ID, outbox)
        await client.start()
        try:
            yield World(exchange, hub.base_url, DEFAULT_ADMIN_TOKEN, Leader(client), work, host)
        finally:
            await client.stop()
            outbox.close()
