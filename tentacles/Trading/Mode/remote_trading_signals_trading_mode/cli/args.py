"""Argument parsing helpers shared by the subcommands: every bad value is a UsageError (exit 2)."""
from __future__ import annotations

import decimal
from collections.abc import Iterable

Decimal = decimal.Decimal


class UsageError(ValueError):
    """Unusable command-line arguments: printed and exit code 2."""


def parse_assignments(items: Iterable[str], option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE")
        result[key.strip()] = value.strip()
    return result


def parse_decimal_assignments(items: Iterable[str], option: str, *, positive: bool) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    for key, value in parse_assignments(items, option).items():
        try:
            number = Decimal(value)
        except decimal.InvalidOperation:
            raise UsageError(f"{option} {key}={value!r}: not a decimal number") from None
        if not number.is_finite() or number < 0 or (positive and number == 0):
            raise UsageError(f"{option} {key}={value}: must be {'> 0' if positive else '>= 0'}")
        result[key] = number
    return result
