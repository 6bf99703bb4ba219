"""Live fan-out of journaled messages to subscribed connections.

The publish path only ever calls `Subscriber.deliver`, which never awaits: each connection
owns a bounded queue drained by its own writer task, so a follower that stops reading can
only fill its own queue; on overflow it is disconnected (1013) and catches up by resume.
`Fanout` is the small interface a broker-backed implementation would replace. `ReplicaFanout`
(below) is the one for several hub replicas on PostgreSQL: the journal feeds every replica.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

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


class _Cursor:
    __slots__ = ("delivered", "target", "task")

    def __init__(self, delivered: int) -> None:
        self.delivered = delivered  # last q handed to this process's subscribers
        self.target = delivered  # highest q known to be journaled
        self.task: asyncio.Task[None] | None = None  # the catch-up reading (delivered, target] from the journal


ReadAfter = Callable[[str, int, int], Awaitable[list[Any]]]  # store.read_after: JournalEntry list
CATCH_UP_PAGE = 500
CATCH_UP_RETRY_S = 0.5


class ReplicaFanout:
    """Cross-replica fan-out: the journal, not this process, is the source of the live stream.

    Any replica may append to a strategy. Each replica delivers every q to its own subscribers once and
    in order: `publish` (after this replica's own append) hands the frame over at once when it is the
    next q (the common case: no read); otherwise, and on `wake` (another replica's NOTIFY "strategy q",
    or the periodic poll of the head rows), a catch-up task per strategy reads the journal after the
    last delivered q and delivers what follows. A strategy with no subscriber here is only moved
    forward: a follower that subscribes later replays from the journal by `resume` (ws.py), which it
    reads after subscribing, so nothing falls between the two.
    """

    def __init__(self, local: Any, read_after: ReadAfter, stream_id_of: Callable[[str], str | None],
                 positions: dict[str, int]) -> None:
        self.local = local  # LocalFanout (or the MQTT egress's NotifyingFanout): this process's subscribers
        self._read_after = read_after
        self._stream_id_of = stream_id_of
        # strategies created later start at 0 (their first q is 1)
        self._cursors: dict[str, _Cursor] = {sid: _Cursor(q) for sid, q in positions.items()}
        self._closed = False
        # Only a plain LocalFanout may skip strategies nobody follows here: a subclass (the MQTT egress's
        # NotifyingFanout) is told of every q, whoever appended it, so it must get them all.
        self._skip_unfollowed = type(local) is LocalFanout

    # -- the Fanout interface ws.py uses
    def subscribe(self, subscriber: Subscriber, strategy_id: str) -> None:
        self.local.subscribe(subscriber, strategy_id)

    def unsubscribe_all(self, subscriber: Subscriber) -> None:
        self.local.unsubscribe_all(subscriber)

    def count(self, strategy_id: str | None = None) -> int:
        return int(self.local.count(strategy_id))

    def publish(self, strategy_id: str, q: int, frame: str) -> None:
        """This replica journaled q (called under the strategy's publish lock, after COMMIT)."""
        cursor = self._cursor(strategy_id)
        if cursor.task is None and q == cursor.delivered + 1:
            cursor.delivered = q
            self.local.publish(strategy_id, q, frame)
            self.wake(strategy_id, q)  # moves target; restarts a catch-up a failed read left behind
        else:  # another replica's q came first and is not delivered yet: the journal has them all, in order
            self.wake(strategy_id, q)

    def wake(self, strategy_id: str, q: int) -> None:
        """The journal of strategy_id holds q (committed): deliver everything up to it."""
        cursor = self._cursor(strategy_id)
        cursor.target = max(cursor.target, q)
        if cursor.task is None and cursor.delivered < cursor.target:  # also retries a failed catch-up
            self._start(strategy_id, cursor)

    def delivered(self, strategy_id: str) -> int:
        cursor = self._cursors.get(strategy_id)
        return cursor.delivered if cursor else 0

    async def close(self) -> None:
        self._closed = True
        tasks = [c.task for c in self._cursors.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- catch-up
    def _cursor(self, strategy_id: str) -> _Cursor:
        cursor = self._cursors.get(strategy_id)
        if cursor is None:
            cursor = self._cursors[strategy_id] = _Cursor(0)
        return cursor

    def _start(self, strategy_id: str, cursor: _Cursor) -> None:
        if not self._closed:
            cursor.task = asyncio.get_running_loop().create_task(self._catch_up(strategy_id, cursor))

    async def _catch_up(self, strategy_id: str, cursor: _Cursor) -> None:
        from ..core import protocol  # the fan-out stays import-light for the SQLite hub

        try:
            while cursor.delivered < cursor.target and not self._closed:
                stream_id = self._stream_id_of(strategy_id)
                if stream_id is None or (self._skip_unfollowed and self.local.count(strategy_id) == 0):
                    cursor.delivered = cursor.target  # nobody here follows it (yet): see the class docstring
                    return
                entries = await self._read_after(strategy_id, cursor.delivered, CATCH_UP_PAGE)
                if not entries:
                    return  # the head ran ahead of what this connection sees: the next wake retries
                for entry in entries:
                    if entry.q != cursor.delivered + 1:  # never skip: q is gap-free in the journal
                        logger.error("journal of %s: expected q=%d, read q=%d", strategy_id,
                                     cursor.delivered + 1, entry.q)
                        return
                    frame = protocol.delivery_frame(protocol.CHANNEL_IDENTIFIER, entry.feed_message(stream_id))
                    cursor.delivered = entry.q
                    cursor.target = max(cursor.target, entry.q)
                    self.local.publish(strategy_id, entry.q, frame)
        except asyncio.CancelledError:
            raise
        except Exception:  # the store is unreachable: the poll's next wake tries again
            logger.exception("cross-replica catch-up of %s failed at q=%d", strategy_id, cursor.delivered)
            await asyncio.sleep(CATCH_UP_RETRY_S)
        finally:
            cursor.task = None
