"""Live fan-out of journaled messages to subscribed connections.

The publish path only ever calls `Subscriber.deliver`, which never awaits: each connection
owns a bounded queue (`Outbox`: in frames and in bytes) drained by its own writer task, so a
follower that stops reading can only fill its own queue; on overflow it is disconnected (1013)
and catches up by resume. Every queued byte is also counted once in the process's `SendBudget`,
which paces replays and sheds lagging connections when all of them together hold too much.
`Fanout` is the small interface a broker-backed implementation would replace. `ReplicaFanout`
(below) is the one for several hub replicas on PostgreSQL: the journal feeds every replica.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
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


def frame_cost(frame: str) -> int:
    """Memory a queued frame holds: what the byte budgets count (O(1), no encoding)."""
    return sys.getsizeof(frame)


class _Held:
    __slots__ = ("cost", "frame", "holders")

    def __init__(self, frame: str, cost: int) -> None:
        self.frame = frame  # kept alive: its id() stays unique while counted
        self.cost = cost
        self.holders = 1


class SendBudget:
    """Bytes of outgoing frames queued by all the connections of this process, each frame counted once.

    A live frame is one string shared by every subscriber's queue, so it is counted while any queue holds
    it (keyed by identity, the string kept alive here so the key stays unique); a replayed frame belongs to
    one queue. Replays reserve their next page before reading it, so concurrent replays cannot all read
    into the same free room.
    """

    def __init__(self, max_bytes: int, min_page: int) -> None:
        self.max_bytes = max_bytes
        self.min_page = min_page  # a replay waits for at least this much free room (one whole frame)
        self.used = 0
        self.reserved = 0
        self._held: dict[int, _Held] = {}  # id(frame) -> the frame, its cost, how many queues hold it
        self.room = asyncio.Event()  # set while a replay page fits
        self.room.set()

    def free(self) -> int:
        return self.max_bytes - self.used - self.reserved

    def over(self) -> bool:
        return self.used >= self.max_bytes

    def hold(self, frame: str, cost: int) -> None:
        held = self._held.get(id(frame))
        if held is None:
            self._held[id(frame)] = _Held(frame, cost)
            self.used += cost
            self._update()
        else:
            held.holders += 1

    def release(self, frame: str) -> None:
        held = self._held.get(id(frame))
        if held is None:  # pragma: no cover - every release follows its hold
            return
        held.holders -= 1
        if held.holders == 0:
            del self._held[id(frame)]
            self.used -= held.cost
            self._update()

    def reserve(self, size: int) -> None:
        self.reserved += size
        self._update()

    def unreserve(self, size: int) -> None:
        self.reserved -= size
        self._update()

    def _update(self) -> None:
        if self.free() >= self.min_page:
            self.room.set()
        else:
            self.room.clear()


class Outbox:
    """One connection's outgoing frames: at most `max_frames` queued and `max_bytes` held (queued, being
    sent, or set aside by a replay), every byte also held in the process's `SendBudget`.

    `drained` is set while the queue is under a quarter of both bounds: a replay fills it up to half
    (the other half stays free for live frames, acks and pings) and reads its next page only once drained;
    a connection that is not drained lags, and is the first dropped when the process is over its budget.
    """

    def __init__(self, budget: SendBudget, max_frames: int, max_bytes: int) -> None:
        self.budget = budget
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.queued_bytes = 0  # in the queue or being sent: what the writer drains
        self.aside_bytes = 0  # held for later (live frames buffered during a replay)
        self._frames: deque[str] = deque()
        self._sending: str | None = None
        self._ready = asyncio.Event()  # the queue is not empty
        self.drained = asyncio.Event()
        self.drained.set()

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def replay_frames(self) -> int:
        """Frames a replay page may add now."""
        return max(1, self.max_frames // 2 - len(self._frames))

    @property
    def replay_bytes(self) -> int:
        """Bytes a replay page may add now."""
        return max(1, self.max_bytes // 2 - self.queued_bytes)

    def fits(self, cost: int, shed: bool = False) -> bool:
        """Room for one more frame of `cost`; `shed`: also refuse it when the whole process is over its
        budget and this connection lags (its queue not drained), so laggards go first and resume later."""
        if len(self._frames) >= self.max_frames or self.queued_bytes + self.aside_bytes + cost > self.max_bytes:
            return False
        return not (shed and self.budget.over() and not self.drained.is_set())

    def put(self, frame: str, shed: bool = False) -> bool:
        cost = frame_cost(frame)
        if not self.fits(cost, shed):
            return False
        self.budget.hold(frame, cost)
        self._push(frame, cost)
        return True

    def set_aside(self, frame: str) -> bool:
        """Hold a frame outside the queue (charged to both budgets); later `queue_aside` or `drop_aside` it.
        At most a quarter of the bytes: a replay's half (plus one message) and these always fit together."""
        cost = frame_cost(frame)
        if self.aside_bytes + cost > self.max_bytes // 4 or not self.fits(cost, shed=True):
            return False
        self.budget.hold(frame, cost)
        self.aside_bytes += cost
        return True

    def queue_aside(self, frame: str) -> None:
        cost = frame_cost(frame)
        self.aside_bytes -= cost
        self._push(frame, cost)

    def drop_aside(self, frame: str) -> None:
        self.aside_bytes -= frame_cost(frame)
        self.budget.release(frame)

    def _push(self, frame: str, cost: int) -> None:
        self._frames.append(frame)
        self.queued_bytes += cost
        self._ready.set()
        self._update()

    async def get(self) -> str:
        """The next frame to send; it stays counted until `sent`."""
        while not self._frames:
            self._ready.clear()
            await self._ready.wait()
        frame = self._sending = self._frames.popleft()
        return frame

    def sent(self, frame: str) -> None:
        if frame is self._sending:  # not if clear() already released it
            self._sending = None
            self._release(frame)

    def clear(self) -> None:
        """Release every queued frame and the one being sent (the connection is done)."""
        frames, self._frames = self._frames, deque()
        if self._sending is not None:
            frames.append(self._sending)
            self._sending = None
        for frame in frames:
            self._release(frame)

    def _release(self, frame: str) -> None:
        self.queued_bytes -= frame_cost(frame)
        self.budget.release(frame)
        self._update()

    def _update(self) -> None:
        if len(self._frames) <= self.max_frames // 4 and self.queued_bytes <= self.max_bytes // 4:
            self.drained.set()
        else:
            self.drained.clear()


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
