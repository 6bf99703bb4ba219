"""Strict conversion of untrusted numbers (JSON numbers or decimal strings) into Decimal.

Callers wrap DecimalInputError into their own error type, adding the field name.
Floats go through str() so 0.1 becomes Decimal("0.1"), not its binary approximation.
"""
from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

MAX_MAGNITUDE = Decimal("1e15")        # no price, amount or percent is ever this large
MIN_MAGNITUDE = Decimal("1e-18")       # below any exchange's tick size; smaller non-zero values are noise
MAX_TEXT_CHARS = 32                    # a decimal string longer than this is not a sane amount

# plain decimal, optional exponent (str(float) produces "1e-05"; magnitude bounds still apply)
_DECIMAL_TEXT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?$")


class DecimalInputError(ValueError):
    """A value that is not an acceptable number; the message is the reason, without a field name."""


_CACHE_SIZE = 4096
_accepted: dict[tuple[type, object, bool], Decimal] = {}  # signals repeat their numbers ("0", prices)


def to_decimal(value: object, *, allow_negative: bool = False) -> Decimal:
    """int / float / decimal string -> finite Decimal within sane bounds; bool and anything else refused."""
    kind = type(value)
    if kind is str or kind is float or kind is int:
        key = (kind, value, allow_negative)  # the type in the key: 1 and 1.0 and "1" stay apart
        cached = _accepted.get(key)
        if cached is not None:
            return cached  # Decimal is immutable: the same checks gave this result before
        result = _to_decimal(value, allow_negative)
        if len(_accepted) >= _CACHE_SIZE:
            _accepted.clear()
        _accepted[key] = result
        return result
    return _to_decimal(value, allow_negative)


def _to_decimal(value: object, allow_negative: bool) -> Decimal:
    if isinstance(value, bool):
        raise DecimalInputError(f"expected a number, got a boolean ({value})")
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**20 else "1e20"  # avoid formatting giant ints
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise DecimalInputError(f"must be a finite number, got {value}")
        text = str(value)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise DecimalInputError(f"number text too long ({len(value)} chars, max {MAX_TEXT_CHARS})")
        text = value.strip()
        if not _DECIMAL_TEXT.match(text):
            raise DecimalInputError(f"not a plain decimal number: {value!r}")
    elif isinstance(value, Decimal):
        text = str(value)
    else:
        raise DecimalInputError(f"expected a number, got {type(value).__name__}")
    try:
        result = Decimal(text)
    except InvalidOperation as err:
        raise DecimalInputError(f"not a decimal number: {text!r}") from err
    if not result.is_finite():
        raise DecimalInputError(f"must be a finite number, got {text}")
    if result < 0 and not allow_negative:
        raise DecimalInputError(f"must not be negative, got {text}")
    magnitude = abs(result)
    if magnitude > MAX_MAGNITUDE:
        raise DecimalInputError(f"absurd magnitude {text} (max {MAX_MAGNITUDE:E})")
    if magnitude != 0 and magnitude < MIN_MAGNITUDE:
        raise DecimalInputError(f"absurdly small value {text} (min {MIN_MAGNITUDE:E})")
    if result == 0:
        return Decimal(0)  # drops "-0" and odd exponents like 0E-30
    return result


def floor_to_step(value: Decimal, step: Decimal | None) -> Decimal:
    """Round down to a multiple of step (None or non-positive step: unchanged)."""
    if step is None or step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to_step(value: Decimal, step: Decimal | None) -> Decimal:
    """Round up to a multiple of step (None or non-positive step: unchanged)."""
    if step is None or step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def plain(value: Decimal) -> str:
    """Human/JSON friendly text: no exponent, no trailing zeros ("0.0001", "100")."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
