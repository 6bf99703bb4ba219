"""Live fan-out of journaled messages to subscribed connections.

The publish path only ever calls `Subscriber.deliver`, which never awaits: each connection
owns a bounded queue drained by its own writer task, so a follower that stops reading can
only fill its own queue; on overflow it is disconnected (1013) and catches up by resume.
`Fanout` is the small interface a broker-backed implementation would replace.
"""
from __future__ import annotations

import logging
from typing import Protocol

logger = logging.getLogger("octobot_signals.hub.fanout")


class Subscriber(Protocol):
    def deliver(self, strategy_id: str, q: int, frame: str) -> None:
        """Queue a prebuilt delivery frame; must not block or raise."""


class Fanout(Protocol):
    def subscribe(self, subscriber: Subscriber, strategy_id: str) -> None: ...

    def unsubscribe_all(self, subscriber: Subscriber) -> None: ...

    def publish(self, strategy_id: str, q: int, frame: str) -> None: ...


class LocalFanout:
    """In-process fan-out: strategy id -> subscribers."""

    def __init__(self) -> None:
        self._subscribers: dict[str, dict[int, Subscriber]] = {}

    def subscribe(self, subscriber: Subscriber, strategy_id: str) -> None:
        self._subscribers.setdefault(strategy_id, {})[id(subscriber)] = subscriber

    def unsubscribe_all(self, subscriber: Subscriber) -> None:
        for strategy_id in list(self._subscribers):
            subs = self._subscribers[strategy_id]
            subs.pop(id(subscriber), None)
            if not subs:
                del self._subscribers[strategy_id]

    def publish(self, strategy_id: str, q: int, frame: str) -> None:
        # Snapshot: a deliver() that overflows unsubscribes while we iterate.
        for subscriber in list(self._subscribers.get(strategy_id, {}).values()):
            try:
                subscriber.deliver(strategy_id, q, frame)
            except Exception:  # one broken subscriber must not stop the others
                logger.exception("fan-out delivery failed for one subscriber")

    def count(self, strategy_id: str | None = None) -> int:
        if strategy_id is not None:
            return len(self._subscribers.get(strategy_id, {}))
        return len({key for subs in self._subscribers.values() for key in subs})
