"""Copy trading live inside real OctoBot 2.1.1 bots, on our local exchange (issue 18).

Real parts: OctoBot 2.1.1 (its own Python 3.12 venv) with OctoBot's default tentacles and our package, both
installed by OctoBot's tentacles manager; the follower's profile downloaded from our hub's personal link by
OctoBot's own importer; OctoBot's stock `hollaex` exchange tentacle trading, unpatched, against the local
HollaEx-compatible exchange on 127.0.0.1 (tests/local_exchange); OctoBot's own web UI answering what the bot
holds (`/api/orders`). The leader publishes through our publisher client and its durable outbox.
Skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hub_helpers import free_port
from octobot_real import live, support
from octobot_real.live_world import SYMBOL, Leader, World, live_world
from octobot_signals.cli.package_cmd import build_package

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")

FEED_READY_S = 120  # OctoBot start to our feed subscribed: ~15 s here
COPY_S = 30         # publish to the copy showing in the bot (simulated: ~15 ms; real: one REST round trip)


@pytest.fixture(scope="module")
def venv() -> Path:
    return support.octobot_venv()


@pytest.fixture(scope="module")
def package_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_package(tmp_path_factory.mktemp("dist"), default_profile=False)


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
    return sorted((o["type"], Decimal(str(o["price"])), Decimal(str(o["amount"]))) for o in orders
                  if o["symbol"] == SYMBOL)


async def orders_become(bot: live.LiveBot, expected: list[tuple[str, Decimal, Decimal]], what: str) -> None:
    async def matches() -> bool:
        return limit_orders(await bot.open_orders()) == expected
    try:
        await live.wait_for(matches, COPY_S, what)
    except AssertionError as err:
        raise AssertionError(f"{err}: the bot shows {limit_orders(await bot.open_orders())}\n"
                             f"{bot.log_tail()}") from None


def signal_lines(log: str) -> list[str]:
    """What the follower did with each feed message, from its log: `q=N <action> <leader id> -> <result>`."""
    found = re.findall(r"RemoteTradingSignalsFollower signal (q=\d+ \w+ \S+ -> \w+)", strip_colors(log))
    return found


def strip_colors(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


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
        assert before == ["q=1 create L1 -> created", "q=2 edit L1 -> edited", "q=3 cancel L1 -> cancelled",
                          "q=4 create L2 -> created"], before
        # resumed after q=4: nothing applied twice, the missed q=5..7 caught up in order
        assert after[:3] == ["q=5 create L3 -> created", "q=6 create L4 -> created", "q=7 cancel L3 -> cancelled"], after
        assert after[3].startswith("q=8 cancel L2 -> skipped") and after[4] == "q=9 cancel L4 -> cancelled", after
        assert "Traceback" not in bot.log_text()
        print(f"\nlive simulated: publish -> copy in the bot's web UI {copy_seconds * 1000:.0f} ms (poll 0.5 s)")
