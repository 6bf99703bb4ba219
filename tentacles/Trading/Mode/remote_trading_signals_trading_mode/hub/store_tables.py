"""The hub store's interface, shared by both engines: the records it returns and `StoreTables`, its synchronous
methods. `store.SqliteStore` (the embedded default) and `store_pg.PgStore` (PostgreSQL, several hub replicas)
both implement it, and `store.AsyncStore` runs either on its own thread; each engine imports this module,
never the other engine's.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Protocol

from ..core import protocol
from .mqtt_tables import MqttTables
from .performance_tables import PerformanceTables
from .web.tables import WebTables

# one history page stops once it holds this many bytes (it always holds at least one message): a page is
# built in memory, and a public strategy's journal can hold thousands of 256 KiB messages
HISTORY_PAGE_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Strategy:
    id: str
    name: str
    visibility: str
    pairs: tuple[str, ...]
    exchange_type: str
    exchange: str
    public_key: str | None
    stream_id: str
    # read with the strategies so HubState.may_follow stays a memory lookup (on every replica, after a restart)
    archived: bool = False

    def public_dict(self) -> dict[str, Any]:
        """What the API shows (no secrets); feed_id is an added optional field."""
        return {
            "id": self.id,
            "name": self.name,
            "visibility": self.visibility,
            "pairs": list(self.pairs),
            "exchange_type": self.exchange_type,
            "exchange": self.exchange,
            "public_key": self.public_key,
            "feed_id": self.stream_id,
        }


@dataclass(frozen=True)
class FollowerToken:
    token_id: str
    strategies: frozenset[str]  # memberships (private strategies need one)


@dataclass(frozen=True)
class JournalEntry:
    strategy_id: str
    q: int
    u: str
    d: int | float
    s: dict[str, Any]
    g: str | None

    def feed_message(self, stream_id: str) -> dict[str, Any]:
        return protocol.make_feed_message(self.u, stream_id, self.d, self.q, self.s, self.g)


@dataclass(frozen=True)
class HistoryPage:
    body: bytes  # a JSON array, or JSON lines
    last_q: int | None  # the page's last message, None when empty
    cut_by_size: bool  # stopped at the byte budget before `limit`: more may follow after last_q


def _feed_message_json(u: str, stream_id: str, d_json: str, q: int, s_json: str, g: str | None) -> str:
    """protocol.make_feed_message as JSON, spliced from the journal's stored JSON (d and s are kept as canonical
    JSON text): a page costs no parse and no re-serialization of every bundle."""
    return (f'{{"u":{json.dumps(u)},"i":{json.dumps(stream_id)},"t":{json.dumps(protocol.CHANNEL_TYPE_SIGNALS)},'
            f'"v":{json.dumps(protocol.FEED_VERSION)},"d":{d_json},"q":{q},"s":{s_json},"g":{json.dumps(g)}}}')


@dataclass(frozen=True)
class AppendResult:
    q: int
    created: bool  # False: the same u was already journaled, q is the existing one


@dataclass(frozen=True)
class Capability:
    token_id: str
    strategy_id: str
    token_plain: str
    expires_at: float


class JournalStore(Protocol):
    """The journal contract a broker-backed implementation would also meet."""

    async def append(self, strategy_id: str, u: str, d: int | float, s: dict[str, Any], g: str | None) -> AppendResult: ...

    async def read_after(self, strategy_id: str, after_q: int, limit: int) -> list[JournalEntry]: ...

    async def last_q(self, strategy_id: str) -> int: ...


class DuplicateStrategy(Exception):
    pass


class StoreTables(WebTables, MqttTables, PerformanceTables):
    """The store's synchronous interface, shared by both implementations: store.SqliteStore and
    store_pg.PgStore, whose `_db` speaks this SQL to PostgreSQL. Call only from the AsyncStore thread."""

    _db: Any

    def close(self) -> None:
        self._db.close()

    def append(self, strategy_id: str, u: str, d: int | float, s: dict[str, Any], g: str | None) -> AppendResult:
        raise NotImplementedError  # each engine has its own gap-free way to take the next q

    # -- meta
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    # -- strategies
    def create_strategy(self, strategy: Strategy, publish_secret_hash: str) -> None:
        try:
            self._db.execute(
                # Named columns: the web front adds columns to this table (owner, description, archived).
                "INSERT INTO strategies(id, name, visibility, pairs, exchange_type, exchange, public_key, "
                "stream_id, publish_secret_hash, created_at) VALUES(?,?,?,?,?,?,?,?,?,?)",
                (
                    strategy.id,
                    strategy.name,
                    strategy.visibility,
                    json.dumps(list(strategy.pairs)),
                    strategy.exchange_type,
                    strategy.exchange,
                    strategy.public_key,
                    strategy.stream_id,
                    publish_secret_hash,
                    time.time(),
                ),
            )
        except sqlite3.IntegrityError as err:
            raise DuplicateStrategy(strategy.id) from err

    def load_strategies(self) -> list[Strategy]:
        rows = self._db.execute(
            "SELECT id, name, visibility, pairs, exchange_type, exchange, public_key, stream_id, archived FROM strategies"
        ).fetchall()
        return [Strategy(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5], r[6], r[7], bool(r[8])) for r in rows]

    def strategy_for_publish_secret(self, secret_hash: str) -> str | None:
        row = self._db.execute("SELECT id FROM strategies WHERE publish_secret_hash=?", (secret_hash,)).fetchone()
        return row[0] if row else None

    # -- follower tokens
    def create_follower_token(self, token_id: str, token_hash: str, strategy_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO follower_tokens(token_id, token_hash, created_at) VALUES(?,?,?)",
                (token_id, token_hash, time.time()),
            )
            self._db.execute("INSERT INTO memberships VALUES(?,?)", (token_id, strategy_id))

    def add_membership(self, token_id: str, strategy_id: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO memberships VALUES(?,?)", (token_id, strategy_id))

    def follower_for_hash(self, token_hash: str) -> FollowerToken | None:
        row = self._db.execute(
            "SELECT token_id FROM follower_tokens WHERE token_hash=? AND revoked=0", (token_hash,)
        ).fetchone()
        if row is None:
            return None
        members = self._db.execute("SELECT strategy_id FROM memberships WHERE token_id=?", (row[0],)).fetchall()
        return FollowerToken(row[0], frozenset(m[0] for m in members))

    def revoke_follower(self, token_id: str) -> bool:
        with self._db:
            self._db.execute("BEGIN")
            cur = self._db.execute("UPDATE follower_tokens SET revoked=1 WHERE token_id=? AND revoked=0", (token_id,))
            self._db.execute("DELETE FROM capabilities WHERE token_id=?", (token_id,))
        return cur.rowcount > 0

    # -- capabilities (profile links)
    def create_capability(self, cap_hash: str, cap: Capability) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self.remember_expired_capabilities(time.time())  # a late download then answers 410
            self._db.execute("DELETE FROM capabilities WHERE expires_at <= ?", (time.time(),))
            self._db.execute(
                "INSERT INTO capabilities VALUES(?,?,?,?,?)",
                (cap_hash, cap.token_id, cap.strategy_id, cap.token_plain, cap.expires_at),
            )

    def get_capability(self, cap_hash: str, now: float) -> Capability | None:
        row = self._db.execute(
            "SELECT c.token_id, c.strategy_id, c.token_plain, c.expires_at FROM capabilities c "
            "JOIN follower_tokens t ON t.token_id = c.token_id WHERE c.cap_hash=? AND t.revoked=0",
            (cap_hash,),
        ).fetchone()
        if row is None:
            return None
        if row[3] <= now:
            self._db.execute("INSERT OR IGNORE INTO expired_capabilities VALUES(?, ?)", (cap_hash, now))
            self._db.execute("DELETE FROM capabilities WHERE cap_hash=?", (cap_hash,))
            return None
        return Capability(row[0], row[1], row[2], row[3])

    # -- journal
    def read_after(self, strategy_id: str, after_q: int, limit: int) -> list[JournalEntry]:
        rows = self._db.execute(
            "SELECT q, u, d, s, g FROM journal WHERE strategy_id=? AND q>? ORDER BY q LIMIT ?",
            (strategy_id, after_q, limit),
        ).fetchall()
        return [JournalEntry(strategy_id, r[0], r[1], json.loads(r[2]), json.loads(r[3]), r[4]) for r in rows]

    def read_history_page(self, strategy_id: str, stream_id: str, after_q: int, limit: int, *, jsonl: bool,
                          max_bytes: int | None = None) -> HistoryPage:
        """Journaled messages with q > after_q as a ready response body: at most `limit` messages and about
        `max_bytes` (over it by one message at most). Rows are read one at a time, so memory stays
        bounded by the budget whatever `limit` says."""
        budget = HISTORY_PAGE_MAX_BYTES if max_bytes is None else max_bytes
        lines: list[bytes] = []
        size = 0
        last_q: int | None = None
        cut_by_size = False
        cursor = self._db.execute(
            "SELECT q, u, d, s, g FROM journal WHERE strategy_id=? AND q>? ORDER BY q LIMIT ?",
            (strategy_id, after_q, limit),
        )
        try:
            for q, u, d, s, g in cursor:
                if lines and size >= budget:
                    cut_by_size = True
                    break
                line = _feed_message_json(u, stream_id, d, q, s, g).encode("utf-8")
                lines.append(line)
                size += len(line) + 1
                last_q = q
        finally:
            cursor.close()
        body = b"".join(line + b"\n" for line in lines) if jsonl else b"[" + b",".join(lines) + b"]"
        return HistoryPage(body, last_q, cut_by_size)

    def last_q(self, strategy_id: str) -> int:
        return self._db.execute(
            "SELECT COALESCE(MAX(q), 0) FROM journal WHERE strategy_id=?", (strategy_id,)
        ).fetchone()[0]
