"""What a publishing bot reports about itself, read from its octobot-trading exchange manager.

- value: every holding in the reference market (the portfolio manager's `reference_market`): the reference
  asset as is, others at the exchange's mark price of ASSET/REF (or 1 / REF/ASSET), else octobot-trading's
  value converter. A futures asset counts its wallet balance plus unrealized PnL. When one holding cannot be
  valued there is no snapshot (a value that silently drops an asset would show a fake loss).
- fills: trades (fills) the trades manager did not hold at the previous reading.
- closed trades with their realized result, where octobot-trading knows it: futures realised-PnL
  transactions, and spot exits linked to their entry (TradesManager.get_completed_trades_pnl: modes that set
  `associated_entry_ids`, such as grid and DCA exits). Other fills count as fills only.
- flow: deposits (+) and withdrawals (-) octobot-trading recorded as blockchain transactions since the
  previous reading, valued like holdings. A transfer the bot never saw (made on the exchange's website) is
  invisible here: it shows as profit or loss, which the hub's page says.

The first reading primes what is "already there" (fills and transfers before it are not reported); closed
trades already known are reported once (the hub keeps each trade id once).
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..core.performance import MAX_TRADES_PER_SNAPSHOT, ClosedTrade, Snapshot

logger = logging.getLogger("octobot_signals.feed.performance")

REMEMBERED_IDS = 20_000  # fills / trades / transfers remembered as reported (oldest forgotten first)
MONEY_STEP = Decimal("1e-8")  # what is sent: the hub reads at most 32 characters per number


def money(value: Any) -> Decimal:
    return Decimal(value).quantize(MONEY_STEP).normalize() if value else Decimal(0)


class CannotValue(Exception):
    """A holding without a price in the reference market: no snapshot now."""


def _mark_price(exchange_manager: Any, symbol: str) -> Decimal | None:
    try:
        data = exchange_manager.exchange_symbols_data.get_exchange_symbol_data(symbol, allow_creation=False)
        price = data.prices_manager.mark_price
    except (KeyError, AttributeError):
        return None
    return Decimal(price) if price and price > 0 else None


def price_in(exchange_manager: Any, asset: str, reference: str) -> Decimal:
    if asset == reference:
        return Decimal(1)
    direct = _mark_price(exchange_manager, f"{asset}/{reference}")
    if direct is not None:
        return direct
    inverse = _mark_price(exchange_manager, f"{reference}/{asset}")
    if inverse is not None:
        return Decimal(1) / inverse
    try:
        holder = exchange_manager.exchange_personal_data.portfolio_manager.portfolio_value_holder
        value = holder.value_converter.evaluate_value(asset, Decimal(1), raise_error=True, target_currency=reference,
                                                      init_price_fetchers=False)
    except Exception as err:  # octobot-trading's MissingPriceDataError and friends
        raise CannotValue(f"no {asset}/{reference} price yet") from err
    if not value or value <= 0:
        raise CannotValue(f"no {asset}/{reference} price yet")
    return Decimal(value)


def portfolio_value(exchange_manager: Any) -> tuple[Decimal, str]:
    """(value, reference market) of the whole portfolio; raises CannotValue."""
    manager = exchange_manager.exchange_personal_data.portfolio_manager
    reference = manager.reference_market
    total = Decimal(0)
    for asset, holding in manager.portfolio.portfolio.items():
        if hasattr(holding, "wallet_balance"):  # futures: margin balance = wallet balance + unrealized PnL
            amount = Decimal(holding.wallet_balance) + Decimal(getattr(holding, "unrealized_pnl", 0) or 0)
        else:
            amount = Decimal(holding.total)
        if amount:
            total += amount * price_in(exchange_manager, asset, reference)
    return money(max(total, Decimal(0))), reference


class _Seen:
    """A bounded set of ids (insertion order, the oldest forgotten first)."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        while len(self._ids) > REMEMBERED_IDS:
            self._ids.popitem(last=False)


def _fill_ids(exchange_manager: Any) -> list[str]:
    trades = exchange_manager.exchange_personal_data.trades_manager.trades
    return [str(trade_id) for trade_id, trade in list(trades.items())
            if getattr(getattr(trade, "status", None), "value", None) != "canceled"]


def _closed_trades(exchange_manager: Any) -> list[ClosedTrade]:
    personal = exchange_manager.exchange_personal_data
    found: list[ClosedTrade] = []
    for transaction in list(getattr(personal.transactions_manager, "transactions", {}).values()):
        pnl = getattr(transaction, "realised_pnl", None)
        if pnl is not None:  # futures: each (partial) close realizes a result
            found.append(ClosedTrade(f"pnl-{transaction.transaction_id}", float(transaction.creation_time),
                                     transaction.symbol, money(pnl), transaction.currency))
    try:
        completed = personal.trades_manager.get_completed_trades_pnl()
    except Exception as err:  # an entry or exit missing from the history: the others still count
        logger.debug("completed trades unavailable: %s", err)
        completed = []
    for trade_pnl in completed:
        try:
            close = trade_pnl.closes[-1]
            symbol = trade_pnl.entries[0].symbol
            profit, _ = trade_pnl.get_profits()
            found.append(ClosedTrade(f"exit-{close.trade_id}", float(trade_pnl.get_close_time()), symbol,
                                     money(profit), symbol.split("/")[1].split(":")[0]))
        except Exception as err:  # IncompletePNLError: an exit without its entry
            logger.debug("skipping an incomplete closed trade: %s", err)
    return sorted(found, key=lambda trade: trade.t)


def _transfers(exchange_manager: Any) -> list[tuple[str, str, Decimal]]:
    """(id, currency, signed quantity) of the deposits and withdrawals octobot-trading recorded as done."""
    transactions = getattr(exchange_manager.exchange_personal_data.transactions_manager, "transactions", {})
    found = []
    for transaction in list(transactions.values()):
        if not hasattr(transaction, "is_deposit") or transaction.is_pending():
            continue
        if transaction.is_deposit():
            found.append((str(transaction.transaction_id), transaction.currency, Decimal(transaction.quantity)))
        elif transaction.is_withdrawal():
            found.append((str(transaction.transaction_id), transaction.currency, -Decimal(transaction.quantity)))
    return found


@dataclass
class PortfolioReader:
    """Stateful: each `read` reports what is new since the previous one."""

    strategy_id: str
    _fills: _Seen = field(default_factory=_Seen)
    _trades: _Seen = field(default_factory=_Seen)
    _transfers: _Seen = field(default_factory=_Seen)
    _primed: bool = False

    def new_fills(self, exchange_manager: Any) -> int:
        """Fills since the previous reading (nothing is marked: the next `read` reports them)."""
        if not self._primed:
            return 0
        return sum(1 for trade_id in _fill_ids(exchange_manager) if trade_id not in self._fills)

    def read(self, exchange_manager: Any, now: float | None = None) -> Snapshot:
        """The snapshot to send now; raises CannotValue (then nothing is marked as reported)."""
        equity, reference = portfolio_value(exchange_manager)
        fill_ids = [i for i in _fill_ids(exchange_manager) if i not in self._fills]
        transfers = [t for t in _transfers(exchange_manager) if t[0] not in self._transfers]
        flow = Decimal(0)
        if self._primed:
            for _, currency, quantity in transfers:
                flow += quantity * price_in(exchange_manager, currency, reference)
        trades = [t for t in _closed_trades(exchange_manager) if t.id not in self._trades][-MAX_TRADES_PER_SNAPSHOT:]
        snapshot = Snapshot(self.strategy_id, time.time() if now is None else now, equity, reference, money(flow),
                            len(fill_ids) if self._primed else 0, tuple(trades))
        for trade_id in fill_ids:
            self._fills.add(trade_id)
        for transfer_id, _, _ in transfers:
            self._transfers.add(transfer_id)
        for trade in trades:
            self._trades.add(trade.id)
        self._primed = True
        return snapshot
