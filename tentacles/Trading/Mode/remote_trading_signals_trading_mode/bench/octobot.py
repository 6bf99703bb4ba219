"""`octobot-signals bench --octobot PATH`: our follower bot beside OctoBot's stock follower bot, live, same signals.

Both are real OctoBot 2.1.1 bots trading for real on the local HollaEx-compatible exchange, each with its own
account: ours (our package, /cable feed) and the stock one (default tentacles only, OctoBot's own mode, over
our hub's MQTT egress and Debian's mosquitto). The leader publishes N buy limits, each cancelled once both
copies are on the exchange; the exchange's request log is the clock: publish -> the bot's signed
`POST /v2/order` (creates) and `DELETE /v2/order` (cancels). Each bot's process RSS and CPU are read while
idle (before the first signal) and while copying.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ..cli.package_cmd import build_package
from ..demo import octobot_bots as bots
from ..demo import stock_broker
from ..demo.hub_admin import create_follower_token, create_strategy, mqtt_username, profile_link
from ..demo.signal_contents import order_content
from ..demo.stats import percentile, rounded
from ..feed.outbox import Outbox
from ..feed.publisher_client import PublisherClient
from ..hub.mqtt_egress import BrokerAddress
from ..hub.mqtt_runtime import MqttSettings
from ..hub.server import start_hub
from ..local_exchange import LocalExchange

STRATEGY_ID = "bench-live"
SYMBOL = "BTC/USDT"
MARKET = "btc-usdt"
PRICE = 30000
BALANCE_USDT = 100000
FEED_READY_S = 180.0
COPY_WAIT_S = 30.0
IDLE_S = 10.0


@dataclass
class Bench:
    name: str  # "ours" | "stock"
    bot: bots.BotProcess
    create_ms: list[float] = field(default_factory=list)
    cancel_ms: list[float] = field(default_factory=list)
    missed: int = 0
    usage: dict[str, Any] = field(default_factory=dict)

    def process(self) -> psutil.Process:
        if self.bot.pid is None:
            raise RuntimeError(f"the {self.name} follower bot is not running")
        return psutil.Process(self.bot.pid)


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _usage(benches: list[Bench], seconds: float | None, during: Callable[[], Any] | None = None) -> list[dict]:
    """Each bot's RSS (MB) and CPU (% of one core) over `seconds` of idling, or over `during()`."""
    processes = [bench.process() for bench in benches]
    before = [_cpu_s(p) for p in processes]
    started = time.monotonic()
    if during is not None:
        await during()
    else:
        await asyncio.sleep(seconds or 0)
    elapsed = time.monotonic() - started
    return [{"rss_mb": round(p.memory_info().rss / 2**20, 1),
             "cpu_percent": round((_cpu_s(p) - cpu) / elapsed * 100, 1), "seconds": round(elapsed, 1)}
            for p, cpu in zip(processes, before, strict=True)]


def _summary(values: list[float]) -> dict[str, Any]:
    return {"p50": rounded(percentile(values, 50)), "p99": rounded(percentile(values, 99)), "n": len(values)}


def _order(action: str, order_id: str, price: int) -> dict[str, Any]:
    return order_content(action, order_id, strategy=STRATEGY_ID, symbol=SYMBOL, exchange=bots.EXCHANGE,
                         order_type="buy_limit", side="buy", limit_price=float(price), current=float(PRICE),
                         target_amount="1%")


class LiveBench:
    def __init__(self, install: bots.OctoBotInstall, signals: int, default_tentacles: Path | None,
                 write: Callable[[str], None]) -> None:
        self.install = install
        self.signals = signals
        self.default_tentacles = default_tentacles
        self.write = write

    async def run(self) -> dict[str, Any]:
        if stock_broker.mosquitto_binary() is None:
            return {"skipped": "Debian's mosquitto is not installed: the stock follower needs it "
                               "(apt-get install -y mosquitto)"}
        async with bots.workspace("octobot-signals-bench-live-") as (tmp, stack):
            return await self._run(tmp, stack)

    async def _run(self, tmp: Path, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        started = time.monotonic()
        exchange = await stack.enter_async_context(LocalExchange({
            "markets": {MARKET: {"price": PRICE, "increment_size": "0.0001", "increment_price": "0.1"}},
            "accounts": [{"name": name, "balances": {"usdt": BALANCE_USDT}} for name in ("ours", "stock")]}))
        admin = secrets.token_urlsafe(32)
        data = tmp / "hub"
        first = await start_hub("127.0.0.1", 0, data, admin_token=admin)
        try:
            strategy = await create_strategy(first.base_url, admin, STRATEGY_ID, pairs=[SYMBOL],
                                             exchange=bots.EXCHANGE)
        finally:
            await first.stop()
        host, hub_port = stock_broker.stock_broker_host(), bots.free_port()
        await stock_broker.write_config(data, tmp / "mosquitto", host, hub_port)
        stack.enter_context(stock_broker.running_mosquitto(tmp / "mosquitto" / "mosquitto.conf", host, hub_port))
        hub = await start_hub("127.0.0.1", 0, data, admin_token=admin, mqtt=MqttSettings(
            egress=BrokerAddress("127.0.0.1", hub_port), mosquitto_dir=tmp / "mosquitto", acl_interval_s=0.2))
        stack.push_async_callback(hub.stop)
        outbox = Outbox(tmp / "leader")
        stack.callback(outbox.close)
        leader = PublisherClient(hub.base_url, strategy["publish_secret"], STRATEGY_ID, outbox)
        await leader.start()
        stack.push_async_callback(leader.stop)

        benches = []
        for name in ("ours", "stock"):
            bench = await self._bot(tmp, name, hub.base_url, admin, exchange, host)
            stack.push_async_callback(bench.bot.stop)
            benches.append(bench)
        await self._wait_ready(benches)
        self.write(f"live bench: both bots following {STRATEGY_ID}; idle {IDLE_S:g} s")
        idle = await _usage(benches, IDLE_S)
        copying = await _usage(benches, None, lambda: self._signals(leader, exchange, benches))
        for bench, quiet, busy in zip(benches, idle, copying, strict=True):
            bench.usage = {"idle": quiet, "copying": busy}
        result = {
            "signals": self.signals,
            "clock": "publish -> the bot's signed request in the local exchange's request log",
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "load_avg": [round(x, 2) for x in os.getloadavg()]},
            "seconds": round(time.monotonic() - started, 1),
        }
        for bench in benches:
            result[bench.name] = {"create_to_post_ms": _summary(bench.create_ms),
                                  "cancel_to_delete_ms": _summary(bench.cancel_ms), "missed": bench.missed,
                                  **bench.usage}
        return result

    async def _bot(self, tmp: Path, name: str, hub_url: str, admin: str, exchange: LocalExchange,
                   broker_host: str) -> Bench:
        folder = tmp / name
        zips = [self.default_tentacles] if self.default_tentacles else []
        if name == "ours":
            zips.append(build_package(tmp / "dist"))
        for zip_path in zips:
            await bots.install_tentacles(self.install, folder, zip_path)
        token = await create_follower_token(hub_url, admin, STRATEGY_ID)
        imported = await bots.import_profile(self.install, folder, await profile_link(hub_url, token, STRATEGY_ID))
        # the stock mode follows by MQTT username and logs its whole config: no hub URL or token for it
        settings = {"hub_url": "", "follower_token": ""} if name == "stock" else None
        bots.point_at_exchange(folder / imported["path"], exchange.url, real_trading=True, mode_settings=settings)
        key = exchange.keys_of(name)[0]
        username = await mqtt_username(hub_url, token) if name == "stock" else None
        await asyncio.to_thread(bots.write_user_config, self.install, folder, imported["id"], (key.key, key.secret),
                                mqtt_username=username)
        env = {"COMMUNITY_FEED_URL": broker_host} if name == "stock" else {}
        bot = bots.BotProcess(self.install, folder, bots.free_port(), tmp / f"{name}.log", env)
        await bot.start()
        self.write(f"live bench: {name} follower OctoBot started (web UI {bot.base_url})")
        return Bench(name, bot)

    async def _wait_ready(self, benches: list[Bench]) -> None:
        marks = {"ours": "feed: subscribed to", "stock": f"Subscribed to t/{STRATEGY_ID}"}
        for bench in benches:
            async def ready(bench: Bench = bench) -> bool:
                return marks[bench.name] in bench.bot.log_text()
            await bots.wait_for(ready, FEED_READY_S, f"the {bench.name} follower's feed", bench.bot.log_tail)
        await asyncio.sleep(3)  # both bots have loaded their exchange: the first copy is not a cold start

    async def _signals(self, leader: PublisherClient, exchange: LocalExchange, benches: list[Bench]) -> None:
        for index in range(self.signals):
            order_id = f"bench-{index}"
            price = 20000 + index * 10  # each create has its own price: it names its POST in the log
            await self._one(leader, exchange, benches, _order("create", order_id, price), "POST",
                            lambda row, p=price: json.loads(row.body).get("price") in (p, str(p), float(p)))
            await self._one(leader, exchange, benches, _order("cancel", order_id, price), "DELETE", None)
            if (index + 1) % 10 == 0:
                self.write(f"live bench: {index + 1}/{self.signals} signals copied")

    async def _one(self, leader: PublisherClient, exchange: LocalExchange, benches: list[Bench],
                   content: dict[str, Any], method: str, match: Callable[[Any], bool] | None) -> None:
        sent = time.time()
        await leader.publish({"identifier": STRATEGY_ID, "version": "1.0.0",
                              "signals": [{"topic": "orders", "content": content, "dependencies": None}]})
        pending = {bench.name: bench for bench in benches}
        deadline = time.monotonic() + COPY_WAIT_S
        while pending and time.monotonic() < deadline:
            for row in exchange.requests(since=sent, method=method, path="/v2/order"):
                bench = pending.get(row.account or "")
                if bench is not None and row.status == 200 and (match is None or match(row)):
                    (bench.create_ms if method == "POST" else bench.cancel_ms).append((row.t - sent) * 1000)
                    del pending[bench.name]
            await asyncio.sleep(0.02)
        for bench in pending.values():
            bench.missed += 1


async def run_octobot_bench(octobot: Path, signals: int, default_tentacles: Path | None,
                            write: Callable[[str], None]) -> dict[str, Any]:
    return await LiveBench(bots.OctoBotInstall.from_path(octobot), signals, default_tentacles, write).run()

