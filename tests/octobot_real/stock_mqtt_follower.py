"""Runs in the OctoBot 2.1.1 venv with a bot folder as cwd: a STOCK follower's MQTT path, unmodified.

What a stock OctoBot does to follow a strategy: its CommunityAuthentication reads `community.mqtt_uuid`
from user/config.json (through its own configuration storage), creates the community feed of the default
type (MQTT) on host $COMMUNITY_FEED_URL, connects, and subscribes `t/<strategy>` when octobot-trading
registers its signal callback; the callback turns each message into a SignalBundle with octobot-commons'
`create_signal_bundle` (what octobot-trading's signal producer does). Nothing of this project is imported.

The one change: CommunityMQTTFeed.MQTT_BROKER_PORT, a class constant (1883) the feed copies in __init__,
is set to argv port when that is not 1883 (the test uses 1883 when it is free on 127.0.0.1, else a free
port). No OctoBot file or function is modified.

With a third argument, OctoBot's default tentacles zip, each received orders signal also goes to the stock
RemoteTradingSignalsModeConsumer's `handle_signal` (loaded from that zip at run time, never copied), as the
stock producer hands it over, on an offline simulated exchange: our simulator/sim_exchange.py, loaded by
path (it only calls octobot-trading), is the one file of this project in the process. Positions signals
are not applied there (a leverage edit needs a futures account); their types are reported like any other.

stdout protocol: `READY {...}` once subscribed, `MSG {...}` per message (receive time taken in the
callback; `types`: each signal content's value types as the callback got them), `APPLIED {...}` after the
stock consumer handled a message's orders (with a zip), then `DONE {...}` after a line on stdin (or stdin
closing) asks it to stop.
Usage: python stock_mqtt_follower.py STRATEGY_ID PORT [DEFAULT_TENTACLES_ZIP]
"""
from __future__ import annotations

import asyncio
import contextlib
import decimal
import importlib.util
import json
import logging
import sys
import time
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import octobot.community as octobot_community
import octobot.community.feeds.community_mqtt_feed as community_mqtt_feed
import octobot_commons.configuration as commons_configuration
import octobot_commons.enums as commons_enums
import octobot_commons.signals as commons_signals

READY_TIMEOUT_S = 20
STOCK_MEMBER = "reference_tentacles/Trading/Mode/remote_trading_signals_trading_mode/remote_trading_signals_trading.py"
SIM_EXCHANGE = (Path(__file__).resolve().parents[2] / "tentacles" / "Trading" / "Mode"
                / "remote_trading_signals_trading_mode" / "simulator" / "sim_exchange.py")
SYMBOL = "BTC/USDT"


def emit(kind: str, payload: dict) -> None:
    sys.stdout.write(f"{kind} {json.dumps(payload)}\n")
    sys.stdout.flush()


def value_types(content: dict) -> dict:
    """The type of each content value as the callback got it (nested additional orders mapped the same way)."""
    types: dict[str, Any] = {key: type(value).__name__ for key, value in content.items()}
    nested = content.get("additional_orders")
    if isinstance(nested, list):
        types["additional_orders"] = [value_types(child) for child in nested if isinstance(child, dict)]
    return types


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def describe(order: Any) -> dict:
    return {"order_id": order.order_id, "type": order.order_type.value, "price": str(order.origin_price),
            "quantity": str(order.origin_quantity), "chained": [describe(c) for c in order.chained_orders]}


class StockModeApplier:
    """The stock consumer on a simulated exchange (100 000 USDT and 1 BTC, BTC/USDT at 20 000), fed from a
    queue so the feed callback (and the latency it measures) never waits for it."""

    def __init__(self, consumer: Any, sim: Any) -> None:
        self.consumer, self.sim = consumer, sim
        self.queue: asyncio.Queue[tuple[str, list] | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    @classmethod
    async def start(cls, stack: contextlib.AsyncExitStack, stock_zip: Path, work_dir: Path) -> StockModeApplier:
        stock_py = work_dir / "stock_remote_trading_signals_trading.py"
        with zipfile.ZipFile(stock_zip) as archive:
            stock_py.write_bytes(archive.read(STOCK_MEMBER))
        stock = load_module("_stock_remote_trading_signals_trading", stock_py)
        sim_module = load_module("_octobot_signals_sim_exchange", SIM_EXCHANGE)
        dec = decimal.Decimal
        spec = sim_module.SimExchangeSpec(portfolio={"USDT": dec(100_000), "BTC": dec(1)}, prices={SYMBOL: dec(20_000)})
        sim = await stack.enter_async_context(sim_module.sim_exchange(spec))  # stopped on exit, or asyncio.run hangs
        mode = stock.RemoteTradingSignalsTradingMode(sim.config, sim.exchange_manager)
        # what the consumer reads; the mode is not initialize()d: its producer refuses a backtesting exchange
        mode.trading_config = {"trading_strategy": "stock", "max_volume": 100,
                               "round_to_minimal_size_if_necessary": True, "required_strategies": []}
        mode.symbol, mode.cryptocurrency = SYMBOL, SYMBOL.split("/")[0]
        sim.exchange_manager.trading_modes.append(mode)
        return cls(stock.RemoteTradingSignalsModeConsumer(mode), sim)

    async def _run(self) -> None:
        while (item := await self.queue.get()) is not None:
            u, signals = item
            errors = []
            for signal in signals:
                if signal.topic != "orders":
                    continue
                try:
                    await self.consumer.handle_signal(signal.content.get("symbol"), signal)
                except Exception as err:  # reported: the test names what the stock mode refused
                    errors.append(f"{type(err).__name__}: {err}")
            emit("APPLIED", {"u": u, "errors": errors, "orders": [describe(o) for o in self.sim.open_orders()]})

    async def drain(self) -> None:
        self.queue.put_nowait(None)
        await self.task


async def main(strategy_id: str, port: int, stock_zip: Path | None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        applier = None if stock_zip is None else await StockModeApplier.start(stack, stock_zip, Path.cwd())
        await follow(strategy_id, port, applier)


async def follow(strategy_id: str, port: int, applier: StockModeApplier | None) -> None:
    patched = port != community_mqtt_feed.CommunityMQTTFeed.MQTT_BROKER_PORT
    if patched:
        community_mqtt_feed.CommunityMQTTFeed.MQTT_BROKER_PORT = port
    # the bot's own configuration object holding user/config.json (profiles are not needed by the feed)
    bot_dir = Path.cwd()
    configuration = commons_configuration.Configuration(str(bot_dir / "user" / "config.json"),
                                                        str(bot_dir / "user" / "profiles"))
    configuration.config = json.loads((bot_dir / "user" / "config.json").read_text(encoding="utf-8"))
    # never contacted: the feed needs no backend login (a placeholder address, like the publish probe)
    community = octobot_community.CommunityAuthentication(config=configuration, backend_url="https://backend.invalid",
                                                          backend_key="offline")
    received: list[dict] = []

    async def on_signal(parsed_message: dict) -> None:
        now = time.time()
        bundle = commons_signals.create_signal_bundle(parsed_message)
        entry = {"recv": now, "u": parsed_message.get("u"), "q": parsed_message.get("q"),
                 "d": parsed_message.get("d"), "identifier": bundle.identifier,
                 "signals": [{"topic": s.topic, "order_id": s.content.get("order_id")} for s in bundle.signals]}
        received.append(entry)  # DONE repeats these: the types stay in MSG only
        emit("MSG", {**entry, "types": [value_types(s.content) for s in bundle.signals]})
        if applier is not None:
            applier.queue.put_nowait((entry["u"], bundle.signals))

    await community.register_feed_callback(commons_enums.CommunityChannelTypes.SIGNAL, on_signal,
                                           identifier=strategy_id)
    feed = community._community_feed  # the feed OctoBot's factory created (read only, to report readiness)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (feed is not None and feed.is_connected() and feed.subscribed):
        if time.monotonic() > deadline:
            emit("DONE", {"error": "not subscribed in time", "feed": type(feed).__name__, "received": received})
            return
        await asyncio.sleep(0.02)
    emit("READY", {"feed": type(feed).__name__, "port": feed.mqtt_broker_port, "port_constant_patched": patched,
                   "username": feed._get_client_uuid() != "", "host": feed.feed_url})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the test says stop
    await feed.stop()
    if applier is not None:
        await applier.drain()
    emit("DONE", {"received": received})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None))
