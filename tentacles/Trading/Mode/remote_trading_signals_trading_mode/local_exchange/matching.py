"""The matching rule: orders fill against the scripted price, never against each other.

- A market order fills at once, whole, at the last trade price (taker).
- A limit order that the last price already crosses when placed fills at once at the last price
  (taker); otherwise it rests and fills at its own price (maker) on the first price change that
  crosses it: a buy when last <= price, a sell when last >= price. A market's
  `max_fill_per_step` (or the price call's `max_fill`) caps how much one resting order fills per
  price change: the rest waits for the next change, status `pfilled`.
- A stop order (`stop`) waits untriggered; it triggers on the first price change that reaches the
  stop from the side the price was on when the order was placed (a stop below the price triggers
  on a fall, one above on a rise), then behaves as a market or limit order placed at that moment.
  A triggered stop-market buy that can no longer pay is canceled.
- Fees are the account tier's maker/taker percents, taken from what the order receives (the base
  coin of a buy, the quote coin of a sell), like HollaEx. Taker fills print a public trade at the
  last price (the price does not move); price changes print their own trade.
"""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from .accounts import Account, Accounts
from .book import Book, Order, UserTrade
from .config import ExchangeConfig, TierSpec
from .decimals import ZERO, is_multiple, optional_decimal, to_decimal
from .errors import ORDER_NOT_FOUND, POST_ONLY_MARKET, POST_ONLY_REJECTED, ApiError, bad_request
from .market_data import MarketData

HUNDRED = Decimal(100)


def crosses(order: Order, last: Decimal) -> bool:
    assert order.price is not None
    return last <= order.price if order.side == "buy" else last >= order.price


class Engine:
    def __init__(self, config: ExchangeConfig, accounts: Accounts) -> None:
        self.markets: dict[str, MarketData] = {name: MarketData(spec) for name, spec in config.markets.items()}
        self.tiers = config.tiers
        self.accounts = accounts
        self.book = Book()

    # -- lookups ---------------------------------------------------------------------------
    def market(self, symbol: Any) -> MarketData:
        market = self.markets.get(str(symbol or "").lower())
        if market is None or not market.spec.active:
            raise bad_request("Invalid symbol")
        return market

    def coins(self) -> list[str]:
        return sorted({c for m in self.markets.values() for c in (m.spec.base, m.spec.quote)})

    def tier(self, account: Account) -> TierSpec:
        return self.tiers.get(account.tier) or self.tiers.get(1) or TierSpec(ZERO, ZERO)

    def order_json(self, order: Order) -> dict[str, Any]:
        tier = self.tier(self.accounts.get(order.account_id))
        return order.to_json({"maker": tier.maker, "taker": tier.taker})

    # -- orders ----------------------------------------------------------------------------
    def place(self, account: Account, body: dict[str, Any]) -> Order:
        """POST /v2/order."""
        market = self.market(body.get("symbol"))
        spec = market.spec
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise bad_request("Invalid side")
        order_type = body.get("type")
        if order_type not in ("market", "limit"):
            raise bad_request("Invalid order type")
        size = to_decimal(body.get("size"), "size")
        if not spec.min_size <= size <= spec.max_size or not is_multiple(size, spec.increment_size):
            raise bad_request(f"Invalid size: min {spec.min_size}, max {spec.max_size}, "
                              f"increment {spec.increment_size}")
        price = self._price(body.get("price"), spec, "price") if order_type == "limit" else None
        stop = None if body.get("stop") is None else self._price(body.get("stop"), spec, "stop")
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        post_only = bool(meta.get("post_only"))
        last = market.last
        if post_only and order_type == "market":
            raise bad_request(POST_ONLY_MARKET)
        order = Order(
            account_id=account.id, symbol=spec.name, side=side, type=order_type, size=size, price=price,
            fee_coin=spec.base if side == "buy" else spec.quote,
            lock_coin=spec.quote if side == "buy" else spec.base,
            stop=stop, post_only=post_only,
        )
        if post_only and stop is None and crosses(order, last):
            raise bad_request(POST_ONLY_REJECTED)
        unit = self._lock_unit(order)
        if unit is None:  # a plain market buy locks nothing: it must be payable now
            account.require(spec.quote, size * last)
        else:
            account.lock(order.lock_coin, size * unit)
            order.locked = size * unit
        self.book.add(order)
        if stop is not None and stop != last:
            order.triggered = False
            order.stop_above = stop > last
            return order
        self._activate(order, market)
        return order

    def cancel(self, order_id: str, account_id: int | None = None) -> Order:
        """DELETE /v2/order: an unknown, foreign or closed order is "Order not found" (404)."""
        order = self.book.get(order_id, account_id)
        if order is None or not order.is_open:
            raise ApiError(404, ORDER_NOT_FOUND)
        self._close(order, "canceled")
        return order

    def cancel_all(self, account: Account, symbol: str) -> list[Order]:
        market = self.market(symbol)
        orders = [o for o in self.book.open_orders(market.spec.name) if o.account_id == account.id]
        for order in orders:
            self._close(order, "canceled")
        return orders

    def force_fill(self, order_id: str, size: Any = None, price: Any = None) -> UserTrade:
        """Control API: fill (part of) an open order now, as maker, whatever the price."""
        order = self.book.get(order_id)
        if order is None or not order.is_open:
            raise ApiError(404, ORDER_NOT_FOUND)
        market = self.markets[order.symbol]
        amount = order.remaining if size is None else to_decimal(size, "size")
        if not ZERO < amount <= order.remaining:
            raise bad_request(f"size must be in (0, {order.remaining}]")
        at = optional_decimal(price, "price") or order.price or market.last
        order.triggered = True
        return self.fill(order, amount, at, maker=True)

    # -- price moves -----------------------------------------------------------------------
    def set_price(self, symbol: str, price: Any, size: Any = None, max_fill: Any = None) -> list[UserTrade]:
        """Print a public trade at `price`, then trigger stops and fill what the price crosses."""
        market = self.market(symbol)
        new_price = to_decimal(price, "price")
        if new_price <= 0:
            raise bad_request("price must be positive")
        market.record_trade(new_price, optional_decimal(size, "size"))
        cap = optional_decimal(max_fill, "max_fill")
        return self._match(market, market.spec.max_fill_per_step if cap is None else cap)

    def _match(self, market: MarketData, cap: Decimal | None) -> list[UserTrade]:
        last = market.last
        fills: list[UserTrade] = []
        for order in self.book.open_orders(market.spec.name):
            if not order.triggered and order.stop is not None and (
                last >= order.stop if order.stop_above else last <= order.stop
            ):
                order.triggered = True
                order.updated_at = time.time()
                fills += self._activate(order, market)
        resting = [
            o for o in self.book.open_orders(market.spec.name)
            if o.triggered and o.type == "limit" and crosses(o, last)
        ]
        resting.sort(key=lambda o: (-o.price if o.side == "buy" else o.price, o.created_at))  # type: ignore[operator]
        for order in resting:
            amount = order.remaining if cap is None else min(order.remaining, cap)
            if amount > 0:
                assert order.price is not None
                fills.append(self.fill(order, amount, order.price, maker=True))
        return fills

    def _activate(self, order: Order, market: MarketData) -> list[UserTrade]:
        """A live (placed or triggered) order takes what the last price gives it at once."""
        last = market.last
        if order.type == "limit" and not crosses(order, last):
            return []
        try:
            trade = self.fill(order, order.remaining, last, maker=False)
        except ApiError:
            self._close(order, "canceled")
            return []
        market.record_trade(last, trade.size, side=order.side)
        return [trade]

    # -- money -----------------------------------------------------------------------------
    def fill(self, order: Order, size: Decimal, price: Decimal, maker: bool) -> UserTrade:
        account = self.accounts.get(order.account_id)
        market = self.markets[order.symbol]
        tier = self.tier(account)
        percent = tier.maker if maker else tier.taker
        cost = size * price
        unit = self._lock_unit(order)
        release = ZERO if unit is None else min(order.locked, size * unit)
        if size == order.remaining:
            release = order.locked
        base, quote = market.spec.base, market.spec.quote
        if order.side == "buy":
            if cost > release:
                account.require(quote, cost - release)
            fee = size * percent / HUNDRED
            account.change(quote, -cost, unlock=release)
            account.change(base, size - fee)
        else:
            fee = cost * percent / HUNDRED
            account.change(base, -size, unlock=release)
            account.change(quote, cost - fee)
        order.locked -= release
        order.filled += size
        order.cost += cost
        order.fee += fee
        order.status = "filled" if order.filled == order.size else "pfilled"
        order.updated_at = time.time()
        trade = UserTrade(
            account_id=account.id, order_id=order.id, symbol=order.symbol, side=order.side, size=size,
            price=price, fee=fee, fee_coin=order.fee_coin, maker=maker, t=order.updated_at,
        )
        self.book.trades.append(trade)
        return trade

    def _close(self, order: Order, status: str) -> None:
        if order.locked:
            self.accounts.get(order.account_id).unlock(order.lock_coin, order.locked)
            order.locked = ZERO
        order.status = status
        order.updated_at = time.time()

    @staticmethod
    def _lock_unit(order: Order) -> Decimal | None:
        """What one unit of size locks: 1 base for a sell, the limit (or stop) price for a buy."""
        if order.side == "sell":
            return Decimal(1)
        if order.type == "limit":
            return order.price
        return order.stop  # a stop-market buy locks at its stop; a plain market buy locks nothing

    @staticmethod
    def _price(value: Any, spec: Any, field: str) -> Decimal:
        price = to_decimal(value, field)
        if not spec.min_price <= price <= spec.max_price or not is_multiple(price, spec.increment_price):
            raise bad_request(f"Invalid {field}: min {spec.min_price}, max {spec.max_price}, "
                              f"increment {spec.increment_price}")
        return price
