"""Sends performance snapshots to the hub: the signals' PublisherClient with a snapshot's frame and a pace.

The same loop as the signals' sender (durable outbox, one message at a time, the same `u` and `d` on every
retry so the hub's dedup on `u` stores each snapshot once), on its own /cable connection:
- the frame is a publish command with data.topic "p", signed over {"d", "i", "p": snapshot, "u"} when a
  signing key is set (core/performance.py); the hub acks it without q;
- snapshots leave at most one per `pace_s` (the hub's bound, 10 s by default): a backlog kept through an
  outage drains at the hub's pace instead of being refused. A `rate_limited` nack (another process of the
  same strategy reported meanwhile) is retried with backoff like a signal's.
"""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from ..core import performance
from .outbox import OutboxItem
from .performance_outbox import PerformanceOutbox
from .publisher_client import PublisherClient

DEFAULT_PACE_S = 10.0


class PerformancePublisher(PublisherClient):
    def __init__(self, hub_url: str, publish_secret: str, strategy_id: str, outbox: PerformanceOutbox, *,
                 pace_s: float = DEFAULT_PACE_S, **kwargs: Any) -> None:
        super().__init__(hub_url, publish_secret, strategy_id, outbox, **kwargs)
        self.pace_s = pace_s
        self._next_send = 0.0  # loop time before which no snapshot leaves

    async def publish(self, bundle: dict[str, Any]) -> str:
        """Store one snapshot (the wire object, core.performance.snapshot_dict) durably, then wake the sender."""
        u = await self.outbox.aenqueue(self.strategy_id, bundle)  # PerformanceOutbox validates it
        self.stats.published += 1
        self._wake.set()
        return u

    def _frame(self, item: OutboxItem) -> str:
        assert self.feed_id is not None
        g = (performance.sign(self._private_key, item.d, self.strategy_id, item.bundle, item.u)
             if self._private_key is not None else None)
        return performance.build_command(self.feed_id, item.bundle, item.u, item.d, g)

    async def _send_one(self, ws: aiohttp.ClientWebSocketResponse, item: OutboxItem, reader: asyncio.Task[None]) -> bool:
        loop = asyncio.get_running_loop()
        wait = self._next_send - loop.time()
        if wait > 0:  # this link carries snapshots only: waiting here holds up no signal
            done, _ = await asyncio.wait({reader}, timeout=wait)
            if done:
                raise ConnectionResetError("link closed while pacing")
        try:
            return await super()._send_one(ws, item, reader)
        finally:
            self._next_send = loop.time() + self.pace_s


