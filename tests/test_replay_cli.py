"""`octobot-signals replay` as a user runs it: a real subprocess on the hand-written example journal."""
from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

JOURNAL = Path(__file__).parent / "data" / "journal_example.jsonl"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "octobot_signals.cli.main", *args], capture_output=True,
                          text=True, timeout=120)


def test_replay_json_reports_every_order_and_a_summary():
    result = run("replay", str(JOURNAL), "--portfolio", "USDT=1000,BTC=0.1", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert [(r["order_id"], r["action"], r["result"]) for r in rows] == [
        ("leader-1", "create", "created"),
        ("leader-2", "create", "created"),
        ("leader-2-sl", "create", "created"),
        ("leader-1", "edit", "edited"),
        ("leader-3", "create", "rejected"),
        (None, None, "rejected"),
        ("leader-1", "create", "skipped"),
        ("leader-1", "cancel", "cancelled"),
    ]
    for row in rows:
        assert set(row) >= {"u", "q", "order_id", "action", "result", "reason", "orders"}
    assert "target_amount" in rows[4]["reason"]
    assert "duplicate" in rows[6]["reason"]
    # 10% of (1000 USDT / 20000) and 20% of it for the market order
    assert Decimal(rows[0]["orders"][0]["quantity"]) == Decimal("0.005")
    assert Decimal(rows[1]["orders"][0]["quantity"]) == Decimal("0.01")
    assert Decimal(rows[3]["orders"][0]["price"]) == Decimal("19200")
    assert summary["summary"] == {"created": 3, "edited": 1, "cancelled": 1, "skipped": 1, "rejected": 2}
    assert Decimal(summary["portfolio"]["USDT"]["total"]) == Decimal("800")
    assert [o["type"] for o in summary["open_orders"]] == ["stop_loss"]
    assert all(isinstance(o["quantity"], str) for o in summary["open_orders"])


def test_replay_table_and_settings():
    result = run("replay", str(JOURNAL), "--portfolio", "USDT=1000", "--set", "max_volume=1")
    assert result.returncode == 0, result.stderr
    assert "summary:" in result.stdout
    assert "leader-1" in result.stdout
    # max_volume=1: 1% of 1000/20000 = 0.0005 BTC per order
    assert "buy 0.0005 BTC/USDT buy_limit" in result.stdout


def test_replay_unusable_arguments_exit_2():
    assert run("replay", "/nonexistent/journal.jsonl").returncode == 2
    bad_set = run("replay", str(JOURNAL), "--set", "max_volume=500")
    assert bad_set.returncode == 2 and "max_volume" in bad_set.stderr
    unknown = run("replay", str(JOURNAL), "--set", "nope=1")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    bad_portfolio = run("replay", str(JOURNAL), "--portfolio", "USDT=lots")
    assert bad_portfolio.returncode == 2 and "--portfolio" in bad_portfolio.stderr
    bad_type = run("replay", str(JOURNAL), "--exchange-type", "options")
    assert bad_type.returncode == 2


async def test_replay_reads_the_hubs_history_export(tmp_path):
    """The hub's history endpoint (format=jsonl) is a journal `replay` accepts as is."""
    import aiohttp
    import signal_factory as sf
    from hub_helpers import admin_create_follower, admin_create_strategy, auth, running_hub
    from octobot_signals.feed.outbox import Outbox
    from octobot_signals.feed.publisher_client import PublisherClient

    async with running_hub(tmp_path / "hub") as hub:
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "exported")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "exported"))["token"]
        publisher = PublisherClient(hub.base_url, strategy["publish_secret"], "exported", Outbox(tmp_path / "out"))
        await publisher.start()
        try:
            for order_id, order_type, price in (("E1", "buy_limit", 19000.0), ("E2", "buy_market", 20000.0)):
                content = sf.order_content(order_id=order_id, order_type=order_type, limit_price=price,
                                           target_amount="10%", strategy="exported")
                await publisher.publish(sf.message(sf.signal(content), strategy="exported")["s"])
            content = sf.order_content("cancel", order_id="E1", order_type="buy_limit", strategy="exported")
            await publisher.publish(sf.message(sf.signal(content), strategy="exported")["s"])
            assert await publisher.flush(20)
        finally:
            await publisher.stop()
        async with aiohttp.ClientSession() as session:
            url = f"{hub.base_url}/api/strategies/exported/signals?after=0&format=jsonl"
            async with session.get(url, headers=auth(token)) as response:
                assert response.status == 200
                (tmp_path / "exported.jsonl").write_text(await response.text())
    result = run("replay", str(tmp_path / "exported.jsonl"), "--portfolio", "USDT=1000", "--price",
                 "BTC/USDT=20000", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["q"], r["order_id"], r["result"]) for r in rows[:-1]] == [
        (1, "E1", "created"), (2, "E2", "created"), (3, "E1", "cancelled")]
    assert rows[-1]["summary"]["created"] == 2
