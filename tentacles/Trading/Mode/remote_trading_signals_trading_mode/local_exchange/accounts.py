"""Accounts, their balances and their API keys.

A balance per coin is a total and the part locked by open orders; HollaEx reports them as
`<coin>_balance` (total) and `<coin>_available` (total minus locked), which is what ccxt's
parse_balance reads as `total` and `free`. Secrets live here only: nothing here logs them and
the control API shows a secret once, when the key is created.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .decimals import ZERO, iso
from .errors import INSUFFICIENT_BALANCE, ApiError, bad_request


@dataclass
class Holding:
    total: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.total - self.locked


@dataclass
class Account:
    id: int
    name: str
    tier: int = 1
    holdings: dict[str, Holding] = field(default_factory=dict)
    updated_at: float = field(default_factory=time.time)

    def holding(self, coin: str) -> Holding:
        return self.holdings.setdefault(coin, Holding())

    def touch(self) -> None:
        self.updated_at = time.time()

    def require(self, coin: str, amount: Decimal) -> None:
        if self.holding(coin).available < amount:
            raise ApiError(400, INSUFFICIENT_BALANCE)

    def lock(self, coin: str, amount: Decimal) -> None:
        self.require(coin, amount)
        self.holding(coin).locked += amount
        self.touch()

    def unlock(self, coin: str, amount: Decimal) -> None:
        self.holding(coin).locked -= amount
        self.touch()

    def change(self, coin: str, amount: Decimal, unlock: Decimal = ZERO) -> None:
        """Add `amount` (negative to spend) to the total, releasing `unlock` of the locked part."""
        holding = self.holding(coin)
        holding.locked -= unlock
        holding.total += amount
        self.touch()

    def balance_json(self, coins: Iterable[str]) -> dict[str, Any]:
        """GET /v2/user/balance."""
        out: dict[str, Any] = {"user_id": self.id, "updated_at": iso(self.updated_at)}
        for coin in sorted(set(coins) | set(self.holdings)):
            holding = self.holding(coin)
            out[f"{coin}_balance"] = holding.total
            out[f"{coin}_pending"] = ZERO
            out[f"{coin}_available"] = holding.available
        return out

    def user_json(self) -> dict[str, Any]:
        """GET /v2/user (what a bot may read to check who it is)."""
        return {
            "id": self.id,
            "email": f"{self.name}@local.exchange",
            "username": self.name,
            "verification_level": self.tier,
            "activated": True,
            "created_at": iso(self.updated_at),
        }

    def control_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "tier": self.tier,
            "balances": {
                coin: {"total": h.total, "available": h.available, "locked": h.locked}
                for coin, h in sorted(self.holdings.items())
            },
        }


@dataclass
class ApiKey:
    key: str
    secret: str
    account_id: int
    active: bool = True


class Accounts:
    """Every account by id and name, and every API key by key."""

    def __init__(self) -> None:
        self.by_id: dict[int, Account] = {}
        self.keys: dict[str, ApiKey] = {}

    def create(self, name: str, balances: dict[str, Decimal] | None = None, tier: int = 1) -> Account:
        if not name or self.find(name) is not None:
            raise bad_request(f"Account name missing or taken: {name!r}")
        account = Account(id=len(self.by_id) + 1, name=name, tier=tier)
        for coin, total in (balances or {}).items():
            account.holding(coin.lower()).total = total
        self.by_id[account.id] = account
        return account

    def find(self, name_or_id: str | int) -> Account | None:
        if isinstance(name_or_id, int):
            return self.by_id.get(name_or_id)
        return next((a for a in self.by_id.values() if a.name == name_or_id), None)

    def get(self, name_or_id: str | int) -> Account:
        account = self.find(name_or_id)
        if account is None:
            raise ApiError(404, f"Account not found: {name_or_id!r}")
        return account

    def create_key(self, account: Account, key: str | None = None, secret: str | None = None) -> ApiKey:
        key = key or secrets.token_hex(20)
        if key in self.keys:
            raise bad_request("API key already exists")
        api_key = ApiKey(key=key, secret=secret or secrets.token_hex(32), account_id=account.id)
        self.keys[key] = api_key
        return api_key

    def keys_of(self, account: Account) -> list[ApiKey]:
        return [k for k in self.keys.values() if k.account_id == account.id]

    def set_balances(self, account: Account, balances: dict[str, Decimal]) -> None:
        """Set totals; a total below what open orders lock is refused."""
        balances = {coin.lower(): total for coin, total in balances.items()}
        for coin, total in balances.items():
            if total < account.holding(coin).locked:
                raise bad_request(f"{coin} total {total} is below the locked {account.holding(coin).locked}")
        for coin, total in balances.items():
            account.holding(coin).total = total
        account.touch()
