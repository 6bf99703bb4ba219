"""Runs in the OctoBot 2.1.1 venv with a bot folder as cwd: a STOCK follower's MQTT path, unmodified.

What a stock OctoBot does to follow a strategy: its CommunityAuthentication reads `community.mqtt_uuid`
from user/config.json (through its own configuration storage), creates the community feed of the default
type (MQTT) on host $COMMUNITY_FEED_URL, connects, and subscribes `t/<strategy>` when octobot-trading
registers its signal callback; the callback turns each message into a SignalBundle with octobot-commons'
`create_signal_bundle` (what octobot-trading's signal producer does). Nothing of this project is imported.

The one change: CommunityMQTTFeed.MQTT_BROKER_PORT, a class constant (1883) the feed copies in __init__,
is set to argv port when that is not 1883 (the test uses 1883 when it is free on 127.0.0.1, else a free
port). No OctoBot file or function is modified.

stdout protocol: `READY {...}` once subscribed, `MSG {...}` per message (receive time taken in the
callback), then `DONE {...}` after a line on stdin (or stdin closing) asks it to stop.
Usage: python stock_mqtt_follower.py STRATEGY_ID PORT
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import octobot.community as octobot_community
import octobot.community.feeds.community_mqtt_feed as community_mqtt_feed
import octobot_commons.configuration as commons_configuration
import octobot_commons.enums as commons_enums
import octobot_commons.signals as commons_signals

READY_TIMEOUT_S = 20


def emit(kind: str, payload: dict) -> None:
    sys.stdout.write(f"{kind} {json.dumps(payload)}\n")
    sys.stdout.flush()


async def main(strategy_id: str, port: int) -> None:
    patched = port != community_mqtt_feed.CommunityMQTTFeed.MQTT_BROKER_PORT
    if patched:
        community_mqtt_feed.CommunityMQTTFeed.MQTT_BROKER_PORT = port
    # the bot's own configuration object holding user/config.json (profiles are not needed by the feed)
    bot_dir = Path.cwd()
    configuration = commons_configuration.Configuration(str(bot_dir / "user" / "config.json"),
                                                        str(bot_dir / "user" / "profiles"))
    configuration.config = json.loads((bot_dir / "user" / "config.json").read_text(encoding="utf-8"))
    # never contacted: the feed needs no backend login (a placeholder address, like the publish probe)
    community = octobot_community.CommunityAuthentication(config=configuration, backend_url="https://backend.invalid",
                                                          backend_key="offline")
    received: list[dict] = []

    async def on_signal(parsed_message: dict) -> None:
        now = time.time()
        bundle = commons_signals.create_signal_bundle(parsed_message)
        entry = {"recv": now, "u": parsed_message.get("u"), "q": parsed_message.get("q"),
                 "d": parsed_message.get("d"), "identifier": bundle.identifier,
                 "signals": [{"topic": s.topic, "order_id": s.content.get("order_id")} for s in bundle.signals]}
        received.append(entry)
        emit("MSG", entry)

    await community.register_feed_callback(commons_enums.CommunityChannelTypes.SIGNAL, on_signal,
                                           identifier=strategy_id)
    feed = community._community_feed  # the feed OctoBot's factory created (read only, to report readiness)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (feed is not None and feed.is_connected() and feed.subscribed):
        if time.monotonic() > deadline:
            emit("DONE", {"error": "not subscribed in time", "feed": type(feed).__name__, "received": received})
            return
        await asyncio.sleep(0.02)
    emit("READY", {"feed": type(feed).__name__, "port": feed.mqtt_broker_port, "port_constant_patched": patched,
                   "username": feed._get_client_uuid() != "", "host": feed.feed_url})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the test says stop
    await feed.stop()
    emit("DONE", {"received": received})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
