"""Order and position numbers as JSON numbers, for stock OctoBot followers on the MQTT egress.

PROTOCOL.md lets a publisher send prices and quantities as decimal strings, and our followers read both
forms. OctoBot's own publisher writes them as floats, and the stock RemoteTradingSignalsTradingMode relies
on it: it prices a limit order with `stop_price or limit_price`, and the string "0" is truthy, so
`"stop_price": "0", "limit_price": "16000"` would rest the order at 0. So the egress sends stock bots the
numbers the way octobot-trading writes them. Only the MQTT copy changes: the journal, /cable and the
history stay byte-for-byte as published, because signatures cover them.

The field sets are octobot-trading's (`TradingSignalOrdersAttrs` / `TradingSignalPositionsAttrs`) numbers,
those its publisher passes through `float()`, plus the swap timeout it writes as a plain number; our
validator (core/signal_schema.py) reads exactly these as numbers only. They are spelled out here because a
hub process never imports the OctoBot stack; tests/test_mqtt_stock_envelope.py checks them against both.
Left alone on purpose: `target_amount` / `updated_target_amount` (shares like "5%"),
`target_position` / `updated_target_position` (a share string or a number, which the stock mode reads
through `str()` either way, and octobot-trading never converts), ids, symbols and the free-form dicts.

Pure and total: anything unexpected (not a dict, not a list, not a finite decimal string) is passed on as
it came, and the input is never modified.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

ORDER_NUMBER_FIELDS = frozenset({
    "quantity", "limit_price", "updated_limit_price", "stop_price", "updated_stop_price",
    "current", "updated_current_price", "active_trigger_price", "active_swap_strategy_timeout",
})
POSITION_NUMBER_FIELDS = frozenset({"leverage"})
_NUMBER_FIELDS_BY_TOPIC = {"orders": ORDER_NUMBER_FIELDS, "positions": POSITION_NUMBER_FIELDS}
ADDITIONAL_ORDERS = "additional_orders"
# PROTOCOL.md allows 5 levels; deeper nesting is passed on unconverted rather than risk deep recursion
MAX_NESTING = 16
MAX_NUMBER_TEXT = 64  # longer text is no price or amount: left as is
# plain decimals as our validator reads them (core/decimal_util): no "NaN", "inf", "1_000" or hex
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?")


def json_number(value: object) -> object:
    """A finite decimal string as a float; anything else unchanged.

    Decimal(text) -> float is the only rounding, the one any float gives (the stock side parses floats
    anyway, and octobot-trading's publisher writes float(Decimal)). Text that a float cannot hold without
    changing its meaning (overflow to inf, a non-zero value underflowing to 0) stays a string.
    """
    if not isinstance(value, str) or len(value) > MAX_NUMBER_TEXT:
        return value
    text = value.strip()
    if not _DECIMAL_TEXT.fullmatch(text):
        return value
    try:
        exact = Decimal(text)
    except InvalidOperation:
        return value
    number = float(exact)
    if not math.isfinite(number) or (number == 0 and exact != 0):
        return value
    return number


def _order_content(content: dict[str, Any], depth: int) -> dict[str, Any]:
    converted = {key: json_number(value) if key in ORDER_NUMBER_FIELDS else value for key, value in content.items()}
    nested = content.get(ADDITIONAL_ORDERS)
    if isinstance(nested, list) and depth < MAX_NESTING:
        converted[ADDITIONAL_ORDERS] = [
            _order_content(child, depth + 1) if isinstance(child, dict) else child for child in nested
        ]
    return converted


def stock_signal(signal: object) -> object:
    """One bundle signal with its content's numbers converted (orders and positions topics only)."""
    if not isinstance(signal, dict):
        return signal
    topic, content = signal.get("topic"), signal.get("content")
    fields = _NUMBER_FIELDS_BY_TOPIC.get(topic) if isinstance(topic, str) else None  # a list is unhashable
    if fields is None or not isinstance(content, dict):
        return signal
    if fields is ORDER_NUMBER_FIELDS:
        converted = _order_content(content, 0)
    else:
        converted = {key: json_number(value) if key in fields else value for key, value in content.items()}
    return {**signal, "content": converted}


def stock_feed_message(message: dict[str, Any]) -> dict[str, Any]:
    """The feed message a stock OctoBot gets: the same envelope, numbers in its signals as JSON numbers."""
    bundle = message.get("s")
    signals = bundle.get("signals") if isinstance(bundle, dict) else None
    if not isinstance(bundle, dict) or not isinstance(signals, list):
        return message
    return {**message, "s": {**bundle, "signals": [stock_signal(signal) for signal in signals]}}
