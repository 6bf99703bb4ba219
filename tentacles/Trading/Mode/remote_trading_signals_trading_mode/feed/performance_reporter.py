"""The publishing bot reports its performance to the hub: at start, every `interval_s` and soon after fills.

Started by the bridge whichever way it was configured (environment, the web UI card, the demo): the bridge
calls `configure_for(bridge)` once its publisher is set, `ensure_running(bridge)` from its async entry points
(the first needs the bot's event loop), `nudge(bridge)` when OctoBot tells it the portfolio changed, and
`stop_for(bridge)` when it stops. Everything else lives here.

A report: portfolio_snapshot.PortfolioReader reads the publishing exchange manager (the one attached to the
bridge, else the running exchange whose trading mode emits this strategy's signals); the snapshot goes to
the performance outbox (durable) and a PerformancePublisher sends it on its own /cable link. Before the
first one the hub is asked `GET /api/info`: a hub older than protocol 3 takes no snapshots, and the reporter
then stays off (logged once) rather than queueing what the hub would refuse.

OCTOBOT_SIGNALS_PERFORMANCE_INTERVAL: seconds between two periodic reports (default 900; 0 turns reporting
off; at least 10 otherwise).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from ..core import performance
from .performance_outbox import PerformanceOutbox
from .performance_publisher import DEFAULT_PACE_S, PerformancePublisher
from .portfolio_snapshot import CannotValue, PortfolioReader

logger = logging.getLogger("octobot_signals.feed.performance")

ENV_INTERVAL = "OCTOBOT_SIGNALS_PERFORMANCE_INTERVAL"
DEFAULT_INTERVAL_S = 900.0
MIN_INTERVAL_S = 10.0
POLL_S = 5.0  # how often fills are looked for (and the exchange, until it is there)
MIN_GAP_S = 15.0  # a fill-triggered report waits this long after the previous report
PRUNE_EVERY_S = 86400.0
REQUIRED_PROTOCOL = 3


def interval_from_env(environ: Mapping[str, str] | None = None) -> float:
    """The periodic interval from OCTOBOT_SIGNALS_PERFORMANCE_INTERVAL; a bad value names the variable."""
    raw = (os.environ if environ is None else environ).get(ENV_INTERVAL, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_INTERVAL} must be a number of seconds, not {raw[:40]!r}") from None
    if value != 0 and not MIN_INTERVAL_S <= value <= 7 * 86400:
        raise ValueError(f"{ENV_INTERVAL} must be 0 (off) or {MIN_INTERVAL_S:.0f}-604800 seconds, not {raw[:40]!r}")
    return value


class PerformanceReporter:
    def __init__(self, publisher: PerformancePublisher, find_exchange: Callable[[], Any], *,
                 interval_s: float = DEFAULT_INTERVAL_S, poll_s: float = POLL_S, min_gap_s: float = MIN_GAP_S,
                 check_hub: bool = True) -> None:
        self.publisher = publisher
        self.find_exchange = find_exchange
        self.interval_s = interval_s
        self.poll_s = poll_s
        self.min_gap_s = min_gap_s
        self.check_hub = check_hub
        self.reader = PortfolioReader(publisher.strategy_id)
        self.reports = 0
        self.disabled: str | None = None  # why reporting is off (an old hub)
        self.source: Any = None  # the signals' publisher this reporter belongs to (bridge bookkeeping)
        self._nudged = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_report = 0.0  # monotonic
        self._last_prune = 0.0
        self._told: set[str] = set()  # reasons already logged: a missing price is said once, not every 5 s

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def tune(self, *, interval_s: float | None = None, poll_s: float | None = None, min_gap_s: float | None = None,
             pace_s: float | None = None) -> None:
        """Change the pace of a running reporter (the demo reports every few seconds)."""
        self.interval_s = self.interval_s if interval_s is None else interval_s
        self.poll_s = self.poll_s if poll_s is None else poll_s
        self.min_gap_s = self.min_gap_s if min_gap_s is None else min_gap_s
        self.publisher.pace_s = self.publisher.pace_s if pace_s is None else pace_s
        self._nudged.set()

    def start(self) -> None:
        # a task that ended is started again: OctoBot runs part of its start in an event loop it then closes,
        # which cancels whatever was started there; the bot's own loop must get a reporter of its own
        if self._task is None or self._task.done():
            self._nudged = asyncio.Event()  # an Event a closed loop waited on cannot be awaited on another
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"performance-{self.publisher.strategy_id}")

    def nudge(self) -> None:
        """The portfolio changed (a fill?): look now rather than at the next poll."""
        self._nudged.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.publisher.stop()
        self.publisher.outbox.close()

    async def flush(self, timeout: float) -> bool:
        return await self.publisher.flush(timeout)

    async def report_now(self) -> str | None:
        """Read the exchange and queue one snapshot; its `u`, or None when there is nothing to report yet."""
        exchange_manager = self.find_exchange()
        if exchange_manager is None:
            self._tell("no-exchange", "performance: no publishing exchange running yet: nothing to report")
            return None
        try:
            snapshot = self.reader.read(exchange_manager)
        except CannotValue as err:
            self._tell(str(err), f"performance: portfolio not reported yet: {err}")
            return None
        u = await self.publisher.publish(performance.snapshot_dict(snapshot))
        self.reports += 1
        self._last_report = time.monotonic()
        logger.info("performance snapshot for %s queued: %s %s (%d fills, %d closed trades, flow %s)",
                    snapshot.strategy_id, snapshot.equity, snapshot.currency, snapshot.fills, len(snapshot.trades),
                    snapshot.flow)
        return u

    def _tell(self, key: str, text: str) -> None:
        if key not in self._told:
            self._told.add(key)
            logger.info(text)

    async def _hub_protocol(self) -> int:
        url = f"{self.publisher.hub_url}/api/info"
        delay = 1.0
        while True:
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                        session.get(url) as resp:
                    body = await resp.json(content_type=None)
                version = body.get("protocol_version") if isinstance(body, dict) else None
                return version if isinstance(version, int) and not isinstance(version, bool) else 0
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError) as err:
                self._tell("hub-down", f"performance: hub not reachable yet ({type(err).__name__}); retrying")
                await asyncio.sleep(delay)
                delay = min(60.0, delay * 2)

    async def _run(self) -> None:
        if self.check_hub:
            version = await self._hub_protocol()
            if version < REQUIRED_PROTOCOL:
                self.disabled = f"the hub speaks protocol {version}: performance snapshots need {REQUIRED_PROTOCOL}"
                logger.warning("performance reporting off for %s: %s", self.publisher.strategy_id, self.disabled)
                return
        await self.publisher.start()  # snapshots left pending by a previous run go out now
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let a reading bug stop the bot's reporting for good
                logger.exception("performance: report failed for %s", self.publisher.strategy_id)
            self._nudged.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._nudged.wait(), self.poll_s)

    async def _step(self) -> None:
        since = time.monotonic() - self._last_report
        if not self.reports:
            await self.report_now()  # at start, as soon as the exchange is there and valued
        elif since >= self.interval_s:
            await self.report_now()
        elif since >= self.min_gap_s:
            exchange_manager = self.find_exchange()
            if exchange_manager is not None and self.reader.new_fills(exchange_manager):
                await self.report_now()
        if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            await asyncio.to_thread(self.publisher.outbox.prune)


# ---------------------------------------------------------------------- the bridge's hooks


def publishing_exchange(bridge: Any) -> Any:
    """The exchange manager whose portfolio is the strategy's: attached to the bridge, else the running one
    whose trading mode emits this strategy's signals, else the first one that trades."""
    attached = list(getattr(bridge, "_exchange_managers", ()))
    if attached:
        return attached[0]
    try:
        import octobot_trading.exchanges as trading_exchanges

        configurations = trading_exchanges.Exchanges.instance().get_all_exchanges()
    except Exception:  # noqa: BLE001 - no exchange running yet
        return None
    managers = [c.exchange_manager for c in configurations if getattr(c, "exchange_manager", None) is not None]
    trading = [m for m in managers if getattr(m, "trading_modes", None)]
    for manager in trading:
        for mode in manager.trading_modes:
            with contextlib.suppress(Exception):
                if mode.should_emit_trading_signal() and mode.get_trading_signal_identifier() == bridge.publish_strategy:
                    return manager
    return trading[0] if trading else None


def configure_for(bridge: Any, environ: Mapping[str, str] | None = None) -> None:
    """After the bridge (re)configured its publisher: a reporter for it, replacing one made for another."""
    publisher = bridge.publisher
    current: PerformanceReporter | None = getattr(bridge, "performance_reporter", None)
    if current is not None and current.source is publisher:
        return
    if current is not None:
        bridge.performance_reporter = None
        _stop_soon(current)
    if publisher is None or bridge.data_dir is None:
        return
    try:
        interval = interval_from_env(environ)
    except ValueError as err:
        logger.error("performance reporting off: %s", err)
        return
    if not interval:
        logger.info("performance reporting off (%s=0)", ENV_INTERVAL)
        return
    hub_url, secret, strategy_id, private_key = bridge._publisher_key  # what the publisher was made from
    sender = PerformancePublisher(hub_url, secret, strategy_id, PerformanceOutbox(Path(bridge.data_dir)),
                                  private_key_b64=private_key, pace_s=DEFAULT_PACE_S)
    reporter = PerformanceReporter(sender, lambda: publishing_exchange(bridge), interval_s=interval)
    reporter.source = publisher
    bridge.performance_reporter = reporter
    ensure_running(bridge)


def ensure_running(bridge: Any) -> None:
    """Start the bridge's reporter if it waits for the bot's event loop and one runs now."""
    reporter: PerformanceReporter | None = getattr(bridge, "performance_reporter", None)
    if reporter is None or reporter.running or reporter.disabled:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # configured at import time: the first async call of the bridge starts it
    reporter.start()


def nudge(bridge: Any) -> None:
    ensure_running(bridge)
    reporter: PerformanceReporter | None = getattr(bridge, "performance_reporter", None)
    if reporter is not None:
        reporter.nudge()


async def stop_for(bridge: Any) -> None:
    reporter: PerformanceReporter | None = getattr(bridge, "performance_reporter", None)
    bridge.performance_reporter = None
    if reporter is not None:
        await reporter.stop()


def _stop_soon(reporter: PerformanceReporter) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        reporter.publisher.outbox.close()  # never started: nothing else to stop
        return
    task = loop.create_task(reporter.stop())
    _STOPPING.add(task)
    task.add_done_callback(_STOPPING.discard)


_STOPPING: set[asyncio.Task[None]] = set()
