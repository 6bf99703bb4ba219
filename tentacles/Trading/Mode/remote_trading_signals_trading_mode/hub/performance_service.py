"""The hub's side of performance snapshots: accept one from a publisher (ack / nack), and serve the figures.

Receiving (a `/cable` publish command with data.topic "p", see core/performance.py): the publish secret's
own strategy only, its stream id, its signature when the strategy has a public key, times within the hub's
clock, one snapshot per `min_interval_s` per strategy. Stored beside the journal (performance_tables.py),
acked `{"type": "ack", "u": ..., "topic": "p"}`: no q, no fan-out.

Figures: track_record.compute over the stored series, cached per strategy and keyed by the head row's
version, so a page view costs one primary-key read unless a snapshot arrived (on any replica) since.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..core import performance, protocol
from .limits import seconds_text
from .performance_tables import PerformanceHead
from .track_record import TrackRecord, compute

if TYPE_CHECKING:
    from .state import HubState, LiveConnection

logger = logging.getLogger("octobot_signals.hub.performance")

DEFAULT_MIN_INTERVAL_S = 10.0


@dataclass(frozen=True)
class PerformanceSettings:
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S  # per strategy, between two accepted snapshots


@dataclass(frozen=True)
class StrategyRecord:
    """A strategy's figures and what the page says about them."""

    head: PerformanceHead | None
    record: TrackRecord

    @property
    def signed(self) -> str:
        """"all", "partly" or "none": did the hub verify every stored snapshot with the strategy's key?"""
        if self.head is None or not self.head.signed_points:
            return "none"
        return "all" if self.head.signed_points == self.head.points else "partly"


EMPTY = StrategyRecord(None, compute([], []))


@dataclass
class PerformanceService:
    settings: PerformanceSettings = field(default_factory=PerformanceSettings)
    _cache: dict[str, tuple[int, StrategyRecord]] = field(default_factory=dict)
    # strategy -> (monotonic time, u) of its last stored snapshot: a flood is refused without the store
    _last_accepted: dict[str, tuple[float, str]] = field(default_factory=dict)

    # ------------------------------------------------------------------ receiving
    async def receive(self, connection: LiveConnection, command: performance.PerformanceCommand) -> str:
        """The ack or nack frame for one snapshot command."""
        u = command.u
        try:
            return await self._receive(connection.state, connection.principal, command)
        except protocol.ProtocolError as err:
            return protocol.nack_frame(u, str(err))

    async def _receive(self, state: HubState, principal: Any, command: performance.PerformanceCommand) -> str:
        u, snapshot = command.u, command.snapshot
        strategy_id = principal.strategy_id if principal.kind == "publisher" else None
        if strategy_id is None:
            return protocol.nack_frame(u, "forbidden: only a strategy's publish secret may report its performance")
        strategy = state.strategies.get(strategy_id)
        if strategy is None:  # pragma: no cover - a secret always belongs to a stored strategy
            return protocol.nack_frame(u, "unknown strategy")
        if snapshot.strategy_id != strategy_id:
            return protocol.nack_frame(u, f"forbidden: this publish secret is for strategy {strategy_id}, "
                                          f"not {snapshot.strategy_id}")
        if command.feed_id != strategy.stream_id:
            return protocol.nack_frame(u, f"bad_feed_id: data.feed_id is not the stream id of {strategy_id}")
        signed = False
        if strategy.public_key is not None:
            if command.g is None:
                return protocol.nack_frame(u, "bad_signature: data.g missing (strategy has a public key)")
            if not performance.verify(strategy.public_key, command.d, strategy_id, command.snapshot_raw, u, command.g):
                logger.warning("publisher:%s: bad signature on performance snapshot u=%s", strategy_id, u)
                return protocol.nack_frame(u, "bad_signature: data.g does not verify")
            signed = True
        now = time.time()
        performance.check_times(snapshot, now)
        interval = self.settings.min_interval_s
        previous = self._last_accepted.get(strategy_id)
        # (a re-send of the last u goes on to the store: its dedup answers the same ack)
        if previous is not None and previous[1] != u and time.monotonic() - previous[0] < interval:
            return self._too_soon(u, strategy_id, interval - (time.monotonic() - previous[0]))
        try:
            result = await state.store.run(lambda db: db.add_performance(u, snapshot, signed, now, interval))
        except Exception:
            logger.exception("storing a performance snapshot failed for %s", strategy_id)
            return protocol.nack_frame(u, "internal: store unavailable, retry")
        if result.outcome == "too_soon":  # another replica took one moments ago
            return self._too_soon(u, strategy_id, result.retry_after)
        if result.outcome == "out_of_order":
            return protocol.nack_frame(u, "out_of_order: data.value.t must be later than the strategy's last snapshot")
        if result.outcome == "currency_changed":
            return protocol.nack_frame(u, f"currency_changed: {strategy_id} reports in {result.currency}, "
                                          f"not {snapshot.currency}")
        if result.outcome == "stored":
            self._last_accepted[strategy_id] = (time.monotonic(), u)
        return performance.ack_frame(u)

    def _too_soon(self, u: str, strategy_id: str, wait: float) -> str:
        return protocol.nack_frame(
            u, f"rate_limited: at most one performance snapshot per {seconds_text(self.settings.min_interval_s)} "
               f"for {strategy_id}, retry in {seconds_text(wait)}")

    # ------------------------------------------------------------------ figures
    async def record(self, state: HubState, strategy_id: str) -> StrategyRecord:
        head = await state.store.run(lambda db: db.performance_head(strategy_id))
        return await self._fresh(state, strategy_id, head)

    async def records(self, state: HubState) -> dict[str, StrategyRecord]:
        """Every strategy that reported, for the list page (one query unless snapshots arrived)."""
        heads = await state.store.run(lambda db: db.performance_heads())
        for gone in [s for s in self._cache if s not in heads]:
            del self._cache[gone]
        return {strategy_id: await self._fresh(state, strategy_id, head) for strategy_id, head in heads.items()}

    async def _fresh(self, state: HubState, strategy_id: str, head: PerformanceHead | None) -> StrategyRecord:
        if head is None:
            self._cache.pop(strategy_id, None)
            return EMPTY
        cached = self._cache.get(strategy_id)
        if cached is not None and cached[0] == head.version:
            return cached[1]

        def read(db: Any) -> tuple[Any, Any]:
            return db.performance_points(strategy_id), db.performance_trades(strategy_id)

        points, trades = await state.store.run(read)
        # the series was read after the head: a snapshot stored in between makes this entry one version
        # early at worst, and the next read recomputes it
        entry = StrategyRecord(head, compute(points, trades))
        if strategy_id in state.strategies:  # bounded by the strategies the hub knows
            self._cache[strategy_id] = (head.version, entry)
        return entry


PERFORMANCE_KEY = web.AppKey("performance", PerformanceService)


def performance_service(app: web.Application) -> PerformanceService:
    return app[PERFORMANCE_KEY]
