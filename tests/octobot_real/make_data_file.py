"""Writes an OctoBot backtesting data file (SQLite) offline. Runs in the OctoBot 2.1.1 venv.

Usage: python make_data_file.py SPEC.json, where SPEC is
  {"path": ".../backtesting/data/x.data", "exchange": "binance", "time_frame": "1h",
   "candles": {"BTC/USDT": [[t_seconds, open, high, low, close, volume], ...]}}
It uses the bot's own SQLiteDatabase and table/enum names, so the file has exactly the layout
that this OctoBot's importer reads (the format version differs between octobot-backtesting
releases: 1.1 in the 3.11 stack, 2.0 in OctoBot 2.1.1).
"""
from __future__ import annotations

import asyncio
import json
import sys
import time

import octobot_backtesting.constants as backtesting_constants
import octobot_backtesting.enums as backtesting_enums
import octobot_commons.databases as databases


async def write(spec: dict) -> None:
    candles_by_symbol: dict[str, list[list[float]]] = spec["candles"]
    time_frame = spec["time_frame"]
    stamps = [candle[0] for candles in candles_by_symbol.values() for candle in candles]
    database = databases.SQLiteDatabase(spec["path"])
    await database.initialize()
    try:
        await database.insert(
            backtesting_enums.DataTables.DESCRIPTION,
            timestamp=time.time(),
            version=backtesting_constants.CURRENT_VERSION,
            type=backtesting_enums.DataType.EXCHANGE.value,
            exchange=spec["exchange"],
            symbols=json.dumps(list(candles_by_symbol)),
            time_frames=json.dumps([time_frame]),
            start_timestamp=int(min(stamps)),
            end_timestamp=int(max(stamps)),
        )
        for symbol, candles in candles_by_symbol.items():
            base = symbol.split("/")[0]
            for candle in candles:
                await database.insert(
                    backtesting_enums.ExchangeDataTables.OHLCV, candle[0],
                    exchange_name=spec["exchange"], cryptocurrency=base, symbol=symbol,
                    time_frame=time_frame, candle=json.dumps(candle),
                )
    finally:
        await database.stop()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as spec_file:
        asyncio.run(write(json.load(spec_file)))
