"""OctoBot profiles that follow a strategy: the hub's profile zip and the packaged profile.

Pure code (stdlib json/zipfile, no I/O except `write_profile_dir`). What OctoBot 2.1.1 expects:
- `profile.json` validates against `octobot/config/profile_schema.json` (exchanges, crypto-currencies,
  trading, trader, trader-simulator are required; exchange entries only take `enabled` and
  `exchange-type`);
- `tentacles_config.json` is the profile's whole activation list (`{"tentacle_activation": {<type>:
  {<class>: bool}}}`): anything it does not name is off, so it names what a standard bot runs
  (web interface included, see standard_activation), our mode on and every other trading mode off;
- `specific_config/<Class>.json` is the trading mode's config, from `mode_config` (the same builder as
  the tentacle's default config file): every setting written explicitly, plus OctoBot's own keys.
Members sit at the archive root: OctoBot extracts the zip straight into `user/profiles/<name>/`.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import standard_activation
from .mode_config import MODE_CLASS, ModeConfigError
from .mode_config import mode_config as _mode_config

# Not "copy_trading": OctoBot's default tentacles ship a read-only profile of that name, and OctoBot
# never overwrites an existing profile, so ours would silently never be installed.
PACKAGED_PROFILE_NAME = "octobot_signals_copy_trading"
PACKAGED_PROFILE_ID = PACKAGED_PROFILE_NAME  # OctoBot selects profiles by id: keep it the folder name
DEFAULT_PROFILE_NAME = "default"
DEFAULT_PROFILE_ID = "default"
DEFAULT_STARTING_QUOTE = Decimal(1000)
# Simulated fees in percent (OctoBot's trader-simulator unit): a typical spot taker/maker fee.
DEFAULT_FEES_PERCENT = Decimal("0.1")

_STRATEGY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ASSET = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_EXCHANGE = re.compile(r"^[a-z0-9_]{1,64}$")
# OctoBot renames an imported profile's folder after its name: no path separators or odd characters.
_PROFILE_NAME = re.compile(r"^(?=.*[A-Za-z0-9])[A-Za-z0-9 _.-]{1,100}$")  # never just dots ("..")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9 _.-]+")
_EXCHANGE_TYPES = ("spot", "future")
MAX_PAIRS = 200
# Fixed member timestamp: the same inputs give byte-identical zips (cacheable, testable).
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)


class ProfileError(ValueError):
    """The strategy or a setting cannot make a valid profile; the message names the field."""


def split_symbol(symbol: str) -> tuple[str, str]:
    """'BTC/USDT' -> ('BTC', 'USDT'); 'BTC/USDT:USDT' (futures) -> ('BTC', 'USDT')."""
    base, slash, rest = symbol.partition("/")
    quote = rest.partition(":")[0]
    if not slash or not _ASSET.match(base) or not _ASSET.match(quote):
        raise ProfileError(f"pairs: {symbol[:80]!r} is not a BASE/QUOTE[:SETTLE] symbol")
    return base, quote


def _check_strategy(strategy: Mapping[str, Any]) -> tuple[str, str, list[str], str, str]:
    if not isinstance(strategy, Mapping):
        raise ProfileError(f"strategy: expected an object, got {type(strategy).__name__}")
    strategy_id = strategy.get("id")
    if not isinstance(strategy_id, str) or not _STRATEGY_ID.match(strategy_id):
        raise ProfileError("id: expected 1-64 letters, digits, '_' or '-'")
    name = strategy.get("name", strategy_id)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ProfileError("name: expected a non-empty text of at most 200 characters")
    pairs = strategy.get("pairs")
    if not isinstance(pairs, list) or not pairs or len(pairs) > MAX_PAIRS:
        raise ProfileError(f"pairs: expected a list of 1 to {MAX_PAIRS} symbols")
    if not all(isinstance(pair, str) for pair in pairs):
        raise ProfileError("pairs: every symbol must be a string")
    if len(set(pairs)) != len(pairs):
        raise ProfileError("pairs: duplicate symbol")
    for pair in pairs:
        split_symbol(pair)
    exchange_type = strategy.get("exchange_type", "spot")
    if exchange_type not in _EXCHANGE_TYPES:
        raise ProfileError(f"exchange_type: expected one of {', '.join(_EXCHANGE_TYPES)}")
    if exchange_type == "future" and not all(":" in pair for pair in pairs):
        raise ProfileError("pairs: futures symbols carry their settlement asset, e.g. BTC/USDT:USDT")
    exchange = strategy.get("exchange")
    if not isinstance(exchange, str) or not _EXCHANGE.match(exchange):
        raise ProfileError("exchange: expected an OctoBot exchange name such as 'binance'")
    return strategy_id, name.strip(), list(pairs), exchange_type, exchange


def _json_number(value: Decimal | int | str, field_name: str) -> int | float:
    """JSON numbers for OctoBot's config (it reads them as float anyway); whole values stay ints."""
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise ProfileError(f"{field_name}: not a number") from None
    if not number.is_finite() or number < 0:
        raise ProfileError(f"{field_name}: must be a finite number >= 0")
    return int(number) if number == number.to_integral_value() else float(number)


def profile_config(strategy: Mapping[str, Any], *, profile_name: str, profile_id: str,
                   description: str, starting_portfolio: Mapping[str, Decimal | int | str] | None = None,
                   ) -> dict[str, Any]:
    """The `profile.json` document: simulated trading on, real trading off."""
    _, _, pairs, exchange_type, exchange = _check_strategy(strategy)
    reference_market = split_symbol(pairs[0])[1]
    currencies: dict[str, dict[str, Any]] = {}
    for pair in pairs:  # OctoBot groups pairs by crypto-currency: one entry per base asset
        base = split_symbol(pair)[0]
        currencies.setdefault(base, {"enabled": True, "pairs": []})["pairs"].append(pair)
    portfolio = starting_portfolio if starting_portfolio is not None else {reference_market: DEFAULT_STARTING_QUOTE}
    if not isinstance(portfolio, Mapping) or not portfolio:
        raise ProfileError("starting_portfolio: expected a non-empty ASSET -> amount mapping")
    for asset in portfolio:
        if not isinstance(asset, str) or not _ASSET.match(asset):
            raise ProfileError(f"starting_portfolio: {str(asset)[:40]!r} is not an asset name")
    fee = _json_number(DEFAULT_FEES_PERCENT, "fees")
    return {
        "profile": {
            "id": profile_id,
            "name": profile_name,
            "description": description,
            "avatar": "default_profile.png",
            "origin_url": None,
            "imported": False,
            "read_only": False,
            "complexity": 2,
            "risk": 2,
            "extra_backtesting_time_frames": [],
        },
        "config": {
            "crypto-currencies": currencies,
            "exchanges": {exchange: {"enabled": True, "exchange-type": exchange_type}},
            "trading": {"reference-market": reference_market, "risk": 0.5},
            "trader": {"enabled": False, "load-trade-history": False},
            "trader-simulator": {
                "enabled": True,
                "fees": {"maker": fee, "taker": fee},
                "starting-portfolio": {asset: _json_number(amount, f"starting_portfolio.{asset}")
                                       for asset, amount in portfolio.items()},
            },
        },
    }


def tentacles_config() -> dict[str, Any]:
    """`tentacles_config.json`: what a standard bot runs, the copy-trading mode as its only trading mode."""
    activation: dict[str, dict[str, bool]] = {
        tentacle_type: dict.fromkeys(names, True) for tentacle_type, names in standard_activation.STANDARD_ACTIVE.items()
    }
    for tentacle_type, names in standard_activation.OWN_ACTIVE.items():
        activation.setdefault(tentacle_type, {}).update(dict.fromkeys(names, True))
    trading = activation.setdefault("Trading", {})
    trading.update(dict.fromkeys(standard_activation.OTHER_TRADING_MODES, False))
    trading[MODE_CLASS] = True
    return {"tentacle_activation": activation}


def mode_config(**overrides: Any) -> dict[str, Any]:
    """`specific_config/RemoteTradingSignalsTradingMode.json` (see core.mode_config)."""
    try:
        return _mode_config(**overrides)
    except ModeConfigError as err:
        raise ProfileError(str(err)) from None


def build_profile_files(strategy: Mapping[str, Any], *, settings: Mapping[str, Any], profile_name: str,
                        profile_id: str, description: str,
                        starting_portfolio: Mapping[str, Decimal | int | str] | None = None) -> dict[str, bytes]:
    """Relative path -> file content for one profile folder."""
    if not isinstance(profile_name, str) or not _PROFILE_NAME.match(profile_name):
        raise ProfileError("profile_name: use 1-100 letters, digits, spaces, '.', '_' or '-' (at least one "
                           "letter or digit)")
    documents = {
        "profile.json": profile_config(strategy, profile_name=profile_name, profile_id=profile_id,
                                       description=description, starting_portfolio=starting_portfolio),
        "tentacles_config.json": tentacles_config(),
        f"specific_config/{MODE_CLASS}.json": mode_config(**settings),
    }
    return {path: (json.dumps(doc, indent=4, sort_keys=False) + "\n").encode()
            for path, doc in documents.items()}


def default_profile_name(name: str, strategy_id: str) -> str:
    """'Copy <name>' reduced to the characters allowed in profile names."""
    cleaned = " ".join(_UNSAFE_NAME_CHARS.sub(" ", f"Copy {name}").split())[:100].strip()
    return cleaned if cleaned != "Copy" else f"Copy {strategy_id}"


def build_profile_zip(strategy: Mapping[str, Any], hub_url: str, follower_token: str, *,
                      profile_name: str | None = None) -> bytes:
    """The hub's personal profile zip: follows `strategy` on `hub_url` with `follower_token`.

    `strategy`: {id, name, pairs, exchange_type, exchange, public_key?}. Raises ProfileError
    (message names the field, never the token) on unusable input.
    """
    strategy_id, name, *_ = _check_strategy(strategy)
    if not hub_url:
        raise ProfileError("hub_url: required")
    if not isinstance(follower_token, str) or not follower_token:
        raise ProfileError("follower_token: required")
    public_key = strategy.get("public_key") or ""
    files = build_profile_files(
        strategy,
        settings={"trading_strategy": strategy_id, "hub_url": hub_url, "follower_token": follower_token,
                  "public_key": public_key},
        profile_name=profile_name or default_profile_name(name, strategy_id),
        profile_id=f"octobot-signals-{strategy_id}",
        description=f"Copies the '{name}' strategy ({strategy_id}) from its hub, sized to this bot's portfolio.",
    )
    return zip_files(files)


def zip_files(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[path])
    return buffer.getvalue()


def write_profile_dir(files: Mapping[str, bytes], target: Path) -> Path:
    for relative, content in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return target


PACKAGED_STRATEGY: dict[str, Any] = {
    "id": "strategy-id", "name": "a strategy", "pairs": ["BTC/USDT"], "exchange_type": "spot",
    "exchange": "binance",
}


def build_package_profile_dir(target: Path, *, name: str = PACKAGED_PROFILE_NAME,
                              strategy: Mapping[str, Any] | None = None,
                              starting_portfolio: Mapping[str, Decimal | int | str] | None = None) -> Path:
    """Writes a packaged profile folder at `target` (no hub URL, no token: set them in the web UI).

    name PACKAGED_PROFILE_NAME: the profile users select then configure; "default": the profile a fresh
    OctoBot selects on first start (it must exist in the package), same content, following nothing.
    """
    strategy = strategy or PACKAGED_STRATEGY
    is_default = name == DEFAULT_PROFILE_NAME
    files = build_profile_files(
        strategy,
        settings={},  # trading_strategy empty: the mode follows nothing until the user sets it
        profile_name="Default" if is_default else "Copy trading - octobot-signals",
        profile_id=DEFAULT_PROFILE_ID if is_default else PACKAGED_PROFILE_ID,
        description=("Copy trading (octobot-signals): set the strategy id, hub URL and follower token of "
                     "RemoteTradingSignalsTradingMode, or import a profile link from your hub."),
        starting_portfolio=starting_portfolio,
    )
    return write_profile_dir(files, target)
