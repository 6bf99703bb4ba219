"""Order signal bundles for the bench and the chaos run, shaped like TradingSignalOrdersAttrs."""
from __future__ import annotations

import uuid
from typing import Any

BENCH_SYMBOL = "BTC/USDT"


def order_content(action: str, order_id: str, *, price: str, current: str, share: str = "0.1%") -> dict[str, Any]:
    """A resting buy limit (create) or its cancel; numbers as decimal strings (PROTOCOL.md allows both)."""
    return {
        "action": action, "strategy": "bench", "symbol": BENCH_SYMBOL, "exchange": "binance",
        "exchange_type": "spot", "side": "buy", "type": "buy_limit", "quantity": "0.001",
        "target_amount": share if action == "create" else None, "target_position": None,
        "updated_target_amount": None, "updated_target_position": None, "limit_price": price,
        "updated_limit_price": "0", "stop_price": "0", "updated_stop_price": "0", "current": current,
        "updated_current_price": "0", "reduce_only": False, "post_only": False, "trigger_above": None,
        "group_id": None, "group_type": None, "tag": None, "order_id": order_id, "associated_order_ids": None,
        "is_active": True, "bundled_with": None, "chained_to": None, "additional_orders": [],
    }


def bundle(strategy_id: str, *contents: dict[str, Any]) -> dict[str, Any]:
    return {"identifier": strategy_id, "version": "1.0.0",
            "signals": [{"topic": "orders", "content": c, "dependencies": None} for c in contents]}


def new_order_id() -> str:
    return str(uuid.uuid4())
