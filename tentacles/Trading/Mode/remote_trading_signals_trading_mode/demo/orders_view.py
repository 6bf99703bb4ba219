"""Read orders back from a simulated exchange for the demo report: ids, sizes, final status.

octobot-trading drops closed orders from its order manager, so the demo keeps the order
objects it saw (their status keeps updating when they fill or get cancelled) and falls back to
the trade history for orders it never saw open (a market order fills at once).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class OrderTracker:
    """Remembers every order object seen on one exchange, by order id."""

    def __init__(self, exchange_manager: Any) -> None:
        self.exchange_manager = exchange_manager
        self.seen: dict[str, Any] = {}
        self._reported: dict[str, str | None] = {}  # last status shown by changes()

    def snapshot(self) -> None:
        """Record the orders the exchange currently knows (call after each step/apply)."""
        orders_manager = self.exchange_manager.exchange_personal_data.orders_manager
        for order in orders_manager.get_all_orders():
            self.seen[str(order.order_id)] = order

    def changes(self) -> list[str]:
        """One line per known order whose status changed since the last call (fills, cancels)."""
        self.snapshot()
        lines: list[str] = []
        for order_id, order in self.seen.items():
            status = self.status(order_id)
            previous = self._reported.get(order_id)
            self._reported[order_id] = status
            if previous is not None and status != previous:
                side = order.side.value if order.side else "?"
                lines.append(f"{side} {order.origin_quantity} @ {order.origin_price} {status}")
        return lines

    def mark_reported(self) -> None:
        """Current statuses count as shown (new orders are not 'changes')."""
        self.snapshot()
        for order_id in self.seen:
            self._reported[order_id] = self.status(order_id)

    def status(self, order_id: str) -> str | None:
        order = self.seen.get(order_id)
        if order is not None and order.status is not None:
            return str(order.status.value)
        trades = self.exchange_manager.exchange_personal_data.trades_manager.get_trades(origin_order_id=order_id)
        if trades:
            status = getattr(trades[-1], "status", None)
            return str(status.value) if status is not None else "filled"
        return None

    def quantity(self, order_id: str) -> str | None:
        order = self.seen.get(order_id)
        return None if order is None else str(order.origin_quantity)

    def price(self, order_id: str) -> str | None:
        order = self.seen.get(order_id)
        return None if order is None else str(order.origin_price)


def order_contents(bundle: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every order signal content of a bundle, nested additional_orders included (in order)."""

    def walk(content: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        yield content
        for child in content.get("additional_orders") or []:
            if isinstance(child, Mapping):
                yield from walk(child)

    for signal in bundle.get("signals") or []:
        if isinstance(signal, Mapping) and signal.get("topic") == "orders" and isinstance(signal.get("content"),
                                                                                           Mapping):
            yield from walk(signal["content"])
