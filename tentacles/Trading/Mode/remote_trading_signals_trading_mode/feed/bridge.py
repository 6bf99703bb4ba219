"""OctoBot bridge: an octobot_commons Authenticator that routes the stock feed calls to our hub.

octobot-trading talks to "the community" only through `Authenticator.instance()`:
- following: `RemoteTradingSignalsChannel.subscribe_to_product_feed(strategy)` calls
  `register_feed_callback(CommunityChannelTypes.SIGNAL, producer.on_new_signal, identifier=strategy)`;
  the callback reads `message["s"]`. We route it to a FollowerClient, whose handler gets the
  full feed message dict, so the stock producer works unmodified.
- publishing: `signals_emitter.emit_signal_bundle` calls
  `send(bundle_dict, CommunityChannelTypes.SIGNAL, identifier=strategy)`. We normalize the bundle
  (signal_normalizer: raw edit quantities become the share of this bot's portfolio, computed
  with octobot-trading's own get_order_size_portfolio_percent on an attached exchange manager)
  and hand it to a PublisherClient, whose durable outbox never drops it.

Coexistence with OctoBot cloud: when an Authenticator already exists (OctoBot's own) it is kept
as `fallback`. Our instance becomes `Authenticator.instance()` so the stock chains reach us, but
every call that is not about a strategy on our hub is delegated to the fallback, and so is every
other Authenticator method (login, portfolio updates, ...). While the fallback is logged in, only
strategies explicitly claimed (install_bridge(strategies=...) / claim_strategy()) follow through
our hub; otherwise any followed strategy does. The fallback's own class singleton is untouched.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import octobot_commons.authentication as authentication
import octobot_commons.enums as commons_enums
import octobot_commons.singleton as singleton

from ..core.decimal_util import plain
from . import performance_reporter  # the publishing bot's track record (issue 20): hooks below
from .follower_client import FollowerClient
from .outbox import Outbox
from .publish_card import (  # noqa: F401 - re-exported: the environment's names
    DEFAULT_DATA_DIR,
    ENV_DATA_DIR,
    ENV_HUB_URL,
    ENV_PUBLISH_SECRET,
    ENV_PUBLISH_STRATEGY,
    ENV_SIGNING_KEY,
)
from .publisher_client import PublisherClient
from .signal_normalizer import normalize_bundle, raw_quantity
from .state_store import FollowerState

# the publishing variables are defined with the web UI card they override (publish_card)
ENV_FOLLOWER_TOKEN = "OCTOBOT_SIGNALS_FOLLOWER_TOKEN"  # optional: follow from an unmodified bot too
SHARE_DECIMALS = Decimal("1e-8")

FeedCallback = Callable[[dict[str, Any]], Awaitable[Any]]

_BRIDGE: FeedAuthenticator | None = None
logger = logging.getLogger("octobot_signals.feed.bridge")


class HubNotConfigured(authentication.AuthenticationRequired):
    """A feed call for a strategy that neither our hub nor a fallback authenticator can serve."""


def _signal_channel(channel_type: Any) -> bool:
    value = getattr(channel_type, "value", channel_type)
    return value == commons_enums.CommunityChannelTypes.SIGNAL.value


class FeedAuthenticator(authentication.Authenticator):
    def __init__(self, fallback: authentication.Authenticator | None = None) -> None:
        # Before super().__init__: __getattr__ looks at it.
        self.fallback = fallback
        super().__init__(use_as_singleton=True)
        self.initialized_event = asyncio.Event()
        self.initialized_event.set()
        self.hub_url: str | None = None
        self.data_dir: Path | None = None
        self.follower: FollowerClient | None = None
        self.publisher: PublisherClient | None = None
        self.publish_strategy: str | None = None
        self.claimed: set[str] = set()
        self._follower_key: tuple[str, str] | None = None
        self._publisher_key: tuple[str, str, str, str | None] | None = None
        self._public_keys: dict[str, str] = {}
        self._callbacks: dict[str, list[FeedCallback]] = {}
        self._exchange_managers: list[Any] = []
        self._retired: list[FollowerClient | PublisherClient] = []
        self.performance_reporter: Any = None  # performance_reporter.PerformanceReporter, with the publisher

    # ------------------------------------------------------------------ configuration

    def configure(
        self,
        *,
        hub_url: str,
        data_dir: str | os.PathLike[str],
        follower_token: str | None = None,
        publish_secret: str | None = None,
        publish_strategy: str | None = None,
        private_key_b64: str | None = None,
        public_keys: Mapping[str, str] | None = None,
        strategies: Iterable[str] | None = None,
    ) -> None:
        """(Re)configure; unchanged parts keep their running clients."""
        self.hub_url = hub_url.rstrip("/")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if public_keys:
            self._public_keys.update(public_keys)
        if strategies:
            self.claimed.update(strategies)
        if follower_token:
            key = (self.hub_url, follower_token)
            if key != self._follower_key:
                self._retire(self.follower)
                self.follower = FollowerClient(
                    self.hub_url, follower_token, FollowerState(self.data_dir), public_keys=self._public_keys
                )
                self._follower_key = key
                for strategy_id in self._callbacks:
                    self.follower.subscribe(strategy_id, self._dispatcher(strategy_id))
            else:
                assert self.follower is not None
                for strategy_id, public_key in self._public_keys.items():
                    self.follower.set_public_key(strategy_id, public_key)
        if publish_secret and publish_strategy:
            key2 = (self.hub_url, publish_secret, publish_strategy, private_key_b64)
            if key2 != self._publisher_key:
                self._retire(self.publisher)
                self.publisher = PublisherClient(
                    self.hub_url, publish_secret, publish_strategy, Outbox(self.data_dir),
                    private_key_b64=private_key_b64,
                )
                self._publisher_key = key2
                self.publish_strategy = publish_strategy
            performance_reporter.configure_for(self)

    def claim_strategy(self, strategy_id: str) -> None:
        """Follow this strategy through our hub even while a cloud authenticator is logged in."""
        self.claimed.add(strategy_id)

    def attach_exchange_manager(self, exchange_manager: Any) -> None:
        """The publishing bot's exchange: used to express edited quantities as portfolio shares."""
        if exchange_manager not in self._exchange_managers:
            self._exchange_managers.append(exchange_manager)
        performance_reporter.ensure_running(self)

    def detach_exchange_manager(self, exchange_manager: Any) -> None:
        if exchange_manager in self._exchange_managers:
            self._exchange_managers.remove(exchange_manager)

    def _retire(self, client: FollowerClient | PublisherClient | None) -> None:
        if client is None:
            return
        self._retired.append(client)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # stopped by stop_bridge() / the next async call
        loop.create_task(self._stop_retired())

    async def _stop_retired(self) -> None:
        retired, self._retired = self._retired, []
        for client in retired:
            await _stop_client(client)

    # ------------------------------------------------------------------ routing rules

    def _fallback_logged_in(self) -> bool:
        if self.fallback is None:
            return False
        try:
            return bool(self.fallback.is_logged_in())
        except Exception:  # a half-initialized cloud authenticator: treat as logged out
            return False

    def follows_on_hub(self, identifier: str | None) -> bool:
        if self.follower is None or not identifier:
            return False
        return identifier in self.claimed or not self._fallback_logged_in()

    def publishes_on_hub(self, identifier: str | None) -> bool:
        return self.publisher is not None and identifier is not None and identifier == self.publish_strategy

    # ------------------------------------------------------------------ feed API used by octobot-trading

    async def register_feed_callback(
        self, channel_type: Any, callback: FeedCallback, identifier: str | None = None, *args: Any, **kwargs: Any
    ) -> None:
        if _signal_channel(channel_type) and self.follows_on_hub(identifier):
            assert self.follower is not None and identifier is not None
            callbacks = self._callbacks.setdefault(identifier, [])
            if callback not in callbacks:
                callbacks.append(callback)
            if len(callbacks) == 1:
                self.follower.subscribe(identifier, self._dispatcher(identifier))
            await self._stop_retired()
            await self.follower.start()
            logger.info("following %s through hub %s", identifier, self.hub_url)
            return
        if self.fallback is not None:
            await self.fallback.register_feed_callback(channel_type, callback, identifier, *args, **kwargs)
            return
        raise HubNotConfigured(f"no hub follower token configured for strategy {identifier!r}")

    async def unregister_feed_callback(self, identifier: str, callback: FeedCallback) -> None:
        """Stop delivering `identifier` to `callback`; the follower link closes with its last callback."""
        callbacks = self._callbacks.get(identifier, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not any(self._callbacks.values()) and self.follower is not None:
            await self.follower.stop()

    async def send(self, message: Any, channel_type: Any, identifier: str | None = None, *args: Any,
                   **kwargs: Any) -> None:
        if identifier is None and isinstance(message, Mapping):
            identifier = message.get("identifier")
        if _signal_channel(channel_type) and self.publishes_on_hub(identifier):
            assert self.publisher is not None
            bundle = await self.normalize(message)
            await self._stop_retired()
            await self.publisher.start()
            performance_reporter.nudge(self)  # a signal: a fill may follow, and the reporter needs the loop
            u = await self.publisher.publish(bundle)
            logger.info("signal bundle for %s queued for the hub (u=%s, %d signals)", identifier, u,
                        len(bundle.get("signals", [])))
            return
        if self.fallback is not None:
            await self.fallback.send(message, channel_type, identifier, *args, **kwargs)
            return
        raise HubNotConfigured(f"no hub publish secret configured for strategy {identifier!r}")

    def _dispatcher(self, strategy_id: str) -> FeedCallback:
        async def dispatch(message: dict[str, Any]) -> None:
            for callback in list(self._callbacks.get(strategy_id, [])):
                await callback(message)

        return dispatch

    async def flush(self, timeout: float) -> bool:
        """Wait until every published bundle was acked by the hub."""
        return True if self.publisher is None else await self.publisher.flush(timeout)

    # ------------------------------------------------------------------ normalization

    def _exchange_manager_for(self, exchange_name: Any) -> Any:
        for exchange_manager in self._exchange_managers:
            if getattr(exchange_manager, "exchange_name", None) == exchange_name:
                return exchange_manager
        if self._exchange_managers:
            return self._exchange_managers[0] if len(self._exchange_managers) == 1 else None
        return _running_exchange_manager(exchange_name)

    async def _share(self, content: Mapping[str, Any], quantity: Decimal) -> str | None:
        import octobot_trading.enums as trading_enums
        import octobot_trading.personal_data as personal_data

        exchange_manager = self._exchange_manager_for(content.get("exchange"))
        if exchange_manager is None:
            return None
        try:
            side = trading_enums.TradeOrderSide(content.get("side"))
            percent = await personal_data.get_order_size_portfolio_percent(
                exchange_manager, quantity, side, content.get("symbol")
            )
        except Exception as err:  # unknown symbol, no price yet...: the edit goes out without a size
            logger.warning("cannot compute the portfolio share of %s %s: %s", content.get("symbol"), quantity, err)
            return None
        if percent is None or percent <= 0:
            return None
        return f"{plain(Decimal(percent).quantize(SHARE_DECIMALS))}%"

    def _prices(self, content: Mapping[str, Any]) -> dict[str, Any] | None:
        exchange_manager = self._exchange_manager_for(content.get("exchange"))
        if exchange_manager is None:
            return None
        try:
            order = exchange_manager.exchange_personal_data.orders_manager.get_order(content.get("order_id"))
        except (KeyError, AttributeError):
            return None
        return {"limit_price": order.origin_price, "stop_price": order.origin_stop_price,
                "current": order.created_last_price}

    async def normalize(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """normalize_bundle with shares computed on the attached exchange manager(s)."""
        requests: list[dict[str, Any]] = []

        def record(content: dict[str, Any]) -> str | None:
            requests.append(content)
            return "1%"  # placeholder: the first pass only collects what needs a share

        normalize_bundle(bundle, record, prices_of=self._prices)
        shares: dict[tuple[Any, ...], str | None] = {}
        for content in requests:
            key = _share_key(content)
            if key not in shares:
                shares[key] = await self._share(content, content["quantity"])
        warnings: list[str] = []
        result = normalize_bundle(
            bundle, lambda content: shares.get(_share_key(content)), prices_of=self._prices, warnings=warnings
        )
        for warning in warnings:
            logger.warning("publishing %s: %s", bundle.get("identifier"), warning)
        return result

    # ------------------------------------------------------------------ Authenticator contract

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes we do not have: the cloud authenticator's extras.
        fallback = self.__dict__.get("fallback")
        if fallback is not None and not name.startswith("__"):
            return getattr(fallback, name)
        raise AttributeError(name)

    async def login(self, username: Any, password: Any, password_token: Any = None) -> Any:
        if self.fallback is not None:
            return await self.fallback.login(username, password, password_token=password_token)
        raise authentication.FailedAuthentication("this bot uses a self-hosted signals hub: no account login")

    def logout(self) -> Any:
        return self.fallback.logout() if self.fallback is not None else None

    async def register(self, username: Any, password: Any) -> Any:
        if self.fallback is not None:
            return await self.fallback.register(username, password)
        raise authentication.FailedAuthentication("this bot uses a self-hosted signals hub: no account")

    def get_aiohttp_session(self) -> Any:
        return self.fallback.get_aiohttp_session() if self.fallback is not None else None

    def is_logged_in(self) -> bool:
        return self._fallback_logged_in()

    def must_be_authenticated_through_authenticator(self) -> bool:
        return bool(self.fallback.must_be_authenticated_through_authenticator()) if self.fallback else False

    def ensure_token_validity(self) -> Any:
        return self.fallback.ensure_token_validity() if self.fallback is not None else None

    def is_initialized(self) -> bool:
        return bool(self.fallback.is_initialized()) if self.fallback is not None else True

    async def await_initialization(self, timeout: float) -> None:
        if self.fallback is not None:
            await self.fallback.await_initialization(timeout)

    async def update_trades(self, trades: list, exchange_name: str, reset: bool) -> Any:
        if self.fallback is not None:
            return await self.fallback.update_trades(trades, exchange_name, reset)

    async def update_orders(self, orders_by_exchange: dict[str, list]) -> Any:
        if self.fallback is not None:
            return await self.fallback.update_orders(orders_by_exchange)

    async def update_positions(self, positions_by_exchange: dict[str, list]) -> Any:
        if self.fallback is not None:
            return await self.fallback.update_positions(positions_by_exchange)

    async def update_portfolio(self, *args: Any, **kwargs: Any) -> Any:
        performance_reporter.nudge(self)  # octobot-trading's portfolio storage: the portfolio just changed
        if self.fallback is not None:
            return await self.fallback.update_portfolio(*args, **kwargs)

    async def wait_for_private_data_fetch_if_processing(self) -> None:
        if self.fallback is not None:
            await self.fallback.wait_for_private_data_fetch_if_processing()

    def has_open_source_package(self) -> bool:
        return bool(self.fallback.has_open_source_package()) if self.fallback is not None else False

    # ------------------------------------------------------------------ lifecycle

    async def stop(self) -> None:
        await performance_reporter.stop_for(self)
        await self._stop_retired()
        for client in (self.follower, self.publisher):
            if client is not None:
                await _stop_client(client)
        self.follower = self.publisher = None
        self._follower_key = self._publisher_key = None


async def _stop_client(client: FollowerClient | PublisherClient) -> None:
    await client.stop()
    if isinstance(client, FollowerClient):
        client._state.close()
    else:
        client.outbox.close()


def _share_key(content: Mapping[str, Any]) -> tuple[Any, ...]:
    quantity = raw_quantity(content.get("quantity"))
    return (content.get("exchange"), content.get("symbol"), content.get("side"), content.get("order_id"),
            None if quantity is None else plain(quantity))


# ---------------------------------------------------------------------- module API


def _running_exchange_manager(exchange_name: Any) -> Any:
    """Inside OctoBot nobody attaches exchange managers to us: find the bot's own (the one that trades)."""
    try:
        import octobot_trading.exchanges as trading_exchanges

        configurations = trading_exchanges.Exchanges.instance().get_exchanges_list(exchange_name)
    except Exception:  # no exchange of that name running
        return None
    managers = [c.exchange_manager for c in configurations if getattr(c, "exchange_manager", None) is not None]
    trading = [m for m in managers if m.trading_modes]
    return (trading or managers or [None])[0]


def get_bridge() -> FeedAuthenticator | None:
    return _BRIDGE


def install_bridge(
    *,
    hub_url: str,
    data_dir: str | os.PathLike[str],
    follower_token: str | None = None,
    publish_secret: str | None = None,
    publish_strategy: str | None = None,
    private_key_b64: str | None = None,
    public_keys: Mapping[str, str] | None = None,
    strategies: Iterable[str] | None = None,
) -> FeedAuthenticator:
    """Install (or update) the bridge as Authenticator.instance(); idempotent."""
    global _BRIDGE
    current = authentication.Authenticator.get_instance_if_exists()
    bridge = _BRIDGE
    if bridge is None:
        fallback = current if current is not None and not isinstance(current, FeedAuthenticator) else None
        bridge = FeedAuthenticator(fallback=fallback)
        _BRIDGE = bridge
    elif current is not bridge:
        # Someone installed another authenticator after us (e.g. the bot re-created its own):
        # keep it as the fallback and take the routing back.
        if current is not None and not isinstance(current, FeedAuthenticator):
            bridge.fallback = current
        bridge.use_as_singleton_instance()
    bridge.configure(
        hub_url=hub_url, data_dir=data_dir, follower_token=follower_token, publish_secret=publish_secret,
        publish_strategy=publish_strategy, private_key_b64=private_key_b64, public_keys=public_keys,
        strategies=strategies,
    )
    return bridge


def install_bridge_from_env(environ: Mapping[str, str] | None = None) -> FeedAuthenticator | None:
    """Publishing (and optionally following) from an unmodified OctoBot, configured by environment.

    Needs OCTOBOT_SIGNALS_HUB_URL plus either OCTOBOT_SIGNALS_PUBLISH_SECRET and
    OCTOBOT_SIGNALS_PUBLISH_STRATEGY, or OCTOBOT_SIGNALS_FOLLOWER_TOKEN; returns None otherwise.
    """
    env = os.environ if environ is None else environ
    hub_url = env.get(ENV_HUB_URL, "").strip()
    secret = env.get(ENV_PUBLISH_SECRET, "").strip() or None
    strategy = env.get(ENV_PUBLISH_STRATEGY, "").strip() or None
    follower_token = env.get(ENV_FOLLOWER_TOKEN, "").strip() or None
    if not hub_url or not ((secret and strategy) or follower_token):
        return None
    return install_bridge(
        hub_url=hub_url,
        data_dir=env.get(ENV_DATA_DIR, "").strip() or DEFAULT_DATA_DIR,
        follower_token=follower_token,
        publish_secret=secret,
        publish_strategy=strategy,
        private_key_b64=env.get(ENV_SIGNING_KEY, "").strip() or None,
    )


async def stop_bridge() -> None:
    """Stop the clients and give Authenticator.instance() back to the fallback (if any)."""
    global _BRIDGE
    bridge, _BRIDGE = _BRIDGE, None
    if bridge is None:
        return
    await bridge.stop()
    instances = singleton.Singleton._instances
    if instances.get(authentication.Authenticator) is bridge:
        if bridge.fallback is not None:
            instances[authentication.Authenticator] = bridge.fallback
        else:
            instances.pop(authentication.Authenticator, None)
    if instances.get(FeedAuthenticator) is bridge:
        instances.pop(FeedAuthenticator, None)
