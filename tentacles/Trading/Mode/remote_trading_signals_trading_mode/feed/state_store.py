"""Durable follower progress: the last applied sequence number `q` per strategy.

A tiny SQLite file (WAL, synchronous=FULL, one row per strategy). Each write is one small
committed UPDATE; from async code use the `a*` methods, which run on the follower's shared
writer thread (feed/local_writer.py) so the event loop never waits on fsync.
"""
from __future__ import annotations

import os
import threading
import time

from ..core.protocol import validate_strategy_id
from . import durable_sqlite, local_writer

DEFAULT_FILE_NAME = "follower_state.sqlite"


class FollowerState:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        target = durable_sqlite.resolve(path, DEFAULT_FILE_NAME)
        self.path = target
        self._lock = threading.Lock()
        self._conn = durable_sqlite.connect(target, "")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS follower_progress ("
            " strategy_id TEXT PRIMARY KEY, last_q INTEGER NOT NULL, updated_at REAL NOT NULL DEFAULT 0)"
        )
        # the follower's shared writer: a message's order map changes, queued before its progress record,
        # are always written first
        self._writer = local_writer.shared()
        self._closed = False

    def last_q(self, strategy_id: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT last_q FROM follower_progress WHERE strategy_id = ?", (strategy_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def all_last_q(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT strategy_id, last_q FROM follower_progress").fetchall()
        return {strategy_id: int(q) for strategy_id, q in rows}

    def set_last_q(self, strategy_id: str, q: int) -> None:
        """Durably record q (committed before returning). Never moves backwards."""
        validate_strategy_id(strategy_id)
        if isinstance(q, bool) or not isinstance(q, int) or q < 0:
            raise ValueError("q must be an integer >= 0")
        with self._lock:
            self._conn.execute(
                "INSERT INTO follower_progress (strategy_id, last_q, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(strategy_id) DO UPDATE SET last_q = max(last_q, excluded.last_q),"
                " updated_at = excluded.updated_at",
                (strategy_id, q, time.time()),
            )

    def reset(self, strategy_id: str, q: int = 0) -> None:
        """Operator escape hatch: force the position (e.g. to replay a strategy from scratch)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO follower_progress (strategy_id, last_q) VALUES (?, ?)", (strategy_id, q)
            )

    async def aset_last_q(self, strategy_id: str, q: int) -> None:
        await self._writer.run(self.set_last_q, strategy_id, q)

    async def alast_q(self, strategy_id: str) -> int:
        return await self._writer.run(self.last_q, strategy_id)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.call(self._close_connection)  # after the writes already queued

    def _close_connection(self) -> None:
        with self._lock:
            self._conn.close()
