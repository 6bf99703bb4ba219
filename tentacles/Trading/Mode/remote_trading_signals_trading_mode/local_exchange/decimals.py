"""Decimal in, JSON numbers out, and HollaEx's ISO timestamps.

Every amount and price inside the exchange is a Decimal so that balances add up exactly;
HollaEx sends numbers, so `dumps` writes a Decimal as a JSON number with its exact digits
(the stdlib encoder cannot), and `loads` reads numbers back as Decimal.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import bad_request

ZERO = Decimal(0)


def to_decimal(value: Any, field: str) -> Decimal:
    """A finite Decimal from a JSON number or numeric string (ccxt sends `size` and `price` as strings)."""
    if isinstance(value, bool) or value is None:
        raise bad_request(f"Invalid {field}")
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, TypeError, ValueError):
        raise bad_request(f"Invalid {field}") from None
    if not number.is_finite():
        raise bad_request(f"Invalid {field}")
    return number


def optional_decimal(value: Any, field: str) -> Decimal | None:
    return None if value is None else to_decimal(value, field)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return step <= 0 or value % step == 0


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return value if step <= 0 else (value // step) * step


def number_text(value: Decimal) -> str:
    if value == 0:
        return "0"
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def dumps(obj: Any) -> str:
    """JSON text where Decimal values are numbers with their exact digits."""
    if isinstance(obj, Decimal):
        return number_text(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + dumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    if isinstance(obj, float) and not math.isfinite(obj):
        return "null"
    return json.dumps(obj)


def loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def iso(t: float) -> str:
    """`2020-03-03T04:44:33.034Z`, the form HollaEx stamps everything with."""
    ms = int(round(t * 1000))
    moment = datetime.fromtimestamp(ms // 1000, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
