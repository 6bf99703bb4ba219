"""`octobot-signals demo --json`: the whole loop end to end, as a user runs it (a subprocess)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-m", "octobot_signals.cli.main"]
# BTC/USDT amounts on the simulated binance market are rounded to 1e-8; allow a few steps
MARKET_STEP = Decimal("0.00000001")
TOP_KEYS = {"published", "hub", "leader", "followers", "latency_ms", "track_record"}
LEADER_ORDER_KEYS = {"order_id", "side", "type", "quantity", "price", "status"}
FOLLOWER_KEYS = {"name", "sizing", "portfolio_start", "last_applied_q", "duplicates", "copies", "skipped"}
COPY_KEYS = {"leader_order_id", "local_order_id", "side", "type", "quantity", "leader_quantity", "price", "status"}


def run_cli(args: list[str], tmp_path: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # every temp dir the demo makes lands here
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    tmp_path = tmp_path_factory.mktemp("demo")
    proc = run_cli(["demo", "--json", "--seconds", "15"], tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]), proc.stdout, tmp_path


def test_json_contract_shape(demo_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = demo_run
    assert set(summary) == TOP_KEYS
    assert set(summary["hub"]) == {"last_q"}
    assert set(summary["leader"]) == {"portfolio_start", "orders"}
    assert set(summary["latency_ms"]) == {"p50", "p99"}
    for asset in summary["leader"]["portfolio_start"].values():
        assert set(asset) == {"total", "available"}
        Decimal(asset["total"])  # decimal strings
    for order in summary["leader"]["orders"]:
        assert set(order) == LEADER_ORDER_KEYS
        assert isinstance(order["quantity"], str) and Decimal(order["quantity"]) > 0
    assert len(summary["followers"]) == 2
    for follower in summary["followers"]:
        assert set(follower) == FOLLOWER_KEYS
        for copy in follower["copies"]:
            assert set(copy) == COPY_KEYS
            assert isinstance(copy["quantity"], str) and Decimal(copy["quantity"]) > 0
        for skipped in follower["skipped"]:
            assert set(skipped) == {"leader_order_id", "reason"}
    assert summary["latency_ms"]["p50"] > 0 and summary["latency_ms"]["p99"] >= summary["latency_ms"]["p50"]


def test_every_leader_order_copied_or_skipped_with_reason(demo_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = demo_run
    leader_orders = summary["leader"]["orders"]
    # the script: 3 grid levels, market entry + stop-loss + take-profit, one more sell limit
    assert len(leader_orders) == 7
    assert {o["type"] for o in leader_orders} >= {"buy_limit", "sell_limit", "buy_market", "stop_loss"}
    for follower in summary["followers"]:
        copied = {c["leader_order_id"] for c in follower["copies"]}
        reasons = {s["leader_order_id"]: s["reason"] for s in follower["skipped"]}
        for order in leader_orders:
            assert order["order_id"] in copied or reasons.get(order["order_id"]), (follower["name"], order)
        for reason in reasons.values():
            assert reason.strip()


def test_no_follower_misses_or_duplicates(demo_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = demo_run
    last_q = summary["hub"]["last_q"]
    assert last_q >= 6  # one bundle per script step at least
    assert summary["published"] == last_q  # every bundle the leader published was journaled once
    for follower in summary["followers"]:
        assert follower["last_applied_q"] == last_q
        assert follower["duplicates"] == 0
        leader_ids = [c["leader_order_id"] for c in follower["copies"]]
        local_ids = [c["local_order_id"] for c in follower["copies"]]
        assert len(leader_ids) == len(set(leader_ids))
        assert len(local_ids) == len(set(local_ids))


def test_portfolio_percent_copies_are_proportional(demo_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = demo_run
    leader = summary["leader"]
    follower = next(f for f in summary["followers"] if f["sizing"] == "portfolio_percent")
    ratio = Decimal(follower["portfolio_start"]["USDT"]["total"]) / Decimal(leader["portfolio_start"]["USDT"]["total"])
    assert ratio != 1  # different portfolios, or the check proves nothing
    copies = {c["leader_order_id"]: c for c in follower["copies"]}
    buy_limits = [o for o in leader["orders"] if o["type"] == "buy_limit"]
    assert len(buy_limits) == 2
    for order in buy_limits:  # both sized before any fill changed either portfolio
        copy = copies[order["order_id"]]
        expected = Decimal(order["quantity"]) * ratio
        assert abs(Decimal(copy["quantity"]) - expected) <= 2 * MARKET_STEP, (copy, expected)
        assert Decimal(copy["leader_quantity"]) == Decimal(order["quantity"])


def test_other_sizing_follower_uses_its_own_rule(demo_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = demo_run
    follower = next(f for f in summary["followers"] if f["sizing"] == "fixed_quote_amount")
    # buy-1 was later moved to another price (same quantity): check the unmoved buys
    buys = [c for c in follower["copies"] if c["type"] == "buy_market" or (c["type"] == "buy_limit"
                                                                           and c["status"] == "canceled")]
    assert len(buys) == 2
    for copy in buys:  # 100 USDT per order, rounded down to the market step
        cost = Decimal(copy["quantity"]) * Decimal(copy["price"])
        assert Decimal(100) - Decimal(copy["price"]) * 2 * MARKET_STEP <= cost <= Decimal(100), copy


def test_live_log_and_cleanup(demo_run: tuple[dict[str, Any], str, Path]) -> None:
    _, stdout, tmp_path = demo_run
    assert "leader     | opened a grid" in stdout
    assert "follower-1 | q=1 create" in stdout and "follower-2 | q=1 create" in stdout
    assert "filled" in stdout  # the price path fills resting orders
    assert list(tmp_path.iterdir()) == []  # hub data, follower state, simulated exchanges: all removed


def test_the_leader_reports_a_signed_track_record(demo_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, stdout, _ = demo_run
    track = summary["track_record"]
    # at start, every 3 s and after fills over a 15 s run; every report verified with the strategy's key
    assert track["points"] >= 3 and track["signed"] == "all" and track["copiers"] == 2
    assert track["fills"] >= 3 and track["roi_all"] is not None and Decimal(track["max_drawdown"]) >= 0
    assert "hub        | track record: " in stdout and "/strategies/demo-grid" in stdout


def test_unusable_arguments_exit_2(tmp_path: Path) -> None:
    proc = run_cli(["demo", "--followers", "0"], tmp_path, timeout=30)
    assert proc.returncode == 2
    assert "--followers" in proc.stderr
    proc = run_cli(["demo", "--seconds", "600"], tmp_path, timeout=30)
    assert proc.returncode == 2
    assert "--seconds" in proc.stderr
