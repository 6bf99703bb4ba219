"""`octobot-signals demo`: the whole copy-trading loop in one process, offline.

embedded hub (temp dir, free 127.0.0.1 port) <- leader: ScriptedGridTradingMode on a simulated
exchange, publishing through octobot-trading's own signal chain and our Authenticator bridge
(outbox -> hub); -> N followers: the real RemoteTradingSignalsTradingMode on their own simulated
exchanges, each with its own token, FollowerClient and data dir. One scripted price path moves
every exchange on each tick (so resting orders fill) and the leader runs one script step per tick.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..core import protocol
from ..feed.bridge import install_bridge, stop_bridge
from ..hub.performance_service import PerformanceSettings
from ..hub.server import start_hub
from ..simulator.sim_exchange import SimExchangeSpec, sim_exchange
from .follower_bot import FollowerBot, follower_bot
from .hub_admin import all_signals, create_follower_token, create_strategy, strategy_performance
from .leader_mode import ScriptedGridTradingMode
from .orders_view import OrderTracker, order_contents
from .report import follower_json, latency_json, leader_orders, portfolio_json

STRATEGY_ID = "demo-grid"
SYMBOL = "BTC/USDT"
LEADER_PORTFOLIO = {"USDT": Decimal(10000), "BTC": Decimal("0.5")}
# Leader steps: grid at 20000 (buy 19800 / 19400, sell 20600); buy-1 moved to 19999.50 and filled
# by the next tick; market entry with stop 18952.50 / take-profit 20947.50; cancel buy-2; resize
# sell-1; sell-2 at 20502. Then the price climbs through sell-2, sell-1 and the take-profit.
PRICE_PATH = [Decimal(p) for p in ("20000", "20100", "19950", "19900", "20000", "20100", "20550", "20700", "21000")]
STEP_SETTLE_TIMEOUT_S = 5.0  # per tick: leader bundle acked and applied by every follower
FINAL_SETTLE_TIMEOUT_S = 15.0
MAX_FOLLOWERS = 20
# the demo lasts seconds, not weeks: its hub takes a snapshot per second and the leader reports every few
DEMO_SNAPSHOT_INTERVAL_S = 1.0
DEMO_REPORT_EVERY_S = 3.0


@dataclass(frozen=True)
class FollowerProfile:
    name: str
    sizing: str
    portfolio: dict[str, Decimal]
    overrides: dict[str, Any]


def follower_profiles(count: int) -> list[FollowerProfile]:
    """Odd followers size by portfolio share, even ones alternate fixed quote amount / leader ratio;
    every portfolio differs."""
    profiles = []
    for index in range(1, count + 1):
        portfolio = {"USDT": Decimal(1000 * index + 1000), "BTC": Decimal("0.05") * index}
        if index % 2 == 1:
            overrides: dict[str, Any] = {"sizing": "portfolio_percent"}
        elif index % 4 == 2:
            overrides = {"sizing": "fixed_quote_amount", "fixed_quote_amount": "100"}
        else:
            overrides = {"sizing": "leader_quantity_ratio", "leader_quantity_ratio": "0.5"}
        profiles.append(FollowerProfile(f"follower-{index}", overrides["sizing"], portfolio, overrides))
    return profiles


def _describe_message(message: dict[str, Any]) -> str:
    actions = [f"{c.get('action')} {c.get('type') or ''}".strip() for c in order_contents(message.get("s") or {})]
    return f"q={message.get('q')}: " + ", ".join(actions)


class DemoRun:
    """State of one demo run; `run()` returns the summary dict (the --json contract)."""

    def __init__(self, followers: int, seconds: float, write: Callable[[str], None]) -> None:
        self.follower_count = followers
        self.seconds = seconds
        self.write = write
        self.started = time.monotonic()
        self.journal: list[dict[str, Any]] = []
        self.bots: list[FollowerBot] = []

    def log(self, who: str, text: str) -> None:
        self.write(f"[{time.monotonic() - self.started:5.1f}s] {who:<11}| {text}")

    async def run(self) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="octobot-signals-demo-") as tmp:
            async with contextlib.AsyncExitStack() as stack:
                return await self._run(Path(tmp), stack)
        raise AssertionError("unreachable")

    async def _run(self, tmp: Path, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        admin_token = secrets.token_urlsafe(32)
        hub = await start_hub("127.0.0.1", 0, tmp / "hub", admin_token=admin_token,
                              performance=PerformanceSettings(min_interval_s=DEMO_SNAPSHOT_INTERVAL_S))
        stack.push_async_callback(hub.stop)
        self.hub_url = hub.base_url
        signing_key, public_key = protocol.generate_keypair()  # signals and snapshots signed: the page says so
        strategy = await create_strategy(hub.base_url, admin_token, STRATEGY_ID, pairs=[SYMBOL],
                                         name="Demo scripted grid", public_key=public_key)
        tokens = [await create_follower_token(hub.base_url, admin_token, STRATEGY_ID)
                  for _ in range(self.follower_count)]
        self.reader_token = tokens[0]
        self.log("hub", f"listening on {hub.base_url}, strategy {STRATEGY_ID!r}, {len(tokens)} follower tokens")
        # The same hub serves its web pages: this one shows the demo's signals as they are journaled.
        self.page_url = f"{hub.base_url}/strategies/{STRATEGY_ID}"
        self.log("hub", f"strategy page: {self.page_url} (open it in a browser while the demo runs)")

        leader_sim = await stack.enter_async_context(
            sim_exchange(SimExchangeSpec(portfolio=LEADER_PORTFOLIO, prices={SYMBOL: PRICE_PATH[0]})))
        leader_start = leader_sim.portfolio()
        leader_mode = ScriptedGridTradingMode(leader_sim.config, leader_sim.exchange_manager)
        await leader_mode.initialize(trading_config={"emit_trading_signals": True, "trading_strategy": STRATEGY_ID,
                                                     "order_share_percent": 5}, auto_start=False)
        leader_sim.exchange_manager.trading_modes.append(leader_mode)
        stack.push_async_callback(leader_mode.stop)
        # the product's publishing path: octobot-trading -> Authenticator.send -> bridge -> outbox -> hub
        bridge = install_bridge(hub_url=hub.base_url, data_dir=tmp / "leader", publish_secret=strategy["publish_secret"],
                                publish_strategy=STRATEGY_ID, private_key_b64=signing_key)
        stack.push_async_callback(stop_bridge)
        bridge.attach_exchange_manager(leader_sim.exchange_manager)
        # the leader's track record: the bridge started its performance reporter; the demo only speeds it up
        if bridge.performance_reporter is not None:
            bridge.performance_reporter.tune(interval_s=DEMO_REPORT_EVERY_S, poll_s=0.5, min_gap_s=1.0,
                                             pace_s=DEMO_SNAPSHOT_INTERVAL_S)
        leader_tracker = OrderTracker(leader_sim.exchange_manager)
        self.log("leader", f"ScriptedGridTradingMode on a simulated exchange holding {_holdings(leader_start)}")

        for profile, token in zip(follower_profiles(self.follower_count), tokens, strict=True):
            bot = await stack.enter_async_context(follower_bot(
                profile.name, profile.sizing, SimExchangeSpec(portfolio=profile.portfolio, prices={SYMBOL: PRICE_PATH[0]}),
                profile.overrides, hub_url=hub.base_url, token=token, strategy_id=STRATEGY_ID,
                data_dir=tmp / profile.name))
            self.bots.append(bot)
            self.log(profile.name, f"subscribed, sizing {_sizing_text(profile)}, holding {_holdings(bot.portfolio_start)}")

        sims = [leader_sim, *(bot.harness.sim for bot in self.bots)]
        interval = self.seconds / len(PRICE_PATH)
        for tick, price in enumerate(PRICE_PATH):
            await _sleep_until(self.started + tick * interval)
            for sim in sims:
                await sim.move_price(SYMBOL, price)
            self.log("market", f"{SYMBOL} {price}")
            self._report_fills("leader", leader_tracker)
            for bot in self.bots:
                self._report_fills(bot.name, bot.tracker)
            did = await leader_mode.producer().on_price(SYMBOL, price)
            leader_tracker.mark_reported()
            # also catches what octobot-trading published by itself (a fill cancelling its OCO sibling)
            fresh = await self._settle(bridge, STEP_SETTLE_TIMEOUT_S)
            if did is None and not fresh:
                continue
            published = "published " + ", ".join(_describe_message(m) for m in fresh) if fresh else "nothing published"
            self.log("leader", f"{did or 'after the fills'}; {published}")
            for bot in self.bots:
                for outcome in bot.new_outcomes():
                    self.log(bot.name, outcome.log_line())
                bot.tracker.mark_reported()

        await self._settle(bridge, FINAL_SETTLE_TIMEOUT_S)
        track = await self._track_record(bridge)
        last_q = int(self.journal[-1]["q"]) if self.journal else 0
        leader_tracker.snapshot()
        summary = {
            "published": bridge.publisher.stats.published if bridge.publisher else 0,
            "hub": {"last_q": last_q},
            "leader": {"portfolio_start": portfolio_json(leader_start),
                       "orders": leader_orders(self.journal, leader_tracker)},
            "followers": [follower_json(bot, STRATEGY_ID) for bot in self.bots],
            "latency_ms": latency_json(self.bots),
            "track_record": track,
        }
        return summary

    async def _track_record(self, bridge: Any) -> dict[str, Any]:
        """The leader's last snapshot acked, then the hub's figures (what the strategy page shows)."""
        reporter = bridge.performance_reporter
        if reporter is not None and await reporter.report_now() is not None:
            await reporter.flush(STEP_SETTLE_TIMEOUT_S)
        body = await strategy_performance(self.hub_url, STRATEGY_ID)
        figures = body["figures"]
        def pct(text: str | None) -> str:
            return "—" if text is None else f"{Decimal(text) * 100:+.2f} %"

        self.log("hub", f"track record: {body['points']} reports ({body['signed']} signed), ROI since the first "
                        f"{pct(figures['roi_all'])}, max drawdown {pct(figures['max_drawdown'])}, "
                        f"{figures['fills']} fills, {figures['copiers']} copiers: {self.page_url}")
        return {"points": body["points"], "signed": body["signed"], "roi_all": figures["roi_all"],
                "max_drawdown": figures["max_drawdown"], "fills": figures["fills"], "copiers": figures["copiers"]}

    def _report_fills(self, who: str, tracker: OrderTracker) -> None:
        for line in tracker.changes():
            self.log(who, line)

    async def _settle(self, bridge: Any, timeout: float) -> list[dict[str, Any]]:
        """Wait (bounded) until the leader's outbox is acked and every follower applied the hub's
        last q; returns the journal messages that are new since the previous call."""
        if not await bridge.flush(timeout):
            self.log("leader", f"WARNING: outbox not acked by the hub within {timeout:.0f} s")
        journal = await all_signals(self.hub_url, self.reader_token, STRATEGY_ID)
        fresh = journal[len(self.journal):]
        self.journal = journal
        last_q = int(journal[-1]["q"]) if journal else 0
        results = await asyncio.gather(
            *(bot.client.wait_for_q(STRATEGY_ID, last_q, timeout) for bot in self.bots), return_exceptions=True)
        for bot, result in zip(self.bots, results, strict=True):
            if isinstance(result, BaseException):
                self.log(bot.name, f"WARNING: at q={bot.last_applied_q(STRATEGY_ID)}, hub at q={last_q}")
        return fresh


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def _holdings(portfolio: dict[str, dict[str, Decimal]]) -> str:
    return ", ".join(f"{values['total']} {asset}" for asset, values in portfolio.items())


def _sizing_text(profile: FollowerProfile) -> str:
    params = [f"{k}={v}" for k, v in profile.overrides.items() if k != "sizing"]
    return profile.sizing + (f" ({', '.join(params)})" if params else "")


async def run_demo(followers: int, seconds: float, write: Callable[[str], None]) -> dict[str, Any]:
    """Run the demo; `write` gets the live log lines. Returns the summary (issue 4's --json shape)."""
    return await DemoRun(followers, seconds, write).run()
