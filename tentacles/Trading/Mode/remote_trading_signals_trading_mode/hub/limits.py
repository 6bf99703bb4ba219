"""Per-token, per-strategy and per-address limits of one hub process (in memory, bounded).

- a follower token keeps at most `connections_per_token` live /cable connections (a leaked token
  cannot open thousands of sockets);
- a strategy accepts at most `publishes_per_minute` publish commands (a runaway publisher cannot flood
  the journal and every follower; the publisher client retries a `rate_limited` nack with backoff);
- an address that failed `failed_auths_per_window` authentications within `failed_auth_window_s` is
  refused for the rest of that window (token guessing), whatever token it sends next;
- a /cable connection holds at most `send_queue_bytes` of outgoing frames (a follower that stops reading
  is dropped with 1013 and resumes), and all of them together `send_queue_total_bytes` (`send_budget`:
  replays wait for room, lagging connections are dropped first).
Pure bookkeeping with an injectable clock; the hub's handlers decide how to answer.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from ..core.protocol import MAX_FRAME_BYTES
from .fanout import SendBudget

MAX_TRACKED_ADDRESSES = 100_000  # oldest addresses forgotten first: memory stays bounded under a scan
# a connection's queue must hold a replay page of whole frames in half and still take live ones
MIN_SEND_QUEUE_BYTES = 4 * MAX_FRAME_BYTES


@dataclass(frozen=True)
class LimitSettings:
    connections_per_token: int = 8
    publishes_per_minute: int = 1200
    failed_auths_per_window: int = 20
    failed_auth_window_s: float = 300.0
    send_queue_bytes: int = 4 * 1024 * 1024  # per /cable connection; at least MIN_SEND_QUEUE_BYTES is used
    send_queue_total_bytes: int = 256 * 1024 * 1024  # every /cable connection of this process together (same floor)


class _Window:
    """Timestamps of events in the last `span` seconds."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.times: deque[float] = deque()

    def prune(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()

    def retry_after(self, now: float) -> float:
        return max(0.0, self.times[0] + self.span - now) if self.times else 0.0


class Limits:
    def __init__(self, settings: LimitSettings | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or LimitSettings()
        self._clock = clock
        self._connections: dict[str, int] = {}
        self._publishes: dict[str, _Window] = {}
        self._failed: OrderedDict[str, _Window] = OrderedDict()
        # bytes queued for sending on /cable across connections; a replay waits for one whole frame of room
        self.send_budget = SendBudget(max(self.settings.send_queue_total_bytes, MIN_SEND_QUEUE_BYTES),
                                      MAX_FRAME_BYTES)

    # ---- follower connections ------------------------------------------------------------
    def open_connection(self, token_id: str) -> bool:
        count = self._connections.get(token_id, 0)
        if count >= self.settings.connections_per_token:
            return False
        self._connections[token_id] = count + 1
        return True

    def close_connection(self, token_id: str) -> None:
        count = self._connections.get(token_id, 0) - 1
        if count > 0:
            self._connections[token_id] = count
        else:
            self._connections.pop(token_id, None)

    # ---- publishes -------------------------------------------------------------------------
    def publish_retry_after(self, strategy_id: str) -> float | None:
        """None: accepted (and counted); else seconds until the strategy may publish again."""
        now = self._clock()
        window = self._publishes.setdefault(strategy_id, _Window(60.0))
        window.prune(now)
        if len(window.times) >= self.settings.publishes_per_minute:
            return window.retry_after(now)
        window.times.append(now)
        return None

    # ---- failed authentications ------------------------------------------------------------
    def auth_retry_after(self, address: str) -> float | None:
        """None: this address may try to authenticate; else seconds until it may again."""
        window = self._failed.get(address)
        if window is None:
            return None
        now = self._clock()
        window.prune(now)
        if not window.times:
            del self._failed[address]
            return None
        if len(window.times) >= self.settings.failed_auths_per_window:
            return window.retry_after(now)
        return None

    def record_failed_auth(self, address: str) -> None:
        window = self._failed.pop(address, None) or _Window(self.settings.failed_auth_window_s)
        window.prune(self._clock())
        window.times.append(self._clock())
        self._failed[address] = window  # most recent last
        while len(self._failed) > MAX_TRACKED_ADDRESSES:
            self._failed.popitem(last=False)


def seconds_text(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))} s"
