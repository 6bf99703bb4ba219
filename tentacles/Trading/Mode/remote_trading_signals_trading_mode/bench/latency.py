"""Benchmark part 1: signal -> order latency through the whole product path.

PublisherClient (durable outbox) -> hub -> FollowerClient -> RemoteTradingSignalsTradingMode on a
simulated exchange. One sample = one published create bundle: from its publish time `d` (set when
it entered the outbox) to the follower's order being placed. Each create is followed by its cancel
so the follower's book stays small; signals are sent one after the other (no queueing in the figure).
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..demo.follower_bot import FollowerBot, follower_bot
from ..demo.hub_admin import create_follower_token, create_strategy
from ..demo.signal_bundles import BENCH_SYMBOL, bundle, new_order_id, order_content
from ..demo.stats import percentile, rounded
from ..feed.outbox import Outbox
from ..feed.publisher_client import PublisherClient
from ..simulator.sim_exchange import SimExchangeSpec

STRATEGY_ID = "bench-latency"
WARMUP = 5
APPLY_TIMEOUT_S = 10.0
PRICE = Decimal(20000)


async def _published_and_applied(publisher: PublisherClient, bot: FollowerBot, body: dict[str, Any], q: int) -> None:
    await publisher.publish(body)
    await bot.client.wait_for_q(STRATEGY_ID, q, APPLY_TIMEOUT_S)


async def signal_to_order(
    hub_url: str, admin_token: str, samples: int, data_dir: Path, write: Callable[[str], None],
) -> dict[str, Any]:
    strategy = await create_strategy(hub_url, admin_token, STRATEGY_ID, pairs=[BENCH_SYMBOL])
    token = await create_follower_token(hub_url, admin_token, STRATEGY_ID)
    spec = SimExchangeSpec(portfolio={"USDT": Decimal(100000), "BTC": Decimal(1)}, prices={BENCH_SYMBOL: PRICE})
    async with follower_bot("bench-follower", "portfolio_percent", spec, {}, hub_url=hub_url, token=token,
                            strategy_id=STRATEGY_ID, data_dir=data_dir / "follower") as bot:
        outbox = Outbox(data_dir / "publisher")
        publisher = PublisherClient(hub_url, strategy["publish_secret"], STRATEGY_ID, outbox)
        await publisher.start()
        try:
            q = 0
            for index in range(WARMUP + samples):
                if index == WARMUP:
                    bot.latencies_ms.clear()  # first connections, caches, JIT-less warm-up: not measured
                order_id = new_order_id()
                limit = str(PRICE * Decimal("0.8"))  # far below the market: rests, never fills
                create = bundle(STRATEGY_ID, order_content("create", order_id, price=limit, current=str(PRICE)))
                cancel = bundle(STRATEGY_ID, order_content("cancel", order_id, price=limit, current=str(PRICE)))
                q += 1
                await _published_and_applied(publisher, bot, create, q)
                q += 1
                await _published_and_applied(publisher, bot, cancel, q)
                if index >= WARMUP and (index - WARMUP + 1) % 50 == 0:
                    write(f"  signal->order: {index - WARMUP + 1}/{samples} samples")
        finally:
            await publisher.stop()
            outbox.close()
        values = list(bot.latencies_ms)
        skipped = [o for o in bot.outcomes if not o.applied]
    if skipped:
        write(f"  WARNING: {len(skipped)} signals not applied, e.g. {skipped[0].log_line()}")
    return {"p50": rounded(percentile(values, 50)), "p99": rounded(percentile(values, 99)), "n": len(values)}


