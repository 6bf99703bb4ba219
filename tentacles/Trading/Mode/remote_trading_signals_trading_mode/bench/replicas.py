"""Benchmark part 5: fan-out across hub replicas on one PostgreSQL database, and each hub's idle memory.

A throwaway PostgreSQL 15 (chaos/pg.py, the chaos run's: Unix socket only) and N hub processes on it; the followers are
split evenly over the replicas, the publisher talks to replica 0 only, so every delivery on the other
replicas crossed the database (LISTEN/NOTIFY wake-up, then a journal read). Same rounds and figures as the
single-hub fan-out (bench/fanout.py).
"""
from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from ..chaos import pg as chaos_pg
from ..core import protocol
from ..demo.hub_admin import create_follower_token, create_strategy
from ..demo.signal_bundles import BENCH_SYMBOL
from ..demo.stats import percentile, rounded
from .fanout import ROUND_TIMEOUT_S, STRATEGY_ID, FollowerFleet, RawPublisher, Round, _signal
from .hub import HubSubprocess

REPLICA_SYNC_S = 2.0  # a strategy created on replica 0 reaches the others within the 1.5 s poll at worst


async def fanout_replicas(sizes: list[int], replicas: int, rounds_for: Callable[[int], int], tmp: Path,
                          write: Callable[[str], None]) -> dict[str, Any]:
    """{"store", "replicas", "hub_idle_rss_kb": [...], "fanout": [{followers, delivered_per_s, p99_ms}]}."""
    reason = chaos_pg.unavailable_reason()
    if reason is not None:
        write(f"  fan-out across replicas skipped: {reason}")
        return {"store": "postgresql", "replicas": replicas, "skipped": reason}
    server = chaos_pg.ChaosPostgres()
    await server.start()
    admin_token = secrets.token_urlsafe(32)
    hubs = [HubSubprocess(tmp / f"replica-{index}", store_url=server.url(), admin_token=admin_token)
            for index in range(replicas)]
    try:
        for hub in hubs:
            await hub.start()
        idle_rss = [hub.rss_kb() for hub in hubs]
        write(f"  {replicas} hub replicas on PostgreSQL, idle RSS {', '.join(f'{kb / 1024:.1f} MB' for kb in idle_rss)}")
        results = await _rounds(hubs, sizes, rounds_for, write)
    finally:
        for hub in hubs:
            hub.stop()
        await server.stop()
    return {"store": "postgresql", "replicas": replicas, "hub_idle_rss_kb": idle_rss, "fanout": results}


async def _rounds(hubs: list[HubSubprocess], sizes: list[int], rounds_for: Callable[[int], int],
                  write: Callable[[str], None]) -> list[dict[str, Any]]:
    first = hubs[0]
    strategy = await create_strategy(first.base_url, first.admin_token, STRATEGY_ID, pairs=[BENCH_SYMBOL])
    token = await create_follower_token(first.base_url, first.admin_token, STRATEGY_ID)
    await asyncio.sleep(REPLICA_SYNC_S)
    results: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        publisher = RawPublisher(session, first.base_url, STRATEGY_ID, strategy["publish_secret"])
        await publisher.open()
        published = 0
        try:
            for size in sizes:
                fleets = [FollowerFleet(session, hub.base_url.replace("http://", "ws://", 1) + protocol.WS_PATH, token)
                          for hub in hubs]
                shares = [size // len(hubs) + (1 if index < size % len(hubs) else 0) for index in range(len(hubs))]
                try:
                    for fleet, share in zip(fleets, shares, strict=True):
                        await fleet.connect(share)
                    busy = 0.0
                    rounds = rounds_for(size)
                    for _ in range(rounds):
                        for fleet, share in zip(fleets, shares, strict=True):
                            fleet.round = Round("", share)
                        round_started = time.monotonic()
                        u = await publisher.publish(_signal())
                        for fleet in fleets:
                            assert fleet.round is not None
                            fleet.round.u = u
                        published += 1
                        await asyncio.wait_for(asyncio.gather(*(fleet.round.done.wait() for fleet in fleets
                                                                if fleet.round is not None and fleet.round.expected)),
                                               ROUND_TIMEOUT_S)
                        busy += time.monotonic() - round_started
                    await publisher.wait_acks(published, ROUND_TIMEOUT_S)
                    latencies = [ms for fleet in fleets for ms in fleet.latencies_ms]
                    result = {"followers": size, "delivered_per_s": round(len(latencies) / busy) if busy else None,
                              "p99_ms": rounded(percentile(latencies, 99))}
                    results.append(result)
                    write(f"  fan-out over {len(hubs)} replicas: {size} followers x {rounds} signals: "
                          f"{result['delivered_per_s']} deliveries/s, p50 {rounded(percentile(latencies, 50))} ms, "
                          f"p99 {result['p99_ms']} ms")
                finally:
                    for fleet in fleets:
                        await fleet.close()
        finally:
            await publisher.close()
    return results
