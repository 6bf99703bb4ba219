"""Connect a RemoteTradingSignalsTradingMode to its strategy hub through the Authenticator bridge.

The mode registers its feed callback the way octobot-trading's own following chain does
(`Authenticator.instance().register_feed_callback(SIGNAL, callback, identifier=strategy)`); the
bridge routes it to a FollowerClient that resumes from the last applied sequence, fills gaps,
dedups and verifies signatures, then awaits the mode's handling of each message before
recording its sequence as applied.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import octobot_commons.enums as commons_enums

from .bridge import FeedAuthenticator, install_bridge

OutcomeListener = Callable[[dict[str, Any], list[Any]], None]


@dataclass
class ModeSubscription:
    bridge: FeedAuthenticator
    strategy_id: str
    callback: Callable[[dict[str, Any]], Awaitable[None]]

    async def stop(self) -> None:
        await self.bridge.unregister_feed_callback(self.strategy_id, self.callback)


async def subscribe_mode(mode: Any, logger: Any = None, on_outcomes: OutcomeListener | None = None) -> ModeSubscription:
    """Follow `mode.settings.trading_strategy` on `mode.settings.hub_url`; messages go to the mode."""
    logger = logger or logging.getLogger("RemoteTradingSignalsTradingMode")
    settings = mode.settings
    strategy_id = settings.trading_strategy
    bridge = install_bridge(
        hub_url=settings.hub_url,
        data_dir=mode.resolve_data_dir() / "feed",
        follower_token=settings.follower_token,
        public_keys={strategy_id: settings.public_key} if settings.public_key else None,
        strategies=[strategy_id],  # ours even while an OctoBot cloud account is logged in
    )

    async def on_message(message: dict[str, Any]) -> None:
        outcomes = await mode.apply_feed_message(message)
        if on_outcomes is not None:
            on_outcomes(message, outcomes)

    await bridge.register_feed_callback(commons_enums.CommunityChannelTypes.SIGNAL, on_message,
                                        identifier=strategy_id)
    logger.info(f"Following strategy {strategy_id} on {settings.hub_url}")
    return ModeSubscription(bridge, strategy_id, on_message)
