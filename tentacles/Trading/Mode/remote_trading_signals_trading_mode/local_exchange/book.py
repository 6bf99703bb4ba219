"""Orders and user trades as HollaEx stores and returns them.

An order's JSON has the keys ccxt's hollaex parse_order reads (id, symbol, side, type, size,
price, stop, filled, status new|pfilled|filled|canceled, created_at, updated_at) plus HollaEx's
fee, fee_coin, fee_structure, average, meta and created_by. `locked` is what the order still
holds of its account's `lock_coin`, released on fill or cancel.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .decimals import ZERO, iso

OPEN_STATUSES = ("new", "pfilled")


@dataclass
class Order:
    account_id: int
    symbol: str
    side: str
    type: str
    size: Decimal
    price: Decimal | None
    fee_coin: str
    lock_coin: str
    stop: Decimal | None = None
    stop_above: bool = False  # the stop triggers when the price rises to it (else falls to it)
    triggered: bool = True  # False while a stop order waits for its stop price
    post_only: bool = False
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    filled: Decimal = ZERO
    cost: Decimal = ZERO  # sum of size * price over the fills
    fee: Decimal = ZERO
    locked: Decimal = ZERO
    status: str = "new"
    created_at: float = field(default_factory=time.time)
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.size - self.filled

    @property
    def average(self) -> Decimal | None:
        return self.cost / self.filled if self.filled > 0 else None

    def to_json(self, fee_structure: dict[str, Decimal]) -> dict[str, Any]:
        meta: dict[str, Any] = {"post_only": True} if self.post_only else {}
        return {
            "id": self.id,
            "created_by": self.account_id,
            "side": self.side,
            "symbol": self.symbol,
            "type": self.type,
            "size": self.size,
            "filled": self.filled,
            "price": self.price,
            "average": self.average,
            "stop": self.stop,
            "status": self.status,
            "fee": self.fee,
            "fee_coin": self.fee_coin,
            "fee_structure": fee_structure,
            "meta": meta,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass
class UserTrade:
    account_id: int
    order_id: str
    symbol: str
    side: str
    size: Decimal
    price: Decimal
    fee: Decimal
    fee_coin: str
    maker: bool
    t: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "symbol": self.symbol,
            "size": self.size,
            "price": self.price,
            "timestamp": iso(self.t),
            "order_id": self.order_id,
            "fee": self.fee,
            "fee_coin": self.fee_coin,
        }


class Book:
    """Every order (open or not) and every fill, in creation order."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.trades: list[UserTrade] = []

    def add(self, order: Order) -> None:
        self.orders[order.id] = order

    def get(self, order_id: str, account_id: int | None = None) -> Order | None:
        order = self.orders.get(order_id)
        if order is None or (account_id is not None and order.account_id != account_id):
            return None
        return order

    def open_orders(self, symbol: str) -> list[Order]:
        return [o for o in self.orders.values() if o.symbol == symbol and o.is_open]

    def query(self, account_id: int | None = None, symbol: str | None = None, open_: bool | None = None,
              side: str | None = None, status: str | None = None, start: float | None = None,
              end: float | None = None) -> list[Order]:
        out = []
        for order in self.orders.values():
            if account_id is not None and order.account_id != account_id:
                continue
            if symbol is not None and order.symbol != symbol:
                continue
            if open_ is not None and order.is_open != open_:
                continue
            if side is not None and order.side != side:
                continue
            if status is not None and order.status != status:
                continue
            if start is not None and order.created_at < start:
                continue
            if end is not None and order.created_at > end:
                continue
            out.append(order)
        return out

    def user_trades(self, account_id: int, symbol: str | None = None, start: float | None = None,
                    end: float | None = None) -> list[UserTrade]:
        return [
            t for t in self.trades
            if t.account_id == account_id and (symbol is None or t.symbol == symbol)
            and (start is None or t.t >= start) and (end is None or t.t <= end)
        ]
