"""An offline octobot-trading simulated exchange: no network, real order and portfolio logic.

Used by `octobot-signals replay`, the demo, the benchmark and the tests. The market data is a
tiny octobot-backtesting data file written on the fly (one candle per symbol), because the
simulated exchange loads its markets from backtesting importers.
"""
from __future__ import annotations

import asyncio
import contextlib
import decimal
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import octobot_backtesting.api as backtesting_api
import octobot_backtesting.constants as backtesting_constants
import octobot_backtesting.enums as backtesting_enums
import octobot_backtesting.importers as backtesting_importers
import octobot_commons.constants as commons_constants
import octobot_commons.databases as commons_databases
import octobot_commons.enums as commons_enums
import octobot_trading.api as trading_api
import octobot_trading.enums as trading_enums
import octobot_trading.exchanges as exchanges

Decimal = decimal.Decimal
_TIME_FRAME = commons_enums.TimeFrames.ONE_HOUR
_START = 1_700_000_000
_FILL_SETTLE_ITERATIONS = 20


@dataclass
class SimExchangeSpec:
    """What the simulated exchange trades and holds."""

    portfolio: Mapping[str, Decimal]
    prices: Mapping[str, Decimal]
    exchange_name: str = "binance"
    exchange_type: str = "spot"  # "spot" | "future"
    fees_percent: Decimal = Decimal("0.1")
    leverage: Decimal = Decimal(1)
    bot_id: str | None = None
    extra_symbols: tuple[str, ...] = field(default_factory=tuple)

    @property
    def symbols(self) -> list[str]:
        return sorted(set(self.prices) | set(self.extra_symbols))

    @property
    def reference_market(self) -> str:
        return _split(self.symbols[0])[1] if self.symbols else "USDT"


def _split(symbol: str) -> tuple[str, str]:
    base, _, rest = symbol.partition("/")
    return base, rest.split(":")[0]


def build_config(spec: SimExchangeSpec, data_file: str) -> dict[str, Any]:
    """The plain config dict octobot-trading reads (see OCTOBOT-NOTES: offline simulated exchange)."""
    pairs_by_crypto: dict[str, list[str]] = {}
    for symbol in spec.symbols:
        pairs_by_crypto.setdefault(_split(symbol)[0], []).append(symbol)
    exchange_config: dict[str, Any] = {commons_constants.CONFIG_ENABLED_OPTION: True}
    if spec.exchange_type == "future":
        exchange_config[commons_constants.CONFIG_EXCHANGE_TYPE] = "future"
    return {
        # parsed configs hold TimeFrames members, not strings
        commons_constants.CONFIG_TIME_FRAME: [_TIME_FRAME],
        commons_constants.CONFIG_CRYPTO_CURRENCIES: {
            crypto: {commons_constants.CONFIG_CRYPTO_PAIRS: pairs, commons_constants.CONFIG_ENABLED_OPTION: True}
            for crypto, pairs in pairs_by_crypto.items()
        },
        commons_constants.CONFIG_EXCHANGES: {spec.exchange_name: exchange_config},
        commons_constants.CONFIG_TRADING: {
            commons_constants.CONFIG_TRADER_RISK: 1,
            commons_constants.CONFIG_TRADER_REFERENCE_MARKET: spec.reference_market,
        },
        commons_constants.CONFIG_TRADER: {commons_constants.CONFIG_ENABLED_OPTION: False},
        commons_constants.CONFIG_SIMULATOR: {
            commons_constants.CONFIG_ENABLED_OPTION: True,
            commons_constants.CONFIG_STARTING_PORTFOLIO: {k: float(v) for k, v in spec.portfolio.items()},
            commons_constants.CONFIG_SIMULATOR_FEES: {
                commons_constants.CONFIG_SIMULATOR_FEES_MAKER: float(spec.fees_percent),
                commons_constants.CONFIG_SIMULATOR_FEES_TAKER: float(spec.fees_percent),
            },
        },
        backtesting_constants.CONFIG_BACKTESTING: {
            commons_constants.CONFIG_ENABLED_OPTION: True,
            backtesting_constants.CONFIG_BACKTESTING_DATA_FILES: [data_file],
        },
    }


async def write_data_file(path: str, spec: SimExchangeSpec) -> None:
    """A minimal octobot-backtesting data file: a description row and one candle per symbol."""
    database = commons_databases.SQLiteDatabase(path)
    await database.initialize()
    try:
        await database.insert(
            backtesting_enums.DataTables.DESCRIPTION,
            timestamp=time.time(),
            version="1.1",
            exchange=spec.exchange_name,
            symbols=json.dumps(spec.symbols),
            time_frames=json.dumps([_TIME_FRAME.value]),
            start_timestamp=_START,
            end_timestamp=_START + 3600,
        )
        for symbol in spec.symbols:
            price = float(spec.prices.get(symbol, Decimal(1)))
            for offset in (0, 3600):
                await database.insert(
                    backtesting_enums.ExchangeDataTables.OHLCV,
                    timestamp=_START + offset,
                    exchange_name=spec.exchange_name,
                    cryptocurrency=_split(symbol)[0],
                    symbol=symbol,
                    time_frame=_TIME_FRAME.value,
                    candle=json.dumps([_START + offset, price, price, price, price, 1.0]),
                )
    finally:
        await database.stop()


@dataclass
class SimExchange:
    exchange_manager: Any
    spec: SimExchangeSpec
    config: dict[str, Any]

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Set the mark price without filling resting orders."""
        trading_api.force_set_mark_price(self.exchange_manager, symbol, price)

    async def move_price(self, symbol: str, price: Decimal) -> None:
        """A mark price update as the exchange would send it: fills resting orders it crosses."""
        symbol_data = self.exchange_manager.exchange_symbols_data.get_exchange_symbol_data(symbol)
        symbol_data.handle_mark_price_update(price, trading_enums.MarkPriceSources.EXCHANGE_MARK_PRICE.value)
        # fills run as tasks triggered by the price event: let them complete
        for _ in range(_FILL_SETTLE_ITERATIONS):
            await asyncio.sleep(0)

    def portfolio(self) -> dict[str, dict[str, Decimal]]:
        holdings = self.exchange_manager.exchange_personal_data.portfolio_manager.portfolio.portfolio
        return {
            asset: {"total": value.total, "available": value.available}
            for asset, value in sorted(holdings.items())
        }

    def open_orders(self) -> list[Any]:
        return list(self.exchange_manager.exchange_personal_data.orders_manager.get_open_orders())


@contextlib.asynccontextmanager
async def sim_exchange(spec: SimExchangeSpec) -> AsyncIterator[SimExchange]:
    """Start an offline simulated exchange with `spec`; everything is stopped on exit."""
    tmp_dir = tempfile.mkdtemp(prefix="octobot-signals-sim-")
    data_file = os.path.join(tmp_dir, f"sim-{uuid.uuid4().hex[:8]}.data")
    await write_data_file(data_file, spec)
    config = build_config(spec, data_file)
    importer = backtesting_importers.ExchangeDataImporter(config, data_file)
    backtesting = None
    exchange_manager = None
    try:
        await importer.initialize()  # a provided importer is used as is: load its description first
        backtesting = await backtesting_api.initialize_backtesting(
            config, exchange_ids=[], matrix_id=None, data_files=[data_file],
            importers_by_data_file={data_file: importer},
            # its own time channel: several simulated exchanges may run in one process (demo, tests)
            bot_id=spec.bot_id or f"sim-{uuid.uuid4().hex[:12]}",
        )
        exchange_manager = exchanges.ExchangeManager(config, spec.exchange_name)
        exchange_manager.is_backtesting = True
        exchange_manager.is_simulated = True
        exchange_manager.use_cached_markets = False
        exchange_manager.is_future = spec.exchange_type == "future"
        exchange_manager.is_spot_only = spec.exchange_type != "future"
        exchange_manager.backtesting = backtesting
        exchange_manager.bot_id = spec.bot_id
        backtesting.time_manager.current_timestamp = _START + 1800
        exchange_manager.exchange_config.init_backtesting_exchange_config()
        await exchange_manager.initialize(exchange_config_by_exchange=None)
        trader = exchanges.TraderSimulator(config, exchange_manager)
        await trader.initialize()
        for symbol, price in spec.prices.items():
            if exchange_manager.is_future:
                # live exchanges load contracts on connection; the simulator needs them created
                await exchange_manager.exchange.load_pair_future_contract(symbol)
            trading_api.force_set_mark_price(exchange_manager, symbol, Decimal(str(price)))
        yield SimExchange(exchange_manager, spec, config)
    finally:
        if exchange_manager is not None:
            await exchange_manager.stop()
        if backtesting is not None:
            await backtesting_api.stop_backtesting(backtesting)
        if importer.database is not None:
            await importer.stop()
        with contextlib.suppress(OSError):
            os.remove(data_file)
            os.rmdir(tmp_dir)
