"""Stopping the bot while a feed message is being applied neither duplicates nor loses a copy.

The consumer applies a bundle whole: stop() waits for the message in flight before it closes the order map,
even when the feed task that delivered the message is cancelled first (OctoBot stops a trading mode's
producer, hence the feed, before its consumer). After the restart the hub delivers the message again (its
`q` was never recorded) and the follower holds exactly one copy of each leader order.

The subprocess test runs this file as the follower bot (`python tests/test_money_path_stop.py ...`): the
real mode on a simulated exchange, fed by a real hub through the real bridge and FollowerClient. Its
exchange keeps its open orders across the restart, as a real exchange does: they are written to a file
when the bot stops and placed again, same ids, when it starts.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import signal_factory as sf
from octobot_signals import RemoteTradingSignalsTradingMode
from octobot_signals.remote_trading_signals_trading_mode import _whole
from octobot_signals.simulator.harness import default_trading_config, follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchange, SimExchangeSpec

STRATEGY = "stop-strategy"
BTC = "BTC/USDT"
SPEC = SimExchangeSpec(portfolio={"USDT": Decimal(10000), "BTC": Decimal(0)}, prices={BTC: Decimal(20000)})
LEADER_PRICES = {"STOP-A": 19000.0, "STOP-B": 19500.0}
ORDER_LATENCY_S = 0.15  # each way, between the bot and the exchange: the stop lands while the bundle is in flight
FIRST_PLACED, SECOND_SENT = "first order placed", "second order sent"
TOKEN_ENV = "OCTOBOT_SIGNALS_FOLLOWER_TOKEN"


def two_order_bundle_contents() -> list[dict[str, Any]]:
    return [sf.order_content(order_id=leader_id, order_type="buy_limit", limit_price=price, target_amount="10%",
                             strategy=STRATEGY) for leader_id, price in LEADER_PRICES.items()]


def slow_exchange(sim: SimExchange, stop_now: Any, at: str) -> None:
    """An order takes ORDER_LATENCY_S to reach the exchange and as long for its answer to come back;
    `stop_now` runs once, at FIRST_PLACED (the first order is on the exchange, its answer on the way) or at
    SECOND_SENT (the first order is placed and answered, the second on its way)."""
    trader = sim.exchange_manager.trader
    real_create = trader.create_order
    sent: list[Any] = []

    async def create(order: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(order)
        if at == SECOND_SENT and len(sent) == 2:
            stop_now()
        await asyncio.sleep(ORDER_LATENCY_S)
        created = await real_create(order, *args, **kwargs)
        if at == FIRST_PLACED and len(sent) == 1:
            stop_now()
        await asyncio.sleep(ORDER_LATENCY_S)
        return created

    trader.create_order = create


# ---- in process: the consumer stopped while a bundle is applied -------------------------------------------
async def test_consumer_stop_waits_for_the_bundle_in_flight(tmp_path: Path) -> None:
    async with follower_on_sim_exchange(SPEC, {"trading_strategy": STRATEGY}, data_dir=tmp_path) as f:
        first_placed = asyncio.Event()
        slow_exchange(f.sim, first_placed.set, at=FIRST_PLACED)
        message = sf.message(*(sf.signal(content) for content in two_order_bundle_contents()), strategy=STRATEGY)
        applying = asyncio.create_task(f.apply(message))
        await first_placed.wait()
        await f.mode.get_consumer().stop()  # the first order is on the exchange, the bundle is still in flight
        waited = applying.done()
        assert [o.result.value for o in await applying] == ["created", "created"]
        # restart on the same exchange; the hub delivers the message again (its q was not recorded)
        mode = RemoteTradingSignalsTradingMode(f.sim.config, f.sim.exchange_manager)
        mode.data_dir = tmp_path
        await mode.initialize(trading_config={**default_trading_config(), "trading_strategy": STRATEGY},
                              auto_start=False)
        f.mode = mode
        again = await mode.apply_feed_message(message)
        assert sorted(o.origin_price for o in f.sim.open_orders()) == [Decimal(19000), Decimal(19500)], (
            [(o.order_id, o.result.value, o.reason) for o in again])
        assert all("already applied" in (o.reason or "") for o in again), [o.reason for o in again]
        assert waited, "stop() returned while the message was still being applied"


async def test_feed_task_cancelled_mid_bundle_gets_its_cancellation_once_the_bundle_is_whole(tmp_path: Path) -> None:
    # the feed task is cancelled before the consumer stops: its cancellation waits for the bundle in flight
    async with follower_on_sim_exchange(SPEC, {"trading_strategy": STRATEGY}, data_dir=tmp_path) as f:
        first_placed = asyncio.Event()
        slow_exchange(f.sim, first_placed.set, at=FIRST_PLACED)
        message = sf.message(*(sf.signal(content) for content in two_order_bundle_contents()), strategy=STRATEGY)
        feed = asyncio.create_task(f.apply(message))
        await first_placed.wait()
        feed.cancel()  # the first order is on the exchange, the second not sent yet
        with pytest.raises(asyncio.CancelledError):
            await feed
        assert sorted(o.origin_price for o in f.sim.open_orders()) == [Decimal(19000), Decimal(19500)]
        again = await f.apply(message)  # the feed did not record it: delivered again, applied once
        assert all("already applied" in (o.reason or "") for o in again), [o.reason for o in again]


# ---- the consumer's `_whole`: a bundle runs in the feed task, never interrupted by its cancellation ---------
async def test_whole_costs_no_event_loop_turn_when_nothing_waits() -> None:
    turns: list[int] = []
    asyncio.get_running_loop().call_soon(turns.append, 1)

    async def quick() -> str:
        return "done"

    assert await _whole(quick(), pytest.fail) == "done"
    assert turns == []  # applied without handing the loop over (a task per message would have)


async def test_whole_holds_the_cancellation_until_the_coroutine_is_done() -> None:
    release, steps = asyncio.Event(), []

    async def work() -> str:
        steps.append("started")
        await release.wait()
        await asyncio.sleep(0)
        steps.append("finished")
        return "done"

    async def feed() -> str:
        return await _whole(work(), pytest.fail)

    task = asyncio.create_task(feed())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()  # twice: still held
    await asyncio.sleep(0.01)
    assert steps == ["started"] and not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["started", "finished"]


async def test_whole_a_future_cancelled_by_its_owner_raises_in_the_coroutine_not_in_the_caller() -> None:
    async def work() -> str:
        loop = asyncio.get_running_loop()
        waited = loop.create_future()
        loop.call_later(0.01, waited.cancel)
        try:
            await waited
        except asyncio.CancelledError:
            return "went on"
        return "not cancelled"

    assert await _whole(work(), pytest.fail) == "went on"


async def test_whole_reports_a_failure_that_follows_a_cancellation() -> None:
    release, failures = asyncio.Event(), []

    async def work() -> None:
        await release.wait()
        raise RuntimeError("exchange down")

    async def feed() -> None:
        await _whole(work(), failures.append)

    task = asyncio.create_task(feed())
    await asyncio.sleep(0.01)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [str(error) for error in failures] == ["exchange down"]


async def test_a_message_arriving_after_stop_is_refused_not_applied(tmp_path: Path) -> None:
    async with follower_on_sim_exchange(SPEC, data_dir=tmp_path) as f:
        await f.mode.get_consumer().stop()
        # refused with an error (ConsumerStopped), so the feed does not record its q and delivers it again
        with pytest.raises(RuntimeError, match="stopping"):
            await f.apply(sf.create(order_type="buy_limit", limit_price=19000.0))
        assert f.sim.open_orders() == []


# ---- subprocess: the bot stopped mid-bundle, restarted, the hub re-delivers --------------------------------
class FollowerBot:
    """This file run as a follower bot process; it prints one JSON object per line."""

    def __init__(self, hub_url: str, token: str, data: Path, exchange_file: Path, stop_mid_bundle: bool):
        self.args = [sys.executable, str(Path(__file__).resolve()), "--hub", hub_url, "--data", str(data),
                     "--exchange-file", str(exchange_file)] + (["--stop-mid-bundle"]
                                                                if stop_mid_bundle else [])
        self.env = {**os.environ, TOKEN_ENV: token}
        self.log = data.parent / "follower-bot.log"
        self.lines: list[dict[str, Any]] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(*self.args, env=self.env, stdout=asyncio.subprocess.PIPE,
                                                             stderr=log)
        self.reader = asyncio.create_task(self._read())
        await self.wait_for(lambda: any("ready" in line for line in self.lines), 60)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(json.loads(raw))

    def outcomes(self, u: str) -> list[dict[str, Any]]:
        return [line["outcome"] for line in self.lines if line.get("outcome", {}).get("u") == u]

    async def wait_for(self, condition: Any, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, (self.lines[-5:], self.log.read_text()[-3000:])
            assert self.proc is not None and self.proc.returncode is None, self.log.read_text()[-3000:]
            await asyncio.sleep(0.05)

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self.reader is not None:
            await self.reader
        return code

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait_exit(60)


async def test_bot_stopped_mid_bundle_then_restarted_holds_each_copy_once(tmp_path: Path) -> None:
    import aiohttp
    from hub_helpers import (
        admin_create_follower,
        admin_create_strategy,
        publish_command,
        recv_json,
        running_hub,
        ws_connect,
    )

    data, exchange_file = tmp_path / "follower", tmp_path / "exchange-orders.json"
    async with running_hub(tmp_path / "hub") as hub:
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, STRATEGY)
        token = (await admin_create_follower(hub.base_url, hub.admin_token, STRATEGY))["token"]
        first = FollowerBot(hub.base_url, token, data, exchange_file, stop_mid_bundle=True)
        await first.start()
        bundle = {"identifier": STRATEGY, "version": "1.0.0",
                  "signals": [sf.signal(content) for content in two_order_bundle_contents()]}
        async with aiohttp.ClientSession() as session:
            ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
            text, u = publish_command(strategy, bundle=bundle)
            await ws.send_str(text)
            assert (await recv_json(ws))["type"] == "ack"
            await ws.close()
        # the bot stops itself (SIGTERM) while the bundle's second order is on its way to the exchange
        assert await first.wait_exit(60) == 0, first.log.read_text()[-3000:]
        second = FollowerBot(hub.base_url, token, data, exchange_file, stop_mid_bundle=False)
        await second.start()
        try:
            # the hub delivers the bundle again: the first run never recorded its q
            await second.wait_for(lambda: len(second.outcomes(u)) == 2, 60)
        finally:
            assert await second.stop() == 0, second.log.read_text()[-3000:]
    orders = json.loads(exchange_file.read_text())
    assert sorted(Decimal(o["price"]) for o in orders) == [Decimal(19000), Decimal(19500)], (
        orders, second.outcomes(u))


# ---- the follower bot process ------------------------------------------------------------------------------
def _restore_orders(sim: SimExchange, exchange_file: Path) -> Any:
    import octobot_trading.enums as trading_enums
    import octobot_trading.personal_data as personal_data

    async def restore() -> None:
        if not exchange_file.exists():
            return
        trader = sim.exchange_manager.trader
        for saved in json.loads(exchange_file.read_text()):
            order = personal_data.create_order_instance(
                trader=trader, order_type=trading_enums.TraderOrderType(saved["type"]), symbol=saved["symbol"],
                current_price=Decimal(saved["price"]), quantity=Decimal(saved["quantity"]),
                price=Decimal(saved["price"]), side=trading_enums.TradeOrderSide(saved["side"]),
                order_id=saved["id"])
            await trader.create_order(order)

    return restore()


def _save_orders(sim: SimExchange, exchange_file: Path) -> list[dict[str, Any]]:
    from octobot_signals.follower.order_builder import describe

    orders = [describe(order) for order in sim.open_orders()]
    exchange_file.write_text(json.dumps(orders))
    return orders


def _emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


async def _follower_bot(args: argparse.Namespace, token: str) -> None:
    from octobot_signals.feed.bridge import stop_bridge
    from octobot_signals.feed.subscription import subscribe_mode

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    overrides = {"trading_strategy": STRATEGY, "hub_url": args.hub, "follower_token": token}
    async with follower_on_sim_exchange(SPEC, overrides, data_dir=args.data, live=True) as f:
        await _restore_orders(f.sim, args.exchange_file)
        if args.stop_mid_bundle:
            slow_exchange(f.sim, lambda: os.kill(os.getpid(), signal.SIGTERM), at=SECOND_SENT)
        subscription = await subscribe_mode(
            f.mode, on_outcomes=lambda message, outcomes: [_emit({"outcome": o.to_json()}) for o in outcomes])
        # owned by the mode's producer, as when OctoBot starts the mode: stopping the mode stops the feed first
        f.mode.producers[0].subscription = subscription
        await subscription.bridge.follower.wait_until_subscribed(30)
        _emit({"ready": True})
        await stop.wait()
        await f.mode.stop()  # OctoBot's shutdown: the exchange manager stops each trading mode
        _emit({"stopped": _save_orders(f.sim, args.exchange_file)})
        await stop_bridge()


def main() -> None:
    from octobot_signals.cli.replay import quiet_octobot_logs

    parser = argparse.ArgumentParser()
    parser.add_argument("--hub", required=True)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--exchange-file", required=True, type=Path)
    parser.add_argument("--stop-mid-bundle", action="store_true")
    args = parser.parse_args()
    quiet_octobot_logs()
    asyncio.run(_follower_bot(args, os.environ[TOKEN_ENV]))


if __name__ == "__main__":
    main()
