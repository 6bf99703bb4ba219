"""Login throttling, in memory: an attempt is reserved (counted as failed) before its secret is checked.

Counted over a sliding window (15 minutes), per key:
- account@address: 5 failures, then that address is refused for that account. The key holds the address
  on purpose: usernames are public, so an account-wide lockout would let anyone lock the owner out;
- address: 20 failures, then that address is refused for every account and for the operator login;
- account (from every address): past 5 failures, each attempt on it waits `slow_down_s` before its
  password is checked. A delay a distributed attacker can impose on the owner, never a refusal.
The operator login has no account key: the admin token has 256 bits, only the address limit applies.

Reserving first matters: the check is async (argon2 runs off the loop), so a count made after it lets
every concurrent guess through before the first failure is recorded.

In memory on purpose: the window is short, a restart only gives an attacker one more window, and nothing
has to be written to disk for every failed attempt.
"""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

WINDOW_S = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 5  # per account and address
MAX_FAILURES_PER_ADDRESS = 20
SLOW_DOWN_AFTER = 5  # failures on one account, from every address
SLOW_DOWN_S = 1.0
MAX_TRACKED_KEYS = 100_000  # the least recently used keys are forgotten first: memory stays bounded


class Refusal(NamedTuple):
    kind: Literal["account", "address"]  # what is throttled: this account from this address, or the address
    retry_after_s: float


@dataclass(frozen=True)
class Attempt:
    """A reserved attempt: it stays counted as a failure unless LoginThrottle.succeeded() releases it."""

    keys: tuple[str, ...]
    at: float
    delay_s: float  # wait this long before checking the secret
    pair_key: str | None  # account@address, forgotten on success


def _account_key(username: str) -> str:
    return f"u:{username.lower()}"


def _pair_key(username: str, address: str) -> str:
    return f"p:{username.lower()}@{address}"


def _address_key(address: str) -> str:
    return f"a:{address}"


@dataclass
class LoginThrottle:
    window_s: float = WINDOW_S
    per_account: int = MAX_FAILURES_PER_ACCOUNT
    per_address: int = MAX_FAILURES_PER_ADDRESS
    slow_down_after: int = SLOW_DOWN_AFTER
    slow_down_s: float = SLOW_DOWN_S
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def _recent(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return len(times)

    def _wait(self, key: str, now: float) -> float:
        return self._failures[key][0] + self.window_s - now

    def begin(self, username: str | None, address: str, now: float | None = None) -> Attempt | Refusal:
        """Reserve one attempt (username None: the operator login), or say why it may not run.

        No await between the check and the reservation: concurrent requests see each other's attempts.
        A refused attempt is not counted, so that waiting out the window is enough.
        """
        now = time.monotonic() if now is None else now
        limits: list[tuple[Literal["account", "address"], str, int]] = [
            ("address", _address_key(address), self.per_address)]
        pair_key = None
        if username is not None:
            pair_key = _pair_key(username, address)
            limits.insert(0, ("account", pair_key, self.per_account))
        for kind, key, limit in limits:
            if self._recent(key, now) >= limit:
                return Refusal(kind, self._wait(key, now))
        keys = [key for _, key, _ in limits]
        delay_s = 0.0
        if username is not None:
            account_key = _account_key(username)
            if self._recent(account_key, now) >= self.slow_down_after:
                delay_s = self.slow_down_s
            keys.append(account_key)
        for key in keys:
            self._record(key, now)
        return Attempt(tuple(keys), now, delay_s, pair_key)

    def _record(self, key: str, now: float) -> None:
        self._failures.setdefault(key, deque()).append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_TRACKED_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, attempt: Attempt) -> None:
        """The secret was right: release the reservation and forgive this address's failures on the account.

        The account-wide failures stay: they are the other addresses' (the slow-down goes on while they do).
        """
        for key in attempt.keys:
            times = self._failures.get(key)
            if times is not None and attempt.at in times:
                times.remove(attempt.at)
                if not times:
                    del self._failures[key]
        if attempt.pair_key is not None:
            self._failures.pop(attempt.pair_key, None)
