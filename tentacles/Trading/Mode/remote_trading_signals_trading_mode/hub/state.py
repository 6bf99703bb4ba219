"""Shared state of one running hub: store, strategies cache, auth, fan-out, live connections."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from .auth import Authenticator, Principal
from .fanout import LocalFanout
from .limits import Limits
from .store import AsyncStore, Strategy


class LiveConnection(Protocol):
    """What the hub's modules use of a live `/cable` connection (ws.FeedConnection), so that they need not
    import the WebSocket endpoint: who it is, its upgrade request, its hub, and closing it."""

    principal: Principal
    request: web.Request
    state: HubState

    def close_soon(self, code: int, reason: str) -> None: ...


@dataclass
class HubState:
    store: AsyncStore
    auth: Authenticator
    hub_url: str
    fanout: LocalFanout = field(default_factory=LocalFanout)
    queue_size: int = 1000  # per-connection outgoing frames before a slow follower is dropped
    # The hub is the only writer of strategies, so an in-memory copy stays exact.
    strategies: dict[str, Strategy] = field(default_factory=dict)
    connections: set[LiveConnection] = field(default_factory=set)
    limits: Limits = field(default_factory=Limits)
    _publish_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def publish_lock(self, strategy_id: str) -> asyncio.Lock:
        # Serializes append + fan-out per strategy so live frames leave in q order.
        lock = self._publish_locks.get(strategy_id)
        if lock is None:
            lock = self._publish_locks[strategy_id] = asyncio.Lock()
        return lock

    def may_follow(self, principal: Principal, strategy: Strategy) -> bool:
        """May this principal read the strategy (history, profile link, /cable, MQTT)?

        - admin: every strategy; a publish secret: its own strategy only.
        - a follower token, live strategy: a public one always, a private one when the token is a member.
        - a follower token, ARCHIVED strategy: only a member. Archived means "no new followers", and the
          data model's only record of "already a follower" is a membership: the hub writes one when it
          creates a token for a strategy (admin API, web subscription), and refuses both once the strategy
          is archived. A token that could merely read a public strategy (no membership) is not its
          follower: the hub keeps no trace of which public strategies a token ever read, so it is cut off
          like any newcomer (an archived strategy publishes nothing more; its members keep the history).
        """
        if principal.kind == "admin":
            return True
        if principal.kind == "publisher":
            return principal.strategy_id == strategy.id
        if principal.follower is None:
            return False
        if strategy.id in principal.follower.strategies:
            return True
        return strategy.visibility == "public" and not strategy.archived

    def may_see(self, principal: Principal, strategy: Strategy) -> bool:
        """May this principal be told the strategy exists? Refusals to those who may not are "unknown strategy"
        (404, like an id nobody has), so a private id cannot be confirmed; a public strategy's existence is no
        secret, archived or not (the refusal then says why: 403)."""
        return strategy.visibility == "public" or self.may_follow(principal, strategy)

    def follow_refusal(self, principal: Principal, strategy_id: str) -> str | None:
        """Why this principal may not follow `strategy_id` (None: it may), worded so an unknown id and a
        private strategy it may not see read the same."""
        strategy = self.strategies.get(strategy_id)
        if strategy is None or not self.may_see(principal, strategy):
            return f"unknown strategy {strategy_id}"
        if self.may_follow(principal, strategy):
            return None
        if strategy.archived:
            return f"forbidden: strategy {strategy_id} is archived: it takes no new followers"
        return f"forbidden: not a follower of {strategy_id}"

    def followable(self, principal: Principal) -> list[Strategy]:
        return [s for s in self.strategies.values() if self.may_follow(principal, s)]


STATE_KEY = web.AppKey("state", HubState)
