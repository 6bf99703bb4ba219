"""Make an octobot-trading signal bundle JSON-safe and protocol-correct before publishing.

octobot-trading's bundle dicts (``SignalBundle.to_dict()``) have three known defects that
PROTOCOL.md ("Edits") requires a publisher to fix:

1. Its edit path stores the raw edited quantity (a Decimal, an absolute size) in
   ``updated_target_amount`` and ``target_amount``; followers read those fields as a share of
   the portfolio ("12.5%"). We convert the quantity to the publisher's share via ``share_of``.
2. Prices an edit did not change are written as ``0.0``; we send null.
3. An edit merged into a pending create in the same bundle overwrites the create's
   ``target_amount`` with the raw quantity (or null for a price-only edit) and its prices with
   ``0.0``; we restore the share (and, when ``prices_of`` can tell, the prices).

Pure: no I/O. The caller (the bridge) computes shares and prices ahead of time.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..core.decimal_util import plain

ShareOf = Callable[[dict[str, Any]], "str | None"]
PricesOf = Callable[[dict[str, Any]], "Mapping[str, Any] | None"]

MAX_DEPTH = 32  # protocol allows 5 levels of additional_orders; anything deeper is a bug upstream
UPDATED_PRICE_KEYS = ("updated_limit_price", "updated_stop_price", "updated_current_price")
CREATE_PRICE_KEYS = ("limit_price", "stop_price", "current")
MARKET_TYPES = ("buy_market", "sell_market")


class NormalizationError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def is_share(value: Any) -> bool:
    """A share string as followers read it: "5%", "5.3a%"."""
    return isinstance(value, str) and value.strip().endswith("%")


def raw_quantity(value: Any) -> Decimal | None:
    """The absolute quantity in a target-amount field, or None when it is a share / null."""
    if value is None or isinstance(value, bool) or is_share(value):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _is_zero(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    number = raw_quantity(value)
    return number is not None and number == 0


def _json_safe(value: Any, path: str, warnings: list[str], depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise NormalizationError(path, f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        warnings.append(f"{path}: non-finite number {value} sent as null")
        return None
    if isinstance(value, Decimal):
        if value.is_finite():
            return plain(value)
        warnings.append(f"{path}: non-finite Decimal {value} sent as null")
        return None
    if isinstance(value, enum.Enum):
        return _json_safe(value.value, path, warnings, depth + 1)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NormalizationError(path, f"non-string key {key!r}")
            out[key] = _json_safe(item, f"{path}.{key}", warnings, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_json_safe(item, f"{path}[{index}]", warnings, depth + 1) for index, item in enumerate(value)]
    if hasattr(value, "to_dict"):  # octobot_commons SignalDependencies and friends
        return _json_safe(value.to_dict(), path, warnings, depth + 1)
    raise NormalizationError(path, f"cannot be sent as JSON ({type(value).__name__})")


def _is_merged_create(content: Mapping[str, Any]) -> bool:
    """A create that octobot-trading's bundle builder overwrote with a later edit of the same order."""
    if content.get("action") != "create":
        return False
    if content.get("updated_target_amount") is not None or content.get("updated_target_position") is not None:
        return True
    if any(not _is_zero(content.get(key)) and content.get(key) is not None for key in UPDATED_PRICE_KEYS):
        return True
    return not is_share(content.get("target_amount")) and content.get("target_position") is None


def _share_for(
    content: dict[str, Any], quantity: Decimal, share_of: ShareOf, path: str, warnings: list[str]
) -> str | None:
    request = dict(content)
    request["quantity"] = quantity
    share = share_of(request)
    if share is None or not is_share(share):
        warnings.append(f"{path}: could not express quantity {plain(quantity)} as a portfolio share; sent as null")
        return None
    return share


def _normalize_order(
    original: Mapping[str, Any],
    content: dict[str, Any],
    share_of: ShareOf,
    prices_of: PricesOf | None,
    path: str,
    warnings: list[str],
    depth: int,
) -> None:
    """Fix one order content in place (content is the JSON-safe copy of original)."""
    merged_create = _is_merged_create(original)
    action = original.get("action")

    for key in UPDATED_PRICE_KEYS:
        if _is_zero(original.get(key)):
            content[key] = None

    edited_raw = raw_quantity(original.get("updated_target_amount"))
    target_raw = raw_quantity(original.get("target_amount"))
    if edited_raw is None and target_raw is not None:
        edited_raw = target_raw  # builders that only filled target_amount with the raw size

    if action == "create":
        if merged_create:
            if edited_raw is not None:
                content["quantity"] = plain(edited_raw)
                content["target_amount"] = _share_for(content, edited_raw, share_of, f"{path}.target_amount", warnings)
            elif original.get("target_position") is None and not is_share(original.get("target_amount")):
                leader_quantity = raw_quantity(original.get("quantity"))
                if leader_quantity is not None and leader_quantity > 0:
                    content["target_amount"] = _share_for(
                        content, leader_quantity, share_of, f"{path}.target_amount", warnings
                    )
                else:
                    warnings.append(f"{path}.target_amount: merged create without a usable quantity")
            # The create's own size is now target_amount: "updated" fields mean nothing on a create.
            content["updated_target_amount"] = None
            _restore_create_prices(original, content, prices_of, path, warnings)
    elif edited_raw is not None:
        share = _share_for(content, edited_raw, share_of, f"{path}.updated_target_amount", warnings)
        content["updated_target_amount"] = share
        if target_raw is not None or original.get("target_amount") is None:
            content["target_amount"] = share

    additional = original.get("additional_orders")
    if isinstance(additional, list | tuple):
        for index, child in enumerate(additional):
            if isinstance(child, Mapping) and isinstance(content["additional_orders"][index], dict):
                _normalize_order(
                    child,
                    content["additional_orders"][index],
                    share_of,
                    prices_of,
                    f"{path}.additional_orders[{index}]",
                    warnings,
                    depth + 1,
                )


def _restore_create_prices(
    original: Mapping[str, Any],
    content: dict[str, Any],
    prices_of: PricesOf | None,
    path: str,
    warnings: list[str],
) -> None:
    known = prices_of(dict(content)) if prices_of is not None else None
    for key in CREATE_PRICE_KEYS:
        if not _is_zero(original.get(key)):
            continue
        restored = known.get(key) if known else None
        if restored is not None and not _is_zero(restored):
            content[key] = _json_safe(restored, f"{path}.{key}", warnings)
        else:
            content[key] = None
            if key == "limit_price" and original.get("type") not in MARKET_TYPES:
                warnings.append(f"{path}.limit_price: lost by an edit merged into the create; sent as null")


def normalize_bundle(
    bundle: Mapping[str, Any],
    share_of: ShareOf,
    *,
    prices_of: PricesOf | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """Return a JSON-safe, protocol-correct copy of an octobot-trading bundle dict.

    share_of(content) gets a copy of an order content whose "quantity" is the Decimal size
    to express, and returns a share string like "12.5%" (or None when it cannot tell).
    prices_of(content), optional, returns the order's real {"limit_price", "stop_price",
    "current"} to repair a create that a merged edit zeroed. Problems that do not prevent
    sending are appended to `warnings`.
    """
    notes: list[str] = [] if warnings is None else warnings
    if not isinstance(bundle, Mapping):
        raise NormalizationError("bundle", f"must be a dict, got {type(bundle).__name__}")
    result = _json_safe(bundle, "bundle", notes)
    signals = bundle.get("signals")
    if not isinstance(signals, list | tuple):
        raise NormalizationError("bundle.signals", "must be a list")
    for index, signal in enumerate(signals):
        if not isinstance(signal, Mapping):
            continue
        content = signal.get("content")
        if signal.get("topic") == "orders" and isinstance(content, Mapping):
            _normalize_order(
                content, result["signals"][index]["content"], share_of, prices_of,
                f"bundle.signals[{index}].content", notes, 0,
            )
    return result
