"""Risk controls in a backtest: the mode's producer replays a journal on the backtest clock (as `OctoBot -b`
does with journal_path) and the controls apply to what it copies."""
from __future__ import annotations

import json
import logging
import time
from decimal import Decimal

import signal_factory as sf
from octobot_signals.follower.journal import JournalFeeder
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

SPEC = SimExchangeSpec(portfolio={"USDC": Decimal(1000)}, prices={"BTC/USDC": Decimal(20000),
                                                                  "ETH/USDC": Decimal(1000)})


async def test_backtest_journal_applies_quote_mapping_pair_filter_and_open_copies(tmp_path, caplog):
    now = time.time()
    lines = [
        sf.create(order_id="B1", symbol="BTC/USDT", order_type="buy_limit", limit_price=19000.0, d=now - 300),
        sf.create(order_id="B2", symbol="BTC/USDT", order_type="buy_limit", limit_price=18000.0, d=now - 200),
        sf.create(order_id="E1", symbol="ETH/USDT", order_type="buy_limit", limit_price=900.0, current=1000.0,
                  d=now - 100),
        sf.cancel("B1", symbol="BTC/USDT", order_type="buy_limit", limit_price=19000.0, d=now - 50),
    ]
    journal = tmp_path / "journal.jsonl"
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    overrides = {"trading_strategy": sf.STRATEGY, "journal_path": str(journal), "quote_mapping": "USDT=USDC",
                 "pair_filter": "BTC/USDT", "max_open_copies": 1}
    async with follower_on_sim_exchange(SPEC, overrides, data_dir=None) as f:
        producer = f.mode.producers[0]
        # what the producer's start() does in a backtest (its base class needs a whole bot to start)
        producer.journal = JournalFeeder.load(journal, producer.logger)
        caplog.clear()
        caplog.set_level(logging.INFO, logger="RemoteTradingSignalsFollower")
        await producer.ohlcv_callback("binance", "id", "BTC", "BTC/USDC", "1h", {})  # the next candle
        logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("signal ")]
        assert len(logged) == 4, logged
        assert "B1" in logged[0] and "created" in logged[0] and "BTC/USDC" in logged[0]
        assert "max_open_copies: 1 copied entry orders open (max 1)" in logged[1]
        assert "pair_filter: ETH/USDC is not followed (follow only BTC/USDT)" in logged[2]
        assert "B1" in logged[3] and "cancelled" in logged[3]
        assert f.sim.open_orders() == []
