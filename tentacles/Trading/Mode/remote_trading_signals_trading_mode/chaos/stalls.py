"""The chaos run's stall figures per hub kill: pure bookkeeping fed by the run's watchdog, no I/O.

A follower's stall (see chaos/run.py) is a stretch during which the hub had acked messages the follower had not
printed and it printed nothing. For each hub kill the run keeps a window, from the kill until every follower
not killed meanwhile is level with the acked head again (at least SETTLE_S after the hub came back, at most
MAX_WINDOW_S, or until the next hub kill), and records per follower:
- the longest stall overlapping the window (counted from the kill at the earliest: the outage's cost);
- the longest part of a stall after the hub answered its health check again: what the follower's reconnect
  pacing adds once there is a hub to reconnect to (with replicas, the other replicas were up all along).
Followers killed by the run while the window is open are left out: their stall is the restart of a bot.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SETTLE_S = 1.0  # a window stays open at least this long after the hub came back
MAX_WINDOW_S = 30.0  # after the hub came back: a follower still behind then is reported as is


@dataclass
class KillWindow:
    hub: str
    at: float  # monotonic time of the kill
    down_s: float
    back_at: float | None = None  # when the hub answered its health check again
    closed: bool = False
    excluded: set[str] = field(default_factory=set)  # followers killed while the window was open
    worst: dict[str, float] = field(default_factory=dict)  # follower -> longest stall in the window
    worst_after_back: dict[str, float] = field(default_factory=dict)  # follower -> longest stall after back_at

    def observe(self, name: str, now: float, since: float) -> None:
        if name in self.excluded:
            return
        self.worst[name] = max(self.worst.get(name, 0.0), now - max(since, self.at))
        if self.back_at is not None and now > self.back_at:
            self.worst_after_back[name] = max(self.worst_after_back.get(name, 0.0), now - max(since, self.back_at))

    def as_json(self, started: float) -> dict[str, Any]:
        worst_name = max(self.worst, key=self.worst.__getitem__, default=None)
        after_name = max(self.worst_after_back, key=self.worst_after_back.__getitem__, default=None)
        return {
            "hub": self.hub, "at_s": round(self.at - started, 1), "down_s": self.down_s,
            "back_after_s": None if self.back_at is None else round(self.back_at - self.at, 2),
            "worst_stall_s": round(self.worst[worst_name], 2) if worst_name else 0.0,
            "worst_follower": worst_name,
            "worst_after_back_s": round(self.worst_after_back[after_name], 2) if after_name else 0.0,
            "worst_after_back_follower": after_name,
        }


class HubKillStalls:
    def __init__(self) -> None:
        self.windows: list[KillWindow] = []

    def _open(self) -> list[KillWindow]:
        return [w for w in self.windows if not w.closed]

    def hub_killed(self, hub: str, at: float, down_s: float) -> None:
        for window in self._open():  # one window at a time: the next kill is the next outage's cost
            window.closed = True
        self.windows.append(KillWindow(hub, at, down_s))

    def hub_back(self, hub: str, at: float) -> None:
        for window in self._open():
            if window.hub == hub and window.back_at is None:
                window.back_at = at

    def follower_killed(self, name: str) -> None:
        for window in self._open():
            window.excluded.add(name)

    def observe(self, now: float, stalled_since: dict[str, float], followers: list[str]) -> None:
        """stalled_since: follower -> start of its current stall (absent when level with the head)."""
        for window in self._open():
            for name, since in stalled_since.items():
                window.observe(name, now, since)
            if window.back_at is None:
                continue
            elapsed = now - window.back_at
            level = all(name not in stalled_since or name in window.excluded for name in followers)
            if elapsed >= SETTLE_S and (level or elapsed >= MAX_WINDOW_S):
                window.closed = True

    def as_json(self, started: float) -> list[dict[str, Any]]:
        return [window.as_json(started) for window in self.windows]

    def longest_after_back(self) -> float:
        return round(max((max(w.worst_after_back.values(), default=0.0) for w in self.windows), default=0.0), 2)
