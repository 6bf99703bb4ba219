"""Durable publisher outbox: a bundle is on disk before publish() returns.

SQLite in WAL mode with synchronous=FULL, so an enqueued bundle survives a crash or power
loss. Rows keep insertion order (INTEGER PRIMARY KEY) and their message id `u`, which the
sender reuses on every retry so the hub's dedup on `u` makes delivery exactly-once. Acked
and rejected rows are kept (they make a re-enqueue of the same `u` a no-op) until pruned.

The sync methods are for tests and tools; async code uses the `a*` methods, which run on
the outbox's own single worker thread (one thread = one writer, no lock contention).
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..core.protocol import validate_bundle_shape, validate_message_id, validate_strategy_id
from . import durable_sqlite

DEFAULT_FILE_NAME = "publisher_outbox.sqlite"

PENDING = "pending"
ACKED = "acked"
REJECTED = "rejected"


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    u: str
    strategy_id: str
    bundle: dict[str, Any]
    d: float
    state: str
    q: int | None = None
    reason: str | None = None


class Outbox:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        target = durable_sqlite.resolve(path, DEFAULT_FILE_NAME)
        self.path = target
        self._lock = threading.Lock()
        self._conn = durable_sqlite.connect(target, "")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " u TEXT NOT NULL UNIQUE,"
            " strategy_id TEXT NOT NULL,"
            " bundle TEXT NOT NULL,"
            " d REAL NOT NULL,"
            " state TEXT NOT NULL DEFAULT 'pending',"
            " q INTEGER,"
            " reason TEXT,"
            " created_at REAL NOT NULL,"
            " done_at REAL)"
        )
        self._conn.execute("CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(state, seq)")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publisher-outbox")
        self._closed = False

    # ------------------------------------------------------------------ sync API

    def enqueue(
        self, strategy_id: str, bundle: dict[str, Any], u: str | None = None, d: float | None = None
    ) -> str:
        """Store a bundle durably and return its message id. Re-enqueueing a known `u` is a no-op."""
        validate_strategy_id(strategy_id)
        validate_bundle_shape(bundle, "bundle")
        message_id = uuid.uuid4().hex if u is None else validate_message_id(u)
        timestamp = time.time() if d is None else d
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            raise ValueError("d must be a number (unix seconds)")
        try:
            text = json.dumps(bundle, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"bundle is not JSON-safe (normalize it first): {err}") from err
        with self._lock:
            self._conn.execute(
                "INSERT INTO outbox (u, strategy_id, bundle, d, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(u) DO NOTHING",
                (message_id, strategy_id, text, float(timestamp), time.time()),
            )
        return message_id

    def pending(self, limit: int = 100, strategy_id: str | None = None) -> list[OutboxItem]:
        """Oldest first: the order bundles were enqueued in (of one strategy when given)."""
        where, args = self._pending_filter(strategy_id)
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, u, strategy_id, bundle, d, state, q, reason FROM outbox"
                f" WHERE {where} ORDER BY seq LIMIT ?",
                (*args, int(limit)),
            ).fetchall()
        return [self._item(row) for row in rows]

    @staticmethod
    def _pending_filter(strategy_id: str | None) -> tuple[str, tuple[str, ...]]:
        if strategy_id is None:
            return "state = ?", (PENDING,)
        return "state = ? AND strategy_id = ?", (PENDING, strategy_id)

    def get(self, u: str) -> OutboxItem | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT seq, u, strategy_id, bundle, d, state, q, reason FROM outbox WHERE u = ?", (u,)
            ).fetchone()
        return self._item(row) if row else None

    def mark_acked(self, u: str, q: int) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE outbox SET state = ?, q = ?, done_at = ? WHERE u = ?", (ACKED, int(q), time.time(), u)
            )

    def mark_rejected(self, u: str, reason: str) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE outbox SET state = ?, reason = ?, done_at = ? WHERE u = ? AND state = ?",
                (REJECTED, reason[:1000], time.time(), u, PENDING),
            )

    def count_pending(self, strategy_id: str | None = None) -> int:
        where, args = self._pending_filter(strategy_id)
        with self._lock:
            row = self._conn.execute(f"SELECT count(*) FROM outbox WHERE {where}", args).fetchone()
        return int(row[0])

    def pending_by_strategy(self) -> dict[str, int]:
        """Pending bundles per strategy id (a bot whose publishing settings changed may hold several)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT strategy_id, count(*) FROM outbox WHERE state = ? GROUP BY strategy_id ORDER BY strategy_id",
                (PENDING,),
            ).fetchall()
        return {strategy_id: int(count) for strategy_id, count in rows}

    def count(self, state: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM outbox WHERE state = ?", (state,)).fetchone()
        return int(row[0])

    def prune(self, older_than_s: float = 7 * 86400) -> int:
        """Forget acked/rejected rows older than the horizon (pending rows are never pruned)."""
        with self._lock:
            cursor = self._conn.execute(
                "DELETE FROM outbox WHERE state != ? AND done_at < ?", (PENDING, time.time() - older_than_s)
            )
        return cursor.rowcount

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ async API (worker thread)

    async def _run(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def aenqueue(
        self, strategy_id: str, bundle: dict[str, Any], u: str | None = None, d: float | None = None
    ) -> str:
        return await self._run(self.enqueue, strategy_id, bundle, u, d)

    async def apending(self, limit: int = 100, strategy_id: str | None = None) -> list[OutboxItem]:
        return await self._run(self.pending, limit, strategy_id)

    async def amark_acked(self, u: str, q: int) -> None:
        await self._run(self.mark_acked, u, q)

    async def amark_rejected(self, u: str, reason: str) -> None:
        await self._run(self.mark_rejected, u, reason)

    async def acount_pending(self, strategy_id: str | None = None) -> int:
        return await self._run(self.count_pending, strategy_id)

    async def apending_by_strategy(self) -> dict[str, int]:
        return await self._run(self.pending_by_strategy)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _item(row: tuple[Any, ...]) -> OutboxItem:
        seq, u, strategy_id, bundle, d, state, q, reason = row
        return OutboxItem(int(seq), u, strategy_id, json.loads(bundle), float(d), state, q, reason)
