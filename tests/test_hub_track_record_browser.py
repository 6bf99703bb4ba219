"""Track records in a real browser (Debian chromium through Playwright, tests/browser/support.py): the
strategy page shows the figures, the curve and who reported them; short and empty histories read sensibly;
the strategies list ranks and filters. Saves docs/screenshots/strategy-track-record.png and strategy-list.png.

The 90-day history is written into the store with its own times (the /cable path refuses a snapshot older
than 7 days, see test_hub_performance.py); its last report and the short strategy's go through /cable."""
from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser import support
from hub_helpers import admin_create_follower, admin_create_strategy, recv_json, running_hub, ws_connect
from octobot_signals.core import performance, protocol
from octobot_signals.hub.server import HubHandle
from octobot_signals.hub.track_record import compute
from octobot_signals.hub.web.track_record_view import percent
from playwright.async_api import expect

DOCS = support.REPO / "docs" / "screenshots"
STEP_MS = 10_000
DAY = 86400
TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    if not support.CHROMIUM.is_file():
        support.cdn_modules()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHandle]:
    async with running_hub(tmp_path / "hub") as handle:
        yield handle


def trend_series(now: float) -> list[dict[str, Any]]:
    """90 days of a drifting, wiggling portfolio: +5000 USDT deposited on day 45, 2000 withdrawn on day 70."""
    reports = []
    capital = Decimal(10000)
    for day in range(91):
        flow = Decimal(5000) if day == 45 else Decimal(-2000) if day == 70 else Decimal(0)
        if day:
            growth = Decimal(str(round(1.0025 + 0.012 * math.sin(day / 4.0) - (0.03 if day == 58 else 0), 6)))
            capital = (capital * growth + flow).quantize(Decimal("0.01"))
        trades = [{"id": f"d{day}", "t": now - (90 - day) * DAY, "symbol": "BTC/USDT",
                   "pnl": str(Decimal(25) if day % 3 else Decimal(-18))}] if day % 2 else []
        reports.append({"identifier": "trend-btc", "t": now - (90 - day) * DAY, "equity": str(capital),
                        "currency": "USDT", "flow": str(flow), "fills": 4, "trades": trades})
    return reports


async def seed(hub: HubHandle, reports: list[dict[str, Any]], signed: bool) -> None:
    store = hub.state.store
    for report in reports:
        snapshot = performance.parse_snapshot(report)
        u = f"seed-{snapshot.t}"
        result = await store.run(lambda db, s=snapshot, u=u: db.add_performance(u, s, signed, s.t, 10.0))
        assert result.outcome == "stored", result


async def send_snapshot(hub: HubHandle, strategy: dict[str, Any], value: dict[str, Any], key: str | None) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
        u, d = uuid.uuid4().hex, round(time.time(), 3)
        g = performance.sign(key, d, strategy["id"], value, u) if key else None
        await ws.send_str(performance.build_command(strategy["feed_id"], value, u, d, g))
        answer = await recv_json(ws)
        assert answer == {"type": "ack", "u": u, "topic": "p"}, answer
        await ws.close()


async def shot(page: Any, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


async def ids_in_order(page: Any) -> list[str]:
    return [await card.get_attribute("data-id") for card in await page.locator("[data-test=strategy-card]").all()]


async def test_track_record_page_and_ranked_list(hub: HubHandle) -> None:
    now = time.time()
    key, public_key = protocol.generate_keypair()
    trend = await admin_create_strategy(hub.base_url, hub.admin_token, "trend-btc", name="BTC trend",
                                        public_key=public_key)
    short = await admin_create_strategy(hub.base_url, hub.admin_token, "grid-eth", name="ETH grid",
                                        pairs=["ETH/USDT"])
    await admin_create_strategy(hub.base_url, hub.admin_token, "fresh", name="Fresh idea")
    for _ in range(3):
        await admin_create_follower(hub.base_url, hub.admin_token, "trend-btc")
    await admin_create_follower(hub.base_url, hub.admin_token, "grid-eth")
    reports = trend_series(now - 60)
    await seed(hub, reports[:-1], signed=True)
    await send_snapshot(hub, trend, reports[-1], key)  # the live path, signed
    for offset, equity in ((3 * DAY, "5000"), (2 * DAY, "5100"), (DAY, "4950")):
        await seed(hub, [{"identifier": "grid-eth", "t": now - offset, "equity": equity, "currency": "USDT"}],
                   signed=False)
    await send_snapshot(hub, short, {"identifier": "grid-eth", "t": now, "equity": "5200",
                                     "currency": "USDT"}, None)
    points = await hub.state.store.run(lambda db: db.performance_points("trend-btc"))
    expected = compute(points, await hub.state.store.run(lambda db: db.performance_trades("trend-btc")))
    csp_errors: list[str] = []
    async with support.browser() as b:
        page = await b.context.new_page()
        page.set_default_timeout(STEP_MS)
        page.on("console", lambda message: csp_errors.append(message.text)
                if "Content Security Policy" in message.text else None)
        journey = support.Journey("hub_track_record", pages=[page])
        try:
            async with journey.step("the strategy page shows the track record, its curve and who reported it") as step:
                await page.goto(f"{hub.base_url}/strategies/trend-btc")
                section = page.locator("[data-test=track-record]")
                await expect(section.locator("[data-test=history]")).to_have_text("90 days of history")
                assert await section.locator("[data-test=roi-30d]").text_content() == percent(expected.roi[30])
                assert await section.locator("[data-test=roi-90d]").text_content() == percent(expected.roi[90])
                assert await section.locator("[data-test=roi-all]").text_content() == percent(expected.roi_all)
                assert await section.locator("[data-test=mdd]").text_content() == percent(expected.max_drawdown,
                                                                                           signed=False)
                # 45 days with a closed trade, two in three of them winners (day % 3 != 0)
                assert (expected.trades, expected.wins) == (45, 30)
                assert await section.locator("[data-test=trades]").text_content() == "45"
                assert await section.locator("[data-test=win-rate]").text_content() == "66.67 %"
                assert await section.locator("[data-test=copiers]").text_content() == "3"
                assert await section.locator("[data-test=age]").text_content() == "90 days"
                curve = section.locator("svg[data-test=equity-curve] polyline.curve")
                assert len((await curve.get_attribute("points") or "").split()) == 91
                method = await section.locator("[data-test=method]").text_content() or ""
                assert "time-weighted" in method and "never profit or loss" in method
                signed = await section.locator("[data-test=signed]").text_content() or ""
                assert signed.startswith("signed: every report verified with the strategy's key")
                # the deposit (+5000 on day 45) is not profit: naive end / start would say far more
                naive = Decimal(reports[-1]["equity"]) / Decimal(reports[0]["equity"]) - 1
                assert expected.roi_all is not None and expected.roi_all < naive - Decimal("0.25")
                await section.scroll_into_view_if_needed()
                await shot(page, "strategy-track-record")
                step.saw = (f"ROI 30 d {percent(expected.roi[30])}, since first {percent(expected.roi_all)} "
                            f"(naive {percent(naive)}), MDD {percent(expected.max_drawdown, signed=False)}")
            async with journey.step("a short history and an empty one read sensibly") as step:
                await page.goto(f"{hub.base_url}/strategies/grid-eth")
                section = page.locator("[data-test=track-record]")
                await expect(section.locator("[data-test=history]")).to_have_text("3 days of history")
                assert await section.locator("[data-test=roi-7d]").text_content() == "—"
                assert await section.locator("[data-test=roi-all]").text_content() == "+4.00 %"
                assert await section.locator("[data-test=trades]").text_content() == "results not reported"
                assert await section.locator("[data-test=win-rate]").text_content() == "—"
                signed = await section.locator("[data-test=signed]").text_content() or ""
                assert signed.startswith("not signed")
                await page.goto(f"{hub.base_url}/strategies/fresh")
                await expect(page.locator("[data-test=no-performance]")).to_have_text("No performance reported yet.")
                assert await page.locator("svg[data-test=equity-curve]").count() == 0
                step.saw = "3 days of history, ROI 7 d —; fresh: no performance reported yet"
            async with journey.step("the list ranks by 30-day ROI, drawdown, copiers and age") as step:
                await page.goto(hub.base_url + "/")
                await page.select_option("[data-test=sort]", "roi30")
                await page.click("[data-test=apply]")
                await page.wait_for_url(f"{hub.base_url}/?sort=roi30*")
                # only trend-btc has 30 days; the others follow by name
                assert await ids_in_order(page) == ["trend-btc", "grid-eth", "fresh"]
                row = page.locator("[data-test=strategy-card][data-id=trend-btc]")
                assert await row.locator("[data-test=roi30]").text_content() == percent(expected.roi[30])
                assert await row.locator("[data-test=mdd]").text_content() == percent(expected.max_drawdown,
                                                                                       signed=False)
                assert await row.locator("[data-test=copiers]").text_content() == "3"
                fresh_row = page.locator("[data-test=strategy-card][data-id=fresh]")
                assert await fresh_row.locator("[data-test=row-history]").text_content() == "no performance reported yet"
                await shot(page, "strategy-list")
                await page.goto(hub.base_url + "/?sort=mdd")  # grid-eth fell 2.94 % at worst, trend-btc more
                assert await ids_in_order(page) == ["grid-eth", "trend-btc", "fresh"]
                await page.goto(hub.base_url + "/?sort=copiers")
                assert await ids_in_order(page) == ["trend-btc", "grid-eth", "fresh"]
                await page.goto(hub.base_url + "/?sort=newest")
                assert await ids_in_order(page) == ["fresh", "grid-eth", "trend-btc"]
                step.saw = "roi30, mdd, copiers and newest orders as expected; rows show ROI 30 d, MDD, copiers"
            async with journey.step("filters: 30 days of history, signed only; a bad parameter is refused") as step:
                await page.goto(hub.base_url + "/?min_days=30")
                assert await ids_in_order(page) == ["trend-btc"]
                await page.goto(hub.base_url + "/?sort=name&signed=1")
                assert await ids_in_order(page) == ["trend-btc"]
                response = await page.goto(hub.base_url + "/?sort=<script>")
                assert response is not None and response.status == 400
                assert "sort must be one of roi30, mdd, copiers, newest, name" in (await page.content())
                step.saw = "min_days=30 and signed=1 keep trend-btc; sort=<script> is a 400 naming the parameter"
            assert not csp_errors, csp_errors
        finally:
            print(journey.report())
