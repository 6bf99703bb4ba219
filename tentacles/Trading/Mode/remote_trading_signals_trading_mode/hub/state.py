"""Shared state of one running hub: store, strategies cache, auth, fan-out, live connections."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from .auth import Authenticator, Principal
from .fanout import LocalFanout
from .limits import Limits
from .store import AsyncStore, Strategy

if TYPE_CHECKING:
    from .ws import FeedConnection


@dataclass
class HubState:
    store: AsyncStore
    auth: Authenticator
    hub_url: str
    fanout: LocalFanout = field(default_factory=LocalFanout)
    queue_size: int = 1000  # per-connection outgoing frames before a slow follower is dropped
    # The hub is the only writer of strategies, so an in-memory copy stays exact.
    strategies: dict[str, Strategy] = field(default_factory=dict)
    connections: set[FeedConnection] = field(default_factory=set)
    limits: Limits = field(default_factory=Limits)
    _publish_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def publish_lock(self, strategy_id: str) -> asyncio.Lock:
        # Serializes append + fan-out per strategy so live frames leave in q order.
        lock = self._publish_locks.get(strategy_id)
        if lock is None:
            lock = self._publish_locks[strategy_id] = asyncio.Lock()
        return lock

    def may_follow(self, principal: Principal, strategy: Strategy) -> bool:
        if principal.kind == "admin":
            return True
        if principal.kind == "publisher":
            return principal.strategy_id == strategy.id
        if principal.follower is None:
            return False
        return strategy.visibility == "public" or strategy.id in principal.follower.strategies

    def followable(self, principal: Principal) -> list[Strategy]:
        return [s for s in self.strategies.values() if self.may_follow(principal, s)]


STATE_KEY = web.AppKey("state", HubState)
