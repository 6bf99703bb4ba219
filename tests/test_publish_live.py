"""A real OctoBot 2.1.1 leader running the stock DCATradingMode publishes through the web UI card (issue 19).

Real parts: OctoBot 2.1.1 (its own venv) with its default tentacles and our package, trading live in simulated
mode on `hollaex` pointed at the local HollaEx-compatible exchange (tests/local_exchange, in this process), and
our hub (in this process). The card is in user/config.json as the web UI writes it (`services` ->
`octobot-signals`, the secret encrypted by OctoBot's fields_utils); nothing else configures publishing: the
DCA mode's own config has no `emit_trading_signals`, and no OCTOBOT_SIGNALS_* variable reaches the bot.

1. the card holds a wrong secret, written in clear by hand (OctoBot's save at start encrypts it): DCA buys at start, the bot says the hub refused the secret, the bundle waits
   in the outbox (user/octobot_signals/), OctoBot's notifications (its web UI's /logs page) show the refusal,
   and the hub journals nothing;
2. the card is fixed and the bot restarted: the waiting bundle goes out first, then what the bot publishes
   next, and the hub journals them in order, named after the card's strategy.
Skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import asyncio
import html
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import octobot_commons.configuration.fields_utils as fields_utils
import pytest
from hub_helpers import admin_create_follower, admin_create_strategy, auth, free_port, running_hub
from octobot_real import live, support
from octobot_real.live_world import dca_profile, write_publish_card
from octobot_real.webui import WebBot
from octobot_signals.cli.package_cmd import build_package
from octobot_signals.feed import publish_card
from octobot_signals.feed.outbox import Outbox
from octobot_signals.local_exchange import LocalExchange

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")

STRATEGY_ID = "dca-live"
PROFILE_ID = "publish_dca"
WAIT_S = 90


def _write_profile(bot_dir: Path, exchange_url: str) -> None:
    """OctoBot's own Simple DCA profile, copied, on hollaex (the local exchange), trading at start."""
    dca_profile(bot_dir, PROFILE_ID, "Publish DCA", exchange_url, portfolio={"USDT": 10000}, dca={
        "trigger_mode": "Time based", "buy_order_amount": "10%t", "use_market_entry_orders": True,
        "use_take_profit_exit_orders": True, "exit_limit_orders_price_percent": 5, "use_stop_losses": False,
        "cancel_open_orders_at_each_entry": False})


def _write_user_config(venv: Path, bot_dir: Path, hub_url: str, secret: str, *, by_hand: bool = False) -> None:
    """user/config.json as the web UI leaves it after saving the card (OctoBot rewrites it at start);
    by_hand: the secret in clear, as someone editing the file would write it."""
    write_publish_card(venv, bot_dir, PROFILE_ID, hub_url=hub_url, strategy_id=STRATEGY_ID, secret=secret,
                       by_hand=by_hand)


async def _wait_for(predicate: Any, what: str, bot: WebBot, timeout: float = WAIT_S) -> Any:
    async def probe() -> Any:
        result = predicate()
        return (await result) if asyncio.iscoroutine(result) else result

    return await live.wait_for(probe, timeout, what, on_timeout=lambda: bot.log_tail(6000))


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


async def test_stock_dca_leader_publishes_through_the_card(tmp_path: Path) -> None:
    venv = support.octobot_venv()
    bot_dir = live.new_bot_folder(venv, tmp_path, "leader", build_package(tmp_path / "dist"))
    outbox_path = bot_dir / publish_card.DEFAULT_DATA_DIR
    bot = WebBot(venv, bot_dir, free_port(), tmp_path / "octobot-output.log")
    async with running_hub(tmp_path / "hub") as hub, LocalExchange() as exchange:
        assert hub.admin_token
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, STRATEGY_ID, exchange="hollaex")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, STRATEGY_ID))["token"]
        _write_profile(bot_dir, exchange.url)

        async def journal() -> list[dict[str, Any]]:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async with session.get(f"{hub.base_url}/api/strategies/{STRATEGY_ID}/signals?after=0",
                                       headers=auth(token)) as response:
                    assert response.status == 200
                    return await response.json()

        try:
            # 1. a wrong secret: the buy waits in the outbox
            _write_user_config(venv, bot_dir, hub.base_url, "ps_wrong_secret", by_hand=True)
            started = time.monotonic()
            await bot.start()

            def refused() -> bool:
                log = _plain(bot.log_of_start(1))
                return "refused the publish secret" in log and "queued for the hub" in log

            await _wait_for(refused, "the refusal and a queued bundle", bot)
            first_start = time.monotonic() - started
            log1 = _plain(bot.log_of_start(1))
            assert f"publishing to {hub.base_url} strategy {STRATEGY_ID} (unsigned; settings from the " \
                   f"'{publish_card.SERVICE_TYPE}' card" in log1
            assert f"DCATradingMode on hollaex: its orders are published to strategy {STRATEGY_ID}" in log1

            async def notified() -> bool:  # OctoBot's notifications, as its web UI lists them (/logs)
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                    async with session.get(bot.base_url + "/logs") as response:
                        page = html.unescape(await response.text())
                return "octobot-signals publishing" in page and "refused the publish secret" in page

            await _wait_for(notified, "the refusal in OctoBot's notifications", bot, timeout=30)
            await bot.stop()
            assert await journal() == []
            # the clear secret written by hand was encrypted by OctoBot's own save at start
            on_disk = (bot_dir / "user" / "config.json").read_text()
            assert "ps_wrong_secret" not in on_disk
            stored = json.loads(on_disk)["services"][publish_card.SERVICE_TYPE][publish_card.KEY_SECRET]
            assert fields_utils.decrypt(stored) == "ps_wrong_secret"
            outbox = Outbox(outbox_path)
            try:
                waiting = outbox.pending(100)
            finally:
                outbox.close()
            assert waiting and {item.strategy_id for item in waiting} == {STRATEGY_ID}
            first_signals = waiting[0].bundle["signals"]
            assert first_signals[0]["content"]["action"] == "create"
            assert first_signals[0]["content"]["side"] == "buy" and first_signals[0]["content"]["symbol"] == "BTC/USDT"

            # 2. the card fixed, the bot restarted: what waited goes out first, in order
            _write_user_config(venv, bot_dir, hub.base_url, strategy["publish_secret"])
            await bot.start()

            async def delivered() -> list[dict[str, Any]] | None:
                messages = await journal()
                return messages if len(messages) >= len(waiting) else None

            messages = await _wait_for(delivered, "the waiting bundles on the hub", bot)
            await _wait_for(lambda: f"accepts the publish secret for strategy {STRATEGY_ID}"
                            in _plain(bot.log_of_start(2)), "the hub check", bot)
            log2 = _plain(bot.log_of_start(2))

            async def track_record() -> dict[str, Any] | None:  # issue 20: the live leader reports, too
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                    async with session.get(f"{hub.base_url}/api/strategies/{STRATEGY_ID}/performance") as response:
                        body = await response.json()
                return body if response.status == 200 and body.get("points", 0) >= 1 else None

            performance = await _wait_for(track_record, "the leader's first performance report", bot)
            assert performance["signed"] == "none"  # the card has no signing key: "not signed" on the page
            assert [message["u"] for message in messages[:len(waiting)]] == [item.u for item in waiting]
            assert [message["q"] for message in messages] == sorted(message["q"] for message in messages)
            assert {message["s"]["identifier"] for message in messages} == {STRATEGY_ID}
            await bot.stop()
            every_log = bot.log_text()
            assert strategy["publish_secret"] not in every_log and "ps_wrong_secret" not in every_log
            actions = [(signal["content"]["action"], signal["content"]["side"], signal["content"]["type"])
                       for message in messages for signal in message["s"]["signals"]]
            print(f"\nfirst start to refusal + queued bundle: {first_start:.1f} s; journal: {actions}")
            assert "publishing problem" not in log2
        finally:
            await bot.stop()

