"""Builders for realistic feed messages, shaped like octobot-trading's own order signal contents."""
from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

STRATEGY = "alpha-strategy"
_q = itertools.count(1)


def order_content(
    action: str = "create", *, order_id: str | None = None, symbol: str = "BTC/USDT", side: str = "buy",
    order_type: str = "buy_market", quantity: float = 0.01, target_amount: str | None = "10%",
    limit_price: float = 20000.0, stop_price: float = 0.0, current: float = 20000.0, exchange: str = "binance",
    exchange_type: str = "spot", **extra: Any,
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "action": action, "strategy": STRATEGY, "symbol": symbol, "exchange": exchange,
        "exchange_type": exchange_type, "side": side, "trigger_above": None, "type": order_type,
        "quantity": quantity, "target_amount": target_amount, "target_position": None,
        "updated_target_amount": None, "updated_target_position": None, "limit_price": limit_price,
        "updated_limit_price": 0.0, "stop_price": stop_price, "updated_stop_price": 0.0, "current": current,
        "updated_current_price": 0.0, "reduce_only": False, "post_only": False, "group_id": None,
        "group_type": None, "active_swap_strategy_type": None, "active_swap_strategy_timeout": None,
        "active_swap_strategy_trigger_config": None, "tag": None, "order_id": order_id or uuid.uuid4().hex,
        "associated_order_ids": None, "update_with_triggering_order_fees": False, "trailing_profile_type": None,
        "trailing_profile": None, "is_active": True, "active_trigger_price": None, "active_trigger_above": None,
        "cancel_policy_type": None, "cancel_policy_kwargs": None, "bundled_with": None, "chained_to": None,
        "additional_orders": [],
    }
    content.update(extra)
    return content


def signal(content: dict[str, Any], topic: str = "orders", dependencies: Any = None) -> dict[str, Any]:
    return {"topic": topic, "content": content, "dependencies": dependencies}


def message(*signals: dict[str, Any], u: str | None = None, q: int | None = None, d: float | None = None,
            strategy: str = STRATEGY, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "u": u or uuid.uuid4().hex, "i": f"stream-{strategy}", "t": "t", "v": version,
        "d": time.time() if d is None else d, "q": next(_q) if q is None else q,
        "s": {"identifier": strategy, "version": "1.0.0", "signals": list(signals)},
        "g": None,
    }


def create(**kwargs: Any) -> dict[str, Any]:
    return message(signal(order_content("create", **kwargs)))


def cancel(order_id: str, **kwargs: Any) -> dict[str, Any]:
    return message(signal(order_content("cancel", order_id=order_id, **kwargs)))


def edit(order_id: str, **kwargs: Any) -> dict[str, Any]:
    return message(signal(order_content("edit", order_id=order_id, **kwargs)))
