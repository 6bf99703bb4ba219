"""Benchmark parts 2 and 4: hub fan-out to N connected followers, hub memory per idle follower.

Followers are plain aiohttp WebSocket clients (one process, one session, many sockets) that only
timestamp what they receive. One round = one published signal: the round ends when every
follower received it. delivered_per_s = deliveries / time spent in rounds (publish -> last
delivery); p99 is over every single delivery's latency (receive time - the message's `d`).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from ..core import protocol
from ..demo.hub_admin import create_follower_token, create_strategy
from ..demo.signal_bundles import BENCH_SYMBOL, bundle, new_order_id, order_content
from ..demo.stats import percentile, rounded
from .hub import HubSubprocess

STRATEGY_ID = "bench-fanout"
CONNECT_BATCH = 50
CONNECT_TIMEOUT_S = 20.0
ROUND_TIMEOUT_S = 30.0
IDLE_SETTLE_S = 1.0


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Round:
    """Deliveries of the current signal."""

    def __init__(self, u: str, expected: int) -> None:
        self.u = u
        self.expected = expected
        self.received = 0
        self.done = asyncio.Event()


class FollowerFleet:
    def __init__(self, session: aiohttp.ClientSession, ws_url: str, token: str) -> None:
        self.session = session
        self.ws_url = ws_url
        self.token = token
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task[None]] = []
        self.latencies_ms: list[float] = []
        self.round: Round | None = None

    async def _connect_one(self) -> None:
        ws = await self.session.ws_connect(self.ws_url, headers=_auth(self.token), autoping=True,
                                           timeout=aiohttp.ClientWSTimeout(ws_close=5))
        self.sockets.append(ws)
        await _expect(ws, "welcome")
        await ws.send_str(protocol.build_subscribe_command([STRATEGY_ID], None))
        await _expect(ws, "confirm_subscription")
        self.readers.append(asyncio.get_running_loop().create_task(self._read(ws)))

    async def connect(self, count: int) -> None:
        for start in range(0, count, CONNECT_BATCH):
            batch = [self._connect_one() for _ in range(min(CONNECT_BATCH, count - start))]
            await asyncio.wait_for(asyncio.gather(*batch), CONNECT_TIMEOUT_S)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.time()
            frame = json.loads(msg.data)
            message = frame.get("message")
            current = self.round
            if isinstance(message, dict) and current is not None and message.get("u") == current.u:
                self.latencies_ms.append((now - float(message["d"])) * 1000)
                current.received += 1
                if current.received >= current.expected:
                    current.done.set()

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await asyncio.gather(*(asyncio.wait_for(ws.close(), 5) for ws in self.sockets), return_exceptions=True)
        self.sockets.clear()
        self.readers.clear()


async def _expect(ws: aiohttp.ClientWebSocketResponse, frame_type: str) -> dict[str, Any]:
    while True:
        msg = await ws.receive(timeout=CONNECT_TIMEOUT_S)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"expected {frame_type}, got {msg.type}")
        frame = json.loads(msg.data)
        if frame.get("type") == frame_type:
            return frame
        if frame.get("type") != "ping":
            raise RuntimeError(f"expected {frame_type}, got {str(frame)[:200]}")


class RawPublisher:
    """A publish-secret connection sending publish commands and draining the acks."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, strategy_id: str, secret: str) -> None:
        self.session = session
        self.base_url = base_url
        self.strategy_id = strategy_id
        self.secret = secret
        self.feed_id = ""
        self.acks = 0
        self.acked = asyncio.Event()
        self.ack_target = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        url = f"{self.base_url}/api/v2/storefront/feeds/id/{self.strategy_id}"
        async with self.session.get(url, headers=_auth(self.secret), timeout=aiohttp.ClientTimeout(total=10)) as resp:
            self.feed_id = (await resp.json())["feed_id"]
        ws_url = self.base_url.replace("http://", "ws://", 1) + protocol.WS_PATH
        self.ws = await self.session.ws_connect(ws_url, headers=_auth(self.secret),
                                                timeout=aiohttp.ClientWSTimeout(ws_close=5))
        await _expect(self.ws, "welcome")
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT and '"ack"' in msg.data:
                self.acks += 1
                if self.acks >= self.ack_target:
                    self.acked.set()

    async def publish(self, body: dict[str, Any]) -> str:
        assert self.ws is not None
        u = uuid.uuid4().hex
        await self.ws.send_str(protocol.build_publish_command(self.feed_id, body, u, time.time(), None))
        return u

    async def wait_acks(self, count: int, timeout: float) -> None:
        self.ack_target = count
        if self.acks < count:
            self.acked.clear()
            await asyncio.wait_for(self.acked.wait(), timeout)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)


def _signal() -> dict[str, Any]:
    return bundle(STRATEGY_ID, order_content("create", new_order_id(), price="19000", current="20000"))


async def fanout(
    hub: HubSubprocess, sizes: list[int], rounds_for: Callable[[int], int], write: Callable[[str], None],
) -> tuple[list[dict[str, Any]], float | None]:
    """[{followers, delivered_per_s, p99_ms}], and the hub's RSS per idle follower (kB) at the largest size."""
    strategy = await create_strategy(hub.base_url, hub.admin_token, STRATEGY_ID, pairs=[BENCH_SYMBOL])
    token = await create_follower_token(hub.base_url, hub.admin_token, STRATEGY_ID)
    ws_url = hub.base_url.replace("http://", "ws://", 1) + protocol.WS_PATH
    results: list[dict[str, Any]] = []
    rss_per_follower: float | None = None
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        publisher = RawPublisher(session, hub.base_url, STRATEGY_ID, strategy["publish_secret"])
        await publisher.open()
        published = 0
        try:
            for size in sizes:
                fleet = FollowerFleet(session, ws_url, token)
                try:
                    rss_before = hub.rss_kb()
                    started = time.monotonic()
                    await fleet.connect(size)
                    write(f"  fan-out: {size} followers connected and subscribed in {time.monotonic() - started:.1f} s")
                    if size == max(sizes):
                        await asyncio.sleep(IDLE_SETTLE_S)
                        rss_per_follower = (hub.rss_kb() - rss_before) / size
                        write(f"  hub memory: {rss_per_follower:.1f} kB RSS per idle follower connection")
                    busy = 0.0
                    rounds = rounds_for(size)
                    for _ in range(rounds):
                        fleet.round = Round("", size)
                        round_started = time.monotonic()
                        fleet.round.u = await publisher.publish(_signal())
                        published += 1
                        await asyncio.wait_for(fleet.round.done.wait(), ROUND_TIMEOUT_S)
                        busy += time.monotonic() - round_started
                    await publisher.wait_acks(published, ROUND_TIMEOUT_S)
                    deliveries = len(fleet.latencies_ms)
                    result = {"followers": size, "delivered_per_s": round(deliveries / busy) if busy else None,
                              "p99_ms": rounded(percentile(fleet.latencies_ms, 99))}
                    results.append(result)
                    write(f"  fan-out: {size} followers x {rounds} signals: {result['delivered_per_s']} deliveries/s, "
                          f"p50 {rounded(percentile(fleet.latencies_ms, 50))} ms, p99 {result['p99_ms']} ms")
                finally:
                    await fleet.close()
        finally:
            await publisher.close()
    return results, rss_per_follower
