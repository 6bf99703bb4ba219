"""The track records' tables: performance snapshots, closed trades, and one head row per strategy.

A mixin of StoreTables (same thread, same `store.run(lambda db: db.x())` interface), one copy of the SQL
for both engines (PgConnection translates it); PgStore overrides only `_perf_lock_head` (a row lock rather
than SQLite's database write lock). Never the journal: a snapshot takes no q and reaches no follower.

Bounds (docs/PERFORMANCE.md): at most MAX_POINTS snapshots per strategy. Past that, the oldest half is
thinned to every other snapshot (track_record.thin: the time-weighted figures stay exact, only the curve
loses resolution), so old history grows coarser instead of being cut. At most MAX_TRADES closed trades
per strategy (the oldest go first). A strategy accepts one snapshot per `min_interval_s` (the head row's
received time, so the bound holds across replicas and restarts).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from ..core.decimal_util import plain
from ..core.performance import Snapshot
from .track_record import Point, TradeResult, thin

MAX_POINTS = 4000
MAX_TRADES = 5000

PERFORMANCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS performance_heads (
    strategy_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 0,
    points INTEGER NOT NULL DEFAULT 0,
    signed_points INTEGER NOT NULL DEFAULT 0,
    first_t REAL NOT NULL DEFAULT 0,
    last_t REAL NOT NULL DEFAULT 0,
    last_received_at REAL NOT NULL DEFAULT 0,
    currency TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS performance_snapshots (
    strategy_id TEXT NOT NULL,
    t REAL NOT NULL,
    u TEXT NOT NULL,
    equity TEXT NOT NULL,
    flow TEXT NOT NULL,
    reported_flow TEXT NOT NULL,
    fills INTEGER NOT NULL,
    signed INTEGER NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (strategy_id, t),
    UNIQUE (strategy_id, u)
);
CREATE TABLE IF NOT EXISTS performance_trades (
    strategy_id TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    t REAL NOT NULL,
    symbol TEXT,
    pnl TEXT,
    currency TEXT,
    PRIMARY KEY (strategy_id, trade_id)
);
CREATE INDEX IF NOT EXISTS performance_trades_by_time ON performance_trades (strategy_id, t);
"""
# PostgreSQL: the same tables, its own spelling of the types
PG_PERFORMANCE_SCHEMA = PERFORMANCE_SCHEMA.replace("REAL", "DOUBLE PRECISION").replace("INTEGER", "BIGINT")

Outcome = Literal["stored", "duplicate", "too_soon", "out_of_order", "currency_changed"]


@dataclass(frozen=True)
class PerformanceHead:
    strategy_id: str
    version: int
    points: int
    signed_points: int
    first_t: float
    last_t: float
    last_received_at: float
    currency: str


@dataclass(frozen=True)
class AddResult:
    outcome: Outcome
    retry_after: float = 0.0  # too_soon: seconds until the next snapshot is accepted
    currency: str = ""  # currency_changed: the strategy's currency


HEAD_COLUMNS = "strategy_id, version, points, signed_points, first_t, last_t, last_received_at, currency"


def head_from_row(row: Any) -> PerformanceHead:
    return PerformanceHead(row[0], int(row[1]), int(row[2]), int(row[3]), float(row[4]), float(row[5]),
                           float(row[6]), row[7])


class PerformanceTables:
    """Mixed into StoreTables: `self._db` is its connection (SQLite's, or PgConnection)."""

    _db: Any

    def migrate_performance(self) -> None:
        self._db.executescript(PERFORMANCE_SCHEMA)

    def _perf_lock_head(self, strategy_id: str) -> PerformanceHead:
        """Open the transaction and hold the strategy's head row until it ends (SQLite: the write lock)."""
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("INSERT OR IGNORE INTO performance_heads(strategy_id) VALUES(?)", (strategy_id,))
        return head_from_row(self._db.execute(f"SELECT {HEAD_COLUMNS} FROM performance_heads WHERE strategy_id=?",
                                      (strategy_id,)).fetchone())

    def add_performance(self, u: str, snapshot: Snapshot, signed: bool, now: float,
                        min_interval_s: float) -> AddResult:
        """Store one snapshot (and its new trades) unless it repeats `u`, comes too soon, goes back in time or
        changes currency. One transaction under the strategy's head row."""
        strategy_id = snapshot.strategy_id
        with self._db:
            head = self._perf_lock_head(strategy_id)
            if self._db.execute("SELECT 1 FROM performance_snapshots WHERE strategy_id=? AND u=?",
                                (strategy_id, u)).fetchone():
                return AddResult("duplicate")  # a re-send after a lost ack: the same ack again
            if head.points:
                waited = now - head.last_received_at
                if waited < min_interval_s:
                    return AddResult("too_soon", retry_after=min_interval_s - waited)
                if snapshot.t <= head.last_t:
                    return AddResult("out_of_order")
                if snapshot.currency != head.currency:
                    return AddResult("currency_changed", currency=head.currency)
            flow = plain(snapshot.flow)
            self._db.execute(
                "INSERT INTO performance_snapshots(strategy_id, t, u, equity, flow, reported_flow, fills, signed, "
                "received_at) VALUES(?,?,?,?,?,?,?,?,?)",
                (strategy_id, snapshot.t, u, plain(snapshot.equity), flow, flow, snapshot.fills, int(signed), now))
            for trade in snapshot.trades:
                self._db.execute(
                    "INSERT OR IGNORE INTO performance_trades(strategy_id, trade_id, t, symbol, pnl, currency) "
                    "VALUES(?,?,?,?,?,?)",
                    (strategy_id, trade.id, trade.t, trade.symbol, None if trade.pnl is None else plain(trade.pnl),
                     trade.currency))
            if snapshot.trades:
                self._prune_trades(strategy_id)
            points = head.points + 1
            self._db.execute(
                "UPDATE performance_heads SET version=version+1, points=?, signed_points=signed_points+?, "
                "first_t=?, last_t=?, last_received_at=?, currency=? WHERE strategy_id=?",
                (points, int(signed), head.first_t if head.points else snapshot.t, snapshot.t, now,
                 snapshot.currency, strategy_id))
            if points > MAX_POINTS:
                self._thin(strategy_id, points)
        return AddResult("stored")

    def _prune_trades(self, strategy_id: str) -> None:
        row = self._db.execute("SELECT t FROM performance_trades WHERE strategy_id=? ORDER BY t DESC LIMIT 1 OFFSET ?",
                               (strategy_id, MAX_TRADES)).fetchone()
        if row is not None:
            self._db.execute("DELETE FROM performance_trades WHERE strategy_id=? AND t<=?", (strategy_id, row[0]))

    def _thin(self, strategy_id: str, points: int) -> None:
        rows = self._db.execute(
            "SELECT t, equity, flow, fills, reported_flow, signed FROM performance_snapshots WHERE strategy_id=? "
            "ORDER BY t LIMIT ?", (strategy_id, points // 2)).fetchall()
        series = [Point(float(r[0]), Decimal(r[1]), Decimal(r[2]), int(r[3]), Decimal(r[4])) for r in rows]
        removed = signed_removed = 0
        for position, replacement in thin(series):
            t = rows[position][0]
            if replacement is None:
                self._db.execute("DELETE FROM performance_snapshots WHERE strategy_id=? AND t=?", (strategy_id, t))
                removed += 1
                signed_removed += int(rows[position][5])
            else:
                self._db.execute(
                    "UPDATE performance_snapshots SET flow=?, reported_flow=?, fills=? WHERE strategy_id=? AND t=?",
                    (plain(replacement.flow), plain(replacement.reported_flow), replacement.fills, strategy_id, t))
        self._db.execute("UPDATE performance_heads SET points=points-?, signed_points=signed_points-? "
                         "WHERE strategy_id=?", (removed, signed_removed, strategy_id))

    # -- reads
    def performance_head(self, strategy_id: str) -> PerformanceHead | None:
        row = self._db.execute(f"SELECT {HEAD_COLUMNS} FROM performance_heads WHERE strategy_id=?",
                               (strategy_id,)).fetchone()
        return head_from_row(row) if row and int(row[2]) else None

    def performance_heads(self) -> dict[str, PerformanceHead]:
        rows = self._db.execute(f"SELECT {HEAD_COLUMNS} FROM performance_heads WHERE points>0").fetchall()
        return {row[0]: head_from_row(row) for row in rows}

    def performance_points(self, strategy_id: str) -> list[Point]:
        rows = self._db.execute(
            "SELECT t, equity, flow, fills, reported_flow FROM performance_snapshots WHERE strategy_id=? ORDER BY t",
            (strategy_id,)).fetchall()
        return [Point(float(r[0]), Decimal(r[1]), Decimal(r[2]), int(r[3]), Decimal(r[4])) for r in rows]

    def performance_trades(self, strategy_id: str) -> list[TradeResult]:
        rows = self._db.execute("SELECT t, pnl FROM performance_trades WHERE strategy_id=? ORDER BY t",
                                (strategy_id,)).fetchall()
        return [TradeResult(float(r[0]), None if r[1] is None else Decimal(r[1])) for r in rows]

    def strategy_created_at(self) -> dict[str, float]:
        return {r[0]: float(r[1]) for r in self._db.execute("SELECT id, created_at FROM strategies")}
