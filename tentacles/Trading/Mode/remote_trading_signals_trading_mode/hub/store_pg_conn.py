"""A PostgreSQL connection that runs the store's shared SQL (written for SQLite) unchanged.

`StoreTables` and its mixins (web/tables.py, mqtt_tables.py) are written against sqlite3's
connection: `?` placeholders, `with db:` transactions opened by an explicit `BEGIN`, `BEGIN
IMMEDIATE` for read-then-write transactions, `INSERT OR IGNORE`, and `sqlite3.IntegrityError` for a
duplicate. `PgConnection` gives PostgreSQL those same semantics, so both engines run one copy of
each query (a rule written twice drifts); statements whose meaning differs are overridden in
store_pg.PgStore instead of translated here.

- `?` -> `%s` (the shared SQL holds no other `%` or `?`).
- `BEGIN IMMEDIATE` -> `BEGIN` plus a transaction-scoped advisory lock: SQLite's IMMEDIATE takes the
  database's one write lock, and the read-then-write transactions using it (an invitation spent once,
  a subscription created once) rely on that across replicas too. They are rare web-front writes; the
  journal never takes this lock (it locks its own per-strategy head row).
- `INSERT OR IGNORE ...` -> `INSERT ... ON CONFLICT DO NOTHING`.
- psycopg's IntegrityError is raised as sqlite3.IntegrityError, the one class the shared code catches.
- Nested `with db:` blocks join the outer transaction (PgStore's overrides may run inside one).

A broken connection (server restart, failover) is replaced outside a transaction, with a bounded
jittered backoff. A read outside a transaction is then run again once; any other call that saw the
dead link fails (a publish then gets a retryable nack, and a re-sent `u` returns its first q). Every wait has a bound: connect_timeout, statement_timeout,
idle_in_transaction_session_timeout.
"""
from __future__ import annotations

import functools
import logging
import random
import re
import sqlite3
import time
import urllib.parse
from typing import Any

import psycopg
import psycopg.conninfo

logger = logging.getLogger("octobot_signals.hub.store_pg")

CONNECT_TIMEOUT_S = 10
RECONNECT_ATTEMPTS = 5
RECONNECT_BASE_S = 0.2
RECONNECT_CAP_S = 2.0
# no statement may hold the store's thread longer (a head-row lock wait included); the caller sees an error
SESSION_OPTIONS = "-c statement_timeout=15000 -c idle_in_transaction_session_timeout=30000"
IMMEDIATE_LOCK_KEY = 0x6F736967_0001  # "osig" + 1: the one lock standing for SQLite's database write lock
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO", re.IGNORECASE)


class StoreUnavailable(ConnectionError):
    """The database cannot be reached (an OSError: the CLI reports it as a failed start)."""


def redact_url(url: str) -> str:
    """The URL as it may appear in a log: never its password (nor a password= query parameter)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "postgresql://(unparseable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urllib.parse.urlencode(
        [(k, "***" if k.lower() == "password" else v) for k, v in urllib.parse.parse_qsl(parts.query)])
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """The shared (SQLite) SQL for PostgreSQL; see the module docstring for the few rewrites."""
    if _INSERT_OR_IGNORE.match(sql):
        sql = _INSERT_OR_IGNORE.sub("INSERT INTO", sql, count=1).rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    if sql.lstrip().upper().startswith("PRAGMA"):
        raise NotImplementedError(f"a PRAGMA reached PostgreSQL: override its method in PgStore ({sql[:40]!r})")
    return sql.replace("?", "%s")


APPLICATION_NAME = "octobot-signals-hub"  # what pg_stat_activity shows (the LISTEN one adds "-listen")


def session_options(url: str) -> str:
    """Our timeouts, then the URL's own `options` (a keyword argument alone would drop them): the last -c
    wins, so an operator's statement_timeout in the URL overrides ours."""
    given = psycopg.conninfo.conninfo_to_dict(url).get("options")
    return f"{SESSION_OPTIONS} {given}" if given else SESSION_OPTIONS


# A server that vanishes mid-query over TCP (a failover, a cut link) never answers: statement_timeout cannot
# fire, so the kernel must give up on the socket (libpq ignores these on a Unix socket).
TCP_SETTINGS: dict[str, int] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                                "keepalives_count": 3, "tcp_user_timeout": 30_000}


def connect(url: str) -> psycopg.Connection[Any]:
    # autocommit: a statement outside `with db:` commits alone, as with sqlite3's isolation_level=None
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, options=session_options(url),
                           application_name=APPLICATION_NAME, **TCP_SETTINGS)


class PgConnection:
    """sqlite3.Connection's surface the store uses (execute, executescript, `with`, close) on psycopg."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._depth = 0  # nesting of `with db:` blocks
        self._txn_open = False  # a BEGIN was sent on the current connection and not yet ended
        self._reconnect()

    # -- connection management
    def _reconnect(self) -> None:
        last: Exception | None = None
        for attempt in range(RECONNECT_ATTEMPTS):
            try:
                self._conn = connect(self._url)
                return
            except psycopg.OperationalError as err:
                last = err
                # full jitter: replicas reconnecting after a failover do not hit the new primary together
                time.sleep(random.uniform(0, min(RECONNECT_CAP_S, RECONNECT_BASE_S * 2 ** attempt)))
        # the message names the redacted URL only: a DSN password never reaches a log or a terminal
        raise StoreUnavailable(f"PostgreSQL unreachable at {redact_url(self._url)} after {RECONNECT_ATTEMPTS} "
                               f"attempts ({type(last).__name__})") from None

    def _live(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if self._txn_open:  # its first statements died with the old link: the whole call fails
                raise psycopg.OperationalError("connection lost inside a transaction")
            logger.warning("PostgreSQL connection lost: reconnecting to %s", redact_url(self._url))
            self._reconnect()
            conn = self._conn
        assert conn is not None
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    # -- statements
    def execute(self, sql: str, params: Any = None) -> psycopg.Cursor[Any]:
        """The shared SQL, translated; `BEGIN` inside an open transaction joins it."""
        head = sql.strip().upper()
        if head in ("BEGIN", "BEGIN IMMEDIATE"):
            return self._begin(immediate=head == "BEGIN IMMEDIATE")
        return self.pg(translate(sql), params or None)

    def pg(self, sql: str, params: Any = None) -> psycopg.Cursor[Any]:
        """PostgreSQL's own SQL (`%s` placeholders), for PgStore's overrides."""
        try:
            return self._run(sql, params)
        except psycopg.OperationalError:
            # The link died under this statement (a server restart or failover shows up at the first use of
            # each old connection). A read outside a transaction is safe to run again on a new link: the token
            # lookups of /cable and the API then answer instead of failing once per connection. A write is
            # not retried here (it may have committed): its caller sees the error (a publish: a retryable nack).
            conn = self._conn
            if self._txn_open or sql.lstrip()[:6].upper() != "SELECT" or (
                    conn is not None and not conn.closed and not conn.broken):
                raise
            return self._run(sql, params)

    def _run(self, sql: str, params: Any) -> psycopg.Cursor[Any]:
        try:
            return self._live().execute(sql, params)
        except psycopg.IntegrityError as err:
            raise sqlite3.IntegrityError(str(err).splitlines()[0]) from err

    def _begin(self, *, immediate: bool) -> psycopg.Cursor[Any]:
        conn = self._live()
        cursor = conn.cursor()  # callers ignore it; joining an open transaction costs no round trip
        if not self._txn_open:
            cursor = conn.execute("BEGIN")
            self._txn_open = True
        if immediate:
            cursor = conn.execute("SELECT pg_advisory_xact_lock(%s)", (IMMEDIATE_LOCK_KEY,))
        return cursor

    def executescript(self, script: str) -> None:
        self._live().execute(script)  # no parameters: the simple protocol runs several statements

    # -- `with db:` = one transaction (commit on success, rollback on error), joined when nested
    def __enter__(self) -> PgConnection:
        self._depth += 1
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._depth -= 1
        if self._depth:
            return
        was_open, self._txn_open = self._txn_open, False
        conn = self._conn
        if not was_open or conn is None or conn.closed or conn.broken:
            return  # nothing to end, or the server already ended it with the link
        if exc_type is None:
            conn.execute("COMMIT")
        elif not conn.broken:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:  # keep the original error; a dead link is replaced at the next call
                logger.warning("ROLLBACK failed; the connection will be replaced")
