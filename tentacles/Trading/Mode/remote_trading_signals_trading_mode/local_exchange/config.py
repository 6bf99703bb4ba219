"""What a local exchange starts with: markets, fee tiers, accounts and the seeded history.

Built from a plain dict (the `--config` JSON file of `python -m octobot_signals.local_exchange`, or
`ExchangeConfig.from_dict` in-process); every field has a default so `{}` gives a usable
exchange with btc-usdt and eth-usdt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .decimals import optional_decimal, to_decimal


@dataclass
class MarketSpec:
    """One HollaEx pair (`btc-usdt`) with the constants ccxt reads from `/v2/constants`."""

    name: str
    price: Decimal
    increment_size: Decimal
    increment_price: Decimal
    min_size: Decimal
    max_size: Decimal
    min_price: Decimal
    max_price: Decimal
    trade_size: Decimal  # size of the public trade each price change prints
    max_fill_per_step: Decimal | None = None  # most one resting order fills per price change
    active: bool = True

    @property
    def base(self) -> str:
        return self.name.split("-")[0]

    @property
    def quote(self) -> str:
        return self.name.split("-")[1]

    @classmethod
    def from_dict(cls, name: str, raw: dict[str, Any]) -> MarketSpec:
        defaults = DEFAULT_MARKETS.get(name, DEFAULT_MARKETS["btc-usdt"])
        merged = {**defaults, **raw}

        def num(key: str) -> Decimal:
            return to_decimal(merged[key], key)

        return cls(
            name=name,
            price=num("price"),
            increment_size=num("increment_size"),
            increment_price=num("increment_price"),
            min_size=num("min_size"),
            max_size=num("max_size"),
            min_price=num("min_price"),
            max_price=num("max_price"),
            trade_size=num("trade_size"),
            max_fill_per_step=optional_decimal(merged.get("max_fill_per_step"), "max_fill_per_step"),
            active=bool(merged.get("active", True)),
        )


DEFAULT_MARKETS: dict[str, dict[str, Any]] = {
    "btc-usdt": {
        "price": "50000", "increment_size": "0.0001", "increment_price": "0.1", "min_size": "0.0001",
        "max_size": "100", "min_price": "1", "max_price": "10000000", "trade_size": "0.01",
    },
    "eth-usdt": {
        "price": "3000", "increment_size": "0.001", "increment_price": "0.01", "min_size": "0.001",
        "max_size": "1000", "min_price": "0.1", "max_price": "1000000", "trade_size": "0.1",
    },
}


@dataclass
class TierSpec:
    """Fee percents (HollaEx's unit: 0.1 means 0.1 %) for every pair."""

    maker: Decimal
    taker: Decimal


@dataclass
class AccountSpec:
    name: str
    balances: dict[str, Decimal] = field(default_factory=dict)
    tier: int = 1
    api_keys: list[tuple[str, str]] = field(default_factory=list)  # (api_key, secret); empty: one is made

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AccountSpec:
        keys = [(str(k["api_key"]), str(k["secret"])) for k in raw.get("api_keys", [])]
        balances = {str(c).lower(): to_decimal(v, "balance") for c, v in raw.get("balances", {}).items()}
        return cls(name=str(raw["name"]), balances=balances, tier=int(raw.get("tier", 1)), api_keys=keys)


@dataclass
class ExchangeConfig:
    host: str = "127.0.0.1"
    port: int = 0
    markets: dict[str, MarketSpec] = field(default_factory=dict)
    tiers: dict[int, TierSpec] = field(default_factory=dict)
    accounts: list[AccountSpec] = field(default_factory=list)
    seed: int = 1
    history_hours: int = 200  # seeded candles end now around each market's start price
    history_step_seconds: int = 300  # one seeded trade every step
    history_volatility: Decimal = Decimal("0.002")  # relative move per seeded step
    kit_name: str = "local-hollaex"

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None = None) -> ExchangeConfig:
        raw = dict(raw or {})
        market_raw: dict[str, Any] = raw.get("markets") or {name: {} for name in DEFAULT_MARKETS}
        markets = {name.lower(): MarketSpec.from_dict(name.lower(), spec or {}) for name, spec in market_raw.items()}
        tier_raw: dict[str, Any] = raw.get("tiers") or {"1": {"maker": "0.1", "taker": "0.2"}}
        tiers = {
            int(level): TierSpec(to_decimal(spec["maker"], "maker"), to_decimal(spec["taker"], "taker"))
            for level, spec in tier_raw.items()
        }
        history = raw.get("history", {})
        return cls(
            host=str(raw.get("host", "127.0.0.1")),
            port=int(raw.get("port", 0)),
            markets=markets,
            tiers=tiers,
            accounts=[AccountSpec.from_dict(a) for a in raw.get("accounts", [])],
            seed=int(raw.get("seed", 1)),
            history_hours=int(history.get("hours", 200)),
            history_step_seconds=int(history.get("step_seconds", 300)),
            history_volatility=to_decimal(history.get("volatility", "0.002"), "volatility"),
            kit_name=str(raw.get("kit_name", "local-hollaex")),
        )
