"""Retry pacing shared by every reconnect / resend loop of the feed clients.

First retry is immediate (a single dropped link usually recovers at once), then the wait
grows exponentially up to a cap, with full jitter so that many bots cut off by the same hub
restart do not all reconnect in the same instant.
"""
from __future__ import annotations

import asyncio
import random


class BackoffExhausted(RuntimeError):
    """Raised by next_delay() once max_attempts retries were handed out."""


class Backoff:
    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        max_attempts: int | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError("base and cap must be > 0")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or None")
        self.base = base
        self.cap = cap
        self.max_attempts = max_attempts
        self.attempts = 0
        self._rng = rng or random.Random()

    @property
    def exhausted(self) -> bool:
        return self.max_attempts is not None and self.attempts >= self.max_attempts

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; raises BackoffExhausted past max_attempts."""
        if self.exhausted:
            raise BackoffExhausted(f"gave up after {self.attempts} attempts")
        attempt = self.attempts
        self.attempts += 1
        if attempt == 0:
            return 0.0
        # min() before the power would overflow for long outages: cap the exponent too.
        ceiling = min(self.cap, self.base * (2 ** min(attempt - 1, 32)))
        return self._rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.attempts = 0

    async def sleep(self) -> float:
        """Wait next_delay() seconds (cancellable); returns the delay used."""
        delay = self.next_delay()
        if delay > 0:
            await asyncio.sleep(delay)
        return delay
