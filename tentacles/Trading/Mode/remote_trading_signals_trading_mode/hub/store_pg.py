"""The hub's store in PostgreSQL (`octobot-signals hub --store postgresql://...`): several hub replicas
share one database.

Driver: psycopg 3, synchronous, rather than asyncpg. The store keeps one interface for both engines:
`StoreTables`, synchronous methods run on the AsyncStore's own thread (`await store.run(lambda db: ...)`,
used by every caller: API, web pages, MQTT). A synchronous driver lets PostgreSQL run the very same
methods and SQL as SQLite (store_pg_conn.PgConnection), the event loop stays free (the thread waits on
the database, never the loop), and nothing outside the store changes. The replicas' LISTEN connection
is psycopg's async connection on the loop (store_pg_replicas.py).

Journal rules:
- per strategy a head row (`journal_heads`) is locked `FOR UPDATE` in the append transaction: q is
  `last_q + 1`, gap-free and unique across replicas. Never a SEQUENCE (a rollback burns its values).
- `UNIQUE (strategy_id, u)`; the existing-u check runs after the head lock is held (READ COMMITTED:
  a fresh snapshot per statement), so a `u` re-sent through any replica returns its first q.
- the append's `pg_notify('osig_journal', '<strategy> <q>')` is delivered at COMMIT, and the hub
  acks after `append` returns, i.e. after COMMIT. A notification is only a wake-up: every replica
  reads the journal after the last q it delivered (fanout.ReplicaFanout).
- received_at is the database's clock, taken under the head lock: it never decreases with q even when
  replicas' clocks differ (the pages binary-search on it, see web/tables.py).

Changes other replicas must see (strategies created or edited, publish secrets replaced, tokens
revoked) send `pg_notify('osig_control', ...)` in the same transaction; each replica then reloads
(store_pg_replicas.py), and its periodic poll covers a lost notification.
"""
from __future__ import annotations

import json
from typing import Any

from ..core import protocol
from .performance_tables import HEAD_COLUMNS, PG_PERFORMANCE_SCHEMA, PerformanceHead, head_from_row
from .store_pg_conn import PgConnection
from .store_tables import HISTORY_PAGE_MAX_BYTES as _PAGE_BYTES
from .store_tables import AppendResult, HistoryPage, JournalEntry, StoreTables, Strategy, _feed_message_json
from .web.tables import Account

JOURNAL_CHANNEL = "osig_journal"
CONTROL_CHANNEL = "osig_control"
MIGRATE_LOCK_KEY = 0x6F736967_0002  # replicas starting together create the schema one at a time
HISTORY_BATCH = 64  # rows fetched per round trip for a history page: memory stays near the page's budget

PG_SCHEMA = """
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
    created_at DOUBLE PRECISION NOT NULL,
    owner_id TEXT,
    description TEXT NOT NULL DEFAULT '',
    archived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS follower_tokens (
    token_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS memberships (
    token_id TEXT NOT NULL,
    strategy_id TEXT NOT NULL,
    PRIMARY KEY (token_id, strategy_id)
);
CREATE TABLE IF NOT EXISTS capabilities (
    cap_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    strategy_id TEXT NOT NULL,
    token_plain TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_heads (
    strategy_id TEXT PRIMARY KEY,
    last_q BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    strategy_id TEXT NOT NULL,
    q BIGINT NOT NULL,
    u TEXT NOT NULL,
    d TEXT NOT NULL,
    s TEXT NOT NULL,
    g TEXT,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (strategy_id, q),
    UNIQUE (strategy_id, u)
);
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    invitation_id TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
-- SQLite's COLLATE NOCASE: one account per username whatever its case
CREATE UNIQUE INDEX IF NOT EXISTS accounts_username_nocase ON accounts (lower(username));
CREATE TABLE IF NOT EXISTS web_sessions (
    id_hash TEXT PRIMARY KEY,
    account_id TEXT,
    operator INTEGER NOT NULL DEFAULT 0,
    csrf TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS invitations (
    invitation_id TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_by TEXT,
    used_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS subscriptions (
    account_id TEXT NOT NULL,
    strategy_id TEXT NOT NULL,
    token_id TEXT NOT NULL UNIQUE,
    token_sealed TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, strategy_id)
);
CREATE TABLE IF NOT EXISTS strategy_invites (
    strategy_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (strategy_id, account_id)
);
CREATE TABLE IF NOT EXISTS expired_capabilities (
    cap_hash TEXT PRIMARY KEY,
    expired_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS mqtt_egress_positions (
    broker TEXT NOT NULL,
    strategy_id TEXT NOT NULL,
    q BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (broker, strategy_id)
);
CREATE TABLE IF NOT EXISTS mqtt_usernames (
    token_id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL
);
"""


class PgStore(StoreTables):
    """StoreTables on PostgreSQL; call only from its AsyncStore thread (one connection per store)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self._db = PgConnection(url)
        if migrate:
            self.migrate_pg()

    def migrate_pg(self) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.pg("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK_KEY,))
            self._db.executescript(PG_SCHEMA)
            self._db.executescript(PG_PERFORMANCE_SCHEMA)

    def _notify_control(self, what: str) -> None:
        # inside a transaction the notification leaves at COMMIT; outside, at once (after the change committed)
        self._db.pg("SELECT pg_notify(%s, %s)", (CONTROL_CHANNEL, what))

    # -- journal
    def append(self, strategy_id: str, u: str, d: int | float, s: dict[str, Any], g: str | None) -> AppendResult:
        d_json = protocol.canonical_json(d).decode()
        s_json = protocol.canonical_json(s).decode("utf-8")
        db = self._db
        with db:
            db.execute("BEGIN")
            head = db.pg("SELECT last_q FROM journal_heads WHERE strategy_id=%s FOR UPDATE", (strategy_id,)).fetchone()
            if head is None:  # a strategy created before its head row existed: make it, then lock it
                db.pg("INSERT INTO journal_heads VALUES(%s, 0) ON CONFLICT DO NOTHING", (strategy_id,))
                head = db.pg("SELECT last_q FROM journal_heads WHERE strategy_id=%s FOR UPDATE",
                             (strategy_id,)).fetchone()
            # after the lock: this statement's snapshot sees every append that committed before ours
            existing = db.pg("SELECT q FROM journal WHERE strategy_id=%s AND u=%s", (strategy_id, u)).fetchone()
            if existing is not None:
                return AppendResult(existing[0], False)
            q = head[0] + 1
            # one round trip: the row, the head and the wake-up (data-modifying CTEs always run)
            db.pg(
                "WITH row AS (INSERT INTO journal VALUES(%s, %s, %s, %s, %s, %s, "
                "extract(epoch FROM clock_timestamp())::double precision)), "
                "head AS (UPDATE journal_heads SET last_q=%s WHERE strategy_id=%s) "
                "SELECT pg_notify(%s, %s)",
                (strategy_id, q, u, d_json, s_json, g, q, strategy_id, JOURNAL_CHANNEL, f"{strategy_id} {q}"),
            )
        return AppendResult(q, True)

    def last_q(self, strategy_id: str) -> int:
        row = self._db.pg("SELECT last_q FROM journal_heads WHERE strategy_id=%s", (strategy_id,)).fetchone()
        return int(row[0]) if row else 0

    def journal_heads(self) -> dict[str, int]:
        """Every strategy's last q: what the replicas' poll compares with what they delivered."""
        return {r[0]: int(r[1]) for r in self._db.pg("SELECT strategy_id, last_q FROM journal_heads")}

    def read_history_page(self, strategy_id: str, stream_id: str, after_q: int, limit: int, *, jsonl: bool,
                          max_bytes: int | None = None) -> HistoryPage:
        """As SqliteStore's, but fetched in small batches: psycopg's client cursor would hold every row of
        the LIMIT in memory at once (5000 x 256 KiB), where SQLite steps row by row."""
        budget = _PAGE_BYTES if max_bytes is None else max_bytes
        lines: list[bytes] = []
        size = 0
        last_q: int | None = None
        after = after_q
        while len(lines) < limit and (not lines or size < budget):
            rows = self._db.pg(
                "SELECT q, u, d, s, g FROM journal WHERE strategy_id=%s AND q>%s ORDER BY q LIMIT %s",
                (strategy_id, after, min(HISTORY_BATCH, limit - len(lines)))).fetchall()
            for q, u, d, s, g in rows:
                if lines and size >= budget:
                    break
                line = _feed_message_json(u, stream_id, d, q, s, g).encode("utf-8")
                lines.append(line)
                size += len(line) + 1
                last_q = after = q
            if len(rows) < HISTORY_BATCH:
                break
        cut_by_size = size >= budget and len(lines) < limit and last_q is not None and self._db.pg(
            "SELECT 1 FROM journal WHERE strategy_id=%s AND q>%s LIMIT 1", (strategy_id, last_q)).fetchone() is not None
        body = b"".join(line + b"\n" for line in lines) if jsonl else b"[" + b",".join(lines) + b"]"
        return HistoryPage(body, last_q, cut_by_size)

    def read_after(self, strategy_id: str, after_q: int, limit: int) -> list[JournalEntry]:
        rows = self._db.pg("SELECT q, u, d, s, g FROM journal WHERE strategy_id=%s AND q>%s ORDER BY q LIMIT %s",
                           (strategy_id, after_q, limit)).fetchall()
        return [JournalEntry(strategy_id, int(r[0]), r[1], json.loads(r[2]), json.loads(r[3]), r[4]) for r in rows]

    # -- changes other replicas must apply at once
    def create_strategy(self, strategy: Strategy, publish_secret_hash: str) -> None:
        super().create_strategy(strategy, publish_secret_hash)
        self._db.pg("INSERT INTO journal_heads VALUES(%s, 0) ON CONFLICT DO NOTHING", (strategy.id,))
        self._notify_control(f"strategy {strategy.id}")

    def update_strategy(self, strategy_id: str, name: str, description: str, pairs: list[str],
                        public_key: str | None) -> None:
        super().update_strategy(strategy_id, name, description, pairs, public_key)
        self._notify_control(f"strategy {strategy_id}")

    def archive_strategy(self, strategy_id: str, dead_secret_hash: str) -> bool:
        archived = super().archive_strategy(strategy_id, dead_secret_hash)
        self._notify_control(f"publishers {strategy_id}")
        return archived

    def set_publish_secret_hash(self, strategy_id: str, secret_hash: str) -> bool:
        changed = super().set_publish_secret_hash(strategy_id, secret_hash)
        self._notify_control(f"publishers {strategy_id}")
        return changed

    def revoke_follower(self, token_id: str) -> bool:
        revoked = super().revoke_follower(token_id)
        self._notify_control(f"token {token_id}")
        return revoked

    def disable_account(self, account_id: str, dead_secret_hashes: dict[str, str]) -> tuple[list[str], list[str]] | None:
        result = super().disable_account(account_id, dead_secret_hashes)
        if result is not None:
            self._notify_control(f"account {account_id}")
        return result

    def delete_subscription(self, account_id: str, strategy_id: str) -> str | None:
        token_id = super().delete_subscription(account_id, strategy_id)
        if token_id is not None:
            self._notify_control(f"token {token_id}")
        return token_id

    def replica_snapshot(self, live_token_ids: list[str]) -> tuple[list[Strategy], dict[str, str], set[str]]:
        """(strategies, publish secret hash per strategy, revoked among live_token_ids): what a replica
        reconciles its memory and its live connections with."""
        strategies = self.load_strategies()
        hashes = {r[0]: r[1] for r in self._db.pg("SELECT id, publish_secret_hash FROM strategies")}
        revoked: set[str] = set()
        if live_token_ids:
            revoked = {r[0] for r in self._db.pg(
                "SELECT token_id FROM follower_tokens WHERE revoked<>0 AND token_id = ANY(%s)", (live_token_ids,))}
        return strategies, hashes, revoked

    def _perf_lock_head(self, strategy_id: str) -> PerformanceHead:
        # the strategy's own head row, locked FOR UPDATE (as the journal's): not the one lock standing for
        # SQLite's database write lock, so replicas storing snapshots of different strategies never wait
        self._db.execute("BEGIN")
        self._db.pg("INSERT INTO performance_heads(strategy_id) VALUES(%s) ON CONFLICT DO NOTHING", (strategy_id,))
        return head_from_row(self._db.pg(f"SELECT {HEAD_COLUMNS} FROM performance_heads WHERE strategy_id=%s FOR UPDATE",
                                 (strategy_id,)).fetchone())

    # -- statements whose SQLite spelling means something else here
    def account_by_username(self, username: str) -> Account | None:
        row = self._db.pg(
            "SELECT account_id, username, password_hash, disabled, created_at FROM accounts "
            "WHERE lower(username)=lower(%s)", (username,)).fetchone()
        return Account(row[0], row[1], row[2], bool(row[3]), row[4]) if row else None

    def set_egress_position(self, broker: str, strategy_id: str, q: int) -> None:
        # SQLite's scalar MAX(a, b) is GREATEST here; the existing row's column must be qualified
        self._db.pg(
            "INSERT INTO mqtt_egress_positions(broker, strategy_id, q, updated_at) VALUES(%s,%s,%s,"
            "extract(epoch FROM clock_timestamp())) ON CONFLICT(broker, strategy_id) DO UPDATE SET "
            "q=GREATEST(mqtt_egress_positions.q, excluded.q), updated_at=excluded.updated_at",
            (broker, strategy_id, q))

    def mqtt_readers_fingerprint(self) -> tuple[object, ...]:
        tokens = self._db.pg("SELECT COUNT(*), COALESCE(SUM(revoked), 0)::bigint FROM follower_tokens").fetchone()
        memberships = self._db.pg("SELECT COUNT(*) FROM memberships").fetchone()[0]
        public = self._db.pg("SELECT COUNT(*), string_agg(id, ',' ORDER BY id) FROM strategies "
                             "WHERE visibility='public' AND archived=0").fetchone()
        strategies = self._db.pg("SELECT COUNT(*) FROM strategies").fetchone()[0]
        return (tokens[0], tokens[1], memberships, strategies, public[0], public[1])
