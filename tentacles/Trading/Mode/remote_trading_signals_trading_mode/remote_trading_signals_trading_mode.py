"""RemoteTradingSignalsTradingMode: copies a strategy feed's orders, sized to my portfolio.

A thin adapter between OctoBot and this package's cores: user inputs -> core.settings,
feed messages -> follower.engine (validation, sizing, orders). Live, messages come from the
strategy hub through the feed bridge; in backtesting, from a journal file replayed on the
backtest clock; in `octobot-signals replay`, straight from the command.
"""
from __future__ import annotations

import asyncio
import decimal
import functools
import logging
import os
import re
import types
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import octobot_commons.channels_name as channels_name
import octobot_commons.enums as commons_enums
import octobot_trading.enums as trading_enums
import octobot_trading.modes as trading_modes

from .core import input_schemas
from .core import settings as settings_module
from .follower.engine import FollowerEngine
from .follower.journal import JournalFeeder
from .follower.order_map import OrderMap, OrderMapStorageError
from .follower.outcome import Outcome

Decimal = decimal.Decimal
DATA_DIR_ENV = "OCTOBOT_SIGNALS_DATA_DIR"
_DEFAULT_DATA_DIR = Path("user") / "data" / "remote_trading_signals"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_TOKEN_IN_TEXT = re.compile(r"""(['"]follower_token['"]\s*:\s*)(['"])[^'"]*\2""")


class _RedactFollowerToken(logging.Filter):
    """octobot-trading logs a mode's whole trading config ("Using config: ..."): hide the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "follower_token" in message:
            record.msg, record.args = _TOKEN_IN_TEXT.sub(r"\1'***'", message), None
        return True


logging.getLogger("RemoteTradingSignalsTradingMode").addFilter(_RedactFollowerToken())


def _following_text(settings: settings_module.FollowerSettings, backtesting: bool) -> str:
    """What the mode follows, for the bot log at start (never the token: only whether one is set)."""
    if not settings.trading_strategy:
        return "following nothing: set trading_strategy in RemoteTradingSignalsTradingMode's configuration"
    if backtesting:
        source = f"journal {settings.journal_path}" if settings.journal_path else "no journal (backtests replay one)"
    else:
        source = f"hub {settings.hub_url or '(no hub_url set)'}" + \
            ("" if settings.follower_token else " without a follower token")
    return f"following strategy '{settings.trading_strategy}' from {source}, sizing {settings.sizing.value}"


class RemoteTradingSignalsTradingMode(trading_modes.AbstractTradingMode):
    """Follow a strategy: every create / edit / cancel it publishes becomes my own sized order."""

    def __init__(self, config: dict, exchange_manager: Any) -> None:
        super().__init__(config, exchange_manager)
        self.settings = settings_module.FollowerSettings()
        self.data_dir: Path | None = None  # set by harnesses (replay, tests); else env or OctoBot's user/data
        self.clock: Callable[[], float] | None = None  # default: the exchange's clock

    # ---- OctoBot class API -------------------------------------------------------------
    def get_mode_producer_classes(self) -> list:
        return [RemoteTradingSignalsModeProducer]

    def get_mode_consumer_classes(self) -> list:
        return [RemoteTradingSignalsModeConsumer]

    @classmethod
    def get_supported_exchange_types(cls) -> list:
        return [trading_enums.ExchangeTypes.SPOT, trading_enums.ExchangeTypes.FUTURE]

    @classmethod
    def get_is_symbol_wildcard(cls) -> bool:
        return True  # one instance per exchange: the feed decides which symbol each signal is for

    @staticmethod
    def is_backtestable() -> bool:
        return True  # backtests replay a strategy journal (user input journal_path)

    def is_following_trading_signals(self) -> bool:
        return True

    def init_user_inputs(self, inputs: dict) -> None:
        """The inputs OctoBot's web UI renders; defaults match config/RemoteTradingSignalsTradingMode.json."""
        d = settings_module.FollowerSettings()
        ui, text, number, boolean = self.UI, commons_enums.UserInputTypes.TEXT, \
            commons_enums.UserInputTypes.FLOAT, commons_enums.UserInputTypes.BOOLEAN
        # Text inputs say what they accept: OctoBot's web UI otherwise requires every text (minLength 1),
        # and these may all be empty (e.g. a journal-only backtest). core.settings still checks each value.
        ui.user_input("trading_strategy", text, d.trading_strategy, inputs,
                      title="Strategy to follow: the strategy id on the hub (letters, digits, _ and -).",
                      other_schema_values=input_schemas.text_schema("trading_strategy"))
        ui.user_input("hub_url", text, d.hub_url, inputs,
                      title="Strategy hub URL, e.g. https://signals.example.org (leave empty to backtest a journal).",
                      other_schema_values=input_schemas.text_schema("hub_url"))
        if not (self.exchange_manager is not None and self.exchange_manager.is_backtesting):
            # backtests save every user input in their run data: a backtest never needs the token
            ui.user_input("follower_token", text, d.follower_token, inputs,
                          title="Follower token given by the hub (kept secret, never logged).",
                          other_schema_values=input_schemas.text_schema("follower_token"))
        ui.user_input("public_key", text, d.public_key, inputs,
                      title="Strategy publisher's Ed25519 public key (base64). When set, unsigned or forged "
                            "signals are refused.",
                      other_schema_values=input_schemas.text_schema("public_key"))
        ui.user_input("sizing", commons_enums.UserInputTypes.OPTIONS, d.sizing.value, inputs,
                      options=[mode.value for mode in settings_module.SizingMode],
                      title="Order sizing: portfolio_percent = the leader's share of its portfolio applied to "
                            "mine; leader_quantity_ratio = leader quantity x ratio; fixed_quote_amount = a fixed "
                            "quote amount per entry.")
        ui.user_input("leader_quantity_ratio", number, float(d.leader_quantity_ratio), inputs,
                      min_val=0, max_val=1000, title="Ratio applied to the leader's quantity "
                                                     "(leader_quantity_ratio sizing).")
        ui.user_input("fixed_quote_amount", number, float(d.fixed_quote_amount), inputs, min_val=0,
                      title="Quote amount per entry order, e.g. 50 for 50 USDT (fixed_quote_amount sizing).")
        ui.user_input("max_volume", number, float(d.max_volume), inputs, min_val=0, max_val=100,
                      title="Maximum size of one order, in % of the holdings it uses (buys and sells).")
        ui.user_input("round_to_minimal_size_if_necessary", boolean, d.round_to_minimal_size_if_necessary, inputs,
                      title="Round an order up to the exchange minimum when it is smaller and funds allow it.")
        ui.user_input("max_signal_age_seconds", commons_enums.UserInputTypes.INT, d.max_signal_age_seconds, inputs,
                      min_val=0, max_val=7 * 24 * 3600,
                      title="Do not open orders from signals older than this many seconds; late edits and cancels "
                            "still apply (0 = no limit).")
        ui.user_input("max_price_deviation_percent", number, float(d.max_price_deviation_percent), inputs,
                      min_val=0, max_val=100,
                      title="Refuse a market copy when my price is this % away from the leader's (0 = no check).")
        # risk controls: all off by default; they limit new entries and edits that grow one, never exits or cancels
        ui.user_input("max_exposure_percent", number, float(d.max_exposure_percent), inputs,
                      min_val=0, max_val=float(settings_module.MAX_EXPOSURE_PERCENT),
                      title="Max exposure: new copies (and edits that grow one) may bring what I hold outside the "
                            "quote currency plus open buy orders to at most this % of my portfolio; entries shrink "
                            "or are skipped, exits always apply (futures: leveraged notional; 0 = no limit).")
        ui.user_input("max_open_copies", commons_enums.UserInputTypes.INT, d.max_open_copies, inputs,
                      min_val=0, max_val=settings_module.MAX_OPEN_COPIES,
                      title="Max open copies: at most this many copied entry orders open at once; further "
                            "entries are skipped (0 = no limit).")
        ui.user_input("drawdown_stop_percent", number, float(d.drawdown_stop_percent), inputs,
                      min_val=0, max_val=99.99,
                      title="Drawdown stop: when my portfolio falls this % below its peak since following "
                            "began, stop opening or growing copies; exits, cancels and other edits still apply "
                            "(0 = off).")
        ui.user_input("drawdown_reset", commons_enums.UserInputTypes.INT, d.drawdown_reset, inputs,
                      min_val=0, max_val=settings_module.MAX_RESET_COUNTER,
                      title="Drawdown stop reset: change this number (e.g. add 1) to resume copying after a "
                            "drawdown stop; the peak restarts from the current portfolio value.")
        ui.user_input("pair_filter", text, "", inputs,
                      title="Pair filter: pairs separated by commas, e.g. BTC/USDT, ETH/USDT (empty = every "
                            "pair the strategy trades).",
                      other_schema_values=input_schemas.text_schema("pair_filter"))
        ui.user_input("pair_filter_mode", commons_enums.UserInputTypes.OPTIONS, d.pair_filter_mode.value, inputs,
                      options=[mode.value for mode in settings_module.PairFilterMode],
                      title="Pair filter mode: follow_only = copy only the listed pairs; follow_all_but = copy "
                            "every pair except the listed ones.")
        ui.user_input("quote_mapping", text, "", inputs,
                      title="Quote mapping: copy the leader's quote currency as mine, e.g. USDT=USDC copies "
                            "BTC/USDT as BTC/USDC, sized in USDC (empty = none).",
                      other_schema_values=input_schemas.text_schema("quote_mapping"))
        ui.user_input("journal_path", text, d.journal_path, inputs,
                      title="Backtesting only: strategy journal file (JSON lines from the hub's history).",
                      other_schema_values=input_schemas.text_schema("journal_path"))

    # ---- runtime -----------------------------------------------------------------------
    def resolve_data_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        env = os.environ.get(DATA_DIR_ENV)
        return Path(env) if env else _DEFAULT_DATA_DIR

    def order_map_path(self) -> Path:
        strategy = _UNSAFE_FILE_CHARS.sub("_", self.settings.trading_strategy or "default")
        exchange = _UNSAFE_FILE_CHARS.sub("_", self.exchange_manager.exchange_name)
        return self.resolve_data_dir() / f"order_map_{exchange}_{strategy}.sqlite3"

    def get_consumer(self) -> RemoteTradingSignalsModeConsumer:
        for consumer in self.consumers:
            if isinstance(consumer, RemoteTradingSignalsModeConsumer):
                return consumer
        raise RuntimeError("RemoteTradingSignalsTradingMode is not initialized")

    async def apply_feed_message(self, raw: Any) -> list[Outcome]:
        """Apply one strategy feed message (dict or JSON text); returns what was done with each order."""
        return await self.get_consumer().apply_feed_message(raw)


class ConsumerStopped(RuntimeError):
    """The mode is stopping: a message that has not started is not applied (the feed delivers it again)."""


class RemoteTradingSignalsModeConsumer(trading_modes.AbstractTradingModeConsumer):
    """Owns the follower engine: one feed message at a time, in order, each applied whole."""

    STOP_WAIT_SECONDS = 60.0  # how long stop() waits for the message in flight

    def __init__(self, trading_mode: RemoteTradingSignalsTradingMode) -> None:
        super().__init__(trading_mode)
        self.engine: FollowerEngine | None = None
        self._lock = asyncio.Lock()
        self._stopping = False

    def build_engine(self) -> FollowerEngine:
        mode: RemoteTradingSignalsTradingMode = self.trading_mode
        em = mode.exchange_manager
        # an OctoBot backtest starts from scratch each run: its copies must not outlive it
        in_memory = em.is_backtesting and mode.data_dir is None
        order_map = OrderMap.load(None if in_memory else mode.order_map_path())
        if order_map.load_warning:
            self.logger.warning(order_map.load_warning)
        clock = mode.clock or em.exchange.get_exchange_current_time
        # a backtest applies each journal message at the first candle after it: its age there
        # is the candle's granularity, not the signal's lateness
        check_age = not (em.is_backtesting and mode.settings.journal_path)
        return FollowerEngine(em, mode.settings, order_map, trading_mode=mode, clock=clock, check_age=check_age)

    async def stop(self) -> None:
        # no new message starts; the one in flight holds the lock and finishes first: closing the order map
        # under it would leave orders on the exchange that the map never recorded (copied again on restart)
        self._stopping = True
        try:
            await asyncio.wait_for(self._lock.acquire(), self.STOP_WAIT_SECONDS)
        except asyncio.TimeoutError:
            # closing anyway is safe: the map then refuses every write, so the late message places no order
            # without its write-ahead entry and is applied again after the restart
            self.logger.error(f"a feed message is still being applied after {self.STOP_WAIT_SECONDS:.0f} s: "
                              f"stopping without waiting for it")
            self._close_engine()
        else:
            try:
                self._close_engine()
            finally:
                self._lock.release()
        await super().stop()

    def _close_engine(self) -> None:
        if self.engine is not None:
            engine, self.engine = self.engine, None
            try:
                engine.order_map.close_storage()  # quick: at most the last message's end-of-message changes
            except OrderMapStorageError as err:
                # what was lost is what a crash would lose: the write-ahead entries recover the orders placed
                self.logger.error(f"stopping: {err}")

    async def apply_feed_message(self, raw: Any) -> list[Outcome]:
        if self._stopping:
            raise ConsumerStopped("the mode is stopping: message not applied")
        # a bundle once started is applied whole even when the feed task awaiting it is cancelled (the feed
        # stops first when the bot stops): half a bundle is what loses or duplicates orders on restart. It runs
        # in the awaiting task itself (no task and no event loop turn of its own per message), and that task's
        # cancellation waits until the bundle is done
        return await _whole(self._apply_in_order(raw), self._log_failure_after_cancel)

    async def _apply_in_order(self, raw: Any) -> list[Outcome]:
        async with self._lock:  # feed order is trading order: never interleave two messages
            if self._stopping:
                raise ConsumerStopped("the mode is stopping: message not applied")
            if self.engine is None:
                self.engine = self.build_engine()
            # a configuration saved while the bot runs (on_reload_config) applies from the next message on,
            # e.g. a changed drawdown_reset lifts a drawdown stop without a restart
            self.engine.settings = self.trading_mode.settings
            return await self.engine.apply_message(raw)

    def _log_failure_after_cancel(self, error: BaseException) -> None:
        # the caller was cancelled while this message completed: it gets the cancellation, and the failure
        # must still be seen
        if not isinstance(error, (ConsumerStopped, asyncio.CancelledError)):
            self.logger.error(f"feed message not fully applied: {error.__class__.__name__}: {error}")


def _loop_of(future: Any) -> Any:
    get_loop = getattr(future, "get_loop", None)
    return get_loop() if get_loop is not None else getattr(future, "_loop", None)


def _wake(proxy: asyncio.Future, _done: asyncio.Future) -> None:
    if not proxy.done():
        proxy.set_result(None)


@types.coroutine
def _whole(coro: Coroutine[Any, Any, Any], on_failure_after_cancel: Callable[[BaseException], None]) -> Any:
    """Await `coro` in the awaiting task, never interrupted by that task's cancellation.

    What the awaiting task would be cancelled at (each future `coro` waits for) is shown to it as a proxy:
    cancelling the task cancels the proxy, never what `coro` waits for, and `coro` goes on. Once `coro` is
    done, a cancellation asked meanwhile is raised (its result dropped; a failure passed to
    `on_failure_after_cancel`). A `coro` that never waits costs no event loop turn (asyncio.shield on a new
    task costs three). Futures `coro` waits for that are cancelled by their own owner still raise in `coro`.
    """
    cancelled: BaseException | None = None
    error: BaseException | None = None
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                yielded = coro.send(None) if error is None else coro.throw(error)
            except StopIteration as done:
                result = done.value
                break
            except BaseException as err:
                if cancelled is None:
                    raise
                on_failure_after_cancel(err)
                raise cancelled from None
            error = None
            if yielded is None:  # a bare yield (asyncio.sleep(0)): the task steps it again at once
                try:
                    yield None
                except asyncio.CancelledError as err:
                    cancelled = err
                continue
            if getattr(yielded, "_asyncio_future_blocking", None) is None or _loop_of(yielded) is not loop:
                try:  # not a future of this loop: the task answers it as it would answer `coro` (an error)
                    yield yielded
                except BaseException as err:
                    error = err
                continue
            yielded._asyncio_future_blocking = False  # taken over, as asyncio.Task does
            while not yielded.done():
                proxy = loop.create_future()
                wake = functools.partial(_wake, proxy)
                yielded.add_done_callback(wake)
                try:
                    yield from proxy
                except asyncio.CancelledError as err:
                    cancelled = err  # the awaiting task's cancellation: held until coro is done
                    yielded.remove_done_callback(wake)
    except GeneratorExit:
        coro.close()
        raise
    if cancelled is not None:
        raise cancelled
    return result


class RemoteTradingSignalsModeProducer(trading_modes.AbstractTradingModeProducer):
    """Connects the feed: hub subscription live, journal replay in backtesting."""

    def __init__(self, channel: Any, config: dict, trading_mode: Any, exchange_manager: Any) -> None:
        super().__init__(channel, config, trading_mode, exchange_manager)
        self.journal: JournalFeeder | None = None
        self.subscription: Any = None

    def get_channels_registration(self) -> list:
        # only a backtest needs the clock (candles); live signals arrive through the feed
        if self.exchange_manager.is_backtesting and self.trading_mode.settings.journal_path:
            return [channels_name.OctoBotTradingChannelsName.OHLCV_CHANNEL.value]
        return []

    def on_reload_config(self) -> None:
        super().on_reload_config()
        mode: RemoteTradingSignalsTradingMode = self.trading_mode
        try:
            mode.settings = settings_module.settings_from_config(mode.trading_config or {})
        except settings_module.SettingsError as err:
            # an invalid setting must not start copying with surprising values: keep following nothing
            self.logger.error(f"Invalid RemoteTradingSignalsTradingMode setting, not following: {err}")
            mode.settings = settings_module.FollowerSettings()

    async def start(self) -> None:
        await super().start()
        mode: RemoteTradingSignalsTradingMode = self.trading_mode
        settings = mode.settings
        self.logger.info(_following_text(settings, self.exchange_manager.is_backtesting))
        if self.exchange_manager.is_backtesting and settings.journal_path:
            self.journal = await asyncio.to_thread(JournalFeeder.load, Path(settings.journal_path), self.logger)
        elif settings.hub_url and settings.trading_strategy and not self.exchange_manager.is_backtesting:
            from .feed.subscription import subscribe_mode  # network code only when following live
            self.subscription = await subscribe_mode(mode, self.logger)

    async def ohlcv_callback(self, exchange: str, exchange_id: str, cryptocurrency: str, symbol: str,
                             time_frame: str, candle: Any, init_call: bool = False) -> None:
        if self.journal is not None:
            now = Decimal(str(self.exchange_manager.exchange.get_exchange_current_time()))
            await self.journal.feed_until(now, self.trading_mode.apply_feed_message)

    async def stop(self) -> None:
        if self.subscription is not None:
            await self.subscription.stop()
            self.subscription = None
        await super().stop()
