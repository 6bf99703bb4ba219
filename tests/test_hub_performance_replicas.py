"""Track records with two hub replicas on one PostgreSQL database: snapshots published through one replica,
the same figures served by the other (JSON and page), figures refreshed on both after a new snapshot, and
the one-snapshot-per-interval bound held across replicas."""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    admin_create_follower,
    admin_create_strategy,
    recv_json,
    ws_connect,
)
from octobot_signals.core import performance, protocol
from octobot_signals.hub.performance_service import PerformanceSettings
from octobot_signals.hub.server import HubHandle, start_hub
from pg_helpers import PgServer, pg_server  # noqa: F401  (fixture)

TIMEOUT = aiohttp.ClientTimeout(total=10)


class Pair:
    def __init__(self, a: HubHandle, b: HubHandle, session: aiohttp.ClientSession) -> None:
        self.a, self.b, self.session = a, b, session


async def open_pair(tmp_path: Path, url: str, interval: float) -> tuple[HubHandle, HubHandle]:
    settings = PerformanceSettings(min_interval_s=interval)
    a = await start_hub("127.0.0.1", 0, tmp_path / "a", admin_token=DEFAULT_ADMIN_TOKEN, store_url=url,
                        performance=settings)
    b = await start_hub("127.0.0.1", 0, tmp_path / "b", admin_token=DEFAULT_ADMIN_TOKEN, store_url=url,
                        performance=settings)
    return a, b


@pytest_asyncio.fixture
async def pair(tmp_path: Path, pg_server: PgServer) -> AsyncIterator[Pair]:  # noqa: F811
    a, b = await open_pair(tmp_path, pg_server.create_database(), 0.0)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            yield Pair(a, b, session)
    finally:
        await a.stop()
        await b.stop()


def frame(strategy: dict[str, Any], private_key: str, t: float, equity: str, flow: str | None = None) -> str:
    value: dict[str, Any] = {"identifier": strategy["id"], "t": t, "equity": equity, "currency": "USDT"}
    if flow:
        value["flow"] = flow
    u, d = uuid.uuid4().hex, round(time.time(), 3)
    return performance.build_command(strategy["feed_id"], value, u, d,
                                     performance.sign(private_key, d, strategy["id"], value, u))


async def figures(session: aiohttp.ClientSession, hub: HubHandle) -> dict[str, Any]:
    # the admin token: the amounts too (anyone else sees the relative figures only)
    async with session.get(f"{hub.base_url}/api/strategies/s1/performance",
                           headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}) as resp:
        assert resp.status == 200
        return await resp.json()


async def wait_known(hub: HubHandle, strategy_id: str) -> None:
    deadline = time.monotonic() + 5
    while strategy_id not in hub.state.strategies:
        assert time.monotonic() < deadline, "the replica never learned of the strategy"
        await asyncio.sleep(0.05)


async def test_the_other_replica_serves_the_same_figures(pair: Pair) -> None:
    private_key, public_key = protocol.generate_keypair()
    strategy = await admin_create_strategy(pair.a.base_url, DEFAULT_ADMIN_TOKEN, "s1", public_key=public_key)
    await wait_known(pair.b, "s1")
    await admin_create_follower(pair.b.base_url, DEFAULT_ADMIN_TOKEN, "s1")  # a copier, counted on both
    ws = await ws_connect(pair.session, pair.a.base_url, strategy["publish_secret"])
    now = time.time()
    # 1000 -> 1100 (+10 %) -> 1650 with a 500 deposit: (1650 - 500) / 1100 = 1.04545...; index 1.15
    for offset, equity, flow in ((-3600.0, "1000", None), (-1800.0, "1100", None), (-60.0, "1650", "500")):
        await ws.send_str(frame(strategy, private_key, now + offset, equity, flow))
        assert (await recv_json(ws))["type"] == "ack"
    on_a, on_b = await figures(pair.session, pair.a), await figures(pair.session, pair.b)
    assert on_a == on_b
    assert on_b["figures"]["roi_all"] == "0.15" and on_b["signed"] == "all" and on_b["figures"]["copiers"] == 1
    async with pair.session.get(f"{pair.b.base_url}/strategies/s1", headers={"Accept": "text/html"}) as resp:
        page = await resp.text()
    assert re.search(r'data-test="roi-all">\+15\.00 %<', page), page[:2000]
    assert "signed: every report verified" in page
    # a new snapshot through B: A's cached figures follow (keyed by the head row's version in the database)
    ws_b = await ws_connect(pair.session, pair.b.base_url, strategy["publish_secret"])
    await ws_b.send_str(frame(strategy, private_key, now - 1, "1495"))  # 1650 -> 1495: -9.39 %
    assert (await recv_json(ws_b))["type"] == "ack"
    again_a, again_b = await figures(pair.session, pair.a), await figures(pair.session, pair.b)
    assert again_a == again_b and again_a["points"] == 4
    assert again_a["figures"]["max_drawdown"] == "0.09393939"  # 1 - 1495 / 1650
    last = again_a["series"][-1]
    # index 1.15 x 1495 / 1650 = 1.04196969...
    assert {k: v for k, v in last.items() if k != "t"} == {"equity": "1495", "flow": "0", "fills": 0,
                                                          "index": "1.0419697"}


async def test_one_snapshot_per_interval_across_replicas(tmp_path: Path, pg_server: PgServer) -> None:  # noqa: F811
    a, b = await open_pair(tmp_path, pg_server.create_database(), 10.0)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            private_key, public_key = protocol.generate_keypair()
            strategy = await admin_create_strategy(a.base_url, DEFAULT_ADMIN_TOKEN, "s1", public_key=public_key)
            await wait_known(b, "s1")
            ws_a = await ws_connect(session, a.base_url, strategy["publish_secret"])
            ws_b = await ws_connect(session, b.base_url, strategy["publish_secret"])
            await ws_a.send_str(frame(strategy, private_key, time.time(), "1000"))
            assert (await recv_json(ws_a))["type"] == "ack"
            await ws_b.send_str(frame(strategy, private_key, time.time() + 1, "1001"))
            refused = await recv_json(ws_b)
            assert refused["type"] == "nack" and refused["message"].startswith(
                "rate_limited: at most one performance snapshot per 10 s for s1"), refused
    finally:
        await a.stop()
        await b.stop()
