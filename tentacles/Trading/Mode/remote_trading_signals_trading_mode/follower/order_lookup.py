"""Find my copy of a leader order on the exchange.

A leader's edit or cancel may only ever touch an order this mode placed. What proves that: the
persisted link (leader id -> my order id), or, for an order sent just before the bot stopped and not
linked yet, its write-ahead entry (what was sent: symbol, side, type, price, quantity). An open order
that matches a signal's side, type and price but that the mode never recorded is someone else's (the
user's own, another mode's) and is never matched.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from .order_map import OrderMap


def find_local(exchange_manager: Any, order_map: OrderMap, leader_order_id: str) -> Any:
    """My order linked to `leader_order_id` (open, or chained and still waiting for its entry), else None."""
    local_id = order_map.local_id(leader_order_id)
    if local_id is None:
        return None
    orders_manager = exchange_manager.exchange_personal_data.orders_manager
    try:
        # one dict access (has_order first would build a set of every open order's id)
        return orders_manager.get_order(local_id)
    except KeyError:
        return _find_chained(orders_manager, local_id)


def _find_chained(orders_manager: Any, local_id: str) -> Any:
    # chained orders wait inside their parent until it fills: they are not in the orders manager yet
    for order in orders_manager.get_all_orders():
        for chained in getattr(order, "chained_orders", ()):
            if chained.order_id == local_id:
                return chained
    return None


def recover_pending(exchange_manager: Any, order_map: OrderMap, leader_order_id: str) -> Any:
    """After a stop between sending an order and linking it: the one open order matching its write-ahead entry.

    Only orders no link claims are candidates, and an ambiguous match gives None: better no copy than
    the wrong one.
    """
    pending = order_map.pending.get(leader_order_id)
    if pending is None:
        return None
    matches = [
        order for order in exchange_manager.exchange_personal_data.orders_manager.get_open_orders(
            symbol=pending.symbol)
        if order_map.leader_id(str(order.order_id)) is None and order.side.value == pending.side
        and order.order_type.value == pending.order_type and _same(order.origin_price, pending.price)
        # the user's own order at the same price is not mine unless it has my size too (older entries: no size)
        and (not pending.quantity or _same(order.origin_quantity, pending.quantity))
    ]
    return matches[0] if len(matches) == 1 else None


def _same(value: Any, recorded: str) -> bool:
    """Equal as numbers: an order loaded back from an exchange may print 19000.0 where 19000 was sent."""
    try:
        return Decimal(str(value)) == Decimal(recorded)
    except (InvalidOperation, ValueError):
        return False


class ExchangeUnreachable(Exception):
    """The exchange could not list its open orders: whether a lost order exists there is unknown."""


async def pending_on_exchange(exchange_manager: Any, order_map: OrderMap, leader_order_id: str) -> str | None:
    """After a create that failed or went unanswered: the id of the open order on the exchange itself (not in
    OctoBot's view, which syncs every few seconds) matching its write-ahead entry and claimed by no link, or
    None when there is none. Raises ExchangeUnreachable when the exchange cannot tell."""
    pending = order_map.pending.get(leader_order_id)
    if pending is None:
        return None
    try:
        raw_orders = await exchange_manager.exchange.get_open_orders(symbol=pending.symbol)
    except Exception as err:  # ccxt/OctoBot network and exchange errors: nothing to conclude from
        raise ExchangeUnreachable(f"{type(err).__name__}: {err}") from err
    if raw_orders is None:
        raise ExchangeUnreachable("no answer")
    # OctoBot's own ids are not the exchange's: the orders my links claim, by their exchange ids
    claimed = {str(order.exchange_order_id) for order in
               exchange_manager.exchange_personal_data.orders_manager.get_open_orders(symbol=pending.symbol)
               if order_map.leader_id(str(order.order_id)) is not None}
    for raw in raw_orders:
        order_id = str(raw.get("exchange_id") or raw.get("id") or "")  # OctoBot's adapter moves "id" there
        if (order_id and order_id not in claimed and raw.get("side") == pending.side
                and _same(raw.get("price"), pending.price)
                and (not pending.quantity or _same(raw.get("amount"), pending.quantity))):
            return order_id
    return None


def live_local_ids(exchange_manager: Any) -> set[str]:
    """Ids of every order still on (or waiting to go on) the exchange: open ones and the chained ones they carry."""
    ids: set[str] = set()
    stack = list(exchange_manager.exchange_personal_data.orders_manager.get_all_orders())
    while stack:
        order = stack.pop()
        if order.is_open() or order.is_pending_creation() or order.is_waiting_for_chained_trigger:
            ids.add(str(order.order_id))
        stack.extend(getattr(order, "chained_orders", ()))
    return ids
