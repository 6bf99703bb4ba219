"""A real OctoBot 2.1.1 leader killed -9 between an order and its ack: nothing lost, nothing sent twice (issue 19).

Real parts: two OctoBot 2.1.1 bots (their own venv) with OctoBot's default tentacles and our package, trading
live in simulated mode on `hollaex` pointed at the local HollaEx-compatible exchange (tests/local_exchange),
and our hub, both in this process.
- the leader runs OctoBot's stock DCATradingMode ("Time based": one limit buy at each start) and publishes
  through the web UI card (user/config.json `services` -> `octobot-signals`) to the strategy; its hub address
  is a proxy (octobot_real.ack_proxy) in front of the hub;
- the follower is one of our bots, set up from the hub's personal profile link (live_world.follower_bot).

1. the leader starts: its entry A is journaled, acked (the outbox row says so), copied by the follower;
   the leader is stopped (Ctrl-C);
2. the proxy holds the hub's answers, the leader starts: its entry B reaches the hub, which journals it and
   fans it out (the follower copies it), and acks it, but the ack is dropped; the leader is killed -9 with B
   still pending in its outbox;
3. the link is whole again, the leader restarts: B goes out again with the same `u` (the hub answers with the
   q it journaled: no second journal entry), then the new entry C.
The hub's journal holds A, B, C once each, in order (q 1, 2, 3), exactly what the leader queued (its log,
its outbox); the follower copied each once (its log, its open orders).
Skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from hub_helpers import admin_create_follower, auth, free_port
from octobot_real import live, support
from octobot_real.ack_proxy import AckHoldProxy
from octobot_real.live_world import (
    START_PRICE,
    STRATEGY_ID,
    dca_profile,
    follower_bot,
    limit_orders,
    live_world,
    our_tracebacks,
    signal_lines,
    start_following,
    strip_colors,
    write_publish_card,
)
from octobot_signals.cli.package_cmd import build_package
from octobot_signals.feed import outbox as outbox_module
from octobot_signals.feed import publish_card

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")

PROFILE_ID = "publish_dca_crash"
WAIT_S = 60  # a start to its entry on the hub: ~10 s here
ENTRY_PERCENT = 2  # the DCA limit buy sits 2 % under the price: 29400, never filled (the price does not move)
ENTRY_PRICE = Decimal(START_PRICE) * (100 - ENTRY_PERCENT) / 100
DCA = {"trigger_mode": "Time based", "buy_order_amount": "10%t", "use_market_entry_orders": False,
       "entry_limit_orders_price_percent": ENTRY_PERCENT, "use_take_profit_exit_orders": False,
       "use_stop_losses": False, "use_secondary_entry_orders": False, "cancel_open_orders_at_each_entry": False}
QUEUED = re.compile(rf"signal bundle for {STRATEGY_ID} queued for the hub \(u=(\w+), (\d+) signals\)")


def outbox_rows(bot_dir: Path) -> list[tuple[str, str, int | None]]:
    """(u, state, q) of the leader's outbox rows, oldest first, read from its file (the bot may be running)."""
    path = bot_dir / publish_card.DEFAULT_DATA_DIR / outbox_module.DEFAULT_FILE_NAME
    if not path.is_file():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        try:
            return db.execute("SELECT u, state, q FROM outbox ORDER BY seq").fetchall()
        except sqlite3.OperationalError:  # the table is not there yet
            return []


def queued(log: str) -> list[str]:
    """The `u` of every bundle the leader queued for the hub, from its log."""
    return [u for u, _count in QUEUED.findall(strip_colors(log))]


async def test_leader_killed_between_journal_and_ack_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    started = time.monotonic()
    venv = support.octobot_venv()
    package_zip = build_package(tmp_path / "dist", default_profile=False)
    async with live_world(tmp_path) as world, AckHoldProxy(urlsplit(world.hub_url).port or 0) as proxy:
        token = (await admin_create_follower(world.hub_url, world.admin_token, STRATEGY_ID))["token"]
        follower = await follower_bot(world, venv, package_zip, "follower", portfolio={"USDT": 1000, "BTC": 0})
        leader_dir = live.new_bot_folder(venv, world.work / "bots", "leader", package_zip)
        dca_profile(leader_dir, PROFILE_ID, "Publish DCA (crash)", world.exchange.url, portfolio={"USDT": 10000},
                    dca=DCA)
        leader = live.LiveBot(venv, leader_dir, free_port(), world.work / "leader.log")

        def tails() -> str:
            return (f"--- leader ---\n{leader.log_tail(5000)}\n--- follower ---\n{follower.log_tail(3000)}\n"
                    f"--- leader outbox {outbox_rows(leader_dir)}; proxy saw {proxy.publishes}")

        async def wait(probe: Any, what: str) -> Any:
            return await live.wait_for(probe, WAIT_S, what, tails)

        async def journal() -> list[dict[str, Any]]:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async with session.get(f"{world.hub_url}/api/strategies/{STRATEGY_ID}/signals?after=0",
                                       headers=auth(token)) as response:
                    assert response.status == 200, await response.text()
                    return await response.json()

        async def journal_of(count: int) -> list[dict[str, Any]] | None:
            messages = await journal()
            return messages if len(messages) >= count else None

        async def copies(count: int) -> list[tuple[str, Decimal, Decimal]] | None:
            orders = limit_orders(await follower.open_orders())
            return orders if len(orders) >= count else None

        async def start_leader() -> None:
            write_publish_card(venv, leader_dir, PROFILE_ID, hub_url=proxy.url, strategy_id=STRATEGY_ID,
                               secret=world.publish_secret)  # OctoBot rewrites user/config.json at start
            await leader.start()

        try:
            await start_following(follower)
            # 1. a start as any: entry A journaled, acked, copied
            await start_leader()
            [a] = await wait(lambda: journal_of(1), "entry A on the hub")
            await wait(lambda: _async(outbox_rows(leader_dir) == [(a["u"], outbox_module.ACKED, 1)]),
                       "the hub's ack of A in the leader's outbox")
            await wait(lambda: copies(1), "the follower's copy of A")
            leader_orders = limit_orders(await leader.open_orders())
            await leader.stop()

            # 2. the hub's answers held: entry B journaled and copied, its ack never reaches the leader; kill -9
            proxy.hold()
            await start_leader()
            messages = await wait(lambda: journal_of(2), "entry B on the hub")
            b = messages[1]
            await wait(lambda: copies(2), "the follower's copy of B")
            assert [p.u for p in proxy.publishes if p.held][:1] == [b["u"]], tails()
            leader.kill()
            proxy.release()
            at_crash = outbox_rows(leader_dir)
            assert at_crash == [(a["u"], outbox_module.ACKED, 1), (b["u"], outbox_module.PENDING, None)], tails()
            assert proxy.dropped > 0  # the ack (and the hub's pings) went nowhere

            # 3. restarted with the link whole: B again (same u), then the new entry C
            await start_leader()
            messages = await wait(lambda: journal_of(3), "entry C on the hub")
            await wait(lambda: _async(len(rows := outbox_rows(leader_dir)) == 3
                                      and all(state == outbox_module.ACKED for _u, state, _q in rows)),
                       "every outbox row acked after the restart")
            await wait(lambda: copies(3), "the follower's copy of C")
            leader_after = limit_orders(await leader.open_orders())
            await leader.stop()
            final_journal = await journal()
            final_copies = limit_orders(await follower.open_orders())
        finally:
            await leader.stop()
            await follower.stop()

    us = [message["u"] for message in final_journal]
    # the journal: each bundle once, in order, and exactly what the leader queued (log and outbox agree)
    assert [message["q"] for message in final_journal] == [1, 2, 3], final_journal
    assert len(set(us)) == 3 and us[:2] == [a["u"], b["u"]], final_journal
    leader_queued = [queued(leader.log_of_start(number)) for number in (1, 2, 3)]
    assert leader_queued == [[us[0]], [us[1]], [us[2]]], leader_queued
    assert outbox_rows(leader_dir) == [(u, outbox_module.ACKED, q) for q, u in enumerate(us, 1)]
    # on the wire: B was sent while held (and maybe again when its ack timed out), then once more after the
    # restart, which the hub answered with B's q; A and C went once
    sent = Counter(p.u for p in proxy.publishes)
    assert sent[us[0]] == 1 and sent[us[2]] == 1 and sent[us[1]] >= 2, proxy.publishes
    assert [p.held for p in proxy.publishes if p.u == us[1]][-1] is False, proxy.publishes
    entries = [message["s"]["signals"] for message in final_journal]
    contents = [signals[0]["content"] for signals in entries]
    assert [len(signals) for signals in entries] == [1, 1, 1], entries
    assert {(c["action"], c["side"], c["type"], c["symbol"]) for c in contents} == \
        {("create", "buy", "buy_limit", "BTC/USDT")}, contents
    # the DCA's "10%t" is 10 % of the leader's 10000 USDT valued at the market price: 0.0333 BTC at 30000 (the
    # market's step), placed at 29400; the bundle says so as a share of the portfolio: 0.0333 * 30000 / 10000
    assert leader_orders == [("BUY LIMIT", ENTRY_PRICE, Decimal("0.0333"))], leader_orders
    assert {(Decimal(str(c["limit_price"])), c["target_amount"]) for c in contents} == {(ENTRY_PRICE, "9.99%")}, \
        contents
    # the follower: each entry applied once, in q order, each copy sized on its own portfolio: 9.99 % of its
    # 1000 USDT at 30000 = 0.00333 -> 0.0033
    lines = signal_lines(follower.log_text())
    assert lines == [f"q={q} create {c['order_id']} -> created" for q, c in enumerate(contents, 1)], lines
    assert final_copies == [("BUY LIMIT", ENTRY_PRICE, Decimal("0.0033"))] * 3, final_copies
    # OctoBot keeps no simulated order across a restart: the leader's A and B went with its processes, unsent
    # cancels of nothing; their copies stay open on the follower (a real leader's orders stay on the exchange)
    assert leader_after == leader_orders, leader_after
    for bot in (leader, follower):
        assert not our_tracebacks(bot.log_text())
    assert world.publish_secret not in leader.log_text()
    print(f"\nleader killed between journal and ack: journal q=1..3 {[u[:8] for u in us]}, B sent "
          f"{sent[us[1]]} times, follower {lines}; wall {time.monotonic() - started:.0f} s")


async def _async(value: Any) -> Any:
    return value
