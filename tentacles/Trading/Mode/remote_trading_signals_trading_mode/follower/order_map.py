"""Leader order id -> my order id, persisted next to the bot's data so a restart finds my copies.

Also remembers the last message ids (`u`) applied, so a message seen twice (replay after a
reconnect, a restart mid-bundle) never yields a second copy, and the creates in flight
(write-ahead), so a crash between the exchange taking an order and this map recording it never
yields a second copy either.

The map is an in-memory cache over a small SQLite file: `save()` writes only what changed since
the last save, in one transaction on a dedicated thread (never on the event loop). Every lookup
(by leader id, by my order id) is a dict access, and closed links are forgotten oldest first
beyond a bound, so neither the cost of a message nor the file grows with the bot's history.
"""
from __future__ import annotations

import asyncio
import collections
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ..feed import durable_sqlite, local_writer

_MAX_REMEMBERED_MESSAGES = 5000
_MAX_REMEMBERED_CLOSED = 5000
LAZY_SAVE_SECONDS = 0.05  # end-of-message changes reach the file this soon at the latest
_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (leader_id TEXT PRIMARY KEY, local_order_id TEXT NOT NULL, symbol TEXT NOT NULL,
    leader_quantity TEXT NOT NULL, local_quantity TEXT NOT NULL, closed INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS links_by_local_order_id ON links (local_order_id);
CREATE INDEX IF NOT EXISTS links_by_seq ON links (seq);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applied (u TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending (leader_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL,
    order_type TEXT NOT NULL, price TEXT NOT NULL, quantity TEXT NOT NULL DEFAULT '');
"""


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    """Maps written by an older version have no pending.quantity: add it (their entries keep "")."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(pending)")}
    if "quantity" not in columns:
        connection.execute("ALTER TABLE pending ADD COLUMN quantity TEXT NOT NULL DEFAULT ''")


class OrderMapStorageError(RuntimeError):
    """The map could not record a change: whatever that change protects must not go ahead."""


class OrderMapClosed(OrderMapStorageError):
    pass


class OrderMapWriteError(OrderMapStorageError):
    pass


@dataclass
class OrderLink:
    local_order_id: str
    symbol: str
    leader_quantity: str  # decimal string: what the leader sized this order at
    local_quantity: str   # decimal string: what I placed
    closed: bool = False  # cancelled / gone: kept so the same leader order is never copied again


@dataclass
class PendingCreate:
    """Written durably just before an order is sent: after a crash in between, the restart can tell."""

    symbol: str
    side: str
    order_type: str
    price: str  # decimal string
    quantity: str = ""  # decimal string; "" in entries written before it was recorded


@dataclass
class OrderMap:
    """The map; `path` None keeps it in memory only (backtests, throwaway harnesses)."""

    path: Path | None = None
    links: dict[str, OrderLink] = field(default_factory=dict)
    applied_messages: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)
    pending: dict[str, PendingCreate] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)  # small durable values (the drawdown stop's peak)
    load_warning: str | None = None
    _by_local: dict[str, str] = field(default_factory=dict, repr=False)  # my order id -> leader id
    _closed: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict, repr=False)
    _dirty_links: set[str] = field(default_factory=set, repr=False)
    _dirty_state: set[str] = field(default_factory=set, repr=False)
    _dirty_applied: set[str] = field(default_factory=set, repr=False)
    _dirty_pending: set[str] = field(default_factory=set, repr=False)
    _seq: int = 0
    _durable: bool = True  # the connection's synchronous setting (FULL)
    _connection: sqlite3.Connection | None = field(default=None, repr=False)
    _writer: local_writer.LocalWriter = field(default_factory=local_writer.shared, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _deferred_error: OrderMapWriteError | None = field(default=None, repr=False)  # a save_soon() that failed
    _lazy_timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    _lazy_loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)  # where add_lazy was done

    @classmethod
    def load(cls, path: Path | None) -> OrderMap:
        order_map = cls(path=path)
        if path is None:
            return order_map
        try:
            order_map._open()
        except sqlite3.DatabaseError as err:
            # a corrupt map must not stop the bot: keep the file aside and start empty
            order_map.close_storage()
            aside = path.with_suffix(path.suffix + ".corrupt")
            os.replace(path, aside)
            order_map = cls(path=path)
            order_map._open()
            order_map.load_warning = f"order map {path} unreadable ({err}); moved to {aside}, starting empty"
        return order_map

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # used from one worker thread at a time (save) or before any save (load)
        connection = durable_sqlite.connect(self.path, _SCHEMA)
        self._connection = connection
        for leader_id, local_id, symbol, leader_qty, local_qty, closed, seq in connection.execute(
                "SELECT * FROM links ORDER BY seq"):
            self.links[leader_id] = OrderLink(local_id, symbol, leader_qty, local_qty, bool(closed))
            self._by_local[local_id] = leader_id
            if closed:
                self._closed[leader_id] = None  # oldest closed first: the order pruning forgets them in
            self._seq = max(self._seq, seq)
        for (u,) in connection.execute("SELECT u FROM applied ORDER BY seq"):
            self.applied_messages[u] = None
        _add_missing_columns(connection)
        for leader_id, *rest in connection.execute(
                "SELECT leader_id, symbol, side, order_type, price, quantity FROM pending"):
            self.pending[leader_id] = PendingCreate(*rest)
        self.state.update(connection.execute("SELECT key, value FROM state"))
        self._seq = max([self._seq, *(s for (s,) in connection.execute("SELECT MAX(seq) FROM applied") if s)])

    # ---- queries ----------------------------------------------------------------------------
    def local_id(self, leader_order_id: str) -> str | None:
        link = self.links.get(leader_order_id)
        return link.local_order_id if link else None

    def leader_id(self, local_order_id: str) -> str | None:
        """The leader order my order copies, or None when this mode did not place it (or forgot it)."""
        return self._by_local.get(local_order_id)

    def was_applied(self, message_id: str) -> bool:
        return message_id in self.applied_messages

    def open_link_count(self) -> int:
        return len(self.links) - len(self._closed)

    def open_links(self) -> list[tuple[str, OrderLink]]:
        return [(leader_id, link) for leader_id, link in self.links.items() if not link.closed]

    # ---- changes (kept in memory until save) ---------------------------------------------------
    def link(self, leader_order_id: str, link: OrderLink) -> None:
        old = self.links.get(leader_order_id)
        if old is not None:
            self._forget(leader_order_id, old)
        self.links[leader_order_id] = link
        self._by_local[link.local_order_id] = leader_order_id
        if link.closed:
            self._closed[leader_order_id] = None
        self._dirty_links.add(leader_order_id)
        self.clear_pending(leader_order_id)

    def _forget(self, leader_order_id: str, link: OrderLink) -> None:
        if self._by_local.get(link.local_order_id) == leader_order_id:
            del self._by_local[link.local_order_id]
        self._closed.pop(leader_order_id, None)

    def update_quantities(self, leader_order_id: str, local_quantity: str, leader_quantity: str | None) -> None:
        link = self.links.get(leader_order_id)
        if link is not None:
            link.local_quantity = local_quantity
            if leader_quantity is not None:
                link.leader_quantity = leader_quantity
            self._dirty_links.add(leader_order_id)

    def close(self, leader_order_id: str) -> None:
        link = self.links.get(leader_order_id)
        if link is not None and not link.closed:
            link.closed = True
            self._closed[leader_order_id] = None
            self._dirty_links.add(leader_order_id)
        # a closed link only stops the same leader order from being copied again: recent ones are enough
        while len(self._closed) > _MAX_REMEMBERED_CLOSED:
            forgotten, _ = self._closed.popitem(last=False)  # oldest closed first
            self._forget(forgotten, self.links.pop(forgotten))
            self._dirty_links.add(forgotten)

    def set_state(self, key: str, value: str) -> None:
        if self.state.get(key) != value:
            self.state[key] = value
            self._dirty_state.add(key)

    def mark_applied(self, message_id: str) -> None:
        self.applied_messages[message_id] = None
        self._dirty_applied.add(message_id)
        while len(self.applied_messages) > _MAX_REMEMBERED_MESSAGES:
            forgotten, _ = self.applied_messages.popitem(last=False)
            self._dirty_applied.add(forgotten)

    def mark_pending(self, leader_order_id: str, pending: PendingCreate) -> None:
        self.pending[leader_order_id] = pending
        self._dirty_pending.add(leader_order_id)

    def clear_pending(self, leader_order_id: str) -> None:
        if self.pending.pop(leader_order_id, None) is not None:
            self._dirty_pending.add(leader_order_id)

    # ---- persistence ----------------------------------------------------------------------------
    async def save(self) -> None:
        """Write what changed since the last save, off the event loop, and wait until it is durable.

        The commit is fsynced: it survives a power loss, and (the WAL being append-only) so does every
        earlier commit `save_soon()` made without an fsync.

        Raises OrderMapClosed once the storage is closed (a write-ahead entry that cannot be written
        must stop the order it protects) and OrderMapWriteError when this write, or an earlier
        `save_soon()`, failed; in both cases the changes stay pending for the next save.
        """
        if self.path is None:  # in memory only: there is nothing to write to
            self._drop_changes()
            return
        async with self._lock:
            if self._connection is None:
                raise OrderMapClosed(f"order map {self.path} is closed: this change cannot be recorded")
            self._raise_deferred_error()
            taken = self._take_dirty()
            if taken is None:
                return
            statements, dirty = taken
            try:
                await self._writer.run(self._write, statements, True)
            except BaseException as err:
                self._restore_dirty(dirty)
                if isinstance(err, sqlite3.Error):
                    raise OrderMapWriteError(f"order map {self.path}: write failed: {err}") from err
                raise

    def save_soon(self) -> None:
        """Write what changed later, without waiting and without a thread round trip now (end of a message).

        The changes stay in memory as the shared writer's lazy work: the next job queued on it (this
        map's next write-ahead entry, the feed's progress record for this message, a close) takes them
        first, and a timer takes them after LAZY_SAVE_SECONDS at the latest. So a message is never
        recorded as done ahead of its changes; not fsynced (it survives a kill -9, WAL mode). A failure keeps
        the changes pending and is raised by the next `save()` or `flush()`, so the next order's
        write-ahead entry fails and that order is not placed.
        """
        if self.path is None:
            self._drop_changes()
            return
        if self._connection is None:
            raise OrderMapClosed(f"order map {self.path} is closed: this change cannot be recorded")
        loop = asyncio.get_running_loop()
        if self._lazy_loop is not loop:  # registered once per event loop (until close_storage)
            self._writer.add_lazy(self._queue_changes)
            self._lazy_loop = loop
        if self._lazy_timer is None:
            self._lazy_timer = loop.call_later(LAZY_SAVE_SECONDS, self._on_lazy_timer)

    def _on_lazy_timer(self) -> None:
        self._lazy_timer = None
        self._queue_changes()

    def _queue_changes(self) -> None:
        """Hand what changed to the writer thread without waiting (the writer calls this before its jobs)."""
        if self._connection is None:
            return
        taken = self._take_dirty()
        if taken is None:
            return
        statements, dirty = taken

        def failed(err: BaseException) -> None:
            self._restore_dirty(dirty)
            self._deferred_error = OrderMapWriteError(f"order map {self.path}: write failed: {err}")

        self._writer.submit(self._write, statements, False, on_error=failed)

    async def flush(self) -> None:
        """Wait until every change handed over is written; raise a failed `save_soon()`."""
        if self.path is not None:
            await self._writer.run(int)  # queues the lazy changes first; FIFO: done once they are
        self._raise_deferred_error()

    def _raise_deferred_error(self) -> None:
        if self._deferred_error is not None:
            error, self._deferred_error = self._deferred_error, None
            raise error

    def _drop_changes(self) -> None:
        self._dirty_links.clear(), self._dirty_applied.clear(), self._dirty_pending.clear()
        self._dirty_state.clear()

    def _take_dirty(self) -> tuple[list[tuple[str, tuple]], tuple[set[str], ...]] | None:
        """The statements for what changed, and the dirty sets they came from (moved aside, so changes
        made while they are written start new sets, and the taken ones can come back if the write fails)."""
        statements = self._take_changes()
        if not statements:
            return None
        taken = self._dirty_links, self._dirty_applied, self._dirty_pending, self._dirty_state
        self._dirty_links, self._dirty_applied, self._dirty_pending, self._dirty_state = set(), set(), set(), set()
        return statements, taken

    def _restore_dirty(self, taken: tuple[set[str], ...]) -> None:
        self._dirty_links |= taken[0]
        self._dirty_applied |= taken[1]
        self._dirty_pending |= taken[2]
        self._dirty_state |= taken[3]

    def _take_changes(self) -> list[tuple[str, tuple]]:
        """The statements that bring the file up to date with memory; the dirty sets are left as they are."""
        statements: list[tuple[str, tuple]] = []
        for leader_id in self._dirty_links:
            link = self.links.get(leader_id)
            if link is None:
                statements.append(("DELETE FROM links WHERE leader_id = ?", (leader_id,)))
            else:
                self._seq += 1
                local_id, symbol, leader_qty, local_qty, closed = (
                    link.local_order_id, link.symbol, link.leader_quantity, link.local_quantity, link.closed)
                statements.append(("INSERT INTO links VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(leader_id) DO "
                                   "UPDATE SET local_order_id = excluded.local_order_id, local_quantity = "
                                   "excluded.local_quantity, leader_quantity = excluded.leader_quantity, "
                                   "closed = excluded.closed, seq = excluded.seq",
                                   (leader_id, local_id, symbol, leader_qty, local_qty, int(closed), self._seq)))
        for u in self._dirty_applied:
            if u in self.applied_messages:
                self._seq += 1
                statements.append(("INSERT OR IGNORE INTO applied VALUES (?, ?)", (u, self._seq)))
            else:
                statements.append(("DELETE FROM applied WHERE u = ?", (u,)))
        for leader_id in self._dirty_pending:
            pending = self.pending.get(leader_id)
            if pending is None:
                statements.append(("DELETE FROM pending WHERE leader_id = ?", (leader_id,)))
            else:
                statements.append(("INSERT OR REPLACE INTO pending (leader_id, symbol, side, order_type, price, "
                                   "quantity) VALUES (?, ?, ?, ?, ?, ?)",
                                   (leader_id, pending.symbol, pending.side, pending.order_type, pending.price,
                                    pending.quantity)))
        for key in self._dirty_state:
            statements.append(("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, self.state[key])))
        return statements

    def _write(self, statements: list[tuple[str, tuple]], durable: bool) -> None:
        connection = self._connection
        if connection is None:  # closed while this write waited for the worker
            raise OrderMapClosed(f"order map {self.path} is closed: this change cannot be recorded")
        if durable != self._durable:
            connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._durable = durable
        with connection:  # one transaction
            connection.execute("BEGIN")
            for sql, params in statements:
                connection.execute(sql, params)

    def close_storage(self) -> None:
        """Write what `save_soon()` held back, then close the file (blocks briefly: called when stopping).

        Raises OrderMapWriteError when that last write fails; the file is closed all the same (what it
        held is what a crash would lose: the write-ahead entries cover the orders placed)."""
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None
        self._writer.remove_lazy(self._queue_changes)
        self._lazy_loop = None
        if self._connection is None:
            return
        error: OrderMapWriteError | None = None
        taken = self._take_dirty()
        if taken is not None:
            statements, dirty = taken
            try:
                self._writer.call(self._write, statements, False)  # FIFO: after the writes already handed over
            except sqlite3.Error as err:
                self._restore_dirty(dirty)
                error = OrderMapWriteError(f"order map {self.path}: last write failed: {err}")
        self._writer.call(self._close_connection)
        if error is not None:
            raise error

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
