"""One live world for the tests that run real OctoBots: the local exchange, our hub, a strategy and its leader.

Everything in-process but the bots: the exchange (tests/local_exchange) and the hub share the test's event
loop, so each bot's REST polls and feed link are served while the test awaits. The leader publishes with our
own PublisherClient and its durable outbox, the way a publishing bot's bridge does.
"""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from hub_helpers import admin_create_follower, admin_create_strategy, auth, running_hub
from local_exchange import LocalExchange
from octobot_signals.feed.outbox import Outbox
from octobot_signals.feed.publisher_client import PublisherClient
from signal_factory import order_content

from . import live

STRATEGY_ID = "live-alpha"
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


@contextlib.asynccontextmanager
async def live_world(work: Path, accounts: list[dict[str, Any]] | None = None) -> AsyncIterator[World]:
    async with LocalExchange(exchange_config(accounts or [])) as exchange, running_hub(work / "hub") as hub:
        assert hub.admin_token
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, STRATEGY_ID, name="Live Alpha",
                                               pairs=[SYMBOL], exchange=live.EXCHANGE, exchange_type="spot")
        outbox = Outbox(work / f"leader-outbox-{uuid.uuid4().hex[:6]}")
        client = PublisherClient(hub.base_url, strategy["publish_secret"], STRATEGY_ID, outbox)
        await client.start()
        try:
            yield World(exchange, hub.base_url, hub.admin_token, Leader(client), work)
        finally:
            await client.stop()
            outbox.close()
