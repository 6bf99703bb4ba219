"""Benchmark part 4: the mode's CPU per bundle type, with an empty order map and with a long history.

The real RemoteTradingSignalsTradingMode on the offline simulated exchange, its order map on disk as in a
bot. One sample per bundle type and round: a resting buy limit, its cancel, a market buy with a chained
stop-loss, the stop-loss's cancel. The figure is the process CPU time (every thread, the order map's
SQLite worker included) spent applying one bundle; time spent waiting for an fsync is not CPU and is
not in it. "History" is links of past copies (orders that filled long ago) written into the order map
file before the mode starts, as a bot following a grid strategy for months has them.
"""
from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..demo.signal_bundles import BENCH_SYMBOL, new_order_id, order_content
from ..demo.stats import percentile, rounded
from ..follower.order_map import OrderLink, OrderMap
from ..simulator.harness import follower_on_sim_exchange
from ..simulator.sim_exchange import SimExchangeSpec

KINDS = ("limit_create", "limit_cancel", "market_with_stop_loss", "stop_loss_cancel")
WARMUP_ROUNDS = 5
PRICE = Decimal(20000)
_u = iter(range(1, 10**12))


def _message(*contents: dict[str, Any]) -> dict[str, Any]:
    q = next(_u)
    return {"u": f"bench-mode-{q}", "i": "bench", "t": "t", "v": "1.0.0", "d": time.time(), "q": q, "g": None,
            "s": {"identifier": "bench", "version": "1.0.0",
                  "signals": [{"topic": "orders", "content": c, "dependencies": None} for c in contents]}}


def _market_with_stop_loss(entry_id: str, stop_id: str) -> dict[str, Any]:
    """A market buy carrying its stop-loss, as octobot-trading bundles a chained order."""
    entry = order_content("create", entry_id, price=str(PRICE), current=str(PRICE))
    entry.update(type="buy_market")
    stop = order_content("create", stop_id, price=str(PRICE * Decimal("0.9")), current=str(PRICE))
    stop.update(side="sell", type="stop_loss", stop_price=str(PRICE * Decimal("0.9")), chained_to=entry_id,
                target_amount="0.1%")
    entry["additional_orders"] = [stop]
    return entry


def _stop_loss_cancel(stop_id: str) -> dict[str, Any]:
    stop = order_content("cancel", stop_id, price=str(PRICE * Decimal("0.9")), current=str(PRICE))
    stop.update(side="sell", type="stop_loss", stop_price=str(PRICE * Decimal("0.9")))
    return stop


def round_bundles() -> list[tuple[str, dict[str, Any]]]:
    """One round: (kind, feed message) for each of KINDS, with fresh order ids. Also run on the stock mode."""
    limit_id, entry_id, stop_id = new_order_id(), new_order_id(), new_order_id()
    limit = str(PRICE * Decimal("0.8"))  # far below the market: rests, never fills
    return [
        ("limit_create", _message(order_content("create", limit_id, price=limit, current=str(PRICE)))),
        ("limit_cancel", _message(order_content("cancel", limit_id, price=limit, current=str(PRICE)))),
        ("market_with_stop_loss", _message(_market_with_stop_loss(entry_id, stop_id))),
        ("stop_loss_cancel", _message(_stop_loss_cancel(stop_id))),
    ]


async def _seed_history(path: Path, links: int) -> None:
    """Links of copies filled long ago: their orders are no longer on the exchange."""
    order_map = OrderMap.load(path)
    try:
        for index in range(links):
            order_map.link(f"history-leader-{index}",
                           OrderLink(f"history-local-{index}", BENCH_SYMBOL, "0.001", "0.001"))
        await order_map.save()
    finally:
        order_map.close_storage()


def bench_spec() -> SimExchangeSpec:
    """The simulated exchange every mode CPU run uses (ours and the stock mode's)."""
    return SimExchangeSpec(portfolio={"USDT": Decimal(10_000_000), "BTC": Decimal(10)}, prices={BENCH_SYMBOL: PRICE})


async def feed_gap(gap_ms: float) -> None:
    """Idle like a live follower between two messages (the loop waits in epoll on its socket).

    Not measured; 0 = back to back. On a small VM the first bundle after an idle spell costs more CPU
    (caches and clock), for every mode alike: this shows it instead of hiding it."""
    if gap_ms > 0:
        await asyncio.sleep(gap_ms / 1000)


async def mode_cpu(samples: int, history_links: int, write: Callable[[str], None],
                   gap_ms: float = 0.0) -> dict[str, Any]:
    """CPU ms per bundle type: {kind: {"p50", "p99", "n"}} and the history size it ran with."""
    spec = bench_spec()
    cpu_ms: dict[str, list[float]] = {kind: [] for kind in KINDS}
    wall_ms: dict[str, list[float]] = {kind: [] for kind in KINDS}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="octobot-signals-bench-mode-") as tmp:
        async with follower_on_sim_exchange(spec, data_dir=Path(tmp)) as follower:
            if history_links:
                await _seed_history(follower.mode.order_map_path(), history_links)
            for index in range(WARMUP_ROUNDS + samples):
                for kind, message in round_bundles():
                    await feed_gap(gap_ms)
                    cpu_start, wall_start = time.process_time(), time.perf_counter()
                    outcomes = await follower.apply(message)
                    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
                    if index < WARMUP_ROUNDS:
                        continue  # the first message loads the order map: not a bundle's cost
                    cpu_ms[kind].append(cpu * 1000)
                    wall_ms[kind].append(wall * 1000)
                    failures.extend(o.log_line() for o in outcomes if not o.applied)
    if failures:
        write(f"  WARNING: {len(failures)} signals not applied, e.g. {failures[0]}")
    figures: dict[str, Any] = {
        kind: {"p50": rounded(percentile(values, 50)), "p99": rounded(percentile(values, 99)), "n": len(values),
               "wall_p50": rounded(percentile(wall_ms[kind], 50))}
        for kind, values in cpu_ms.items()
    }
    return {"history_links": history_links, "cpu_ms": figures}


def describe(result: dict[str, Any]) -> list[str]:
    lines = [f"  {result['history_links']:,} links of history (ms of CPU per bundle; wall p50 includes fsyncs):"]
    for kind in KINDS:
        figure = result["cpu_ms"][kind]
        lines.append(f"    {kind:<22} p50 {figure['p50']:>7} p99 {figure['p99']:>7}  wall p50 {figure['wall_p50']}")
    return lines
