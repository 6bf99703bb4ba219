"""The OctoBot bridge: octobot-trading's own publishing and following chains, unmodified, over our hub."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import async_channel.channels as channels
import octobot_commons.authentication as authentication
import octobot_commons.channels_name as channels_name
import octobot_commons.enums as commons_enums
import octobot_commons.signals as commons_signals
import octobot_trading.personal_data as personal_data
import octobot_trading.signals as trading_signals
import pytest
from bridge_helpers import restored_authenticator
from hub_helpers import admin_create_follower, admin_create_strategy, running_hub
from octobot_signals.feed import bridge as bridge_module
from octobot_signals.feed.bridge import (
    HubNotConfigured,
    get_bridge,
    install_bridge,
    install_bridge_from_env,
    stop_bridge,
)
from octobot_signals.simulator.sim_exchange import SimExchangeSpec, sim_exchange
from octobot_trading.enums import TraderOrderType

TIMEOUT = 15.0
SIGNAL = commons_enums.CommunityChannelTypes.SIGNAL
SYMBOL = "BTC/USDT"


@pytest.fixture(autouse=True)
def restore_authenticator() -> Iterator[None]:
    with restored_authenticator():
        yield


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    async with running_hub(tmp_path / "hub") as handle:
        yield handle


class CloudAuth(authentication.Authenticator):
    """Stand-in for OctoBot's own logged-in community authenticator (not the thing under test)."""

    def __init__(self) -> None:
        super().__init__(use_as_singleton=True)
        self.registered: list[str | None] = []
        self.sent: list[str | None] = []

    def is_logged_in(self) -> bool:
        return True

    async def register_feed_callback(self, channel_type: Any, callback: Any, identifier: Any = None) -> None:
        self.registered.append(identifier)

    async def send(self, message: Any, channel_type: Any, identifier: Any = None) -> None:
        self.sent.append(identifier)

    def cloud_only_feature(self) -> str:
        return "cloud"


async def wait_until(predicate: Any, timeout: float = TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_stock_emit_and_follow_chains_go_through_the_hub(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "leader-s")
    token = (await admin_create_follower(hub.base_url, hub.admin_token, "leader-s"))["token"]
    bridge = install_bridge(
        hub_url=hub.base_url, data_dir=tmp_path / "bot", follower_token=token,
        publish_secret=strategy["publish_secret"], publish_strategy="leader-s",
    )
    channel = None
    spec = SimExchangeSpec(portfolio={"BTC": Decimal(1), "USDT": Decimal(10000)}, prices={SYMBOL: Decimal(20000)})
    try:
        assert authentication.Authenticator.instance() is bridge
        async with sim_exchange(spec) as sim:
            em = sim.exchange_manager
            bridge.attach_exchange_manager(em)
            # Following: octobot-trading's own channel + producer, subscribing through Authenticator.instance().
            channel, _ = await trading_signals.create_remote_trading_signal_channel_if_missing(em)
            received: list[tuple[str, Any]] = []

            async def consumer(identifier: str, exchange: str, symbol: str, version: str, bot_id: Any,
                               signal: Any) -> None:
                received.append((identifier, signal))

            await channel.new_consumer(consumer)
            await channel.subscribe_to_product_feed("leader-s")
            assert bridge.follower is not None
            await bridge.follower.wait_until_subscribed(TIMEOUT)

            # Publishing: octobot-trading's own order helpers inside its own bundle builder context.
            publisher = commons_signals.SignalPublisher.instance()
            async with publisher.remote_signal_bundle_builder(
                SYMBOL, "leader-s", signal_builder_class=trading_signals.TradingSignalBundleBuilder,
                builder_args=("TestMode",),
            ):
                order = personal_data.create_order_instance(
                    em.trader, TraderOrderType.SELL_LIMIT, SYMBOL, Decimal(20000), Decimal("0.5"),
                    price=Decimal(21000),
                )
                created = await trading_signals.create_order(em, True, order)
                assert created is not None
            async with publisher.remote_signal_bundle_builder(
                SYMBOL, "leader-s", signal_builder_class=trading_signals.TradingSignalBundleBuilder,
                builder_args=("TestMode",),
            ) as builder:
                # What octobot_trading.signals.edit_order does (its own helper needs every price
                # argument set): edit, then record the edit with the raw Decimal quantity, which
                # the bridge must turn into a share.
                assert await em.trader.edit_order(created, edited_quantity=Decimal("0.25"))
                builder.add_edited_order(created, em, updated_target_amount=Decimal("0.25"))
            assert await bridge.flush(TIMEOUT)
            await wait_until(lambda: len(received) == 2)
    finally:
        if channel is not None:
            await channel.stop()
            channels.del_chan(channels_name.OctoBotCommunityChannelsName.REMOTE_TRADING_SIGNALS_CHANNEL.value)
        await stop_bridge()
    (create_id, create_signal), (edit_id, edit_signal) = received
    assert create_id == edit_id == "leader-s"
    assert create_signal.content["action"] == "create"
    assert create_signal.content["target_amount"] == "50.0%"  # octobot-trading's own share text
    assert edit_signal.content["action"] == "edit"
    assert edit_signal.content["updated_target_amount"] == "25%"  # 0.25 BTC of 1 BTC held
    assert edit_signal.content["updated_limit_price"] is None  # was 0.0
    assert bridge.publisher is None  # stopped
    assert authentication.Authenticator.get_instance_if_exists() is not bridge


async def test_register_feed_callback_delivers_full_message(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
    follower_bridge = install_bridge(hub_url=hub.base_url, data_dir=tmp_path / "f", follower_token=token)
    try:
        got: list[dict[str, Any]] = []

        async def callback(message: dict[str, Any]) -> None:
            got.append(message)

        await authentication.Authenticator.instance().register_feed_callback(SIGNAL, callback, identifier="s1")
        assert follower_bridge.follower is not None
        await follower_bridge.follower.wait_until_subscribed(TIMEOUT)
        # Second install (e.g. the mode re-initialized): same bridge, now also publishing.
        again = install_bridge(hub_url=hub.base_url, data_dir=tmp_path / "f", follower_token=token,
                               publish_secret=strategy["publish_secret"], publish_strategy="s1")
        assert again is follower_bridge and again.follower is follower_bridge.follower
        bundle = {"identifier": "s1", "version": "1.0.0", "signals": [
            {"topic": "orders", "content": {"action": "cancel", "order_id": "abc", "symbol": SYMBOL,
                                            "exchange": "binance", "exchange_type": "spot",
                                            "updated_limit_price": Decimal("0")}, "dependencies": None}]}
        await authentication.Authenticator.instance().send(bundle, SIGNAL, identifier="s1")
        await wait_until(lambda: len(got) == 1)
        message = got[0]
        assert message["s"]["identifier"] == "s1" and message["q"] == 1 and message["t"] == "t"
        assert message["s"]["signals"][0]["content"]["updated_limit_price"] is None
        with pytest.raises(HubNotConfigured):
            await authentication.Authenticator.instance().send(bundle, SIGNAL, identifier="other")
    finally:
        await stop_bridge()


async def test_cloud_authenticator_keeps_its_strategies(tmp_path: Path) -> None:
    cloud = CloudAuth()
    assert authentication.Authenticator.instance() is cloud
    bridge = install_bridge(hub_url="http://127.0.0.1:9", data_dir=tmp_path / "b", follower_token="ft_x",
                            publish_secret="ps_x", publish_strategy="mine", strategies=["mine"])
    try:
        assert bridge.fallback is cloud
        assert authentication.Authenticator.instance() is bridge
        assert CloudAuth.instance() is cloud  # the cloud's own singleton is untouched
        assert bridge.is_logged_in() and bridge.cloud_only_feature() == "cloud"

        async def callback(message: dict[str, Any]) -> None:
            return None

        await bridge.register_feed_callback(SIGNAL, callback, identifier="cloud-strategy")
        await bridge.send({"identifier": "cloud-strategy", "signals": []}, SIGNAL, identifier="cloud-strategy")
        assert cloud.registered == ["cloud-strategy"] and cloud.sent == ["cloud-strategy"]
        assert not bridge.follows_on_hub("cloud-strategy") and bridge.follows_on_hub("mine")
        assert bridge.publishes_on_hub("mine") and not bridge.publishes_on_hub("cloud-strategy")
        # Other channel types always belong to the cloud.
        await bridge.send({}, commons_enums.CommunityChannelTypes.ALERT, identifier="mine")
        assert cloud.sent == ["cloud-strategy", "mine"]
    finally:
        await stop_bridge()
    assert authentication.Authenticator.instance() is cloud


async def test_install_from_env(tmp_path: Path) -> None:
    assert install_bridge_from_env({}) is None
    assert install_bridge_from_env({bridge_module.ENV_HUB_URL: "http://127.0.0.1:9"}) is None
    env = {
        bridge_module.ENV_HUB_URL: "http://127.0.0.1:9/",
        bridge_module.ENV_PUBLISH_SECRET: "ps_secret",
        bridge_module.ENV_PUBLISH_STRATEGY: "grid",
        bridge_module.ENV_DATA_DIR: str(tmp_path / "data"),
    }
    bridge = install_bridge_from_env(env)
    try:
        assert bridge is not None and bridge is get_bridge()
        assert bridge.hub_url == "http://127.0.0.1:9" and bridge.publishes_on_hub("grid")
        assert bridge.follower is None
        assert install_bridge_from_env(env) is bridge  # idempotent
        assert (tmp_path / "data").is_dir()
    finally:
        await stop_bridge()
