"""The hub's durable state: strategies, tokens, capabilities, the web front's, MQTT and track-record tables, the journal.

One interface (`StoreTables`, synchronous, in store_tables.py), two implementations: `SqliteStore` here (the
embedded default, one file in --data) and `store_pg.PgStore` (`--store postgresql://...`, several hub replicas
on one database). Either is owned by ONE dedicated thread (`AsyncStore` wraps it in a single-worker
executor), so the event loop never blocks on disk or on the database, and callers keep the one
`await store.run(lambda db: db.method(...))` pattern whichever engine runs.

SQLite: the journal runs in WAL mode with synchronous=FULL: once `append` returns, the message
survives a `kill -9` or a power cut, which is why the hub only acks after it.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..core import protocol
from .store_tables import (  # the interface, importable from here as before
    HISTORY_PAGE_MAX_BYTES,
    AppendResult,
    Capability,
    DuplicateStrategy,
    FollowerToken,
    HistoryPage,
    JournalEntry,
    JournalStore,
    StoreTables,
    Strategy,
)

__all__ = [
    "DB_FILE", "HISTORY_PAGE_MAX_BYTES", "AppendResult", "AsyncStore", "Capability", "DuplicateStrategy",
    "FollowerToken", "HistoryPage", "JournalEntry", "JournalStore", "SqliteStore", "StoreTables", "Strategy",
    "is_postgresql_url",
]

DB_FILE = "hub.sqlite3"
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS strategies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    visibility TEXT NOT NULL,
    pairs TEXT NOT NULL,
    exchange_type TEXT NOT NULL,
    exchange TEXT NOT NULL,
    public_key TEXT,
    stream_id TEXT NOT NULL UNIQUE,
    publish_secret_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS follower_tokens (
    token_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS memberships (
    token_id TEXT NOT NULL,
    strategy_id TEXT NOT NULL,
    PRIMARY KEY (token_id, strategy_id)
);
-- token_plain: the follower token must go inside the profile zip, and only its hash is
-- kept elsewhere. The plaintext lives here only for the link's 15 minutes and is deleted
-- on expiry or when the token is revoked (cheaper and simpler than an encrypted copy).
CREATE TABLE IF NOT EXISTS capabilities (
    cap_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    strategy_id TEXT NOT NULL,
    token_plain TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    strategy_id TEXT NOT NULL,
    q INTEGER NOT NULL,
    u TEXT NOT NULL,
    d TEXT NOT NULL,
    s TEXT NOT NULL,
    g TEXT,
    received_at REAL NOT NULL,
    PRIMARY KEY (strategy_id, q),
    UNIQUE (strategy_id, u)
);
"""


class SqliteStore(StoreTables):
    """The embedded default: one SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self.migrate_web()  # the web front's tables and columns (additive)
        self.migrate_mqtt()  # the MQTT egress position and follower usernames (additive)
        self.migrate_performance()  # the track records' snapshots and trades (additive)

    def append(self, strategy_id: str, u: str, d: int | float, s: dict[str, Any], g: str | None) -> AppendResult:
        # One IMMEDIATE transaction: the existing-u check and the next q are read under the
        # write lock, so q stays gapless and unique even if another process shares the file.
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT q FROM journal WHERE strategy_id=? AND u=?", (strategy_id, u)).fetchone()
            if row is not None:
                return AppendResult(row[0], False)
            q = self._db.execute(
                "SELECT COALESCE(MAX(q), 0) + 1 FROM journal WHERE strategy_id=?", (strategy_id,)
            ).fetchone()[0]
            self._db.execute(
                "INSERT INTO journal VALUES(?,?,?,?,?,?,?)",
                (
                    strategy_id,
                    q,
                    u,
                    protocol.canonical_json(d).decode(),
                    protocol.canonical_json(s).decode("utf-8"),
                    g,
                    time.time(),
                ),
            )
        return AppendResult(q, True)


def is_postgresql_url(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("postgresql://", "postgres://"))


class AsyncStore:
    """Runs every store call on one dedicated thread, never on the event loop.

    The store is the SQLite file in data_dir (the embedded default), or PostgreSQL when `url` is a
    postgresql:// URL (store_pg.PgStore, imported only then). Both meet the same StoreTables interface.
    """

    def __init__(self, data_dir: Path, url: str | None = None, *, migrate: bool = True) -> None:
        if url is not None and not is_postgresql_url(url):
            raise ValueError("the store must be a postgresql:// URL (or omitted: the SQLite file in --data)")
        self.url = url
        self.shared = url is not None  # other hub processes (replicas) write the same database
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-pg" if url else "hub-sqlite")
        self._path = data_dir / DB_FILE
        self._migrate = migrate
        self._sync: StoreTables | None = None

    async def open(self) -> None:
        try:
            self._sync = await self._call(self._open_sync)
        except BaseException:  # e.g. PostgreSQL unreachable: no thread is left behind
            self._executor.shutdown(wait=False)
            raise

    def _open_sync(self) -> StoreTables:
        if self.url is None:
            return SqliteStore(self._path)
        from .store_pg import PgStore  # psycopg is loaded only by a hub that uses PostgreSQL

        return PgStore(self.url, migrate=self._migrate)

    async def close(self) -> None:
        if self._sync is not None:
            sync = self._sync
            self._sync = None
            await self._call(sync.close)
        self._executor.shutdown(wait=True)

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def run(self, fn: Callable[[Any], T]) -> T:
        if self._sync is None:
            raise RuntimeError("store is closed")
        sync = self._sync
        return await self._call(lambda: fn(sync))

    # JournalStore
    async def append(self, strategy_id: str, u: str, d: int | float, s: dict[str, Any], g: str | None) -> AppendResult:
        return await self.run(lambda db: db.append(strategy_id, u, d, s, g))

    async def read_after(self, strategy_id: str, after_q: int, limit: int) -> list[JournalEntry]:
        return await self.run(lambda db: db.read_after(strategy_id, after_q, limit))

    async def last_q(self, strategy_id: str) -> int:
        return await self.run(lambda db: db.last_q(strategy_id))
