"""The publisher reports performance: a simulated exchange's portfolio value, fills and closed trades go through
the performance outbox and its own /cable link to a real hub, signed; an old hub gets nothing; the bridge
starts the reporter whichever way it is configured."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import octobot_trading.enums as trading_enums
import octobot_trading.personal_data as personal_data
import pytest
from aiohttp import web
from bridge_helpers import restored_authenticator
from hub_helpers import DEFAULT_ADMIN_TOKEN, admin_create_strategy
from octobot_signals.core import protocol
from octobot_signals.feed import performance_reporter
from octobot_signals.feed.bridge import install_bridge, stop_bridge
from octobot_signals.feed.performance_outbox import PerformanceOutbox
from octobot_signals.feed.performance_publisher import PerformancePublisher
from octobot_signals.feed.performance_reporter import PerformanceReporter, interval_from_env
from octobot_signals.feed.portfolio_snapshot import PortfolioReader, portfolio_value
from octobot_signals.hub.performance_service import PerformanceSettings
from octobot_signals.hub.server import HubHandle, start_hub
from octobot_signals.simulator.sim_exchange import SimExchange, SimExchangeSpec, sim_exchange

SYMBOL = "BTC/USDT"
PORTFOLIO = {"USDT": Decimal(10000), "BTC": Decimal("0.5")}


@pytest.fixture(autouse=True)
def restore_authenticator() -> Iterator[None]:
    with restored_authenticator():
        yield


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHandle]:
    handle = await start_hub("127.0.0.1", 0, tmp_path / "hub", admin_token=DEFAULT_ADMIN_TOKEN,
                             performance=PerformanceSettings(min_interval_s=0.2))
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def sim() -> AsyncIterator[SimExchange]:
    async with sim_exchange(SimExchangeSpec(portfolio=PORTFOLIO, prices={SYMBOL: Decimal(20000)})) as exchange:
        yield exchange


async def market_buy(sim: SimExchange, quantity: str) -> None:
    trader = sim.exchange_manager.trader
    order = personal_data.BuyMarketOrder(trader)
    order.update(order_type=trading_enums.TraderOrderType.BUY_MARKET, symbol=SYMBOL, current_price=Decimal(20000),
                 quantity=Decimal(quantity), price=Decimal(20000))
    await trader.create_order(order)
    for _ in range(20):
        await asyncio.sleep(0)


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


async def test_the_portfolio_is_valued_in_its_reference_market(sim: SimExchange) -> None:
    # 10000 USDT + 0.5 BTC at the 20000 mark price
    assert portfolio_value(sim.exchange_manager) == (Decimal(20000), "USDT")
    reader = PortfolioReader("s1")
    first = reader.read(sim.exchange_manager, now=1_800_000_000)
    assert (first.equity, first.fills, first.flow) == (Decimal(20000), 0, 0)
    await market_buy(sim, "0.01")
    assert reader.new_fills(sim.exchange_manager) == 1
    second = reader.read(sim.exchange_manager, now=1_800_000_100)
    # 200 USDT spent on 0.01 BTC, minus the 0.1 % fee taken in BTC (0.00001 BTC = 0.2 USDT)
    assert second.fills == 1 and second.equity == Decimal("19999.8")
    assert reader.new_fills(sim.exchange_manager) == 0


async def test_reports_at_start_and_after_a_fill_signed_through_the_outbox(hub: HubHandle, sim: SimExchange,
                                                                            tmp_path: Path) -> None:
    private_key, public_key = protocol.generate_keypair()
    strategy = await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1", public_key=public_key)
    sender = PerformancePublisher(hub.base_url, strategy["publish_secret"], "s1", PerformanceOutbox(tmp_path / "bot"),
                                  private_key_b64=private_key, pace_s=0.3)
    reporter = PerformanceReporter(sender, lambda: sim.exchange_manager, interval_s=3600, poll_s=0.1, min_gap_s=0.3)
    store = hub.state.store
    reporter.start()
    try:
        head = await eventually(lambda: store.run(lambda db: db.performance_head("s1")))
        assert head is not None and head.points == 1 and head.signed_points == 1 and head.currency == "USDT"
        await market_buy(sim, "0.01")  # a fill: a report follows within min_gap + poll, not in an hour
        assert await eventually(lambda: store.run(lambda db: (db.performance_head("s1") or head).points == 2))
        points = await store.run(lambda db: db.performance_points("s1"))
        assert [p.equity for p in points] == [Decimal(20000), Decimal("19999.8")] and points[1].fills == 1
        assert await reporter.flush(5) and reporter.publisher.stats.rejected == 0
        assert await store.last_q("s1") == 0  # nothing in the signal journal
    finally:
        await reporter.stop()


async def test_snapshots_wait_in_the_outbox_while_the_hub_is_away(hub: HubHandle, sim: SimExchange,
                                                                  tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
    outbox_dir = tmp_path / "bot"
    first = PerformancePublisher(hub.base_url, strategy["publish_secret"], "s1", PerformanceOutbox(outbox_dir))
    reader = PortfolioReader("s1")
    from octobot_signals.core.performance import snapshot_dict

    u = await first.publish(snapshot_dict(reader.read(sim.exchange_manager)))  # never started: stays pending
    assert first.outbox.count_pending() == 1
    first.outbox.close()
    again = PerformancePublisher(hub.base_url, strategy["publish_secret"], "s1", PerformanceOutbox(outbox_dir))
    await again.start()
    try:
        assert await again.flush(10)
        item = again.outbox.get(u)
        assert item is not None and item.state == "acked" and item.q == 0
        assert (await hub.state.store.run(lambda db: db.performance_head("s1"))).points == 1  # type: ignore[union-attr]
    finally:
        await again.stop()
        again.outbox.close()


async def test_an_old_hub_gets_no_snapshot(sim: SimExchange, tmp_path: Path) -> None:
    app = web.Application()
    app.router.add_get("/api/info", lambda request: web.json_response({"protocol_version": 2}))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sender = PerformancePublisher(f"http://127.0.0.1:{port}", "ps_x", "s1", PerformanceOutbox(tmp_path / "bot"))
    reporter = PerformanceReporter(sender, lambda: sim.exchange_manager, poll_s=0.05)
    try:
        reporter.start()
        assert await eventually(lambda: asyncio.sleep(0, reporter.disabled), 5)
        assert "protocol 2" in (reporter.disabled or "") and sender.outbox.count_pending() == 0
    finally:
        await reporter.stop()
        await runner.cleanup()


def test_the_interval_setting_is_checked() -> None:
    assert interval_from_env({}) == 900 and interval_from_env({"OCTOBOT_SIGNALS_PERFORMANCE_INTERVAL": "0"}) == 0
    assert interval_from_env({"OCTOBOT_SIGNALS_PERFORMANCE_INTERVAL": "60"}) == 60
    for bad in ("5", "abc", "nan", "-1"):
        with pytest.raises(ValueError, match="OCTOBOT_SIGNALS_PERFORMANCE_INTERVAL"):
            interval_from_env({"OCTOBOT_SIGNALS_PERFORMANCE_INTERVAL": bad})


async def test_the_bridge_starts_a_reporter_with_its_publisher(hub: HubHandle, sim: SimExchange, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
    bridge = install_bridge(hub_url=hub.base_url, data_dir=tmp_path / "bot", publish_secret=strategy["publish_secret"],
                            publish_strategy="s1")
    try:
        reporter = bridge.performance_reporter
        assert isinstance(reporter, PerformanceReporter) and reporter.running  # configured inside the loop
        bridge.attach_exchange_manager(sim.exchange_manager)
        reporter.tune(poll_s=0.1)
        head = await eventually(lambda: hub.state.store.run(lambda db: db.performance_head("s1")))
        assert head is not None and head.points == 1
        # the same settings again keep the reporter; another strategy replaces it
        install_bridge(hub_url=hub.base_url, data_dir=tmp_path / "bot", publish_secret=strategy["publish_secret"],
                       publish_strategy="s1")
        assert bridge.performance_reporter is reporter
        assert performance_reporter.publishing_exchange(bridge) is sim.exchange_manager
    finally:
        await stop_bridge()
    assert bridge.performance_reporter is None and not reporter.running
