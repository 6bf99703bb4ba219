"""Follower risk controls through the real mode on the offline simulated exchange.

Each control limits new entries only (exits, edits and cancels always apply) and says why it skipped
or shrank an order.
"""
from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import octobot_trading.enums as trading_enums
import octobot_trading.personal_data as personal_data
import signal_factory as sf
from follower_helpers import only
from octobot_signals import RemoteTradingSignalsTradingMode
from octobot_signals.simulator.harness import follower_on_sim_exchange, trading_config_with
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

BTC, ETH = "BTC/USDT", "ETH/USDT"
JOURNAL = Path(__file__).parent / "data" / "journal_example.jsonl"


def spec(portfolio: dict[str, str], prices: dict[str, str] | None = None) -> SimExchangeSpec:
    return SimExchangeSpec(portfolio={k: Decimal(v) for k, v in portfolio.items()},
                           prices={k: Decimal(v) for k, v in (prices or {BTC: "20000"}).items()})


def buy_limit(order_id: str, share: str = "10%", symbol: str = BTC, price: float = 20000.0):
    return sf.create(order_id=order_id, symbol=symbol, order_type="buy_limit", limit_price=price, current=price,
                     target_amount=share)


def sell_limit(order_id: str, share: str = "10%", symbol: str = BTC, price: float = 21000.0):
    return sf.create(order_id=order_id, symbol=symbol, side="sell", order_type="sell_limit", limit_price=price,
                     target_amount=share)


def qty(outcome) -> Decimal:
    assert outcome.result.value in ("created", "edited"), outcome
    return Decimal(outcome.orders[0]["quantity"])


# ---- max_exposure_percent -----------------------------------------------------------------------------
async def test_max_exposure_shrinks_then_skips_entries_and_never_exits():
    # 1000 USDT + 0.025 BTC (500 USDT): worth 1500, 500 (33.3 %) already exposed; the limit is 50 % = 750
    async with follower_on_sim_exchange(spec({"USDT": "1000", "BTC": "0.025"}),
                                        {"max_exposure_percent": "50"}) as f:
        first = only(await f.apply(buy_limit("E1", "20%")))  # 200 USDT: 700 exposed
        assert qty(first) == Decimal("0.01") and first.reason is None
        second = only(await f.apply(buy_limit("E2", "20%")))  # 200 wanted, 50 left
        assert qty(second) == Decimal("0.0025")
        assert "reduced by max_exposure_percent 50%" in second.reason
        third = only(await f.apply(buy_limit("E3", "5%")))
        assert third.result.value == "skipped"
        assert third.reason.startswith("max_exposure_percent: 50% of my portfolio already exposed (max 50%)")
        # an exit always applies, an edit and a cancel too
        exit_ = only(await f.apply(sell_limit("X1", "100%")))
        assert qty(exit_) == Decimal("0.025")
        assert only(await f.apply(sf.cancel("E1", order_type="buy_limit", limit_price=20000.0))).result.value \
            == "cancelled"
        # the cancel freed 200 USDT of exposure: a new entry fits again
        assert qty(only(await f.apply(buy_limit("E4", "10%")))) == Decimal("0.005")


async def test_max_exposure_below_market_minimum_names_the_limit():
    async with follower_on_sim_exchange(spec({"USDT": "1000"}), {"max_exposure_percent": "0.0001"}) as f:
        out = only(await f.apply(buy_limit("TINY", "10%")))
        assert out.result.value == "skipped"
        assert out.reason.startswith("max_exposure_percent: ")


# ---- max_open_copies --------------------------------------------------------------------------------------
async def test_max_open_copies_counts_open_copied_entries_only():
    async with follower_on_sim_exchange(spec({"USDT": "1000", "BTC": "0.1"}), {"max_open_copies": "2"}) as f:
        assert qty(only(await f.apply(buy_limit("O1", price=19000.0))))
        assert qty(only(await f.apply(buy_limit("O2", price=18000.0))))
        third = only(await f.apply(buy_limit("O3", price=17000.0)))
        assert third.result.value == "skipped"
        assert third.reason == "max_open_copies: 2 copied entry orders open (max 2)"
        assert qty(only(await f.apply(sell_limit("S1"))))  # an exit is not limited and does not count
        assert len(f.sim.open_orders()) == 3
        await f.apply(sf.cancel("O1", order_type="buy_limit", limit_price=19000.0))
        assert qty(only(await f.apply(buy_limit("O4", price=17000.0))))  # a slot is free again


async def test_max_open_copies_ignores_orders_the_mode_did_not_place():
    async with follower_on_sim_exchange(spec({"USDT": "1000"}), {"max_open_copies": "1"}) as f:
        em = f.sim.exchange_manager  # the user's own order, placed beside the mode
        own = personal_data.create_order_instance(
            trader=em.trader, order_type=trading_enums.TraderOrderType.BUY_LIMIT, symbol=BTC,
            current_price=Decimal(20000), quantity=Decimal("0.001"), price=Decimal(18000))
        assert await em.trader.create_order(own) is not None
        assert qty(only(await f.apply(buy_limit("M1", price=19000.0))))
        assert only(await f.apply(buy_limit("M2", price=18000.0))).result.value == "skipped"


# ---- drawdown stop -----------------------------------------------------------------------------------------
async def _restart(f, data_dir: Path, **overrides) -> None:
    await f.mode.stop()
    mode = RemoteTradingSignalsTradingMode(f.sim.config, f.sim.exchange_manager)
    mode.data_dir = data_dir
    await mode.initialize(trading_config=trading_config_with({"drawdown_stop_percent": "10", **overrides}),
                          auto_start=False)
    f.mode = mode


async def test_drawdown_stop_latches_across_restarts_until_reset(tmp_path, caplog):
    # 1000 USDT + 0.05 BTC at 20000: worth 2000 when following begins
    async with follower_on_sim_exchange(spec({"USDT": "1000", "BTC": "0.05"}), {"drawdown_stop_percent": "10"},
                                        data_dir=tmp_path) as f:
        assert qty(only(await f.apply(buy_limit("D1", "5%", price=15000.0))))  # peak 2000
        await f.sim.move_price(BTC, Decimal(17000))  # 1000 + 0.05 x 17000 = 1850: 7.5 % down, still copying
        assert qty(only(await f.apply(buy_limit("D2", "5%", price=15000.0))))
        await f.sim.move_price(BTC, Decimal(15500))  # 1775: 11.25 % below the peak
        caplog.clear()
        stopped = only(await f.apply(buy_limit("D3", "5%", price=15000.0)))
        assert stopped.result.value == "skipped"
        assert stopped.reason.startswith("drawdown stop: my portfolio fell 11.25% below its peak 2000 (max 10%)")
        assert "change drawdown_reset" in stopped.reason
        assert any("drawdown stop: my portfolio (1775" in r.getMessage() for r in caplog.records)
        # exits, edits and cancels still apply
        assert qty(only(await f.apply(sell_limit("DX", "50%"))))
        edited = only(await f.apply(sf.edit("D1", order_type="buy_limit", limit_price=15000.0,
                                            updated_limit_price=14000.0)))
        assert edited.result.value == "edited"
        assert only(await f.apply(sf.cancel("D2", order_type="buy_limit", limit_price=15000.0))).result.value \
            == "cancelled"
        # a bounce does not resume copying, nor does a restart: the stop is kept with the order map
        await f.sim.move_price(BTC, Decimal(20500))
        await _restart(f, tmp_path)
        assert only(await f.apply(buy_limit("D4", "5%", price=15000.0))).reason.startswith("drawdown stop")
        # the user changes drawdown_reset: the peak restarts from today's value and entries resume
        await _restart(f, tmp_path, drawdown_reset="1")
        caplog.clear()
        assert qty(only(await f.apply(buy_limit("D5", "5%", price=15000.0))))
        assert any("drawdown stop reset" in r.getMessage() for r in caplog.records)


# ---- pair filter ---------------------------------------------------------------------------------------
async def test_pair_filter_follow_only_and_follow_all_but():
    prices = {BTC: "20000", ETH: "1000"}
    async with follower_on_sim_exchange(spec({"USDT": "1000", "BTC": "0.1"}, prices),
                                        {"pair_filter": "eth/usdt"}) as f:
        skipped = only(await f.apply(buy_limit("P1", price=19000.0)))
        assert skipped.result.value == "skipped"
        assert skipped.reason == "pair_filter: BTC/USDT is not followed (follow only ETH/USDT)"
        assert only(await f.apply(sell_limit("P1S"))).result.value == "skipped"  # exits on it too: not followed
        assert qty(only(await f.apply(buy_limit("P2", symbol=ETH, price=900.0)))) == Decimal("0.1")
    async with follower_on_sim_exchange(spec({"USDT": "1000"}, prices),
                                        {"pair_filter": "ETH/USDT", "pair_filter_mode": "follow_all_but"}) as f:
        skipped = only(await f.apply(buy_limit("P3", symbol=ETH, price=900.0)))
        assert skipped.reason == "pair_filter: ETH/USDT is excluded (follow all but ETH/USDT)"
        assert qty(only(await f.apply(buy_limit("P4", price=19000.0))))


# ---- quote mapping ---------------------------------------------------------------------------------------
async def test_quote_mapping_copies_usdt_pairs_as_usdc_sized_in_usdc():
    usdc = spec({"USDC": "500"}, {"BTC/USDC": "20000"})
    async with follower_on_sim_exchange(usdc) as f:  # without the mapping: not a pair I trade
        out = only(await f.apply(buy_limit("Q0")))
        assert out.result.value == "rejected" and "unknown symbol BTC/USDT" in out.reason
    async with follower_on_sim_exchange(usdc, {"quote_mapping": "USDT=USDC", "pair_filter": "BTC/USDT"}) as f:
        out = only(await f.apply(buy_limit("Q1", "20%", price=19000.0)))
        assert out.result.value == "created" and out.symbol == "BTC/USDC"
        assert out.orders[0]["symbol"] == "BTC/USDC"
        assert Decimal(out.orders[0]["quantity"]) == Decimal("0.005")  # 20 % of 500 USDC / 20000
        cancelled = only(await f.apply(sf.cancel("Q1", order_type="buy_limit", limit_price=19000.0)))
        assert cancelled.result.value == "cancelled" and f.sim.open_orders() == []
    async with follower_on_sim_exchange(usdc, {"quote_mapping": "USDT=USDC", "sizing": "fixed_quote_amount",
                                               "fixed_quote_amount": "100"}) as f:
        assert qty(only(await f.apply(buy_limit("Q2", price=20000.0)))) == Decimal("0.005")  # 100 USDC


# ---- replay applies them -------------------------------------------------------------------------------
def test_replay_applies_risk_controls_and_quote_mapping():
    result = subprocess.run(
        [sys.executable, "-m", "octobot_signals.cli.main", "replay", str(JOURNAL), "--portfolio", "USDC=1000",
         "--set", "quote_mapping=USDT=USDC", "--set", "max_open_copies=1", "--json"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()][:-1]
    by_order: dict = {}
    for row in rows:  # the first row per order and action (the journal re-sends leader-1's create)
        by_order.setdefault((row["order_id"], row["action"]), row)
    assert by_order[("leader-1", "create")]["orders"][0]["symbol"] == "BTC/USDC"
    assert by_order[("leader-2", "create")]["reason"] == "max_open_copies: 1 copied entry orders open (max 1)"
    assert by_order[("leader-1", "cancel")]["result"] == "cancelled"


async def test_a_configuration_reload_resets_the_drawdown_stop_without_a_restart():
    async with follower_on_sim_exchange(spec({"USDT": "1000", "BTC": "0.05"}), {"drawdown_stop_percent": "5"}) as f:
        assert qty(only(await f.apply(buy_limit("R1", "5%", price=15000.0))))  # peak 2000
        await f.sim.move_price(BTC, Decimal(17000))  # 1850: 7.5 % down
        assert only(await f.apply(buy_limit("R2", "5%", price=15000.0))).reason.startswith("drawdown stop")
        # what OctoBot does when the user saves the mode's configuration in the web UI
        f.mode.trading_config = trading_config_with({"drawdown_stop_percent": "5", "drawdown_reset": "7"})
        f.mode.producers[0].on_reload_config()
        assert qty(only(await f.apply(buy_limit("R3", "5%", price=15000.0))))


# ---- futures: exposure is the leveraged notional of positions and open entries ------------------------------
async def test_futures_exposure_counts_positions_and_entries_and_reduce_only_always_applies():
    perp = "BTC/USDT:USDT"
    futures = SimExchangeSpec(portfolio={"USDT": Decimal(1000)}, prices={perp: Decimal(20000)}, exchange_type="future")
    leverage = sf.message(sf.signal({"action": "edit", "strategy": sf.STRATEGY, "symbol": perp, "exchange": "binance",
                                     "exchange_type": "future", "side": None, "leverage": 5}, topic="positions"))

    def entry(order_id: str, **extra):
        return sf.create(order_id=order_id, symbol=perp, exchange_type="future", **extra)

    async with follower_on_sim_exchange(futures, {"max_exposure_percent": "200", "max_open_copies": "2"}) as f:
        await f.apply(leverage)  # max order size 1000 x 5 / 20000 = 0.25 BTC; the limit: 2000 USDT of notional
        first = only(await f.apply(entry("F1", order_type="buy_market", target_amount="30%")))
        assert qty(first) == Decimal("0.075")  # 1500 USDT of position
        second = only(await f.apply(entry("F2", order_type="buy_limit", limit_price=20000.0, target_amount="30%")))
        assert qty(second) == Decimal("0.025") and "reduced by max_exposure_percent 200%" in second.reason
        third = only(await f.apply(entry("F3", order_type="buy_limit", limit_price=19000.0, target_amount="1%")))
        assert third.reason.startswith("max_exposure_percent: ")
        exit_ = only(await f.apply(entry("FX", side="sell", order_type="sell_limit", limit_price=21000.0,
                                         target_amount="10%", reduce_only=True)))
        assert exit_.result.value == "created", exit_.reason
