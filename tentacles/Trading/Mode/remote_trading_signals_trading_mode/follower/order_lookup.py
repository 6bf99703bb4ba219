"""Find my copy of a leader order on the exchange."""
from __future__ import annotations

from typing import Any

from ..core import signal_schema as schema
from .order_map import OrderMap


def find_local(exchange_manager: Any, order_map: OrderMap, leader_order_id: str,
               signal: schema.OrderSignal | None = None) -> Any:
    """My order for `leader_order_id`: through the persisted map, else (orders loaded from the exchange,
    never mapped) by symbol, side, type and price."""
    orders_manager = exchange_manager.exchange_personal_data.orders_manager
    local_id = order_map.local_id(leader_order_id)
    if local_id is not None:
        order = orders_manager.get_order(local_id) if orders_manager.has_order(local_id) else None
        return order if order is not None else _find_chained(orders_manager, local_id)
    if signal is None or signal.side is None or signal.order_type is None:
        return None
    return _match_loaded_order(orders_manager, order_map, signal)


def _find_chained(orders_manager: Any, local_id: str) -> Any:
    # chained orders wait inside their parent until it fills: they are not in the orders manager yet
    for order in orders_manager.get_all_orders():
        for chained in getattr(order, "chained_orders", ()):
            if chained.order_id == local_id:
                return chained
    return None


def _match_loaded_order(orders_manager: Any, order_map: OrderMap, signal: schema.OrderSignal) -> Any:
    linked = {link.local_order_id for link in order_map.links.values()}
    price = signal.limit_price or signal.stop_price
    assert signal.side is not None
    matches = [
        order for order in orders_manager.get_open_orders(symbol=signal.symbol)
        if order.order_id not in linked and order.side.value == signal.side.value
        and order.order_type is signal.order_type and price is not None and order.origin_price == price
    ]
    return matches[0] if len(matches) == 1 else None  # ambiguous: better no copy than the wrong one


def recover_pending(exchange_manager: Any, order_map: OrderMap, leader_order_id: str) -> Any:
    """After a crash between sending an order and recording it: my open order that matches what was sent."""
    pending = order_map.pending.get(leader_order_id)
    if pending is None:
        return None
    linked = {link.local_order_id for link in order_map.links.values()}
    matches = [
        order for order in exchange_manager.exchange_personal_data.orders_manager.get_open_orders(
            symbol=pending.symbol)
        if order.order_id not in linked and order.side.value == pending.side
        and order.order_type.value == pending.order_type and str(order.origin_price) == pending.price
    ]
    return matches[0] if len(matches) == 1 else None
