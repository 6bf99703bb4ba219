"""`octobot-signals follow`: a paper-trading follower bot, live on a hub, without OctoBot's UI.

Runs the real RemoteTradingSignalsTradingMode on an offline simulated exchange and follows a
strategy through the hub until interrupted. Handy to try a strategy live with a made-up
portfolio, and the process the kill/restart tests drive. The follower token comes from the
environment (OCTOBOT_SIGNALS_FOLLOWER_TOKEN), never from the command line.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..feed.bridge import stop_bridge
from ..feed.subscription import subscribe_mode
from ..follower.order_builder import describe
from ..simulator.harness import follower_on_sim_exchange
from ..simulator.sim_exchange import SimExchangeSpec
from .args import UsageError, parse_assignments, parse_decimal_assignments
from .replay import quiet_octobot_logs

TOKEN_ENV = "OCTOBOT_SIGNALS_FOLLOWER_TOKEN"


def add_follow_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub", required=True, help="hub URL, e.g. http://127.0.0.1:8765")
    parser.add_argument("--strategy", required=True, help="strategy id to follow")
    parser.add_argument("--data", required=True, type=Path, help="follower state: sequences, order map")
    parser.add_argument("--portfolio", action="append", default=[], metavar="ASSET=AMOUNT[,ASSET=AMOUNT]")
    parser.add_argument("--price", action="append", default=[], required=True, metavar="SYMBOL=PRICE",
                        help="starting price of each traded symbol")
    parser.add_argument("--exchange", default="binance")
    parser.add_argument("--exchange-type", choices=["spot", "future"], default="spot")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings")
    parser.add_argument("--json", action="store_true", help="one JSON object per order content")


def follow_command(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"set the follower token in the environment variable {TOKEN_ENV}")
    quiet_octobot_logs()
    return asyncio.run(_follow(args, token))


async def _follow(args: argparse.Namespace, token: str) -> int:
    prices = parse_decimal_assignments(args.price, "--price", positive=True)
    portfolio = parse_decimal_assignments(
        [part for item in args.portfolio for part in item.split(",") if part.strip()], "--portfolio", positive=False)
    spec = SimExchangeSpec(portfolio=portfolio or {"USDT": Decimal(1000)}, prices=prices, exchange_name=args.exchange,
                           exchange_type=args.exchange_type)
    overrides: dict[str, Any] = {**parse_assignments(args.settings, "--set"), "trading_strategy": args.strategy,
                                 "hub_url": args.hub, "follower_token": token}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    args.data.mkdir(parents=True, exist_ok=True)

    def report(message: dict[str, Any], outcomes: list[Any]) -> None:
        for outcome in outcomes:
            line = json.dumps(outcome.to_json()) if args.json else outcome.log_line()
            sys.stdout.write(line + "\n")
        sys.stdout.flush()

    async with follower_on_sim_exchange(spec, overrides, data_dir=args.data, live=True) as harness:
        subscription = await subscribe_mode(harness.mode, on_outcomes=report)
        sys.stdout.write(json.dumps({"following": args.strategy, "hub": args.hub}) + "\n")
        sys.stdout.flush()
        try:
            await stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await subscription.stop()
            await stop_bridge()
            summary = {"open_orders": [describe(o) for o in harness.sim.open_orders()],
                       "portfolio": {a: {k: str(v) for k, v in vals.items()}
                                     for a, vals in harness.sim.portfolio().items()}}
            sys.stdout.write(json.dumps({"stopped": summary}) + "\n")
            sys.stdout.flush()
    return 0
