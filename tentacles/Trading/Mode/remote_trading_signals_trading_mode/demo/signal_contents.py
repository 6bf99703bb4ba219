"""Order signal contents shaped exactly like octobot-trading's own (every TradingSignalOrdersAttrs key), for the
scripted leaders of the live demo and the live bench: OctoBot's stock follower reads some keys without a
default (`group_id`...) and fails on a content that lacks them."""
from __future__ import annotations

from typing import Any

import octobot_trading.enums as trading_enums


def order_content(action: str, order_id: str, *, strategy: str, symbol: str, exchange: str, order_type: str,
                  side: str, limit_price: float, current: float, target_amount: str | None = None,
                  quantity: float = 0.01, **extra: Any) -> dict[str, Any]:
    content: dict[str, Any] = {attr.value: None for attr in trading_enums.TradingSignalOrdersAttrs}
    content.update({
        "action": action, "strategy": strategy, "symbol": symbol, "exchange": exchange, "exchange_type": "spot",
        "side": side, "type": order_type, "quantity": quantity, "target_amount": target_amount,
        "limit_price": limit_price, "current": current, "order_id": order_id,
        # what octobot-trading writes when a field is not used
        "updated_limit_price": 0.0, "stop_price": 0.0, "updated_stop_price": 0.0, "updated_current_price": 0.0,
        "reduce_only": False, "post_only": False, "is_active": True, "update_with_triggering_order_fees": False,
        "additional_orders": [],
    })
    content.update(extra)
    return content
