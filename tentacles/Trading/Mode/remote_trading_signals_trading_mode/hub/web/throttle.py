"""Login throttling: failed attempts counted per account and per client address, in memory.

In memory on purpose: the window is short (15 minutes), a restart only gives an attacker one more
window, and nothing has to be written to disk for every failed attempt.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
MAX_TRACKED_KEYS = 100_000  # bounds memory under a spray of distinct usernames


@dataclass
class LoginThrottle:
    window_s: float = WINDOW_S
    per_account: int = MAX_FAILURES_PER_ACCOUNT
    per_address: int = MAX_FAILURES_PER_ADDRESS
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, username: str, address: str, now: float | None = None) -> tuple[str, float] | None:
        """(what is throttled: "account" | "address", seconds to wait) or None when an attempt may run."""
        now = time.monotonic() if now is None else now
        for kind, key, limit in (("account", f"u:{username.lower()}", self.per_account),
                                 ("address", f"a:{address}", self.per_address)):
            times = self._recent(key, now)
            if len(times) >= limit:
                return kind, times[0] + self.window_s - now
        return None

    def failed(self, username: str, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) > MAX_TRACKED_KEYS:
            self._failures.clear()
        for key in (f"u:{username.lower()}", f"a:{address}"):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username.lower()}", None)
