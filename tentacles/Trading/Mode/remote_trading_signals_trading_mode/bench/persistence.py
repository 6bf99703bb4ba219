"""Benchmark part 4, what durability costs on this machine: the floor under a copied order's CPU.

Two figures, each the process CPU (every thread) and the wall time of one operation, p50 over many:
- `round_trip`: the event loop hands a no-op to the follower's writer thread and waits for it. Any
  write that must be on disk before the next step (the write-ahead entry before an order is sent)
  pays at least this, because the event loop never writes itself;
- `write_ahead`: one write-ahead entry saved as the mode saves it before sending an order (a durable,
  fsynced SQLite commit on the writer thread).
A bundle that places an order pays one `write_ahead`; one that only cancels or edits pays neither
(its changes wait in memory for the next write, see follower/order_map.py `save_soon`).
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..demo.signal_bundles import BENCH_SYMBOL
from ..demo.stats import percentile, rounded
from ..feed import local_writer
from ..follower.order_map import OrderMap, PendingCreate

WARMUP = 50


async def _timed(operation: Callable[[int], Awaitable[Any]], samples: int) -> dict[str, Any]:
    cpu_ms: list[float] = []
    wall_ms: list[float] = []
    for index in range(WARMUP + samples):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        await operation(index)
        cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
        if index >= WARMUP:
            cpu_ms.append(cpu * 1000)
            wall_ms.append(wall * 1000)
    return {"cpu_p50": rounded(percentile(cpu_ms, 50)), "wall_p50": rounded(percentile(wall_ms, 50)),
            "n": samples}


async def persistence_costs(samples: int) -> dict[str, Any]:
    """{"round_trip": {...}, "write_ahead": {...}}: ms of CPU and wall per operation."""
    writer = local_writer.shared()

    async def round_trip(_index: int) -> None:
        await writer.run(int)

    with tempfile.TemporaryDirectory(prefix="octobot-signals-bench-persistence-") as tmp:
        order_map = OrderMap.load(Path(tmp) / "order_map.sqlite3")

        async def write_ahead(index: int) -> None:
            order_map.mark_pending(f"leader-{index}", PendingCreate(BENCH_SYMBOL, "buy", "buy_limit", "16000"))
            await order_map.save()

        try:
            return {"round_trip": await _timed(round_trip, samples),
                    "write_ahead": await _timed(write_ahead, samples)}
        finally:
            order_map.close_storage()


def describe(costs: dict[str, Any]) -> list[str]:
    trip, ahead = costs["round_trip"], costs["write_ahead"]
    return [
        "what durability costs here (ms, p50): "
        f"a wait on the writer thread {trip['cpu_p50']} CPU / {trip['wall_p50']} wall; "
        f"a write-ahead entry (fsynced) {ahead['cpu_p50']} CPU / {ahead['wall_p50']} wall",
        "  (each bundle that places an order pays one write-ahead entry; cancels and edits pay none)",
    ]
