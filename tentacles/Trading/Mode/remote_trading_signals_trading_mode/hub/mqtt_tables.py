"""The MQTT side's tables, mixed into SqliteStore: the egress position per broker and strategy, and the
MQTT usernames the hub issues to follower tokens (what stock OctoBots put in `community.mqtt_uuid`).

Additive only: two new tables, nothing else in the schema changes.
"""
from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass

MQTT_SCHEMA = """
CREATE TABLE IF NOT EXISTS mqtt_egress_positions (
    broker TEXT NOT NULL,
    strategy_id TEXT NOT NULL,
    q INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (broker, strategy_id)
);
-- One MQTT username per follower token. Stock OctoBot sends it in clear with no password, so it
-- is a read-only bearer name: random (192 bits), never derived from the token, and it grants
-- nothing once its token is revoked (the ACL lists only live tokens).
CREATE TABLE IF NOT EXISTS mqtt_usernames (
    token_id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
"""
USERNAME_PREFIX = "osf_"  # "octobot-signals follower": tells a human what the name is, nothing more


def new_mqtt_username() -> str:
    return USERNAME_PREFIX + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class MqttReader:
    """One live follower token as the broker sees it: its username and the strategies it may read."""

    username: str
    strategy_ids: tuple[str, ...]


class MqttTables:
    """Mixed into SqliteStore: `self._db` is its connection (autocommit; BEGIN for multi-row writes)."""

    _db: sqlite3.Connection

    def migrate_mqtt(self) -> None:
        self._db.executescript(MQTT_SCHEMA)

    # -- egress positions
    def egress_positions(self, broker: str) -> dict[str, int]:
        rows = self._db.execute("SELECT strategy_id, q FROM mqtt_egress_positions WHERE broker=?", (broker,))
        return {row[0]: row[1] for row in rows}

    def start_egress_positions(self, broker: str, strategy_ids: list[str]) -> dict[str, int]:
        """Positions for every strategy; a strategy this broker never saw starts at its current last q.

        A stock follower has no replay and no staleness check: the first time a broker is used, the
        journal's past must not reach it as if it were live.
        """
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for strategy_id in strategy_ids:
                self._db.execute(
                    "INSERT OR IGNORE INTO mqtt_egress_positions(broker, strategy_id, q, updated_at) "
                    "SELECT ?, ?, COALESCE(MAX(q), 0), ? FROM journal WHERE strategy_id=?",
                    (broker, strategy_id, time.time(), strategy_id),
                )
        return self.egress_positions(broker)

    def set_egress_position(self, broker: str, strategy_id: str, q: int) -> None:
        # synchronous=NORMAL for this one small write (WAL: no fsync at commit, the next journal append's
        # FULL commit syncs it): losing it in a power cut only makes the egress send again, in order,
        # what it already sent, while an fsync here would delay every publisher's journal append.
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._db.execute(
                "INSERT INTO mqtt_egress_positions(broker, strategy_id, q, updated_at) VALUES(?,?,?,?) "
                "ON CONFLICT(broker, strategy_id) DO UPDATE SET q=MAX(q, excluded.q), updated_at=excluded.updated_at",
                (broker, strategy_id, q, time.time()),
            )
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    # -- usernames
    def mqtt_username(self, token_id: str) -> str:
        """The token's MQTT username, issued on first use."""
        self._db.execute(
            "INSERT OR IGNORE INTO mqtt_usernames(token_id, username, created_at) VALUES(?,?,?)",
            (token_id, new_mqtt_username(), time.time()),
        )
        return self._db.execute("SELECT username FROM mqtt_usernames WHERE token_id=?", (token_id,)).fetchone()[0]

    def mqtt_readers(self) -> list[MqttReader]:
        """Every live follower token with its username (issued now if missing) and readable strategies.

        Same rule as HubState.may_follow: live public strategies for any live token; private and archived
        ones for their members only (an archived strategy takes no new followers, on the broker too).
        """
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            live = [row[0] for row in self._db.execute("SELECT token_id FROM follower_tokens WHERE revoked=0 "
                                                       "ORDER BY created_at, token_id")]
            now = time.time()
            for token_id in live:
                self._db.execute(
                    "INSERT OR IGNORE INTO mqtt_usernames(token_id, username, created_at) VALUES(?,?,?)",
                    (token_id, new_mqtt_username(), now),
                )
        public = [row[0] for row in self._db.execute(
            "SELECT id FROM strategies WHERE visibility='public' AND archived=0 ORDER BY id")]
        members: dict[str, list[str]] = {}
        for token_id, strategy_id in self._db.execute(
                "SELECT m.token_id, m.strategy_id FROM memberships m JOIN strategies s ON s.id = m.strategy_id "
                "WHERE s.visibility != 'public' OR s.archived != 0 ORDER BY m.strategy_id"):
            members.setdefault(token_id, []).append(strategy_id)
        names = dict(self._db.execute("SELECT token_id, username FROM mqtt_usernames").fetchall())
        return [MqttReader(names[token_id], tuple(sorted(set(public) | set(members.get(token_id, ())))))
                for token_id in live]

    def mqtt_readers_fingerprint(self) -> tuple[object, ...]:
        """Cheap to compute (counts and the public ids); changes whenever mqtt_readers() can change: a token
        created or revoked, a membership added, a strategy created, archived or its visibility changed. Counts suffice
        because the hub only ever adds tokens, memberships and strategies and revokes tokens (never un-revokes
        or deletes); a future path that deletes a membership must extend this."""
        tokens = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(revoked), 0) FROM follower_tokens").fetchone()
        memberships = self._db.execute("SELECT COUNT(*) FROM memberships").fetchone()[0]
        public = self._db.execute(
            "SELECT COUNT(*), group_concat(id, ',') FROM (SELECT id FROM strategies WHERE visibility='public' AND archived=0 "
            "ORDER BY id)").fetchone()
        strategies = self._db.execute("SELECT COUNT(*) FROM strategies").fetchone()[0]
        return (tokens[0], tokens[1], memberships, strategies, public[0], public[1])
