"""Follower settings, built from untrusted config values (web UI, profile files, CLI --set).

The web UI sends numbers as int/float/str and booleans as bool or "true"/"false"; a null
value means "use the default". Every refusal names the key; secrets never appear in errors
or in repr().
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import Enum
from urllib.parse import urlsplit

from .decimal_util import DecimalInputError, plain, to_decimal

MAX_SIGNAL_AGE_SECONDS = 7 * 24 * 3600
MAX_LEADER_RATIO = Decimal(1000)
MAX_TOKEN_CHARS = 512
MAX_URL_CHARS = 2048
MAX_PATH_CHARS = 4096
MAX_LIST_CHARS = 4096  # pair_filter / quote_mapping texts
MAX_EXPOSURE_PERCENT = Decimal(1000)  # futures exposure is leveraged notional: it may exceed 100 %
MAX_OPEN_COPIES = 100_000
MAX_RESET_COUNTER = 10**9

_STRATEGY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PAIR = re.compile(r"^[A-Za-z0-9._-]{1,32}/[A-Za-z0-9._-]{1,32}(:[A-Za-z0-9._-]{1,32})?$")
_CURRENCY = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: it goes into an HTTP header


class SizingMode(str, Enum):
    PORTFOLIO_PERCENT = "portfolio_percent"
    LEADER_QUANTITY_RATIO = "leader_quantity_ratio"
    FIXED_QUOTE_AMOUNT = "fixed_quote_amount"


class PairFilterMode(str, Enum):
    FOLLOW_ONLY = "follow_only"        # copy only the listed pairs
    FOLLOW_ALL_BUT = "follow_all_but"  # copy every pair except the listed ones


class SettingsError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class FollowerSettings:
    trading_strategy: str = ""
    max_volume: Decimal = Decimal(100)
    round_to_minimal_size_if_necessary: bool = False
    sizing: SizingMode = SizingMode.PORTFOLIO_PERCENT
    leader_quantity_ratio: Decimal = Decimal(1)
    fixed_quote_amount: Decimal = Decimal(0)
    max_signal_age_seconds: int = 300
    max_price_deviation_percent: Decimal = Decimal(5)
    hub_url: str = ""
    follower_token: str = field(default="", repr=False)
    public_key: str = ""
    journal_path: str = ""
    # risk controls: 0 / empty = off. They limit new entries and edits that grow one: exits, cancels and
    # other edits always apply.
    max_exposure_percent: Decimal = Decimal(0)
    max_open_copies: int = 0
    drawdown_stop_percent: Decimal = Decimal(0)
    drawdown_reset: int = 0  # a counter: changing it restarts the drawdown peak from the current value
    pair_filter: tuple[str, ...] = ()
    pair_filter_mode: PairFilterMode = PairFilterMode.FOLLOW_ONLY
    quote_mapping: tuple[tuple[str, str], ...] = ()  # (leader quote, my quote), e.g. (("USDT", "USDC"),)


KEYS: tuple[str, ...] = tuple(f.name for f in fields(FollowerSettings))
_DEFAULTS = FollowerSettings()


# ---- coercion helpers -----------------------------------------------------------------------
def _decimal(key: str, value: object) -> Decimal:
    try:
        return to_decimal(value)
    except DecimalInputError as err:
        raise SettingsError(key, str(err)) from None


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SettingsError(key, f"expected true or false, got {str(value)[:40]!r}")


def _int(key: str, value: object) -> int:
    number = _decimal(key, value)
    if number != number.to_integral_value():
        raise SettingsError(key, f"expected a whole number, got {plain(number)}")
    return int(number)


def _text(key: str, value: object, max_len: int) -> str:
    if not isinstance(value, str):
        raise SettingsError(key, f"expected text, got {type(value).__name__}")
    if len(value) > max_len:
        raise SettingsError(key, f"too long ({len(value)} chars, max {max_len})")
    return value.strip()


def _in_range(key: str, value: Decimal, low: Decimal, high: Decimal, *, low_open: bool) -> Decimal:
    below = value <= low if low_open else value < low
    if below or value > high:
        bracket = "(" if low_open else "["
        raise SettingsError(key, f"must be in {bracket}{plain(low)}, {plain(high)}], got {plain(value)}")
    return value


def _hub_url(value: str) -> str:
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as err:
        raise SettingsError("hub_url", f"not a valid URL ({err})") from None
    if parts.scheme not in ("http", "https"):
        raise SettingsError("hub_url", "must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        # never echo the value: it holds a credential
        raise SettingsError("hub_url", "must not contain credentials (use follower_token)")
    if not parts.hostname:
        raise SettingsError("hub_url", "missing host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SettingsError("hub_url", "must be http(s)://host[:port] without path or query")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port is not None else "")


def _public_key(value: str) -> str:
    if not value:
        return ""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError("public_key", "not valid base64") from None
    if len(raw) != 32:
        raise SettingsError("public_key", f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return value


def _items(key: str, value: object) -> list[str]:
    """A comma-separated text (web UI, --set) or a list of texts (a profile file written by hand)."""
    if isinstance(value, (list, tuple)):
        if not all(isinstance(item, str) for item in value):
            raise SettingsError(key, "expected a list of texts")
        text = ",".join(value)
    else:
        text = _text(key, value, MAX_LIST_CHARS)
    if len(text) > MAX_LIST_CHARS:
        raise SettingsError(key, f"too long ({len(text)} chars, max {MAX_LIST_CHARS})")
    return [item.strip() for item in text.split(",") if item.strip()]


def _pairs(value: object) -> tuple[str, ...]:
    pairs: list[str] = []
    for item in _items("pair_filter", value):
        if not _PAIR.match(item):
            raise SettingsError("pair_filter", f"expected pairs like BTC/USDT separated by commas, got {item[:40]!r}")
        if item.upper() not in pairs:
            pairs.append(item.upper())  # exchange symbols are upper case: btc/usdt means BTC/USDT
    return tuple(pairs)


def _quote_mapping(value: object) -> tuple[tuple[str, str], ...]:
    mapping: dict[str, str] = {}
    for item in _items("quote_mapping", value):
        leader, separator, mine = (part.strip().upper() for part in item.partition("="))
        if not separator or not _CURRENCY.match(leader) or not _CURRENCY.match(mine):
            raise SettingsError("quote_mapping", f"expected LEADER=MINE pairs like USDT=USDC, got {item[:40]!r}")
        if leader == mine:
            raise SettingsError("quote_mapping", f"{leader}={mine} maps a currency to itself")
        if leader in mapping:
            raise SettingsError("quote_mapping", f"{leader} is mapped twice")
        mapping[leader] = mine
    if set(mapping) & set(mapping.values()):
        # USDT=USDC,USDC=BUSD would make the result depend on the order the mapping is applied in
        raise SettingsError("quote_mapping", "a currency cannot be both mapped and a mapping target")
    return tuple(mapping.items())


def _choice(key: str, value: object, enum: type[Enum]) -> Enum:
    try:
        return enum(value.strip() if isinstance(value, str) else value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise SettingsError(key, f"expected one of {choices}, got {str(value)[:40]!r}") from None


# ---- public API ---------------------------------------------------------------------------------
def settings_from_config(config: Mapping[str, object]) -> FollowerSettings:
    """Validated settings; unknown keys ignored, null/absent keys take the default."""
    if not isinstance(config, Mapping):
        raise SettingsError("config", f"expected a mapping, got {type(config).__name__}")

    def get(key: str) -> object:
        value = config.get(key)
        return getattr(_DEFAULTS, key) if value is None else value

    strategy = _text("trading_strategy", get("trading_strategy"), 64)
    if strategy and not _STRATEGY_ID.match(strategy):
        raise SettingsError("trading_strategy", "use 1-64 letters, digits, '_' or '-'")

    sizing = _choice("sizing", get("sizing"), SizingMode)
    assert isinstance(sizing, SizingMode)
    pair_filter_mode = _choice("pair_filter_mode", get("pair_filter_mode"), PairFilterMode)
    assert isinstance(pair_filter_mode, PairFilterMode)

    max_open_copies = _int("max_open_copies", get("max_open_copies"))
    if not 0 <= max_open_copies <= MAX_OPEN_COPIES:
        raise SettingsError("max_open_copies", f"must be in [0, {MAX_OPEN_COPIES}] (0 = no limit), "
                                               f"got {max_open_copies}")
    drawdown_reset = _int("drawdown_reset", get("drawdown_reset"))
    if not 0 <= drawdown_reset <= MAX_RESET_COUNTER:
        raise SettingsError("drawdown_reset", f"must be in [0, {MAX_RESET_COUNTER}], got {drawdown_reset}")
    drawdown = _in_range("drawdown_stop_percent", _decimal("drawdown_stop_percent", get("drawdown_stop_percent")),
                         Decimal(0), Decimal(100), low_open=False)
    if drawdown == 100:
        raise SettingsError("drawdown_stop_percent", "must be below 100 (0 = off)")

    max_age = _int("max_signal_age_seconds", get("max_signal_age_seconds"))
    if not 0 <= max_age <= MAX_SIGNAL_AGE_SECONDS:
        raise SettingsError("max_signal_age_seconds",
                            f"must be in [0, {MAX_SIGNAL_AGE_SECONDS}] (0 = no limit), got {max_age}")

    fixed_quote = _decimal("fixed_quote_amount", get("fixed_quote_amount"))
    if sizing is SizingMode.FIXED_QUOTE_AMOUNT and fixed_quote <= 0:
        raise SettingsError("fixed_quote_amount", "must be > 0 when sizing is fixed_quote_amount")

    token = _text("follower_token", get("follower_token"), MAX_TOKEN_CHARS)
    if token and not _TOKEN.match(token):
        raise SettingsError("follower_token", "must be printable ASCII without spaces")

    journal_path = _text("journal_path", get("journal_path"), MAX_PATH_CHARS)
    if "\x00" in journal_path:
        raise SettingsError("journal_path", "must not contain NUL characters")

    return FollowerSettings(
        trading_strategy=strategy,
        max_volume=_in_range("max_volume", _decimal("max_volume", get("max_volume")),
                             Decimal(0), Decimal(100), low_open=True),
        round_to_minimal_size_if_necessary=_bool("round_to_minimal_size_if_necessary",
                                                 get("round_to_minimal_size_if_necessary")),
        sizing=sizing,
        leader_quantity_ratio=_in_range(
            "leader_quantity_ratio", _decimal("leader_quantity_ratio", get("leader_quantity_ratio")),
            Decimal(0), MAX_LEADER_RATIO, low_open=True,
        ),
        fixed_quote_amount=fixed_quote,
        max_signal_age_seconds=max_age,
        max_price_deviation_percent=_in_range(
            "max_price_deviation_percent",
            _decimal("max_price_deviation_percent", get("max_price_deviation_percent")),
            Decimal(0), Decimal(100), low_open=False,
        ),
        hub_url=_hub_url(_text("hub_url", get("hub_url"), MAX_URL_CHARS)),
        follower_token=token,
        public_key=_public_key(_text("public_key", get("public_key"), 128)),
        journal_path=journal_path,
        max_exposure_percent=_in_range(
            "max_exposure_percent", _decimal("max_exposure_percent", get("max_exposure_percent")),
            Decimal(0), MAX_EXPOSURE_PERCENT, low_open=False,
        ),
        max_open_copies=max_open_copies,
        drawdown_stop_percent=drawdown,
        drawdown_reset=drawdown_reset,
        pair_filter=_pairs(get("pair_filter")),
        pair_filter_mode=pair_filter_mode,
        quote_mapping=_quote_mapping(get("quote_mapping")),
    )


def parse_set_option(text: str) -> tuple[str, str]:
    """Split a CLI ``--set KEY=VALUE``; KEY must be one of KEYS. The value is checked later."""
    key, separator, value = text.partition("=")
    key = key.strip()
    if not separator or not key:
        raise SettingsError("--set", "expected KEY=VALUE")  # no echo: the value may be the token
    if key not in KEYS:
        raise SettingsError(key[:64], f"unknown setting; expected one of {', '.join(KEYS)}")
    return key, value.strip()
