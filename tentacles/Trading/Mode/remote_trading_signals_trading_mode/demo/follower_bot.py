"""One demo follower: the real mode on its own simulated exchange, fed by its own FollowerClient."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..feed.follower_client import FollowerClient
from ..feed.state_store import FollowerState
from ..follower.outcome import Outcome, Result
from ..simulator.harness import FollowerHarness, follower_on_sim_exchange
from ..simulator.sim_exchange import SimExchangeSpec
from .orders_view import OrderTracker

SUBSCRIBE_TIMEOUT_S = 10.0
PLACED = (Result.CREATED, Result.EDITED)


@dataclass
class FollowerBot:
    name: str
    sizing: str  # human description, e.g. "portfolio_percent" or "fixed_quote_amount 100"
    harness: FollowerHarness
    client: FollowerClient
    tracker: OrderTracker
    portfolio_start: dict[str, dict[str, Decimal]]
    outcomes: list[Outcome] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    duplicates: int = 0  # messages that reached the mode twice (must stay 0)
    printed: int = 0  # outcomes already shown in the live log
    _seen_u: set[str] = field(default_factory=set)

    async def handle(self, message: dict[str, Any]) -> None:
        """FollowerClient handler: apply one feed message with the real mode, time the placed orders."""
        u = str(message.get("u"))
        if u in self._seen_u:
            self.duplicates += 1
        self._seen_u.add(u)
        outcomes = await self.harness.apply(message)
        self.tracker.snapshot()
        published_at = message.get("d")
        placed = [o.at for o in outcomes if o.result in PLACED and o.orders]
        if isinstance(published_at, int | float) and placed:
            # d is set when the leader's bundle entered its outbox: publish -> my first order placed
            # (the order map's durable save that follows is not part of it)
            self.latencies_ms.append((min(placed) - float(published_at)) * 1000)
        self.outcomes.extend(outcomes)

    def last_applied_q(self, strategy_id: str) -> int:
        return self.client.last_applied(strategy_id)

    def new_outcomes(self) -> list[Outcome]:
        fresh = self.outcomes[self.printed:]
        self.printed = len(self.outcomes)
        return fresh


@contextlib.asynccontextmanager
async def follower_bot(
    name: str, sizing: str, spec: SimExchangeSpec, overrides: Mapping[str, Any], *, hub_url: str, token: str,
    strategy_id: str, data_dir: Path,
) -> AsyncIterator[FollowerBot]:
    """A subscribed follower bot; its client, state file and exchange are stopped on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = {**overrides, "trading_strategy": strategy_id}
    async with follower_on_sim_exchange(spec, settings, data_dir=data_dir / "mode") as harness:
        state = FollowerState(data_dir / "feed")
        # replay_from_start: a demo follower joins before the first signal and must not skip any
        client = FollowerClient(hub_url, token, state, replay_from_start=True)
        bot = FollowerBot(name, sizing, harness, client, OrderTracker(harness.sim.exchange_manager),
                          harness.sim.portfolio())
        client.subscribe(strategy_id, bot.handle)
        try:
            await client.start()
            await client.wait_until_subscribed(SUBSCRIBE_TIMEOUT_S)
            yield bot
        finally:
            await client.stop()
            state.close()
