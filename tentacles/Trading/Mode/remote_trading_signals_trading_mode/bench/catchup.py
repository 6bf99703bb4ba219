"""Benchmark part 3: a follower that missed N signals catches up (resume + replay).

N signals are journaled while the follower is away; then a FollowerClient starts with its saved
position (q=0) and the clock runs until its handler has seen q=N, in order.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from ..demo.hub_admin import create_follower_token, create_strategy
from ..demo.signal_bundles import BENCH_SYMBOL, bundle, new_order_id, order_content
from ..feed.follower_client import FollowerClient
from ..feed.state_store import FollowerState
from .fanout import RawPublisher

STRATEGY_ID = "bench-catchup"
PUBLISH_TIMEOUT_S = 60.0
CATCH_UP_TIMEOUT_S = 60.0


async def catch_up(hub_url: str, admin_token: str, count: int, data_dir: Path, write: Callable[[str], None]) -> float:
    """Seconds from the follower's start to its handler having applied q=count."""
    strategy = await create_strategy(hub_url, admin_token, STRATEGY_ID, pairs=[BENCH_SYMBOL])
    token = await create_follower_token(hub_url, admin_token, STRATEGY_ID)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        publisher = RawPublisher(session, hub_url, STRATEGY_ID, strategy["publish_secret"])
        await publisher.open()
        try:
            for _ in range(count):
                await publisher.publish(bundle(STRATEGY_ID, order_content("create", new_order_id(), price="19000",
                                                                          current="20000")))
            await publisher.wait_acks(count, PUBLISH_TIMEOUT_S)
        finally:
            await publisher.close()
    write(f"  catch-up: {count} signals journaled while the follower was away")

    state = FollowerState(data_dir / "catchup-follower")
    state.set_last_q(STRATEGY_ID, 0)  # it knew the strategy before the signals were published
    done = asyncio.Event()
    seen: list[int] = []

    async def handler(message: dict[str, Any]) -> None:
        seen.append(int(message["q"]))
        if message["q"] >= count:
            done.set()

    client = FollowerClient(hub_url, token, state)
    client.subscribe(STRATEGY_ID, handler)
    started = time.monotonic()
    try:
        await client.start()
        await asyncio.wait_for(done.wait(), CATCH_UP_TIMEOUT_S)
        elapsed = time.monotonic() - started
    finally:
        await client.stop()
        state.close()
    if seen != list(range(1, count + 1)):
        write(f"  WARNING: catch-up order/coverage broken: {len(seen)} applied, first {seen[:5]}")
    write(f"  catch-up: {count} missed signals applied in order in {elapsed:.3f} s "
          f"(history requests: {client.stats.history_requests})")
    return elapsed
