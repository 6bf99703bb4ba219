"""Build OctoBot order objects from a validated leader order signal and my sizing plan.

Everything here trusts its inputs: they come from core.signal_schema (validated) and
core.sizing (planned). Unknown OctoBot class names (groups, swap strategies, trailing
profiles, cancel policies) raise UnsupportedFeature so the engine can reject with a reason.
"""
from __future__ import annotations

import decimal
from typing import Any

import octobot_commons.tentacles_management as tentacles_management
import octobot_trading.enums as trading_enums
import octobot_trading.personal_data as personal_data

from ..core import signal_schema, sizing

Decimal = decimal.Decimal


class UnsupportedFeature(ValueError):
    pass


def _group_class(group_type: str) -> type:
    for group_class in tentacles_management.get_all_classes_from_parent(personal_data.OrderGroup):
        if group_class.__name__ == group_type:
            return group_class
    raise UnsupportedFeature(f"group_type: unknown order group type {group_type!r}")


def _swap_strategy(signal: signal_schema.OrderSignal) -> Any:
    if not signal.active_swap_strategy_type:
        return None
    for strategy_class in tentacles_management.get_all_classes_from_parent(personal_data.ActiveOrderSwapStrategy):
        if strategy_class.__name__ == signal.active_swap_strategy_type:
            kwargs: dict[str, Any] = {}
            if signal.active_swap_strategy_timeout is not None:
                kwargs["swap_timeout"] = float(signal.active_swap_strategy_timeout)
            if signal.active_swap_strategy_trigger_config:
                kwargs["trigger_price_configuration"] = signal.active_swap_strategy_trigger_config
            return strategy_class(**kwargs)
    raise UnsupportedFeature(
        f"active_swap_strategy_type: unknown strategy {signal.active_swap_strategy_type!r}"
    )


def local_group_name(strategy_id: str, leader_group_id: str) -> str:
    # namespaced so a leader's group ids can never collide with my own bot's groups
    return f"copy:{strategy_id}:{leader_group_id}"


def order_group(exchange_manager: Any, strategy_id: str, signal: signal_schema.OrderSignal) -> Any:
    if not signal.group_id:
        return None
    if not signal.group_type:
        raise UnsupportedFeature("group_type: missing while group_id is set")
    orders_manager = exchange_manager.exchange_personal_data.orders_manager
    return orders_manager.get_or_create_group(
        _group_class(signal.group_type),
        local_group_name(strategy_id, signal.group_id),
        active_order_swap_strategy=_swap_strategy(signal),
    )


def _trailing_profile(signal: signal_schema.OrderSignal) -> Any:
    if not signal.trailing_profile_type:
        return None
    try:
        profile_type = personal_data.TrailingProfileTypes(signal.trailing_profile_type)
        return personal_data.create_trailing_profile(profile_type, dict(signal.trailing_profile or {}))
    except (ValueError, KeyError, TypeError, NotImplementedError) as err:
        raise UnsupportedFeature(f"trailing_profile: {err}") from err


def _cancel_policy(signal: signal_schema.OrderSignal) -> Any:
    if not signal.cancel_policy_type:
        return None
    try:
        return personal_data.create_cancel_policy(signal.cancel_policy_type, dict(signal.cancel_policy_kwargs or {}))
    except Exception as err:  # octobot raises NotImplementedError / InvalidCancelPolicyError
        raise UnsupportedFeature(f"cancel_policy_type: {err}") from err


def order_price(signal: signal_schema.OrderSignal, my_price: Decimal, limits: sizing.MarketLimits) -> Decimal:
    """Market orders use my price; others the leader's limit (or stop) price, adapted to my market."""
    if signal.order_type in (trading_enums.TraderOrderType.BUY_MARKET, trading_enums.TraderOrderType.SELL_MARKET):
        return my_price
    price = signal.limit_price or signal.stop_price
    if price is None:
        raise UnsupportedFeature("limit_price: a non-market order needs a limit or stop price")
    return sizing.adapt_price(price, limits)


def build_order(
    exchange_manager: Any, strategy_id: str, signal: signal_schema.OrderSignal,
    plan: sizing.OrderPlan, my_price: Decimal,
) -> Any:
    """A not-yet-submitted OctoBot order for `signal`, sized by `plan`."""
    assert signal.order_type is not None and signal.side is not None  # guaranteed by the schema for creates
    stop_price = plan.stop_price if plan.stop_price is not None else Decimal(0)
    order = personal_data.create_order_instance(
        trader=exchange_manager.trader,
        order_type=signal.order_type,
        symbol=signal.symbol,
        current_price=my_price,
        quantity=plan.quantity,
        price=plan.price if plan.price is not None else my_price,
        stop_price=stop_price,
        side=trading_enums.TradeOrderSide(signal.side.value),
        trigger_above=signal.trigger_above,
        tag=signal.tag,
        reduce_only=signal.reduce_only or None,
        group=order_group(exchange_manager, strategy_id, signal),
        trailing_profile=_trailing_profile(signal),
        is_active=signal.is_active,
        active_trigger_price=signal.active_trigger_price if not signal.is_active else None,
        active_trigger_above=signal.active_trigger_above if not signal.is_active else None,
        cancel_policy=_cancel_policy(signal),
    )
    return order


async def chain(parent: Any, child: Any, signal: signal_schema.OrderSignal) -> None:
    """Make `child` wait for `parent`'s fill, as the leader's order does."""
    await child.set_as_chained_order(
        parent, bool(signal.bundled_with), {}, bool(signal.update_with_triggering_order_fees)
    )
    parent.add_chained_order(child)


def describe(order: Any) -> dict[str, str | None]:
    """The replay/demo view of one of my orders; amounts as decimal strings."""
    return {
        "id": str(order.order_id),
        "symbol": order.symbol,
        "side": order.side.value if order.side else None,
        "type": order.order_type.value if order.order_type else None,
        "quantity": str(order.origin_quantity),
        "price": str(order.origin_price),
        "status": order.status.value if order.status else None,
    }
