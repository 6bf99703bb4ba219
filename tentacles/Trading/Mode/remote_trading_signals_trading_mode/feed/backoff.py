"""Retry pacing of the feed clients' loops. Every wait is drawn with full jitter (uniform from 0 to a
ceiling) so that many bots cut off by the same hub restart do not all retry in the same instant, and
every ceiling is bounded by a cap.

- Backoff: bounded request retries (a history page, a process restart). First retry immediate, then
  the ceiling doubles from `base` up to `cap`.
- ReconnectBackoff: a long-lived link (the follower's feed, the publisher's link). The ceiling follows
  the outage instead of the attempt count: a quarter of the time already waited since the link was
  lost, at least 1 s, at most `cap`. Once the hub is back a client therefore waits at most
  max(1 s, outage / 4): a hub restart of a few seconds costs about a second, not the 4-8 s ceilings
  that doubling from 0.5 s reaches after five or six quick failures, while a hub that stays down
  sees the same retry rate as before once the ceiling reaches the cap (about 32 attempts in its
  first minute down, 70 in ten, against 10 and 46 with doubling from 0.5 s). A hub that answers "no" (HTTP 4xx, a rejected
  subscription, rate_limited) is not hurried: each such refusal doubles a floor from 2 s.
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

STABLE_LINK_S = 5.0  # a greeted link that stayed up this long worked, even if it had nothing to confirm


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


@dataclass
class LinkOutcome:
    """How one connection went, as its client saw it (the input of ReconnectBackoff.link_ended)."""

    welcomed_at: float | None = None  # handshake and the hub's welcome: it is up and speaks the protocol
    worked: bool = False  # it did its job: a confirmed subscription, a settled publish
    refused: bool = False  # the hub said no: HTTP 4xx, a rejected subscription, rate_limited


class ReconnectBackoff:
    """Reconnect pacing of a long-lived link (see module doc). Pure: the caller says how each link ended."""

    def __init__(
        self,
        cap: float = 30.0,
        *,
        first: float = 0.25,
        floor: float = 1.0,
        ratio: float = 0.25,
        rng: random.Random | None = None,
    ) -> None:
        if cap <= 0 or first < 0 or floor <= 0 or not 0 < ratio <= 1:
            raise ValueError("cap and floor must be > 0, first >= 0, 0 < ratio <= 1")
        self.cap = cap
        self.first = min(first, cap)
        self.floor = min(floor, cap)
        self.ratio = ratio
        self.attempts = 0  # retries since the last healthy link (for logs and tests)
        self.waited = 0.0  # seconds handed out since then: the outage as this client lived it
        self.refusals = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The upper bound of the next wait."""
        if self.attempts == 0:
            # a short jitter, not 0: every follower of a dead replica must not hit the others in the same ms
            ceiling = self.first
        else:
            ceiling = max(self.floor, self.ratio * self.waited)
        if self.refusals:
            ceiling = max(ceiling, 2 * self.floor * 2 ** min(self.refusals - 1, 32))
        return min(self.cap, ceiling)

    def next_delay(self) -> float:
        delay = self._rng.uniform(0.0, self.ceiling())
        self.attempts += 1
        self.waited += delay
        return delay

    def healthy(self) -> None:
        """The link that just ended had worked: the next outage starts from scratch."""
        self.attempts = 0
        self.waited = 0.0
        self.refusals = 0

    def refused(self) -> None:
        """The hub answered and said no: hurrying will not change its answer."""
        self.refusals += 1

    def link_ended(self, link: LinkOutcome, now: float) -> None:
        """Account for a connection that just ended (`now` on the clock of link.welcomed_at)."""
        if link.refused:
            self.refused()
        elif link.worked or (link.welcomed_at is not None and now - link.welcomed_at >= STABLE_LINK_S):
            self.healthy()

    async def sleep(self) -> float:
        """Wait next_delay() seconds (cancellable); returns the delay used."""
        delay = self.next_delay()
        if delay > 0:
            await asyncio.sleep(delay)
        return delay
