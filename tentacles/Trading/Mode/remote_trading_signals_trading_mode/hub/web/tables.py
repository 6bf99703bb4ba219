"""The web front's tables in the hub's SQLite store: accounts, sessions, invitations, subscriptions.

A mixin of `SqliteStore` (same thread, same connection, same `store.run(lambda db: db.x())`
interface as every other table). Migrations are additive only: new tables, and new columns on
`strategies` (owner, description, archived) added when missing, so an older data directory
opens unchanged and the JSON API keeps reading the columns it always read.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

WEB_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    invitation_id TEXT,
    created_at REAL NOT NULL
);
-- id_hash: sha256 of the cookie value; the cookie itself is never stored.
CREATE TABLE IF NOT EXISTS web_sessions (
    id_hash TEXT PRIMARY KEY,
    account_id TEXT,
    operator INTEGER NOT NULL DEFAULT 0,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS invitations (
    invitation_id TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_by TEXT,
    used_at REAL
);
-- token_sealed: the follower token encrypted with the hub's web key (web.key in the data
-- directory, not in this database): the profile zip needs the plaintext at any later time.
CREATE TABLE IF NOT EXISTS subscriptions (
    account_id TEXT NOT NULL,
    strategy_id TEXT NOT NULL,
    token_id TEXT NOT NULL UNIQUE,
    token_sealed TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (account_id, strategy_id)
);
CREATE TABLE IF NOT EXISTS strategy_invites (
    strategy_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (strategy_id, account_id)
);
-- Hashes of profile links that expired, so a late download answers 410 rather than 404.
CREATE TABLE IF NOT EXISTS expired_capabilities (
    cap_hash TEXT PRIMARY KEY,
    expired_at REAL NOT NULL
);
"""

_STRATEGY_COLUMNS = (
    ("owner_id", "TEXT"),
    ("description", "TEXT NOT NULL DEFAULT ''"),
    ("archived", "INTEGER NOT NULL DEFAULT 0"),
)
EXPIRED_LINK_MEMORY_S = 7 * 24 * 3600


class DuplicateAccount(Exception):
    pass


class InvitationRefused(Exception):
    """The invitation code is unknown, used or expired (the message says which, never the code)."""


@dataclass(frozen=True)
class Account:
    account_id: str
    username: str
    password_hash: str
    disabled: bool
    created_at: float


@dataclass(frozen=True)
class WebSession:
    account_id: str | None
    username: str | None
    operator: bool
    csrf: str
    expires_at: float


@dataclass(frozen=True)
class StrategyDetails:
    owner_id: str | None
    description: str
    archived: bool


@dataclass(frozen=True)
class Subscription:
    account_id: str
    strategy_id: str
    token_id: str
    token_sealed: str
    created_at: float


@dataclass(frozen=True)
class StrategyStats:
    signals: int
    first_at: float | None
    last_at: float | None
    followers: int


@dataclass(frozen=True)
class AccountRow:
    account_id: str
    username: str
    disabled: bool
    created_at: float
    subscriptions: int
    strategies: int


@dataclass(frozen=True)
class InvitationRow:
    invitation_id: str
    note: str
    created_at: float
    expires_at: float
    used_by: str | None


class WebTables:
    """Mixed into SqliteStore: `self._db` is its connection (autocommit; BEGIN for multi-row writes)."""

    _db: sqlite3.Connection

    def migrate_web(self) -> None:
        self._db.executescript(WEB_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(strategies)")}
        for name, decl in _STRATEGY_COLUMNS:
            if name not in present:
                self._db.execute(f"ALTER TABLE strategies ADD COLUMN {name} {decl}")

    # -- accounts
    def create_account(self, account_id: str, username: str, password_hash: str,
                       invitation_hash: str | None, now: float) -> None:
        """One transaction: the invitation (when given) is checked and spent with the account's creation."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            invitation_id = None
            if invitation_hash is not None:
                row = self._db.execute(
                    "SELECT invitation_id, expires_at, used_by FROM invitations WHERE code_hash=?", (invitation_hash,)
                ).fetchone()
                if row is None:
                    raise InvitationRefused("this invitation code is not valid")
                if row[2] is not None:
                    raise InvitationRefused("this invitation code was already used")
                if row[1] <= now:
                    raise InvitationRefused("this invitation code has expired: ask the operator for a new one")
                invitation_id = row[0]
            try:
                self._db.execute(
                    "INSERT INTO accounts(account_id, username, password_hash, invitation_id, created_at) VALUES(?,?,?,?,?)",
                    (account_id, username, password_hash, invitation_id, now),
                )
            except sqlite3.IntegrityError as err:
                raise DuplicateAccount(username) from err
            if invitation_id is not None:
                self._db.execute("UPDATE invitations SET used_by=?, used_at=? WHERE invitation_id=?",
                                 (account_id, now, invitation_id))

    def account_by_username(self, username: str) -> Account | None:
        row = self._db.execute(
            "SELECT account_id, username, password_hash, disabled, created_at FROM accounts WHERE username=?",
            (username,),
        ).fetchone()
        return Account(row[0], row[1], row[2], bool(row[3]), row[4]) if row else None

    def account_by_id(self, account_id: str) -> Account | None:
        row = self._db.execute(
            "SELECT account_id, username, password_hash, disabled, created_at FROM accounts WHERE account_id=?",
            (account_id,),
        ).fetchone()
        return Account(row[0], row[1], row[2], bool(row[3]), row[4]) if row else None

    def set_password_hash(self, account_id: str, password_hash: str) -> None:
        # argon2 parameters may be raised later: a successful login re-hashes with the new ones.
        self._db.execute("UPDATE accounts SET password_hash=? WHERE account_id=?", (password_hash, account_id))

    def list_accounts(self) -> list[AccountRow]:
        rows = self._db.execute(
            "SELECT a.account_id, a.username, a.disabled, a.created_at, "
            "(SELECT COUNT(*) FROM subscriptions s WHERE s.account_id=a.account_id), "
            "(SELECT COUNT(*) FROM strategies t WHERE t.owner_id=a.account_id) "
            "FROM accounts a ORDER BY a.created_at"
        ).fetchall()
        return [AccountRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def disable_account(self, account_id: str, dead_secret_hashes: dict[str, str]) -> tuple[list[str], list[str]] | None:
        """Disable an account at once: sessions, subscription tokens (and their links), publish secrets.

        dead_secret_hashes: strategy id -> a fresh random hash nobody knows the secret of, replacing the
        publish secret of each strategy the account owns (a disabled author can no longer publish).
        Returns (revoked token ids, strategy ids whose secret was replaced), None if unknown/already disabled.
        """
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("UPDATE accounts SET disabled=1 WHERE account_id=? AND disabled=0", (account_id,))
            if cur.rowcount == 0:
                return None
            self._db.execute("DELETE FROM web_sessions WHERE account_id=?", (account_id,))
            token_ids = [r[0] for r in self._db.execute(
                "SELECT token_id FROM subscriptions WHERE account_id=?", (account_id,))]
            for token_id in token_ids:
                self._db.execute("UPDATE follower_tokens SET revoked=1 WHERE token_id=?", (token_id,))
                self._db.execute("DELETE FROM capabilities WHERE token_id=?", (token_id,))
            owned = [r[0] for r in self._db.execute("SELECT id FROM strategies WHERE owner_id=?", (account_id,))]
            for strategy_id in owned:
                self._db.execute("UPDATE strategies SET publish_secret_hash=? WHERE id=?",
                                 (dead_secret_hashes[strategy_id], strategy_id))
        return token_ids, owned

    def owned_strategy_ids(self, account_id: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT id FROM strategies WHERE owner_id=?", (account_id,))]

    # -- sessions
    def create_web_session(self, id_hash: str, account_id: str | None, operator: bool, csrf: str,
                           now: float, expires_at: float) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (now,))
            self._db.execute("INSERT INTO web_sessions VALUES(?,?,?,?,?,?)",
                             (id_hash, account_id, int(operator), csrf, now, expires_at))

    def get_web_session(self, id_hash: str, now: float) -> WebSession | None:
        row = self._db.execute(
            "SELECT s.account_id, a.username, s.operator, s.csrf, s.expires_at, a.disabled FROM web_sessions s "
            "LEFT JOIN accounts a ON a.account_id = s.account_id WHERE s.id_hash=?",
            (id_hash,),
        ).fetchone()
        if row is None or row[4] <= now:
            return None
        if row[0] is not None and (row[1] is None or row[5]):
            return None  # the account was disabled (its sessions are deleted too) or removed
        return WebSession(row[0], row[1], bool(row[2]), row[3], row[4])

    def delete_web_session(self, id_hash: str) -> None:
        self._db.execute("DELETE FROM web_sessions WHERE id_hash=?", (id_hash,))

    # -- invitations (to sign up)
    def create_invitation(self, invitation_id: str, code_hash: str, note: str, now: float, expires_at: float) -> None:
        self._db.execute("INSERT INTO invitations(invitation_id, code_hash, note, created_at, expires_at) "
                         "VALUES(?,?,?,?,?)", (invitation_id, code_hash, note, now, expires_at))

    def list_invitations(self) -> list[InvitationRow]:
        rows = self._db.execute(
            "SELECT i.invitation_id, i.note, i.created_at, i.expires_at, a.username FROM invitations i "
            "LEFT JOIN accounts a ON a.account_id = i.used_by ORDER BY i.created_at DESC LIMIT 200"
        ).fetchall()
        return [InvitationRow(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    # -- strategy details (owner, description, archived)
    def create_owned_strategy(self, strategy: Any, publish_secret_hash: str, owner_id: str, description: str) -> None:
        """SqliteStore.create_strategy (raises DuplicateStrategy) plus owner and description, in one transaction."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self.create_strategy(strategy, publish_secret_hash)  # type: ignore[attr-defined]
            self._db.execute("UPDATE strategies SET owner_id=?, description=? WHERE id=?",
                             (owner_id, description, strategy.id))

    def strategy_details(self, strategy_id: str) -> StrategyDetails:
        row = self._db.execute("SELECT owner_id, description, archived FROM strategies WHERE id=?",
                               (strategy_id,)).fetchone()
        return StrategyDetails(row[0], row[1] or "", bool(row[2])) if row else StrategyDetails(None, "", False)

    def load_strategy_details(self) -> dict[str, StrategyDetails]:
        rows = self._db.execute("SELECT id, owner_id, description, archived FROM strategies").fetchall()
        return {r[0]: StrategyDetails(r[1], r[2] or "", bool(r[3])) for r in rows}

    def update_strategy(self, strategy_id: str, name: str, description: str, pairs: list[str],
                        public_key: str | None) -> None:
        self._db.execute("UPDATE strategies SET name=?, description=?, pairs=?, public_key=? WHERE id=?",
                         (name, description, json.dumps(pairs), public_key, strategy_id))

    def archive_strategy(self, strategy_id: str, dead_secret_hash: str) -> bool:
        # Archiving also replaces the publish secret: an archived strategy publishes nothing more.
        cur = self._db.execute("UPDATE strategies SET archived=1, publish_secret_hash=? WHERE id=? AND archived=0",
                               (dead_secret_hash, strategy_id))
        return cur.rowcount > 0

    def set_publish_secret_hash(self, strategy_id: str, secret_hash: str) -> bool:
        cur = self._db.execute("UPDATE strategies SET publish_secret_hash=? WHERE id=?", (secret_hash, strategy_id))
        return cur.rowcount > 0

    # -- invitations to a private strategy
    def invite_to_strategy(self, strategy_id: str, account_id: str, now: float) -> None:
        self._db.execute("INSERT OR IGNORE INTO strategy_invites VALUES(?,?,?)", (strategy_id, account_id, now))

    def invited_strategy_ids(self, account_id: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT strategy_id FROM strategy_invites WHERE account_id=?",
                                               (account_id,))}

    def strategy_invitees(self, strategy_id: str) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT a.username FROM strategy_invites i JOIN accounts a ON a.account_id=i.account_id "
            "WHERE i.strategy_id=? ORDER BY i.created_at", (strategy_id,))]

    # -- subscriptions (each holds one follower token)
    def create_subscription(self, account_id: str, strategy_id: str, token_id: str, token_hash: str,
                            token_sealed: str, now: float) -> bool:
        """False when the account already subscribes to that strategy."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if self._db.execute("SELECT 1 FROM subscriptions WHERE account_id=? AND strategy_id=?",
                                (account_id, strategy_id)).fetchone():
                return False
            self._db.execute("INSERT INTO follower_tokens(token_id, token_hash, created_at) VALUES(?,?,?)",
                             (token_id, token_hash, now))
            self._db.execute("INSERT INTO memberships VALUES(?,?)", (token_id, strategy_id))
            self._db.execute("INSERT INTO subscriptions VALUES(?,?,?,?,?)",
                             (account_id, strategy_id, token_id, token_sealed, now))
        return True

    def get_subscription(self, account_id: str, strategy_id: str) -> Subscription | None:
        row = self._db.execute(
            "SELECT account_id, strategy_id, token_id, token_sealed, created_at FROM subscriptions "
            "WHERE account_id=? AND strategy_id=?", (account_id, strategy_id)).fetchone()
        return Subscription(*row) if row else None

    def list_subscriptions(self, account_id: str) -> list[Subscription]:
        rows = self._db.execute(
            "SELECT account_id, strategy_id, token_id, token_sealed, created_at FROM subscriptions "
            "WHERE account_id=? ORDER BY created_at", (account_id,)).fetchall()
        return [Subscription(*r) for r in rows]

    def delete_subscription(self, account_id: str, strategy_id: str) -> str | None:
        """Removes the subscription and revokes its token and links; returns the token id (None: none)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT token_id FROM subscriptions WHERE account_id=? AND strategy_id=?",
                                   (account_id, strategy_id)).fetchone()
            if row is None:
                return None
            self._db.execute("DELETE FROM subscriptions WHERE account_id=? AND strategy_id=?", (account_id, strategy_id))
            self._db.execute("UPDATE follower_tokens SET revoked=1 WHERE token_id=?", (row[0],))
            self._db.execute("DELETE FROM capabilities WHERE token_id=?", (row[0],))
        return row[0]

    # -- journal statistics for the pages (read-only)
    # These share the store's single thread with journal appends (the publishers' hot path): each one is
    # a handful of primary-key lookups, never a scan of a journal that may hold millions of messages.
    # q is gapless per strategy (so the count is the last q), and received_at never decreases with q
    # (appends are serialized and stamped in order), so a time is found by binary search on q.
    def _last_q(self, strategy_id: str) -> int:
        return self._db.execute("SELECT COALESCE(MAX(q), 0) FROM journal WHERE strategy_id=?",
                                (strategy_id,)).fetchone()[0]

    def _received_at(self, strategy_id: str, q: int) -> float | None:
        row = self._db.execute("SELECT received_at FROM journal WHERE strategy_id=? AND q=?",
                               (strategy_id, q)).fetchone()
        return row[0] if row else None

    def _first_q_at_or_after(self, strategy_id: str, since: float, last_q: int) -> int:
        """The first q journaled at or after `since` (last_q + 1 when none)."""
        low, high = 1, last_q + 1
        while low < high:
            middle = (low + high) // 2
            at = self._received_at(strategy_id, middle)
            if at is not None and at < since:
                low = middle + 1
            else:
                high = middle
        return low

    def _followers(self, strategy_id: str) -> int:
        return self._db.execute(
            "SELECT COUNT(*) FROM memberships m JOIN follower_tokens t ON t.token_id=m.token_id "
            "WHERE m.strategy_id=? AND t.revoked=0", (strategy_id,)).fetchone()[0]

    def strategy_stats(self, strategy_id: str) -> StrategyStats:
        last_q = self._last_q(strategy_id)
        first_at = self._received_at(strategy_id, 1) if last_q else None
        last_at = self._received_at(strategy_id, last_q) if last_q else None
        return StrategyStats(last_q, first_at, last_at, self._followers(strategy_id))

    def all_strategy_stats(self) -> dict[str, StrategyStats]:
        ids = [row[0] for row in self._db.execute("SELECT id FROM strategies")]
        return {strategy_id: self.strategy_stats(strategy_id) for strategy_id in ids}

    def daily_signal_counts(self, strategy_id: str, first_day: int, days: int) -> dict[int, int]:
        """UTC day number (unix seconds // 86400) -> messages journaled that day, for `days` days from first_day."""
        last_q = self._last_q(strategy_id)
        bounds = [self._first_q_at_or_after(strategy_id, (first_day + i) * 86400, last_q) for i in range(days + 1)]
        return {first_day + i: bounds[i + 1] - bounds[i] for i in range(days) if bounds[i + 1] > bounds[i]}

    def latest_journal(self, strategy_id: str, limit: int) -> list[tuple[int, Any, dict[str, Any], float]]:
        """(q, d, s, received_at) of the newest messages, newest first."""
        rows = self._db.execute(
            "SELECT q, d, s, received_at FROM journal WHERE strategy_id=? ORDER BY q DESC LIMIT ?",
            (strategy_id, limit)).fetchall()
        return [(r[0], json.loads(r[1]), json.loads(r[2]), r[3]) for r in rows]

    # -- expired profile links
    def remember_expired_capabilities(self, now: float) -> None:
        """Called before expired capability rows are deleted: keeps their hashes (only) for a week."""
        self._db.execute("INSERT OR IGNORE INTO expired_capabilities SELECT cap_hash, ? FROM capabilities "
                         "WHERE expires_at <= ?", (now, now))
        self._db.execute("DELETE FROM expired_capabilities WHERE expired_at <= ?", (now - EXPIRED_LINK_MEMORY_S,))

    def capability_expired(self, cap_hash: str) -> bool:
        return self._db.execute("SELECT 1 FROM expired_capabilities WHERE cap_hash=?", (cap_hash,)).fetchone() is not None

