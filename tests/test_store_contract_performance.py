"""The store contract for track records, on both stores (SQLite and PostgreSQL, see test_store_contract.py):
snapshots stored once per u, the pace / time / currency rules, trades kept once per id and bounded, and the
thinning bound that keeps the time-weighted figures exact."""
from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from octobot_signals.core.performance import parse_snapshot
from octobot_signals.hub import performance_tables
from octobot_signals.hub.store import AsyncStore, Strategy
from octobot_signals.hub.track_record import compute, figure
from pg_helpers import pg_server, store_url  # noqa: F401  (fixtures)

T0 = 1_800_000_000.0


@pytest_asyncio.fixture
async def store(tmp_path: Path, store_url: str | None) -> AsyncIterator[AsyncStore]:  # noqa: F811
    opened = AsyncStore(tmp_path, store_url)
    await opened.open()
    await opened.run(lambda db: db.create_strategy(
        Strategy("s1", "S1", "public", ("BTC/USDT",), "spot", "binance", None, "st_s1"), "h1"))
    try:
        yield opened
    finally:
        await opened.close()


def snap(t: float, equity: str, **extra: object) -> object:
    return parse_snapshot({"identifier": "s1", "t": t, "equity": equity, "currency": "USDT", **extra})


async def add(store: AsyncStore, u: str, t: float, equity: str, now: float | None = None, signed: bool = False,
              **extra: object) -> str:
    result = await store.run(lambda db: db.add_performance(u, snap(t, equity, **extra), signed,
                                                            t if now is None else now, 10.0))
    return result.outcome


async def test_snapshots_their_rules_and_reads(store: AsyncStore) -> None:
    assert await store.run(lambda db: db.performance_head("s1")) is None
    assert await add(store, "u1", T0, "1000", signed=True) == "stored"
    assert await add(store, "u1", T0, "1000") == "duplicate"  # a re-sent u: the same answer, stored once
    result = await store.run(lambda db: db.add_performance("u2", snap(T0 + 60, "1000"), False, T0 + 4, 10.0))
    assert result.outcome == "too_soon" and result.retry_after == pytest.approx(6.0)
    assert await add(store, "u2", T0 - 1, "1000", now=T0 + 60) == "out_of_order"
    changed = await store.run(lambda db: db.add_performance(
        "u2", parse_snapshot({"identifier": "s1", "t": T0 + 60, "equity": "1", "currency": "BTC"}), False, T0 + 60, 10))
    assert (changed.outcome, changed.currency) == ("currency_changed", "USDT")
    trades = [{"id": "a", "t": T0 + 30, "pnl": "5"}, {"id": "b", "t": T0 + 40, "pnl": "-2"}, {"id": "c", "t": T0 + 50}]
    assert await add(store, "u2", T0 + 60, "2150.5", flow="1000", fills=3, trades=trades) == "stored"
    # a trade reported again (a restarted bot) is kept once
    assert await add(store, "u3", T0 + 120, "2200", trades=[{"id": "a", "t": T0 + 30, "pnl": "5"}]) == "stored"
    head = await store.run(lambda db: db.performance_head("s1"))
    assert head is not None and (head.points, head.signed_points, head.first_t, head.last_t, head.currency) == (
        3, 1, T0, T0 + 120, "USDT")
    points = await store.run(lambda db: db.performance_points("s1"))
    assert [(p.t, p.equity, p.flow, p.fills) for p in points] == [
        (T0, Decimal("1000"), Decimal(0), 0), (T0 + 60, Decimal("2150.5"), Decimal("1000"), 3),
        (T0 + 120, Decimal("2200"), Decimal(0), 0)]
    results = await store.run(lambda db: db.performance_trades("s1"))
    assert [r.pnl for r in results] == [Decimal(5), Decimal(-2), None]
    # (2150.5 - 1000) / 1000 x 2200 / 2150.5 = 1.1505 x 1.0230179... = 1.1769821 (8 places): +17.70 %
    record = compute(points, results)
    assert figure(record.roi_all) == "0.1769821" and (record.trades, record.wins) == (2, 1)
    assert set(await store.run(lambda db: db.performance_heads())) == {"s1"}
    assert "s1" in await store.run(lambda db: db.strategy_created_at())


async def test_snapshots_are_bounded_and_thinning_keeps_the_figures(store: AsyncStore,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(performance_tables, "MAX_POINTS", 20)
    monkeypatch.setattr(performance_tables, "MAX_TRADES", 5)
    equities = []
    for i in range(41):
        equity = 1000 + (i % 7) * 13 + i * 5 + (500 if i >= 25 else 0)  # a wiggle, a rise, a 500 deposit at 25
        equities.append(equity)
        flow = "500" if i == 25 else None
        trade = [{"id": f"t{i}", "t": T0 + i * 60, "pnl": str(i - 20)}]
        assert await add(store, f"u{i}", T0 + i * 60, str(equity), flow=flow, trades=trade) == "stored"
    head = await store.run(lambda db: db.performance_head("s1"))
    points = await store.run(lambda db: db.performance_points("s1"))
    assert head is not None and head.points == len(points) <= 20
    assert points[0].t == T0 and points[-1].t == T0 + 40 * 60  # the first and the last report stay
    # the same time-weighted ROI as the whole series, worked out here without the store
    from octobot_signals.hub.track_record import Point

    full = [Point(T0 + i * 60, Decimal(e), Decimal(500 if i == 25 else 0)) for i, e in enumerate(equities)]
    assert figure(compute(points, []).roi_all) == figure(compute(full, []).roi_all)
    assert sum(p.reported_flow for p in points) == 500 and sum(p.fills for p in points) == 0
    trades = await store.run(lambda db: db.performance_trades("s1"))
    assert [t.pnl for t in trades] == [Decimal(n) for n in range(16, 21)]  # the newest 5
