"""Publishing from any stock trading mode, switched on by the web UI card or by the environment.

octobot-trading builds and emits a signal bundle for each order a trading mode creates, edits or cancels
only when `mode.should_emit_trading_signal()` is true (`not backtesting and
trading_config["emit_trading_signals"]`), and names the bundle `mode.get_trading_signal_identifier()`
(`trading_config["trading_strategy"]`). No stock mode (DCA, Grid, Daily, Staggered, TradingView...) shows
those two settings in the web UI. Ways to turn them on for whichever mode is active:

1. write both keys into the active profile's config file of the mode: edits the user's files behind their
   back, for a mode and profile we do not own, and the keys stay there when the card is switched off;
2. put them into `mode.trading_config` after it is loaded: that dict comes from the tentacles manager and
   is replaced on every reload_config (each save of the mode's page), so the keys must be re-injected and
   can be saved back into the profile by the page;
3. (chosen) wrap the two methods once on `AbstractTradingMode`, when our tentacle loads and publishing is
   on: the answer is computed at each call, nothing is written anywhere, every stock mode gets it without
   being named, and it goes away with the card's switch (at the next start). The wrappers say yes only on a
   live or simulated exchange (never in a backtest, exactly like octobot-trading) and never for a mode
   that follows signals (ours, the stock copy mode). Otherwise the mode's own settings apply unchanged.
   While publishing is on, the identifier is the card's strategy id whatever the mode's own
   `trading_strategy` says: the bundles must reach the strategy the card names.

`AbstractTradingMode.initialize` is wrapped too: when the first publishing mode starts (in the bot's event
loop), the publisher starts (bundles left pending by a previous run go out now), the hub is asked once
whether the secret may publish to the strategy, and a problem is logged and sent as an OctoBot
notification. Nothing is lost meanwhile: bundles wait in the durable outbox (user/octobot_signals/) and go
out once the hub accepts them.

A bot without the card and without the environment variables gets no wrapper at all.
"""
from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Mapping
from typing import Any

from . import bridge, publish_card

HOOK_MARK = "__octobot_signals_publishing__"
NOTIFICATION_TITLE = "octobot-signals publishing"

_ACTIVE: publish_card.PublishSettings | None = None
_PROBLEM: str | None = None
_STARTED: set[str] = set()  # once per process: "check" (hub asked), "problem" (notified)
_TASKS: set[asyncio.Task[Any]] = set()


def _logger() -> Any:
    try:
        import octobot_commons.logging as commons_logging

        return commons_logging.get_logger("octobot-signals")
    except Exception:  # noqa: BLE001 - outside OctoBot's logging
        import logging

        return logging.getLogger("octobot_signals.publishing")


def active_settings() -> publish_card.PublishSettings | None:
    return _ACTIVE


def active_problem() -> str | None:
    return _PROBLEM


def install_at_load(config_path: str | os.PathLike[str] | None = None,
                    environ: Mapping[str, str] | None = None) -> publish_card.Resolution:
    """What our tentacle does when OctoBot loads it: read the card (user/config.json) and the environment,
    install the bridge and the hooks when publishing is on, and log what this bot publishes (no secret)."""
    env = os.environ if environ is None else environ
    card = publish_card.read_card(publish_card.load_user_config(config_path))
    resolution = publish_card.resolve(card, env)
    follower_token = (env.get(bridge.ENV_FOLLOWER_TOKEN) or "").strip() or None
    env_hub = (env.get(publish_card.ENV_HUB_URL) or "").strip()
    logger = _logger()
    settings = resolution.settings
    if settings is not None:
        enable(settings, follower_token=follower_token if env_hub else None)
        logger.info(settings.describe())
    else:
        if resolution.problem:
            report_problem(resolution.problem)
            logger.error(f"not publishing: {resolution.problem}")
        elif resolution.note:
            logger.info(resolution.note)
        if follower_token and env_hub:  # following from an unmodified bot, configured by environment
            bridge.install_bridge(hub_url=env_hub, data_dir=(env.get(publish_card.ENV_DATA_DIR) or "").strip()
                                  or publish_card.DEFAULT_DATA_DIR, follower_token=follower_token)
    return resolution


def enable(settings: publish_card.PublishSettings, *, follower_token: str | None = None) -> bridge.FeedAuthenticator:
    """Publish the active mode's orders with these settings: the bridge's publisher and the mode hooks."""
    global _ACTIVE, _PROBLEM
    feed = bridge.install_bridge(hub_url=settings.hub_url, data_dir=settings.data_dir,
                                 follower_token=follower_token, publish_secret=settings.publish_secret,
                                 publish_strategy=settings.strategy_id, private_key_b64=settings.signing_key)
    _ACTIVE, _PROBLEM = settings, None
    install_hooks()
    return feed


def report_problem(problem: str) -> None:
    """Publishing was asked for but cannot run: the first live mode to start notifies it once."""
    global _ACTIVE, _PROBLEM
    _ACTIVE, _PROBLEM = None, problem
    install_hooks()


def disable() -> None:
    """Back to octobot-trading's own behaviour (the hooks stay installed and answer as if absent)."""
    global _ACTIVE, _PROBLEM
    _ACTIVE, _PROBLEM = None, None
    _STARTED.clear()


# ---------------------------------------------------------------------------------------------- mode hooks


def _is_live(mode: Any) -> bool:
    try:
        return not mode.exchange_manager.is_backtesting and not mode.is_following_trading_signals()
    except Exception:  # noqa: BLE001 - a mode without an exchange yet
        return False


def publishes(mode: Any) -> bool:
    """True when this mode's orders go to the card's strategy."""
    return _ACTIVE is not None and _is_live(mode)


def install_hooks() -> bool:
    """Wrap AbstractTradingMode's emission switch, identifier and start, once; True when installed now."""
    import octobot_trading.modes as trading_modes

    mode_class = trading_modes.AbstractTradingMode
    if getattr(mode_class.should_emit_trading_signal, HOOK_MARK, False):
        return False
    original_emit = mode_class.should_emit_trading_signal
    original_identifier = mode_class.get_trading_signal_identifier
    original_initialize = mode_class.initialize

    @functools.wraps(original_emit)
    def should_emit_trading_signal(self: Any) -> bool:
        return True if publishes(self) else original_emit(self)

    @functools.wraps(original_identifier)
    def get_trading_signal_identifier(self: Any) -> str:
        settings = _ACTIVE
        return settings.strategy_id if settings is not None and publishes(self) else original_identifier(self)

    @functools.wraps(original_initialize)
    async def initialize(self: Any, *args: Any, **kwargs: Any) -> None:
        await original_initialize(self, *args, **kwargs)
        try:
            mode_started(self)
        except Exception as err:  # noqa: BLE001 - never stop a trading mode because of publishing
            _logger().error(f"publishing check not started: {err!r}")

    for function in (should_emit_trading_signal, get_trading_signal_identifier, initialize):
        setattr(function, HOOK_MARK, True)
    mode_class.should_emit_trading_signal = should_emit_trading_signal
    mode_class.get_trading_signal_identifier = get_trading_signal_identifier
    mode_class.initialize = initialize
    return True


def uninstall_hooks() -> None:
    """For tests: put AbstractTradingMode's own methods back."""
    import octobot_trading.modes as trading_modes

    mode_class = trading_modes.AbstractTradingMode
    for name in ("should_emit_trading_signal", "get_trading_signal_identifier", "initialize"):
        function = mode_class.__dict__.get(name)
        if getattr(function, HOOK_MARK, False):
            setattr(mode_class, name, function.__wrapped__)


def _spawn(coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def mode_started(mode: Any) -> None:
    """A trading mode finished its initialize() (in the bot's loop)."""
    if publishes(mode):
        assert _ACTIVE is not None
        exchange = getattr(mode.exchange_manager, "exchange_name", "?")
        _logger().info(f"{mode.get_name()} on {exchange}: its orders are published to strategy "
                       f"{_ACTIVE.strategy_id} on {_ACTIVE.hub_url}")
        if "check" not in _STARTED:
            _STARTED.add("check")
            _spawn(start_and_check(_ACTIVE))
    elif _PROBLEM is not None and _is_live(mode) and "problem" not in _STARTED:
        _STARTED.add("problem")
        _spawn(notify(f"Not publishing: {_PROBLEM}", error=True))


async def start_and_check(settings: publish_card.PublishSettings) -> publish_card.ProbeResult | None:
    """Start the publisher (pending bundles go out), then ask the hub once and say what it answered."""
    logger = _logger()
    feed = bridge.get_bridge()
    if feed is None or feed.publisher is None:
        logger.error("publishing is on but the bridge has no publisher: restart OctoBot")
        return None
    try:
        import octobot_commons.authentication as authentication

        if authentication.Authenticator.get_instance_if_exists() is not feed:
            enable(settings)  # someone replaced Authenticator.instance(): take the routing back
    except Exception:  # noqa: BLE001
        pass
    await feed.publisher.start()
    pending = await feed.publisher.outbox.apending_by_strategy()
    result = await publish_card.probe(settings)
    waiting = pending.get(settings.strategy_id, 0)
    if result.ok:
        logger.info(f"{result.message}; {waiting} signal bundle(s) pending in the outbox")
    else:
        logger.error(f"publishing problem: {result.message} ({waiting} pending)")
        await notify(result.message, error=True)
    for strategy_id, count in pending.items():
        if strategy_id != settings.strategy_id:
            logger.warning(f"{count} signal bundle(s) queued for strategy {strategy_id} wait in the outbox: "
                           f"they go out when the card names {strategy_id} again")
    return result


async def notify(text: str, *, error: bool = False) -> None:
    """An OctoBot notification (web UI, Telegram... whichever notifiers the bot runs); best effort."""
    try:
        import octobot_services.api as services_api
        import octobot_services.enums as services_enums
    except ImportError:  # outside OctoBot
        return
    try:
        level = services_enums.NotificationLevel.ERROR if error else services_enums.NotificationLevel.INFO
        await services_api.send_notification(services_api.create_notification(
            text, title=NOTIFICATION_TITLE, level=level))
    except Exception as err:  # noqa: BLE001 - a notification must never break trading
        _logger().warning(f"could not send the notification: {err!r}")
