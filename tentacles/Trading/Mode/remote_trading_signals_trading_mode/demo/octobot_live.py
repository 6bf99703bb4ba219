"""`octobot-signals demo --octobot PATH`: the loop with real OctoBot 2.1.1 bots a user can watch.

local HollaEx-compatible exchange (127.0.0.1) + embedded hub <- a scripted leader publishing through our
publisher client and its durable outbox, signed -> two following OctoBots (OctoBot's default tentacles and our
package, the profile from the hub's personal link through OctoBot's own importer), one in simulated trading
on the exchange's live prices, one trading for real there with its own API keys. Each bot's web UI address is
printed: open a follower's orders page and watch the copies arrive. Ctrl-C stops everything it started.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..cli.package_cmd import build_package
from ..core import protocol
from ..feed.outbox import Outbox
from ..feed.publisher_client import PublisherClient
from ..hub.performance_service import PerformanceSettings
from ..hub.server import start_hub
from ..local_exchange import LocalExchange
from . import octobot_bots as bots
from .hub_admin import all_signals, create_follower_token, create_strategy, profile_link
from .signal_contents import order_content
from .stats import percentile, rounded

STRATEGY_ID = "demo-live"
SYMBOL = "BTC/USDT"
MARKET = "btc-usdt"
START_PRICE = Decimal(30000)
FOLLOWER_USDT = 1000
FEED_READY_S = 180.0
STEP_WAIT_S = 30.0  # a real copy waits for OctoBot's open-orders poll (~7 s) after a fill
_SIGNAL_LINE = re.compile(r"^\s*(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+\s+RemoteTradingSignalsFollower signal "
                          r"q=(\d+) (\w+) (\S+) -> (\w+)(.*)$")
_ORDER = re.compile(r"\[(buy|sell) ([0-9.]+) \S+ @ ([0-9.]+)\]")
_COLOR = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Step:
    """One leader action: the order contents it publishes, then the price it moves the market to."""

    says: str
    contents: tuple[dict[str, Any], ...]
    price_after: Decimal | None = None


def _order(action: str, order_id: str, order_type: str, side: str, price: float, share: str | None = None,
           **extra: Any) -> dict[str, Any]:
    return order_content(action, order_id, strategy=STRATEGY_ID, symbol=SYMBOL, exchange=bots.EXCHANGE,
                         order_type=order_type, side=side, limit_price=price, current=float(START_PRICE),
                         target_amount=share, **extra)


def leader_script() -> list[Step]:
    take_profit = _order("create", "tp-1", "sell_limit", "sell", 31500, "10%", chained_to="entry-1",
                         update_with_triggering_order_fees=True)
    return [
        Step("buy limit 29500 (10 %) with a chained take-profit at 31500",
             (_order("create", "entry-1", "buy_limit", "buy", 29500, "10%", additional_orders=[take_profit]),)),
        Step("buy limit 28500 (10 %)", (_order("create", "entry-2", "buy_limit", "buy", 28500, "10%"),)),
        Step("move entry-2 to 28800", (_order("edit", "entry-2", "buy_limit", "buy", 28500,
                                              updated_limit_price=28800),), price_after=Decimal(29400)),
        Step("cancel entry-2", (_order("cancel", "entry-2", "buy_limit", "buy", 28800),),
             price_after=Decimal(31600)),
    ]


@dataclass
class Follower:
    name: str
    trading: str  # "simulated" | "real"
    bot: bots.BotProcess
    account: str | None = None
    seen_lines: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def new_outcomes(self) -> list[dict[str, Any]]:
        """The mode's signal outcomes logged since the last call: {t, q, action, order_id, result, detail}."""
        lines = [m for m in (_SIGNAL_LINE.match(_COLOR.sub("", line)) for line in self.bot.log_text().splitlines())
                 if m]
        fresh = lines[self.seen_lines:]
        self.seen_lines = len(lines)
        parsed = [{"t": datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp(), "q": int(m[2]),
                   "action": m[3], "order_id": m[4], "result": m[5], "detail": m[6].strip(" :")} for m in fresh]
        self.outcomes.extend(parsed)
        return parsed


class LiveDemo:
    def __init__(self, install: bots.OctoBotInstall, hold_s: float | None, write: Callable[[str], None],
                 default_tentacles: Path | None, report: Callable[[dict[str, Any]], None]) -> None:
        self.install = install
        self.hold_s = hold_s
        self.write = write
        self.report = report
        self.default_tentacles = default_tentacles
        self.started = time.monotonic()
        self.followers: list[Follower] = []
        self.published_at: dict[str, float] = {}

    def log(self, who: str, text: str) -> None:
        self.write(f"[{time.monotonic() - self.started:5.1f}s] {who:<13}| {text}")

    async def run(self) -> dict[str, Any]:
        async with bots.workspace("octobot-signals-live-demo-") as (tmp, stack):
            self.log("demo", f"working folder {tmp} (the bots' folders and logs; removed at the end)")
            return await self._run(tmp, stack)

    async def _run(self, tmp: Path, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        version = await asyncio.to_thread(self.install.version)
        if version != bots.OCTOBOT_VERSION:
            raise RuntimeError(f"--octobot: found OctoBot {version or '(unknown)'} at {self.install.entry}; "
                               f"the live demo needs OctoBot {bots.OCTOBOT_VERSION}")
        exchange = await stack.enter_async_context(LocalExchange({
            "markets": {MARKET: {"price": START_PRICE, "increment_size": "0.0001", "increment_price": "0.1"}},
            "accounts": [{"name": "follower-real", "balances": {"usdt": FOLLOWER_USDT, "btc": 0}}]}))
        self.log("exchange", f"HollaEx-compatible exchange on {exchange.url}, {SYMBOL} at {START_PRICE}")
        admin_token = secrets.token_urlsafe(32)
        hub = await start_hub("127.0.0.1", 0, tmp / "hub", admin_token=admin_token,
                              performance=PerformanceSettings(min_interval_s=1.0))
        stack.push_async_callback(hub.stop)
        signing_key, public_key = protocol.generate_keypair()
        strategy = await create_strategy(hub.base_url, admin_token, STRATEGY_ID, pairs=[SYMBOL], exchange=bots.EXCHANGE,
                                         name="Live demo", public_key=public_key)
        self.log("hub", f"{hub.base_url}/strategies/{STRATEGY_ID} (signed strategy page)")
        outbox = Outbox(tmp / "leader")
        stack.callback(outbox.close)
        leader = PublisherClient(hub.base_url, strategy["publish_secret"], STRATEGY_ID, outbox,
                                 private_key_b64=signing_key)
        await leader.start()
        stack.push_async_callback(leader.stop)

        template = await self._bot_template(tmp)
        for name, trading in (("follower-sim", "simulated"), ("follower-real", "real")):
            follower = await self._follower(tmp, template, name, trading, hub.base_url, admin_token, exchange)
            stack.push_async_callback(follower.bot.stop)
            self.followers.append(follower)
        for follower in self.followers:
            await self._wait_subscribed(follower)
            self.log(follower.name, f"OctoBot web UI {follower.bot.base_url} ({follower.trading} trading, "
                                    f"{FOLLOWER_USDT} USDT): its orders page shows the copies")

        for step in leader_script():
            bundle = {"identifier": STRATEGY_ID, "version": "1.0.0",
                      "signals": [{"topic": "orders", "content": c, "dependencies": None} for c in step.contents]}
            for content in step.contents:
                self.published_at.setdefault(f"{content['order_id']}:{content['action']}", time.time())
            await leader.publish(bundle)
            if not await leader.flush(STEP_WAIT_S):
                self.log("leader", "WARNING: the hub did not acknowledge within "
                                   f"{STEP_WAIT_S:.0f} s (the outbox keeps the bundle)")
            self.log("leader", f"published {step.says}")
            await self._report_followers(hub.base_url, strategy, admin_token)
            if step.price_after is not None:
                exchange.set_price(MARKET, step.price_after)
                self.log("exchange", f"{SYMBOL} {step.price_after}")
                await asyncio.sleep(9)  # fills are seen at each bot's next open-orders / trades poll
                await self._report_followers(hub.base_url, strategy, admin_token)
                for follower in self.followers:
                    self.log(follower.name, f"open orders in its web UI: {await _open_orders_text(follower.bot)}")

        summary = await self._summary(hub.base_url, admin_token, leader, exchange)
        self.report(summary)  # before holding: the user reads it while the bots keep running
        if self.hold_s is None:
            self.log("demo", "the bots keep running: open their web UIs above; Ctrl-C stops everything")
            await asyncio.Event().wait()
        elif self.hold_s > 0:
            self.log("demo", f"the bots keep running {self.hold_s:g} s (Ctrl-C stops everything sooner)")
            await asyncio.sleep(self.hold_s)
        return summary

    async def _bot_template(self, tmp: Path) -> Path:
        """OctoBot's default tentacles (when given; else OctoBot downloads them at first start), then ours."""
        template = tmp / "bot-template"
        package = build_package(tmp / "dist")
        zips = ([self.default_tentacles] if self.default_tentacles else []) + [package]
        for zip_path in zips:
            await bots.install_tentacles(self.install, template, zip_path)
        self.log("octobot", f"installed {', '.join(z.name for z in zips)} with OctoBot's tentacles manager")
        return template

    async def _follower(self, tmp: Path, template: Path, name: str, trading: str, hub_url: str, admin_token: str,
                        exchange: LocalExchange) -> Follower:
        token = await create_follower_token(hub_url, admin_token, STRATEGY_ID)
        folder = tmp / name
        await asyncio.to_thread(shutil.copytree, template, folder, symlinks=True)
        imported = await bots.import_profile(self.install, folder, await profile_link(hub_url, token, STRATEGY_ID))
        keys = None
        if trading == "real":
            key = exchange.keys_of(name)[0]
            keys = (key.key, key.secret)
        bots.point_at_exchange(folder / imported["path"], exchange.url, real_trading=keys is not None,
                               portfolio={"USDT": FOLLOWER_USDT, "BTC": 0})
        await asyncio.to_thread(bots.write_user_config, self.install, folder, imported["id"], keys)
        bot = bots.BotProcess(self.install, folder, bots.free_port(), tmp / f"{name}.log")
        self.log(name, f"imported {imported['name']!r} through OctoBot's importer; starting OctoBot")
        await bot.start()
        return Follower(name, trading, bot, name if keys else None)

    async def _wait_subscribed(self, follower: Follower) -> None:
        async def subscribed() -> bool:
            return "feed: subscribed to" in follower.bot.log_text()
        await bots.wait_for(subscribed, FEED_READY_S, f"{follower.name}'s feed", follower.bot.log_tail)

    async def _report_followers(self, hub_url: str, strategy: dict[str, Any], admin_token: str) -> None:
        """Wait (bounded) until each follower logged an outcome for the hub's last q, then print them."""
        journal = await all_signals(hub_url, admin_token, STRATEGY_ID)
        last_q = int(journal[-1]["q"]) if journal else 0
        for follower in self.followers:
            deadline = time.monotonic() + STEP_WAIT_S
            while time.monotonic() < deadline:
                for outcome in follower.new_outcomes():
                    self.log(follower.name, f"q={outcome['q']} {outcome['action']} {outcome['order_id']} -> "
                                            f"{outcome['result']} {outcome['detail']}".rstrip())
                if follower.outcomes and follower.outcomes[-1]["q"] >= last_q:
                    break
                await asyncio.sleep(0.3)

    async def _summary(self, hub_url: str, admin_token: str, leader: PublisherClient,
                       exchange: LocalExchange) -> dict[str, Any]:
        """The plain demo's summary shape (`published`, `hub`, `leader`, `followers`, `latency_ms`) plus
        `octobot` and `exchange` (added fields)."""
        journal = await all_signals(hub_url, admin_token, STRATEGY_ID)
        latencies: list[float] = []
        followers = []
        for follower in self.followers:
            follower.new_outcomes()
            followers.append(_follower_json(follower))
            for outcome in follower.outcomes:
                sent = self.published_at.get(f"{outcome['order_id']}:{outcome['action']}")
                if outcome["action"] == "create" and outcome["result"] == "created" and sent is not None:
                    latencies.append(max(outcome["t"] - sent, 0.0) * 1000)  # a duration, not money: float
        return {
            "published": leader.stats.published,
            "hub": {"last_q": int(journal[-1]["q"]) if journal else 0},
            "leader": {"portfolio_start": {}, "orders": _leader_orders(journal)},
            "followers": followers,
            "latency_ms": {"p50": rounded(percentile(latencies, 50)), "p99": rounded(percentile(latencies, 99))},
            "octobot": {"version": bots.OCTOBOT_VERSION, "bots": [
                {"name": f.name, "trading": f.trading, "web_ui": f.bot.base_url} for f in self.followers]},
            "exchange": {"url": exchange.url, "orders_posted": len(exchange.requests(method="POST", path="/v2/order"))},
        }


async def _open_orders_text(bot: bots.BotProcess) -> str:
    orders = await bot.open_orders()
    return ", ".join(f"{o['type']} {o['price']} x {o['amount']}" for o in orders) or "none"


def _leader_orders(journal: list[dict[str, Any]]) -> list[dict[str, Any]]:
    orders: dict[str, dict[str, Any]] = {}
    for message in journal:
        for signal in message["s"]["signals"]:
            for content in [signal["content"], *signal["content"].get("additional_orders", [])]:
                order = orders.setdefault(content["order_id"], {"order_id": content["order_id"]})
                if content["action"] == "create":
                    order.update(type=content["type"], quantity=str(content["quantity"]),
                                 price=str(content["limit_price"]), status="open")
                elif content["action"] == "edit" and content.get("updated_limit_price"):
                    order["price"] = str(content["updated_limit_price"])
                elif content["action"] == "cancel":
                    order["status"] = "cancelled"
    return list(orders.values())


def _follower_json(follower: Follower) -> dict[str, Any]:
    """The plain demo's follower shape, from what the mode logged (a filled copy reads "open": OctoBot's log
    line for the fill is not the mode's), plus `trading` and `web_ui`."""
    copies: dict[str, dict[str, Any]] = {}
    skipped = []
    seen: set[tuple[int, str, str]] = set()
    duplicates = 0
    for outcome in follower.outcomes:
        key = (outcome["q"], outcome["action"], outcome["order_id"])
        duplicates += key in seen
        seen.add(key)
        if outcome["result"] in ("skipped", "rejected"):
            skipped.append({"leader_order_id": outcome["order_id"], "reason": outcome["detail"]})
            continue
        copy = copies.setdefault(outcome["order_id"], {"leader_order_id": outcome["order_id"], "side": None,
                                                        "quantity": None, "price": None})
        placed = _ORDER.search(outcome["detail"])
        if placed is not None:
            copy.update(side=placed[1], quantity=placed[2], price=placed[3])
        copy["status"] = {"created": "open", "edited": "open"}.get(outcome["result"], outcome["result"])
    return {
        "name": follower.name, "sizing": "portfolio_percent", "trading": follower.trading,
        "portfolio_start": {"USDT": {"total": str(FOLLOWER_USDT), "available": str(FOLLOWER_USDT)}},
        "last_applied_q": max((o["q"] for o in follower.outcomes), default=0),
        "duplicates": duplicates, "copies": list(copies.values()), "skipped": skipped,
        "web_ui": follower.bot.base_url,
    }


async def run_live_demo(octobot: str, hold_s: float | None, write: Callable[[str], None],
                        default_tentacles: Path | None = None,
                        report: Callable[[dict[str, Any]], None] = lambda summary: None) -> dict[str, Any]:
    """Run the live demo (raises ValueError for a bad --octobot path); `report` gets the summary once the script
    has run, before the bots are held (hold_s seconds, None: until cancelled); returns the summary."""
    return await LiveDemo(bots.OctoBotInstall.from_path(octobot), hold_s, write, default_tentacles, report).run()
