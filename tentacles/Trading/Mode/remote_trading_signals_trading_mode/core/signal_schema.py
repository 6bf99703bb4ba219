"""The one boundary that turns untrusted feed data into typed, validated objects.

Everything a strategy feed sends (PROTOCOL.md "Feed message" and "Signals") passes through
here before any other code looks at it. Errors name the offending field as a path
(``s.signals[2].content.target_amount``) so a skipped signal can be explained in one line.

Choices worth knowing:
- Unknown keys are ignored (forward compatibility); absent and null mean the same.
- Prices equal to 0 mean "not set" (octobot-trading writes 0.0 for prices an edit did not change).
- Futures creates may give ``target_position`` instead of ``target_amount``; the sizing code
  decides what it can do with it.
- Non-market order types need a ``limit_price``: octobot-trading carries a stop-loss trigger
  and a take-profit price there too.
- ``target_position`` is the only signed number (a short target is negative).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import TypeVar

from octobot_trading.enums import TraderOrderType

from .decimal_util import DecimalInputError, plain, to_decimal
from .protocol import number_problem

_T = TypeVar("_T")


class SignalValidationError(ValueError):
    """Untrusted input refused; ``field`` is the path of the offending value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class OrderAction(str, Enum):
    CREATE = "create"
    EDIT = "edit"
    CANCEL = "cancel"
    ADD_TO_GROUP = "add_to_group"


class ExchangeType(str, Enum):
    SPOT = "spot"
    FUTURE = "future"


class Side(str, Enum):
    BUY = "buy"
    SELL = "sell"


POSITION_SIDES = frozenset({"long", "short", "both"})
MARKET_TYPES = frozenset({TraderOrderType.BUY_MARKET, TraderOrderType.SELL_MARKET})
_BUY_ONLY_TYPES = frozenset({TraderOrderType.BUY_MARKET, TraderOrderType.BUY_LIMIT})
_SELL_ONLY_TYPES = frozenset({TraderOrderType.SELL_MARKET, TraderOrderType.SELL_LIMIT})
_REFUSED_TYPES = frozenset({TraderOrderType.UNSUPPORTED, TraderOrderType.UNKNOWN})
# by value, as Enum(value) finds them (a dict hit instead of Enum.__call__ and its ValueError)
_ACTIONS = {action.value: action for action in OrderAction}
_EXCHANGE_TYPES = {exchange_type.value: exchange_type for exchange_type in ExchangeType}
_SIDES = {side.value: side for side in Side}
_ORDER_TYPES = {order_type.value: order_type for order_type in TraderOrderType}
# the same sets by value: TraderOrderType hashes in Python (Enum.__hash__), a str in C
_MARKET_TYPE_VALUES = frozenset(order_type.value for order_type in MARKET_TYPES)
_BUY_ONLY_TYPE_VALUES = frozenset(order_type.value for order_type in _BUY_ONLY_TYPES)
_SELL_ONLY_TYPE_VALUES = frozenset(order_type.value for order_type in _SELL_ONLY_TYPES)
_REFUSED_TYPE_VALUES = frozenset(order_type.value for order_type in _REFUSED_TYPES)

MAX_ID = 128
MAX_SYMBOL = 64
MAX_TAG = 256
MAX_NAME = 64
MAX_SIGNATURE = 512
MAX_LIST = 100              # associated ids, additional orders, dependencies
MAX_OPAQUE_ITEMS = 256      # trailing_profile / cancel_policy_kwargs: bounded free-form dicts
MAX_OPAQUE_DEPTH = 4
MAX_LEVERAGE = Decimal(200)
MIN_VERSION = (1, 0, 0)
MAX_VERSION_EXCLUSIVE = (2, 0, 0)

_PRICE_KEYS = ("limit_price", "updated_limit_price", "stop_price", "updated_stop_price", "current",
               "updated_current_price", "active_trigger_price")

_STRATEGY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ASSET = r"[A-Za-z0-9._-]{1,32}"
_SYMBOL = re.compile(rf"^{_ASSET}/{_ASSET}(?::{_ASSET})?$")
_VERSION = re.compile(r"^\d{1,6}(?:\.\d{1,6}){0,3}$")
_SHARE = re.compile(r"^(?P<number>[0-9][0-9.eE+-]*)(?P<available>a?)%$")


@dataclass(frozen=True)
class Share:
    """A size as a percentage of the portfolio: "5.3%" (of total) or "5.3a%" (of available)."""

    percent: Decimal
    of_available: bool

    @classmethod
    def parse(cls, field: str, value: object) -> Share:
        if not isinstance(value, str):
            raise SignalValidationError(field, f"expected a share string like '5%' or '5a%', got {_kind(value)}")
        if len(value) > 40:
            raise SignalValidationError(field, f"share text too long ({len(value)} chars)")
        match = _SHARE.match(value.strip())
        if match is None:
            raise SignalValidationError(field, f"not a share like '5%' or '5a%': {value!r}")
        try:
            percent = to_decimal(match.group("number"))
        except DecimalInputError as err:
            raise SignalValidationError(field, str(err)) from None
        if not Decimal(0) < percent <= Decimal(100):
            raise SignalValidationError(field, f"share must be in (0, 100]%, got {value!r}")
        return cls(percent, bool(match.group("available")))

    def __str__(self) -> str:
        return f"{plain(self.percent)}{'a' if self.of_available else ''}%"


@dataclass(frozen=True)
class OrderSignal:
    action: OrderAction
    strategy: str | None
    symbol: str
    exchange: str | None
    exchange_type: ExchangeType
    side: Side | None
    order_type: TraderOrderType | None
    quantity: Decimal | None
    target_amount: Share | None
    target_position: Decimal | str | None
    updated_target_amount: Share | None
    updated_target_position: Decimal | str | None
    limit_price: Decimal | None
    updated_limit_price: Decimal | None
    stop_price: Decimal | None
    updated_stop_price: Decimal | None
    current: Decimal | None
    updated_current_price: Decimal | None
    reduce_only: bool
    post_only: bool
    trigger_above: bool | None
    group_id: str | None
    group_type: str | None
    active_swap_strategy_type: str | None
    active_swap_strategy_timeout: Decimal | None
    active_swap_strategy_trigger_config: str | None
    tag: str | None
    order_id: str
    associated_order_ids: tuple[str, ...]
    update_with_triggering_order_fees: bool
    trailing_profile_type: str | None
    trailing_profile: dict | None
    is_active: bool
    active_trigger_price: Decimal | None
    active_trigger_above: bool | None
    cancel_policy_type: str | None
    cancel_policy_kwargs: dict | None
    bundled_with: str | None
    chained_to: str | None
    additional_orders: tuple[OrderSignal, ...]

    def all_order_ids(self) -> tuple[str, ...]:
        """This order's id and those of every nested additional order."""
        ids = [self.order_id]
        for child in self.additional_orders:
            ids.extend(child.all_order_ids())
        return tuple(ids)


@dataclass(frozen=True)
class PositionSignal:
    action: str  # always "edit" (the only position action octobot-trading emits)
    strategy: str | None
    symbol: str
    exchange: str | None
    exchange_type: ExchangeType
    side: Side | str | None  # buy/sell as Side; position sides "long"/"short"/"both" kept as str
    leverage: Decimal


@dataclass(frozen=True)
class RejectedSignal:
    index: int
    order_id: str | None
    action: str | None
    error: SignalValidationError


@dataclass(frozen=True)
class ParsedSignal:
    index: int
    topic: str
    content: OrderSignal | PositionSignal
    depends_on_order_ids: tuple[str, ...]
    depends_on_symbols: tuple[str, ...]


@dataclass(frozen=True)
class SignalBundle:
    identifier: str
    version: str
    signals: tuple[ParsedSignal | RejectedSignal, ...]


@dataclass(frozen=True)
class FeedMessage:
    u: str
    i: str
    t: str
    v: str
    d: Decimal | None
    q: int | None
    g: str | None
    raw_s: dict
    bundle: SignalBundle


@dataclass(frozen=True)
class ValidationContext:
    symbols: frozenset[str] | None = None        # when set, unknown symbols are rejected
    exchange_type: ExchangeType | None = None    # when set, other exchange types are rejected
    strategy_id: str | None = None               # when set, bundle identifier must match
    max_depth: int = 5                           # additional_orders nesting
    max_signals: int = 100


_DEFAULT_CONTEXT = ValidationContext()


# ---- small field readers --------------------------------------------------------------
def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _require_dict(path: str, value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise SignalValidationError(path, f"expected an object, got {_kind(value)}")
    return value


def _str(obj: Mapping[str, object], key: str, path: str, *, max_len: int, required: bool = False,
         pattern: re.Pattern[str] | None = None, allow_empty: bool = False) -> str | None:
    value = obj.get(key)
    if value is None or (value == "" and not required and not allow_empty):
        if required:
            raise SignalValidationError(_join(path, key), "missing")
        return None
    if not isinstance(value, str):
        raise SignalValidationError(_join(path, key), f"expected a string, got {_kind(value)}")
    if len(value) > max_len:
        raise SignalValidationError(_join(path, key), f"too long ({len(value)} chars, max {max_len})")
    if not value and not allow_empty:
        raise SignalValidationError(_join(path, key), "must not be empty")
    if pattern is not None and not pattern.match(value):
        raise SignalValidationError(_join(path, key), f"invalid value {value[:80]!r}")
    return value


def _number(obj: Mapping[str, object], key: str, path: str, *, zero_is_none: bool = False,
            allow_negative: bool = False) -> Decimal | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        number = to_decimal(value, allow_negative=allow_negative)
    except DecimalInputError as err:
        raise SignalValidationError(_join(path, key), str(err)) from None
    if zero_is_none and number == 0:
        return None
    return number


def _bool(obj: Mapping[str, object], key: str, path: str, default: bool | None) -> bool | None:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SignalValidationError(_join(path, key), f"expected true or false, got {_kind(value)}")
    return value


def _flag(value: object, obj: Mapping[str, object], key: str, path: str, default: bool) -> bool:
    """bool(_bool(obj, key, path, default)) where `value` is obj[key]: a true/false value as is."""
    if value is True or value is False:
        return value
    return bool(_bool(obj, key, path, default))


def _share(obj: Mapping[str, object], key: str, path: str) -> Share | None:
    value = obj.get(key)
    if value is None:
        return None
    return Share.parse(_join(path, key), value)


def _position_target(obj: Mapping[str, object], key: str, path: str) -> Decimal | str | None:
    """A number (signed) or a share-like string ("5%", "5a%", "5p%") kept as text for the sizing code."""
    value = obj.get(key)
    if value is None:
        return None
    field = _join(path, key)
    if isinstance(value, str) and value.strip().endswith("%"):
        text = value.strip()
        number = text[:-2] if text[-2:] in ("a%", "p%") else text[:-1]
        try:
            to_decimal(number, allow_negative=True)
        except DecimalInputError as err:
            raise SignalValidationError(field, str(err)) from None
        return text
    try:
        return to_decimal(value, allow_negative=True)
    except DecimalInputError as err:
        raise SignalValidationError(field, str(err)) from None


def _opaque_dict(obj: Mapping[str, object], key: str, path: str) -> dict | None:
    """A free-form dict passed on to octobot-trading: bounded in size and depth, JSON types only."""
    value = obj.get(key)
    if value is None:
        return None
    field = _join(path, key)
    if not isinstance(value, dict):
        raise SignalValidationError(field, f"expected an object, got {_kind(value)}")
    budget = [MAX_OPAQUE_ITEMS]

    def walk(node: object, depth: int) -> None:
        if depth > MAX_OPAQUE_DEPTH:
            raise SignalValidationError(field, f"nested deeper than {MAX_OPAQUE_DEPTH} levels")
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        elif node is None or isinstance(node, bool):
            return
        elif isinstance(node, (int, float)):
            # octobot-trading reads these as floats: an integer beyond a float's range would raise there
            problem = number_problem(node)
            if problem is not None:
                raise SignalValidationError(field, f"a number {problem}")
            return
        elif isinstance(node, str):
            if len(node) > MAX_TAG:
                raise SignalValidationError(field, f"string too long ({len(node)} chars, max {MAX_TAG})")
            return
        else:
            raise SignalValidationError(field, f"unsupported value type {type(node).__name__}")
        budget[0] -= len(items)
        if budget[0] < 0:
            raise SignalValidationError(field, f"too many entries (max {MAX_OPAQUE_ITEMS})")
        for sub_key, sub_value in items:
            if isinstance(sub_key, str) and len(sub_key) > MAX_NAME:
                raise SignalValidationError(field, f"key too long ({len(sub_key)} chars)")
            walk(sub_value, depth + 1)

    walk(value, 1)
    return value


def _id_list(obj: Mapping[str, object], key: str, path: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    field = _join(path, key)
    if not isinstance(value, list):
        raise SignalValidationError(field, f"expected a list of ids, got {_kind(value)}")
    if len(value) > MAX_LIST:
        raise SignalValidationError(field, f"too many ids ({len(value)}, max {MAX_LIST})")
    ids = []
    for position, item in enumerate(value):
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_ID:
            raise SignalValidationError(f"{field}[{position}]", f"expected an id of 1..{MAX_ID} chars")
        ids.append(item)
    return tuple(ids)


_accepted_versions: set[str] = set()  # every message carries the same one or two


def _version(field: str, value: object) -> str:
    if type(value) is str and value in _accepted_versions:
        return value
    if not isinstance(value, str):
        raise SignalValidationError(field, f"expected a version string like '1.0.0', got {_kind(value)}")
    if not _VERSION.match(value):
        raise SignalValidationError(field, f"not a version like '1.0.0': {value[:40]!r}")
    parts = tuple(int(part) for part in value.split("."))
    padded = (parts + (0, 0, 0))[:max(3, len(parts))]
    if not MIN_VERSION <= padded < MAX_VERSION_EXCLUSIVE:
        raise SignalValidationError(field, f"unsupported version {value} (accepted: 1.0.0 <= v < 2.0.0)")
    if len(_accepted_versions) < 64:
        _accepted_versions.add(value)
    return value


# texts that passed a pattern check: every message repeats the same strategy id and the same few pairs
_accepted_identifiers: set[str] = set()
_accepted_symbols: set[str] = set()
_MAX_ACCEPTED_IDENTIFIERS = 64
_MAX_ACCEPTED_SYMBOLS = 1024


def _checked_text(obj: Mapping[str, object], key: str, path: str, max_len: int, pattern: re.Pattern[str],
                  accepted: set[str], bound: int) -> str:
    """_str(obj, key, path, max_len=max_len, required=True, pattern=pattern), answered from `accepted` (texts
    that passed these same checks before) when it can."""
    value = obj.get(key)
    if type(value) is str and value in accepted:
        return value
    text = _str(obj, key, path, max_len=max_len, required=True, pattern=pattern)
    assert text is not None
    if len(accepted) < bound:
        accepted.add(text)
    return text


def _symbol(obj: Mapping[str, object], path: str, ctx: ValidationContext) -> str:
    symbol = _checked_text(obj, "symbol", path, MAX_SYMBOL, _SYMBOL, _accepted_symbols, _MAX_ACCEPTED_SYMBOLS)
    if ctx.symbols is not None and symbol not in ctx.symbols:
        raise SignalValidationError(f"{path}.symbol", f"unknown symbol {symbol} (not traded here)")
    return symbol


def _exchange_type(obj: Mapping[str, object], path: str, ctx: ValidationContext) -> ExchangeType:
    field = f"{path}.exchange_type"
    value = obj.get("exchange_type")
    if value is None:
        raise SignalValidationError(field, "missing")
    exchange_type = _EXCHANGE_TYPES.get(value) if isinstance(value, str) else None
    if exchange_type is None:
        raise SignalValidationError(field, f"expected 'spot' or 'future', got {str(value)[:40]!r}")
    if ctx.exchange_type is not None and exchange_type is not ctx.exchange_type:
        raise SignalValidationError(
            field, f"wrong exchange type {exchange_type.value} (this bot trades {ctx.exchange_type.value})"
        )
    return exchange_type


def _order_side(obj: Mapping[str, object], path: str) -> Side | None:
    value = obj.get("side")
    if value is None:
        return None
    side = _SIDES.get(value) if isinstance(value, str) else None
    if side is None:
        raise SignalValidationError(f"{path}.side", f"expected 'buy' or 'sell', got {str(value)[:40]!r}")
    return side


def _order_type(obj: Mapping[str, object], path: str) -> TraderOrderType | None:
    value = obj.get("type")
    if value is None:
        return None
    field = f"{path}.type"
    if not isinstance(value, str):
        raise SignalValidationError(field, f"expected an order type string, got {_kind(value)}")
    order_type = _ORDER_TYPES.get(value)
    if order_type is None:
        raise SignalValidationError(field, f"unknown order type {value[:40]!r}")
    if value in _REFUSED_TYPE_VALUES:
        raise SignalValidationError(field, f"order type {value!r} cannot be copied")
    return order_type


# ---- order and position contents ----------------------------------------------------------
def parse_order_content(obj: object, ctx: ValidationContext = _DEFAULT_CONTEXT, path: str = "content",
                        depth: int = 0) -> OrderSignal:
    """Validate one order signal content (and its nested additional orders); raises SignalValidationError.

    Fields are checked in a fixed order (the first bad one is the error); an absent (or null) optional
    field skips its reader, which would return what it returns for None."""
    content = _require_dict(path, obj)
    get = content.get
    action_value = get("action")
    action = _ACTIONS.get(action_value) if isinstance(action_value, str) else None
    if action is None:
        raise SignalValidationError(
            f"{path}.action", f"expected one of create/edit/cancel/add_to_group, got {str(action_value)[:40]!r}"
        )
    order_id = _str(content, "order_id", path, max_len=MAX_ID, required=True)
    assert order_id is not None
    symbol = _symbol(content, path, ctx)
    exchange_type = _exchange_type(content, path, ctx)
    side = _order_side(content, path)
    order_type = _order_type(content, path)
    if side is not None and order_type is not None:
        type_value = order_type.value
        if ((type_value in _BUY_ONLY_TYPE_VALUES and side is Side.SELL)
                or (type_value in _SELL_ONLY_TYPE_VALUES and side is Side.BUY)):
            raise SignalValidationError(f"{path}.type", f"{type_value} contradicts side {side.value!r}")

    prices = {
        key: None if get(key) is None else _number(content, key, path, zero_is_none=True)
        for key in _PRICE_KEYS
    }
    quantity = None if get("quantity") is None else _number(content, "quantity", path, zero_is_none=True)
    target_amount = None if get("target_amount") is None else _share(content, "target_amount", path)
    updated_target_amount = (None if get("updated_target_amount") is None
                             else _share(content, "updated_target_amount", path))
    target_position = None if get("target_position") is None else _position_target(content, "target_position", path)
    updated_target_position = (None if get("updated_target_position") is None
                               else _position_target(content, "updated_target_position", path))
    group_id = None if get("group_id") is None else _str(content, "group_id", path, max_len=MAX_ID)
    group_type = (None if get("group_type") is None
                  else _str(content, "group_type", path, max_len=MAX_NAME, pattern=_CLASS_NAME))

    if action is OrderAction.CREATE:
        if side is None:
            raise SignalValidationError(f"{path}.side", "missing (required to create an order)")
        if order_type is None:
            raise SignalValidationError(f"{path}.type", "missing (required to create an order)")
        if target_amount is None and quantity is None and not (
            exchange_type is ExchangeType.FUTURE and target_position is not None
        ):
            raise SignalValidationError(f"{path}.target_amount", "missing (a create needs target_amount or quantity)")
        if order_type.value not in _MARKET_TYPE_VALUES and prices["limit_price"] is None:
            raise SignalValidationError(f"{path}.limit_price", f"missing (required for {order_type.value} orders)")
    elif action is OrderAction.EDIT:
        if (updated_target_amount is None and updated_target_position is None
                and prices["updated_limit_price"] is None and prices["updated_stop_price"] is None):
            raise SignalValidationError(
                f"{path}.updated_target_amount",
                "an edit needs at least one of updated_target_amount, updated_target_position, "
                "updated_limit_price, updated_stop_price",
            )
    elif action is OrderAction.ADD_TO_GROUP:
        if group_id is None:
            raise SignalValidationError(f"{path}.group_id", "missing (required by add_to_group)")
        if group_type is None:
            raise SignalValidationError(f"{path}.group_type", "missing (required by add_to_group)")

    additional = get("additional_orders")
    children: list[OrderSignal] = []
    if additional is not None:
        field = f"{path}.additional_orders"
        if not isinstance(additional, list):
            raise SignalValidationError(field, f"expected a list, got {_kind(additional)}")
        if additional and depth + 1 > ctx.max_depth:
            raise SignalValidationError(field, f"additional_orders nested deeper than {ctx.max_depth} levels")
        if len(additional) > MAX_LIST:
            raise SignalValidationError(field, f"too many additional orders ({len(additional)}, max {MAX_LIST})")
        children = [
            parse_order_content(child, ctx, f"{field}[{position}]", depth + 1)
            for position, child in enumerate(additional)
        ]

    return _order_signal(
        action=action,
        strategy=None if get("strategy") is None else _str(content, "strategy", path, max_len=MAX_ID),
        symbol=symbol,
        exchange=None if get("exchange") is None else _str(content, "exchange", path, max_len=MAX_NAME),
        exchange_type=exchange_type,
        side=side,
        order_type=order_type,
        quantity=quantity,
        target_amount=target_amount,
        target_position=target_position,
        updated_target_amount=updated_target_amount,
        updated_target_position=updated_target_position,
        limit_price=prices["limit_price"],
        updated_limit_price=prices["updated_limit_price"],
        stop_price=prices["stop_price"],
        updated_stop_price=prices["updated_stop_price"],
        current=prices["current"],
        updated_current_price=prices["updated_current_price"],
        reduce_only=_flag(get("reduce_only"), content, "reduce_only", path, False),
        post_only=_flag(get("post_only"), content, "post_only", path, False),
        trigger_above=None if get("trigger_above") is None else _bool(content, "trigger_above", path, None),
        group_id=group_id,
        group_type=group_type,
        active_swap_strategy_type=None if get("active_swap_strategy_type") is None else _str(
            content, "active_swap_strategy_type", path, max_len=MAX_NAME, pattern=_CLASS_NAME),
        active_swap_strategy_timeout=None if get("active_swap_strategy_timeout") is None else _number(
            content, "active_swap_strategy_timeout", path),
        active_swap_strategy_trigger_config=None if get("active_swap_strategy_trigger_config") is None else _str(
            content, "active_swap_strategy_trigger_config", path, max_len=MAX_NAME),
        tag=None if get("tag") is None else _str(content, "tag", path, max_len=MAX_TAG),
        order_id=order_id,
        associated_order_ids=() if get("associated_order_ids") is None else _id_list(
            content, "associated_order_ids", path),
        update_with_triggering_order_fees=_flag(get("update_with_triggering_order_fees"), content,
                                                "update_with_triggering_order_fees", path, False),
        trailing_profile_type=None if get("trailing_profile_type") is None else _str(
            content, "trailing_profile_type", path, max_len=MAX_NAME),
        trailing_profile=None if get("trailing_profile") is None else _opaque_dict(content, "trailing_profile", path),
        is_active=_flag(get("is_active"), content, "is_active", path, True),
        active_trigger_price=prices["active_trigger_price"],
        active_trigger_above=None if get("active_trigger_above") is None else _bool(
            content, "active_trigger_above", path, None),
        cancel_policy_type=None if get("cancel_policy_type") is None else _str(
            content, "cancel_policy_type", path, max_len=MAX_NAME, pattern=_CLASS_NAME),
        cancel_policy_kwargs=None if get("cancel_policy_kwargs") is None else _opaque_dict(
            content, "cancel_policy_kwargs", path),
        bundled_with=None if get("bundled_with") is None else _str(content, "bundled_with", path, max_len=MAX_ID),
        chained_to=None if get("chained_to") is None else _str(content, "chained_to", path, max_len=MAX_ID),
        additional_orders=tuple(children),
    )


def _frozen(cls: type[_T], values: dict[str, object]) -> _T:
    """cls(**values), every field given, without a frozen dataclass __init__'s object.__setattr__ per field
    (OrderSignal has 40): the same object, as frozen (tests/test_signal_schema.py checks both)."""
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


def _order_signal(**values: object) -> OrderSignal:
    return _frozen(OrderSignal, values)


def parse_position_content(obj: object, ctx: ValidationContext = _DEFAULT_CONTEXT,
                           path: str = "content") -> PositionSignal:
    """Validate a position (leverage edit) content; raises SignalValidationError."""
    content = _require_dict(path, obj)
    action = content.get("action")
    if action != "edit":
        raise SignalValidationError(f"{path}.action", f"expected 'edit' for a position signal, got {str(action)[:40]!r}")
    symbol = _symbol(content, path, ctx)
    exchange_type = _exchange_type(content, path, ctx)
    raw_side = content.get("side")
    side: Side | str | None
    if raw_side is None:
        side = None
    elif raw_side in ("buy", "sell"):
        side = Side(raw_side)
    elif isinstance(raw_side, str) and raw_side in POSITION_SIDES:
        side = str(raw_side)
    else:
        raise SignalValidationError(f"{path}.side", f"expected buy/sell/long/short/both, got {str(raw_side)[:40]!r}")
    leverage = _number(content, "leverage", path)
    if leverage is None:
        raise SignalValidationError(f"{path}.leverage", "missing")
    if not Decimal(0) < leverage <= MAX_LEVERAGE:
        raise SignalValidationError(f"{path}.leverage", f"must be in (0, {MAX_LEVERAGE}], got {plain(leverage)}")
    return PositionSignal(
        action="edit",
        strategy=_str(content, "strategy", path, max_len=MAX_ID),
        symbol=symbol,
        exchange=_str(content, "exchange", path, max_len=MAX_NAME),
        exchange_type=exchange_type,
        side=side,
        leverage=leverage,
    )


def best_effort_order_id(obj: object) -> str | None:
    """The order_id of a content that failed validation, when it is at least a sane id."""
    if isinstance(obj, dict):
        value = obj.get("order_id")
        if isinstance(value, str) and 1 <= len(value) <= MAX_ID:
            return value
    return None


def _best_effort_action(obj: object) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("action")
        if isinstance(value, str) and value in {action.value for action in OrderAction}:
            return value
    return None


# ---- signals and bundles ----------------------------------------------------------------------
def _dependencies(path: str, value: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if value is None:
        return (), ()
    container = _require_dict(path, value)
    items = container.get("dependency")
    if items is None:
        return (), ()
    field = f"{path}.dependency"
    if not isinstance(items, list):
        raise SignalValidationError(field, f"expected a list, got {_kind(items)}")
    if len(items) > MAX_LIST:
        raise SignalValidationError(field, f"too many dependencies ({len(items)}, max {MAX_LIST})")
    order_ids: list[str] = []
    symbols: list[str] = []
    for position, item in enumerate(items):
        item_path = f"{field}[{position}]"
        entry = _require_dict(item_path, item)
        order_id = _str(entry, "order_id", item_path, max_len=MAX_ID)
        symbol = _str(entry, "position_symbol", item_path, max_len=MAX_SYMBOL, pattern=_SYMBOL)
        if order_id is None and symbol is None:
            raise SignalValidationError(item_path, "expected an 'order_id' or a 'position_symbol'")
        if order_id is not None:
            order_ids.append(order_id)
        if symbol is not None:
            symbols.append(symbol)
    return tuple(order_ids), tuple(symbols)


def _parse_signal(index: int, obj: object, ctx: ValidationContext, path: str) -> ParsedSignal:
    signal = _require_dict(path, obj)
    topic = signal.get("topic")
    content = signal.get("content")
    if topic == "orders":
        parsed: OrderSignal | PositionSignal = parse_order_content(content, ctx, f"{path}.content")
    elif topic == "positions":
        parsed = parse_position_content(content, ctx, f"{path}.content")
    else:
        raise SignalValidationError(f"{path}.topic", f"expected 'orders' or 'positions', got {str(topic)[:40]!r}")
    order_ids, symbols = _dependencies(f"{path}.dependencies", signal.get("dependencies"))
    return _frozen(ParsedSignal, {"index": index, "topic": topic, "content": parsed, "depends_on_order_ids": order_ids,
                                  "depends_on_symbols": symbols})


def parse_bundle(obj: object, ctx: ValidationContext = _DEFAULT_CONTEXT, path: str = "s") -> SignalBundle:
    """Bundle-level problems raise; a bad individual signal becomes a RejectedSignal in place."""
    bundle = _require_dict(path, obj)
    identifier = _checked_text(bundle, "identifier", path, 64, _STRATEGY_ID, _accepted_identifiers,
                               _MAX_ACCEPTED_IDENTIFIERS)
    if ctx.strategy_id is not None and identifier != ctx.strategy_id:
        raise SignalValidationError(f"{path}.identifier",
                                    f"signal for strategy {identifier!r}, this bot follows {ctx.strategy_id!r}")
    version = _version(f"{path}.version", bundle.get("version"))
    signals = bundle.get("signals")
    field = f"{path}.signals"
    if not isinstance(signals, list):
        raise SignalValidationError(field, f"expected a list, got {_kind(signals)}")
    if not signals:
        raise SignalValidationError(field, "empty bundle")
    if len(signals) > ctx.max_signals:
        raise SignalValidationError(field, f"too many signals ({len(signals)}, max {ctx.max_signals})")
    parsed: list[ParsedSignal | RejectedSignal] = []
    for index, raw in enumerate(signals):
        try:
            parsed.append(_parse_signal(index, raw, ctx, f"{field}[{index}]"))
        except SignalValidationError as err:
            content = raw.get("content") if isinstance(raw, dict) else None
            parsed.append(RejectedSignal(index, best_effort_order_id(content), _best_effort_action(content), err))
        except RecursionError:
            error = SignalValidationError(f"{field}[{index}]", "nested too deeply")
            parsed.append(RejectedSignal(index, None, None, error))
    return _frozen(SignalBundle, {"identifier": identifier, "version": version, "signals": tuple(parsed)})


def parse_feed_message(obj: object, ctx: ValidationContext = _DEFAULT_CONTEXT) -> FeedMessage:
    """Validate a whole feed message (PROTOCOL.md "Feed message"); raises on envelope/bundle errors."""
    message = _require_dict("message", obj)
    u = _str(message, "u", "", max_len=MAX_ID, required=True)
    i = _str(message, "i", "", max_len=MAX_ID, allow_empty=True)
    if message.get("i") is None:
        raise SignalValidationError("i", "missing")
    t = message.get("t")
    if t != "t":
        raise SignalValidationError("t", f"expected channel type 't' (trading signals), got {str(t)[:40]!r}")
    v = _version("v", message.get("v"))
    d_value = message.get("d")
    d = None
    if d_value is not None:
        if not isinstance(d_value, (int, float)) or isinstance(d_value, bool):
            raise SignalValidationError("d", f"expected a unix timestamp number, got {_kind(d_value)}")
        problem = number_problem(d_value)  # the true reason, before to_decimal's magnitude check
        if problem is not None:
            raise SignalValidationError("d", f"unix timestamp {problem}")
        d = _number(message, "d", "")
    q_value = message.get("q")
    if q_value is not None and (not isinstance(q_value, int) or isinstance(q_value, bool)
                                or not 1 <= q_value < 2**63):
        raise SignalValidationError("q", f"expected an integer sequence >= 1, got {str(q_value)[:40]!r}")
    g = _str(message, "g", "", max_len=MAX_SIGNATURE)
    raw_s = _require_dict("s", message.get("s"))
    bundle = parse_bundle(raw_s, ctx, "s")
    assert u is not None and i is not None
    return _frozen(FeedMessage, {"u": u, "i": i, "t": "t", "v": v, "d": d, "q": q_value, "g": g, "raw_s": dict(raw_s),
                                 "bundle": bundle})


# ---- apply order ------------------------------------------------------------------------------
def dependency_order(bundle: SignalBundle) -> list[ParsedSignal | RejectedSignal]:
    """Bundle order, except that a signal runs after the signals of this bundle it depends on.

    Stable: among signals whose dependencies are met, the earliest goes first. A cycle (or a
    dependency on something outside the bundle) keeps the original order for what is stuck.
    """
    signals = list(bundle.signals)
    if not any(isinstance(signal, ParsedSignal) and (signal.depends_on_order_ids or signal.depends_on_symbols)
               for signal in signals):
        return signals  # nothing waits for anything: bundle order, as below
    provides_orders: dict[str, set[int]] = {}
    provides_symbols: dict[str, set[int]] = {}
    for signal in signals:
        if isinstance(signal, ParsedSignal):
            content = signal.content
            if isinstance(content, OrderSignal):
                for order_id in content.all_order_ids():
                    provides_orders.setdefault(order_id, set()).add(signal.index)
            else:
                provides_symbols.setdefault(content.symbol, set()).add(signal.index)
    waits_for: dict[int, set[int]] = {}
    for signal in signals:
        needed: set[int] = set()
        if isinstance(signal, ParsedSignal):
            for order_id in signal.depends_on_order_ids:
                needed |= provides_orders.get(order_id, set())
            for symbol in signal.depends_on_symbols:
                needed |= provides_symbols.get(symbol, set())
        needed.discard(signal.index)
        waits_for[signal.index] = needed
    # edges inside a cycle are dropped: signals of a cycle keep their bundle order
    reach = {index: _reachable(index, waits_for) for index in waits_for}
    for index, needed in waits_for.items():
        waits_for[index] = {other for other in needed if index not in reach[other]}
    placed: set[int] = set()
    ordered: list[ParsedSignal | RejectedSignal] = []
    pending = signals[:]
    while pending:
        chosen = next((s for s in pending if waits_for[s.index] <= placed), pending[0])
        pending.remove(chosen)
        placed.add(chosen.index)
        ordered.append(chosen)
    return ordered


def _reachable(start: int, edges: dict[int, set[int]]) -> set[int]:
    seen: set[int] = set()
    stack = list(edges[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(edges[node])
    return seen
