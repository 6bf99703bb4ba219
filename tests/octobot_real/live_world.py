"""One live world for the tests that run real OctoBots: the local exchange, our hub, a strategy and its leader.

Everything in-process but the bots: the exchange (tests/local_exchange) and the hub share the test's event
loop, so each bot's REST polls and feed link are served while the test awaits. The leader publishes with our
own PublisherClient and its durable outbox, the way a publishing bot's bridge does; a test may run a real
OctoBot leader instead (dca_profile + write_publish_card: the stock DCA mode publishing through the card).
Our follower bots come from the hub's personal link (follower_bot, start_following).
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import octobot_commons.configuration.fields_utils as fields_utils
from hub_helpers import DEFAULT_ADMIN_TOKEN, admin_create_follower, admin_create_strategy, auth, free_port
from mqtt_broker import require_mosquitto
from octobot_signals.demo import stock_broker
from octobot_signals.feed import publish_card
from octobot_signals.feed.outbox import Outbox
from octobot_signals.feed.publisher_client import PublisherClient
from octobot_signals.hub.mqtt_egress import BrokerAddress
from octobot_signals.hub.mqtt_runtime import MqttSettings
from octobot_signals.hub.server import HubHandle, start_hub
from octobot_signals.local_exchange import LocalExchange
from signal_factory import order_content

from . import live

STRATEGY_ID = "live-alpha"
SYMBOL = "BTC/USDT"
MARKET = "btc-usdt"
START_PRICE = 30000
FEED_READY_S = 120  # OctoBot start to our feed subscribed: ~15 s here


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
    publish_secret: str = ""  # the strategy's: what a real leader bot's card holds

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
    host, hub_port, out = stock_broker.stock_broker_host(), free_port(), work / "mosquitto"
    await stock_broker.write_config(data, out, host, hub_port)  # `octobot-signals mosquitto-config`, as the README
    with stock_broker.running_mosquitto(out / "mosquitto.conf", host, hub_port):
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
            yield World(exchange, hub.base_url, DEFAULT_ADMIN_TOKEN, Leader(client), work, host,
                        strategy["publish_secret"])
        finally:
            await client.stop()
            outbox.close()


# --------------------------------------------------------------------------- our follower bots
async def follower_bot(world: World, venv: Path, package_zip: Path, name: str, *,
                       portfolio: dict[str, float] | None = None, keys: tuple[str, str] | None = None,
                       mode_settings: dict[str, Any] | None = None) -> live.LiveBot:
    """A follower as a user sets it up: OctoBot's importer on the hub's personal link, the exchange pointed at
    the local one (simulated trading, or real trading with `keys`), then started with its web UI."""
    link, _token = await world.follower_link()
    bot_dir = live.new_bot_folder(venv, world.work / "bots", name, package_zip)
    imported = await live.import_profile(venv, bot_dir, link)
    live.point_at_exchange(bot_dir, bot_dir / imported["path"], world.exchange.url, real_trading=keys is not None,
                           portfolio=portfolio, mode_settings=mode_settings)
    live.write_user_config(venv, bot_dir, imported["id"], keys)
    return live.LiveBot(venv, bot_dir, free_port(), world.work / f"{name}.log")


async def start_following(bot: live.LiveBot) -> None:
    await bot.start()
    start = bot.starts

    async def subscribed() -> bool:
        return "feed: subscribed to" in bot.log_of_start(start)
    await live.wait_for(subscribed, FEED_READY_S, "the follower's feed to subscribe", bot.log_tail)


def limit_orders(orders: list[dict[str, Any]]) -> list[tuple[str, Decimal, Decimal]]:
    """(type, price, amount) of a bot's open orders on SYMBOL (its /api/orders), sorted."""
    return sorted((o["type"], Decimal(str(o["price"])), Decimal(str(o["amount"]))) for o in orders
                  if o["symbol"] == SYMBOL)


def signal_lines(log: str) -> list[str]:
    """What the follower did with each feed message, from its log: `q=N <action> <leader id> -> <result>`."""
    found = re.findall(r"RemoteTradingSignalsFollower signal (q=\d+ \w+ \S+ -> \w+)", strip_colors(log))
    return found


def our_tracebacks(log: str) -> list[str]:
    """Traceback frames in our package's files (OctoBot's own error logs carry tracebacks of theirs)."""
    return [line for line in log.splitlines() if 'File "' in line and "remote_trading_signals_trading_mode" in line]


def strip_colors(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# --------------------------------------------------------------------------- a real OctoBot leader (issue 19)
def dca_profile(bot_dir: Path, profile_id: str, name: str, exchange_url: str, *, portfolio: dict[str, float],
                dca: dict[str, Any]) -> None:
    """OctoBot's own Simple DCA profile, copied as `profile_id`, trading simulated on the local exchange; `dca`
    updates its DCATradingMode settings. Nothing in it asks to publish: like every stock mode's config, it has no
    `emit_trading_signals` or `trading_strategy` (the card turns publishing on)."""
    profiles = bot_dir / "user" / "profiles"
    target = profiles / profile_id
    shutil.copytree(profiles / "simple_dca", target)
    document = json.loads((target / "profile.json").read_text())
    document["profile"].update({"id": profile_id, "name": name, "read_only": False})
    (target / "profile.json").write_text(json.dumps(document, indent=4))
    live.point_at_exchange(bot_dir, target, exchange_url, real_trading=False, portfolio=portfolio)
    path = target / "specific_config" / "DCATradingMode.json"
    settings = json.loads(path.read_text())
    settings.update(dca)
    assert "emit_trading_signals" not in settings and "trading_strategy" not in settings
    path.write_text(json.dumps(settings, indent=4))


def write_publish_card(venv: Path, bot_dir: Path, profile_id: str, *, hub_url: str, strategy_id: str, secret: str,
                       by_hand: bool = False) -> None:
    """user/config.json as the web UI leaves it after saving the publishing card (`services` -> `octobot-signals`,
    the secret encrypted by OctoBot's fields_utils); by_hand: the secret in clear, as someone editing the file
    writes it. OctoBot rewrites the file at start: write it before each start."""
    live.write_user_config(venv, bot_dir, profile_id)
    path = bot_dir / "user" / "config.json"
    config = json.loads(path.read_text())
    config["services"][publish_card.SERVICE_TYPE] = {
        publish_card.KEY_HUB_URL: hub_url, publish_card.KEY_STRATEGY: strategy_id,
        publish_card.KEY_SECRET: secret if by_hand else fields_utils.encrypt(secret).decode(),
        publish_card.KEY_PUBLISH: True,
    }
    path.write_text(json.dumps(config, indent=4))
