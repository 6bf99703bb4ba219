"""Copy trading live inside real OctoBot 2.1.1 bots, on our local exchange (issue 18).

Real parts: OctoBot 2.1.1 (its own Python 3.12 venv) with OctoBot's default tentacles and our package, both
installed by OctoBot's tentacles manager; the follower's profile downloaded from our hub's personal link by
OctoBot's own importer; OctoBot's stock `hollaex` exchange tentacle trading, unpatched, against the local
HollaEx-compatible exchange on 127.0.0.1 (tests/local_exchange); OctoBot's own web UI answering what the bot
holds (`/api/orders`). The leader publishes through our publisher client and its durable outbox.
Skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hub_helpers import free_port
from mqtt_broker import mqtt_identity
from octobot_real import live, support
from octobot_real.live_world import (
    FEED_READY_S,
    STRATEGY_ID,
    Leader,
    World,
    follower_bot,
    limit_orders,
    live_world,
    our_tracebacks,
    signal_lines,
    start_following,
    strip_colors,
)
from octobot_signals.cli.package_cmd import build_package

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")

COPY_S = 30         # publish to the copy showing in the bot (simulated: ~15 ms; real: one REST round trip)


@pytest.fixture(scope="module")
def venv() -> Path:
    return support.octobot_venv()


@pytest.fixture(scope="module")
def package_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_package(tmp_path_factory.mktemp("dist"), default_profile=False)


async def orders_become(bot: live.LiveBot, expected: list[tuple[str, Decimal, Decimal]], what: str) -> None:
    async def matches() -> bool:
        return limit_orders(await bot.open_orders()) == expected
    try:
        await live.wait_for(matches, COPY_S, what)
    except AssertionError as err:
        raise AssertionError(f"{err}: the bot shows {limit_orders(await bot.open_orders())}\n"
                             f"{bot.log_tail()}") from None


def buy_limit(order_id: str, price: float, share: str) -> dict[str, Any]:
    return Leader.order("create", order_id, order_type="buy_limit", side="buy", limit_price=price,
                        target_amount=share, quantity=0.01)


# --------------------------------------------------------------------------- 2. live following, simulated trading
async def test_live_following_in_simulated_trading(venv: Path, package_zip: Path, tmp_path: Path) -> None:
    async with live_world(tmp_path) as world:
        bot = await follower_bot(world, venv, package_zip, "follower-sim", portfolio={"USDT": 1000, "BTC": 0})
        try:
            await start_following(bot)
            # 10 % of 1000 USDT at the local price 30000 = 0.00333 BTC, on the market's 0.0001 step
            sent = time.time()
            await world.leader.send(buy_limit("L1", 29000, "10%"))
            await orders_become(bot, [("BUY LIMIT", Decimal(29000), Decimal("0.0033"))], "the copy of L1")
            copy_seconds = time.time() - sent
            await world.leader.send(Leader.order("edit", "L1", order_type="buy_limit", side="buy",
                                                 limit_price=29000, updated_limit_price=28500))
            await orders_become(bot, [("BUY LIMIT", Decimal(28500), Decimal("0.0033"))], "the edit of L1")
            await world.leader.send(Leader.order("cancel", "L1", order_type="buy_limit", side="buy",
                                                 limit_price=28500))
            await orders_become(bot, [], "the cancel of L1")

            # kill -9 mid-stream: what is published meanwhile is caught up from the hub after the restart
            await world.leader.send(buy_limit("L2", 28000, "10%"))
            await orders_become(bot, [("BUY LIMIT", Decimal(28000), Decimal("0.0033"))], "the copy of L2")
            bot.kill()
            await world.leader.send(buy_limit("L3", 27000, "20%"))
            await world.leader.send(buy_limit("L4", 26000, "5%"))
            await world.leader.send(Leader.order("cancel", "L3", order_type="buy_limit", side="buy",
                                                 limit_price=27000))
            await start_following(bot)
            # L3 was created then cancelled while the bot was down: caught up, placed, then cancelled in q order;
            # L4 is caught up once, sized on this bot's 1000 USDT: 5 % at 30000 = 0.00166 -> 0.0016
            await orders_become(bot, [("BUY LIMIT", Decimal(26000), Decimal("0.0016"))], "L4 caught up")
            # OctoBot keeps no simulated order across a restart: L2's copy went with the killed process, and the
            # follower does not re-place it (a vanished simulated order cannot be told from a filled one); the
            # leader's later cancel of L2 then finds nothing to cancel and says so
            await world.leader.send(Leader.order("cancel", "L2", order_type="buy_limit", side="buy",
                                                 limit_price=28000))
            await world.leader.send(Leader.order("cancel", "L4", order_type="buy_limit", side="buy",
                                                 limit_price=26000))
            await orders_become(bot, [], "the cancel of L4")
        finally:
            await bot.stop()
        before, after = signal_lines(bot.log_of_start(1)), signal_lines(bot.log_of_start(2))
        # the kill lands once L2's copy shows in the web UI: maybe before the mode logged it
        assert before[:3] == ["q=1 create L1 -> created", "q=2 edit L1 -> edited", "q=3 cancel L1 -> cancelled"], before
        assert before[3:] in ([], ["q=4 create L2 -> created"]), before
        # ...and maybe before q=4 was recorded as done: then q=4 comes again after the restart, and its
        # write-ahead entry stops a second copy (the simulated order itself went with the process)
        if after and after[0].startswith("q=4 "):
            assert after[0] == "q=4 create L2 -> skipped", after
            after = after[1:]
        # resumed after q=4: nothing applied twice, the missed q=5..7 caught up in order
        assert after[:3] == ["q=5 create L3 -> created", "q=6 create L4 -> created", "q=7 cancel L3 -> cancelled"], after
        assert after[3].startswith("q=8 cancel L2 -> skipped") and after[4] == "q=9 cancel L4 -> cancelled", after
        assert not our_tracebacks(bot.log_text())
        print(f"\nlive simulated: publish -> copy in the bot's web UI {copy_seconds * 1000:.0f} ms (poll 0.5 s)")


# --------------------------------------------------------------------------- 3. live following, real trading
FOLLOWER_ACCOUNT = {"name": "follower", "balances": {"usdt": 1000, "btc": 0}}


def posted_orders(world: World) -> list[dict[str, Any]]:
    """Every order the exchange accepted from a bot, from its request log: {side, type, price, size, id}."""
    rows = []
    for row in world.exchange.requests(method="POST", path="/v2/order"):
        if row.status == 200:
            body = json.loads(row.body)
            rows.append({"side": body["side"], "type": body["type"], "price": Decimal(str(body.get("price") or 0)),
                         "size": Decimal(str(body["size"])), "t": row.t})
    return rows


def deletes(world: World) -> list[str]:
    return [row.path for row in world.exchange.requests(method="DELETE", path="/v2/order") if "12345" not in row.path]


async def wait_posts(world: World, count: int, bot: live.LiveBot, what: str) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        posts = posted_orders(world)
        return posts if len(posts) >= count else None
    return await live.wait_for(enough, COPY_S, what, bot.log_tail)


async def wait_deletes(world: World, count: int, bot: live.LiveBot, what: str) -> list[str]:
    async def enough() -> list[str] | None:
        found = deletes(world)
        return found if len(found) >= count else None
    return await live.wait_for(enough, COPY_S, what, bot.log_tail)


def exchange_orders(world: World, open_: bool | None = None) -> list[Any]:
    return world.exchange.engine.book.query(open_=open_)


def open_on_exchange(world: World) -> list[tuple[str, Decimal, Decimal]]:
    return sorted((o.side, o.price, o.size) for o in world.exchange.engine.book.query(open_=True))


async def test_live_following_in_real_trading(venv: Path, package_zip: Path, tmp_path: Path) -> None:
    async with live_world(tmp_path, [FOLLOWER_ACCOUNT]) as world:
        key = world.exchange.keys_of("follower")[0]
        bot = await follower_bot(world, venv, package_zip, "follower-real", keys=(key.key, key.secret))
        try:
            await start_following(bot)
            # each copy arrives as a signed POST /v2/order (the exchange checked the HMAC), sized on my 1000 USDT
            sent = time.time()
            await world.leader.send(buy_limit("R1", 29000, "10%"))
            posts = await wait_posts(world, 1, bot, "the copy of R1 at the exchange")
            latency = posts[0]["t"] - sent
            assert [(p["side"], p["type"], p["price"], p["size"]) for p in posts] == \
                [("buy", "limit", Decimal(29000), Decimal("0.0033"))]
            await world.leader.send(Leader.order("cancel", "R1", order_type="buy_limit", side="buy",
                                                 limit_price=29000))
            r1 = world.exchange.engine.book.query()[0]
            assert await wait_deletes(world, 1, bot, "the cancel of R1") == [f"/v2/order?order_id={r1.id}"]

            # a fill is seen, and the chained take-profit follows it (less the fee the exchange took in BTC)
            tp = Leader.order("create", "R2-TP", order_type="sell_limit", side="sell", limit_price=33000,
                              quantity=0.01, target_amount="10%", chained_to="R2",
                              update_with_triggering_order_fees=True)
            entry = buy_limit("R2", 29500, "10%")
            entry["additional_orders"] = [tp]
            await world.leader.send(entry)
            posts = await wait_posts(world, 2, bot, "the copy of R2")
            assert (posts[1]["side"], posts[1]["price"], posts[1]["size"]) == ("buy", Decimal(29500), Decimal("0.0033"))
            world.exchange.set_price("btc-usdt", 29400)  # crosses R2: it fills (maker fee 0.1 % in BTC)
            posts = await wait_posts(world, 3, bot, "the take-profit after R2's fill")
            assert (posts[2]["side"], posts[2]["type"], posts[2]["price"], posts[2]["size"]) == \
                ("sell", "limit", Decimal(33000), Decimal("0.0032"))

            # a restart with the take-profit open on the exchange reconciles it: no second order
            await bot.stop()
            await start_following(bot)
            await asyncio.sleep(10)  # more than one open-orders poll of OctoBot's (~7 s)
            assert len(posted_orders(world)) == 3
            assert open_on_exchange(world) == [("sell", Decimal(33000), Decimal("0.0032"))]
            await world.leader.send(Leader.order("cancel", "R2-TP", order_type="sell_limit", side="sell",
                                                 limit_price=33000))
            await wait_deletes(world, 2, bot, "the cancel of R2-TP after the restart")
            assert open_on_exchange(world) == []

            # a copy partly filled when the leader cancels keeps its filled part, the rest is cancelled
            await world.leader.send(buy_limit("R3", 28000, "10%"))
            await wait_posts(world, 4, bot, "the copy of R3")
            r3 = world.exchange.engine.book.query(open_=True)[0]
            world.exchange.engine.force_fill(r3.id, "0.001")
            await world.leader.send(Leader.order("cancel", "R3", order_type="buy_limit", side="buy", limit_price=28000))
            await wait_deletes(world, 3, bot, "the cancel of R3")
            assert (r3.status, r3.filled) == ("canceled", Decimal("0.001"))

            # the exchange answers 503 for a while: the copy is placed once it is back, once
            world.exchange.inject(mode="status", status=503, seconds=2, paths=["/v2/order"], methods=["POST"])
            await world.leader.send(buy_limit("R4", 27000, "5%"))
            await wait_posts(world, 5, bot, "the copy of R4 once the exchange is back")
            # the exchange takes the order but its answer is lost: found there, never placed twice
            world.exchange.inject(mode="drop", count=1, paths=["/v2/order"], methods=["POST"], after=True)
            await world.leader.send(buy_limit("R5", 26000, "5%"))
            await asyncio.sleep(12)  # the whole retry budget (1 + 2 + 4 s, jittered up to 1.5x) and a poll
            opened = open_on_exchange(world)
            assert [price for side, price, size in opened] == [Decimal(26000), Decimal(27000)], opened
            # its cancel reaches it through the write-ahead entry
            await world.leader.send(Leader.order("cancel", "R5", order_type="buy_limit", side="buy", limit_price=26000))
            await world.leader.send(Leader.order("cancel", "R4", order_type="buy_limit", side="buy", limit_price=27000))
            await wait_deletes(world, 5, bot, "the cancels of R4 and R5")
            assert open_on_exchange(world) == []
        finally:
            await bot.stop()
        lines = signal_lines(bot.log_text())
        print(f"\nlive real trading: publish -> POST /v2/order at the exchange {latency * 1000:.0f} ms; {lines}")
        # OctoBot logs the exchange failures it met with their tracebacks; none comes from our package
        assert not our_tracebacks(bot.log_text())
        assert lines[-4:] == ["q=7 create R4 -> created", "q=8 create R5 -> created", "q=9 cancel R5 -> cancelled",
                              "q=10 cancel R4 -> cancelled"], lines
        assert key.secret not in bot.log_text()


async def test_live_real_trading_with_wrong_api_keys_places_nothing_and_says_so(venv: Path, package_zip: Path,
                                                                                 tmp_path: Path) -> None:
    async with live_world(tmp_path, [FOLLOWER_ACCOUNT]) as world:
        key = world.exchange.keys_of("follower")[0]
        bot = await follower_bot(world, venv, package_zip, "follower-badkeys", keys=(key.key, "not-the-secret"))
        try:
            await bot.start()

            async def refused() -> bool:
                return "Exchange configuration is invalid" in bot.log_text()
            await live.wait_for(refused, FEED_READY_S, "OctoBot to report the refused API keys", bot.log_tail)
            await world.leader.send(buy_limit("W1", 29000, "10%"))
            await asyncio.sleep(5)
            assert await bot.open_orders() == []  # its web UI still answers
        finally:
            await bot.stop()
        log = strip_colors(bot.log_text())
        # OctoBot names the cause (the exchange's own words) and starts no trading mode on that exchange:
        # nothing is copied, nothing is sent; the strategy's signals wait in the hub for a bot with good keys
        assert "Exchange configuration is invalid : please check your configuration ! (AuthenticationError: " \
               "hollaex {\"message\":\"Access Denied: Invalid API Signature\"})" in log
        assert signal_lines(log) == [] and posted_orders(world) == []
        balance_answers = {r.status for r in world.exchange.requests(path="/v2/user/balance")}
        assert balance_answers == {403}, balance_answers
        assert "not-the-secret" not in log and key.secret not in log


# --------------------------------------------------------------------------- 4. the stock follower, for real
async def test_stock_octobot_follows_live_through_the_mqtt_egress(venv: Path, tmp_path: Path) -> None:
    """OctoBot 2.1.1 with its default tentacles only (its own RemoteTradingSignalsTradingMode), following our
    hub through the MQTT egress and Debian's mosquitto, trading live (simulated) on the local exchange."""
    async with live_world(tmp_path, mqtt=True) as world:
        assert world.broker_host is not None
        link, token = await world.follower_link()
        username = (await mqtt_identity(world.hub_url, token))["username"]
        bot_dir = live.new_bot_folder(venv, world.work / "bots", "stock-follower", None)
        imported = await live.import_profile(venv, bot_dir, link)
        # the stock mode follows by MQTT username: it has no use for our hub URL and token, and it writes its
        # whole config to logs/OctoBot.log at debug level, so a stock user keeps only trading_strategy (README)
        live.point_at_exchange(bot_dir, bot_dir / imported["path"], world.exchange.url, real_trading=False,
                               portfolio={"USDT": 1000, "BTC": 0}, mode_settings={"hub_url": "", "follower_token": ""})
        live.write_user_config(venv, bot_dir, imported["id"], mqtt_username=username)
        bot = live.LiveBot(venv, bot_dir, free_port(), world.work / "stock-follower.log",
                           env={"COMMUNITY_FEED_URL": world.broker_host})
        try:
            await bot.start()

            async def subscribed() -> bool:
                return f"Subscribed to t/{STRATEGY_ID}" in bot.log_text()
            await live.wait_for(subscribed, FEED_READY_S, "the stock feed to subscribe on the broker", bot.log_tail)
            await world.leader.send(buy_limit("S1", 29000, "10%"))
            # the stock mode sizes 10 % of its 1000 USDT at the local price too: 0.0033 BTC
            await orders_become(bot, [("BUY LIMIT", Decimal(29000), Decimal("0.0033"))], "the stock copy of S1")
            await world.leader.send(Leader.order("cancel", "S1", order_type="buy_limit", side="buy",
                                                 limit_price=29000))
            await orders_become(bot, [], "the stock cancel of S1")
        finally:
            await bot.stop()
        log = strip_colors(bot.log_text())
        assert f"Connected, client_id: {username}" in log  # the hub's MQTT username, nothing else
        assert token not in log
