"""`octobot-signals replay JOURNAL`: dry-run a strategy's signal history against my portfolio.

Runs every journal line through the real RemoteTradingSignalsTradingMode on an offline
simulated exchange. Before each message the simulated price moves to the leader's price of
that time (the `current` of its orders), so resting copies fill as they would have.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import decimal
import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from ..core import risk
from ..core import settings as settings_module
from ..follower import journal as journal_module
from ..follower.order_builder import describe
from ..follower.outcome import Outcome, Result
from ..simulator.harness import follower_on_sim_exchange, trading_config_with
from ..simulator.sim_exchange import SimExchangeSpec
from .args import UsageError, parse_assignments, parse_decimal_assignments

Decimal = decimal.Decimal


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("journal", type=Path, help="JSON-lines journal: one feed message per line")
    parser.add_argument("--portfolio", action="append", default=[], metavar="ASSET=AMOUNT[,ASSET=AMOUNT]",
                        help="my starting portfolio (default: 1000 of each quote currency)")
    parser.add_argument("--price", action="append", default=[], metavar="SYMBOL=PRICE",
                        help="starting price of a symbol (default: the leader's first price in the journal)")
    parser.add_argument("--exchange", default="binance", help="exchange name (default: binance)")
    parser.add_argument("--exchange-type", choices=["spot", "future"], default="spot")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help=f"a mode setting, one of: {', '.join(settings_module.KEYS)}")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def _scan_journal(lines: list[journal_module.JournalLine], mapping: tuple[tuple[str, str], ...] = (),
                  ) -> dict[str, Decimal]:
    """First leader price seen per symbol (named as I trade it, after quote_mapping): the starting prices."""
    prices: dict[str, Decimal] = {}
    for line in lines:
        for content in _contents(line.raw):
            symbol, price = content.get("symbol"), content.get("current") or content.get("limit_price")
            if isinstance(symbol, str):
                symbol = risk.map_symbol(symbol, mapping)
            if isinstance(symbol, str) and symbol not in prices and _positive(price):
                prices[symbol] = Decimal(str(price))
    return prices


def _contents(raw: str) -> list[dict[str, Any]]:
    try:
        message = json.loads(raw)
        signals = message["s"]["signals"]
        return [s["content"] for s in signals if isinstance(s, dict) and isinstance(s.get("content"), dict)]
    except (ValueError, KeyError, TypeError):
        return []


def _positive(value: Any) -> bool:
    try:
        number = Decimal(str(value))
    except (decimal.InvalidOperation, ValueError):
        return False
    return number.is_finite() and number > 0 and not isinstance(value, bool)


def build_spec(args: argparse.Namespace, lines: list[journal_module.JournalLine],
               mapping: tuple[tuple[str, str], ...] = ()) -> SimExchangeSpec:
    prices = _scan_journal(lines, mapping)
    prices.update(parse_decimal_assignments(args.price, "--price", positive=True))
    if not prices:
        raise UsageError("--price: no symbol found in the journal; pass --price SYMBOL=PRICE")
    portfolio = parse_decimal_assignments(
        [part for item in args.portfolio for part in item.split(",") if part.strip()], "--portfolio", positive=False
    )
    if not portfolio:
        portfolio = {symbol.split("/")[1].split(":")[0]: Decimal(1000) for symbol in prices}
    return SimExchangeSpec(portfolio=portfolio, prices=prices, exchange_name=args.exchange,
                           exchange_type=args.exchange_type)


async def run_replay(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    if not args.journal.is_file():
        raise UsageError(f"JOURNAL: no such file: {args.journal}")
    lines = list(journal_module.read_lines(args.journal))
    overrides = parse_assignments(args.settings, "--set")
    try:
        settings = settings_module.settings_from_config(trading_config_with(overrides))
    except settings_module.SettingsError as err:
        raise UsageError(f"--set {err}") from err
    # with quote_mapping USDT=USDC the simulated exchange trades BTC/USDC where the journal says BTC/USDT
    spec = build_spec(args, lines, settings.quote_mapping)
    counts: collections.Counter[str] = collections.Counter()
    report = _JsonReport(out) if args.json else _TableReport(out)
    try:
        async with follower_on_sim_exchange(spec, overrides) as harness:
            for line in lines:
                await _follow_leader_price(harness, line, settings.quote_mapping)
                outcomes = await harness.apply(line.raw)
                for outcome in outcomes:
                    counts[outcome.result.value] += 1
                    report.outcome(line.number, outcome)
            report.summary(
                {result.value: counts[result.value] for result in Result},
                {asset: {k: str(v) for k, v in values.items()} for asset, values in harness.sim.portfolio().items()},
                [describe(order) for order in harness.sim.open_orders()],
            )
    except settings_module.SettingsError as err:
        raise UsageError(f"--set {err}") from err
    return 0


async def _follow_leader_price(harness: Any, line: journal_module.JournalLine,
                               mapping: tuple[tuple[str, str], ...] = ()) -> None:
    symbols = harness.sim.exchange_manager.exchange_config.traded_symbol_pairs
    if line.d is not None:
        harness.sim.exchange_manager.backtesting.time_manager.current_timestamp = float(line.d)
    for content in _contents(line.raw):
        symbol, price = content.get("symbol"), content.get("current")
        symbol = risk.map_symbol(symbol, mapping) if isinstance(symbol, str) else symbol
        if symbol in symbols and _positive(price):
            await harness.sim.move_price(symbol, Decimal(str(price)))


class _JsonReport:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def outcome(self, line_number: int, outcome: Outcome) -> None:
        self.out.write(json.dumps(outcome.to_json()) + "\n")

    def summary(self, counts: dict[str, int], portfolio: dict[str, Any], open_orders: list[dict[str, Any]]) -> None:
        self.out.write(json.dumps({"summary": counts, "portfolio": portfolio, "open_orders": open_orders}) + "\n")


class _TableReport:
    _COLUMNS = ("line", "q", "leader order", "action", "result", "my orders / reason")

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.out.write(f"{'line':>5} {'q':>5}  {'leader order':<14} {'action':<8} {'result':<10} detail\n")

    def outcome(self, line_number: int, outcome: Outcome) -> None:
        detail = "; ".join(
            f"{o['side']} {o['quantity']} {o['symbol']} {o['type']} @ {o['price']} ({o['status']})"
            for o in outcome.orders
        )
        if outcome.reason:
            detail = f"{detail} - {outcome.reason}" if detail else outcome.reason
        q = "-" if outcome.q is None else str(outcome.q)
        leader = (outcome.order_id or "-")[:14]
        self.out.write(f"{line_number:>5} {q:>5}  {leader:<14} {outcome.action or '-':<8} "
                       f"{outcome.result.value:<10} {detail}\n")

    def summary(self, counts: dict[str, int], portfolio: dict[str, Any], open_orders: list[dict[str, Any]]) -> None:
        self.out.write("\nsummary: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
        self.out.write("portfolio:\n")
        for asset, values in portfolio.items():
            self.out.write(f"  {asset:<8} total {values['total']:<20} available {values['available']}\n")
        self.out.write(f"open orders: {len(open_orders)}\n")
        for order in open_orders:
            self.out.write(f"  {order['side']} {order['quantity']} {order['symbol']} {order['type']} "
                           f"@ {order['price']} ({order['status']})\n")


def replay_command(args: argparse.Namespace) -> int:
    quiet_octobot_logs()
    return asyncio.run(run_replay(args))


def quiet_octobot_logs() -> None:
    """Outside a bot, OctoBot logs harmless errors (no run database, no services); every outcome is in
    the report, so only critical log records get through."""
    logging.disable(logging.ERROR)
