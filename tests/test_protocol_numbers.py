"""Huge JSON numbers (issue 17 item 8): Python's json reads an integer of any length (up to 4300 digits), and
such an integer cannot become a float. Every number of the protocol is refused with a ProtocolError that names
its field, the connection stays up, and a follower skips the message with a reason and goes on.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_helpers import (
    admin_create_follower,
    admin_create_strategy,
    make_bundle,
    publish,
    recv_json,
    running_hub,
    subscribe,
    ws_connect,
)
from octobot_signals.core import protocol, signal_schema
from octobot_signals.feed.follower_client import FollowerClient
from octobot_signals.feed.state_store import FollowerState
from octobot_signals.hub.server import HubHandle

HUGE = 10**400  # 401 digits
TIMEOUT = aiohttp.ClientTimeout(total=15)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHandle]:
    async with running_hub(tmp_path / "hub") as handle:
        yield handle


def feed_message(**overrides: Any) -> dict[str, Any]:
    message = {"u": uuid.uuid4().hex, "i": "st_x", "t": "t", "v": "1.0.0", "d": 1764000000.5, "q": 1,
               "s": make_bundle("s1"), "g": None}
    message.update(overrides)
    return message


def raw_publish_frame(d: Any) -> str:
    data = {"topic": "t", "feed_id": "st_x", "version": "1.0.0", "value": json.dumps(make_bundle("s1")),
            "u": "u-1", "d": d, "g": None}
    return json.dumps({"command": "message", "identifier": protocol.CHANNEL_IDENTIFIER, "data": json.dumps(data)})


def raw_subscribe_frame(resume: dict[str, Any]) -> str:
    return json.dumps({"command": "subscribe", "identifier": protocol.CHANNEL_IDENTIFIER,
                       "data": json.dumps({"strategies": ["s1"], "resume": resume})})


# (what is parsed, the field the error must name)
CASES: dict[str, tuple[Callable[[], Any], str]] = {
    "feed message d": (lambda: protocol.parse_feed_message(feed_message(d=HUGE)), "d"),
    "feed message negative d": (lambda: protocol.parse_feed_message(feed_message(d=-HUGE)), "d"),
    "feed message q": (lambda: protocol.parse_feed_message(feed_message(q=HUGE)), "q"),
    "publish d": (lambda: protocol.parse_client_command(raw_publish_frame(HUGE)), "data.d"),
    "subscribe resume": (lambda: protocol.parse_client_command(raw_subscribe_frame({"s1": HUGE})), "data.resume"),
    "ping message inf": (lambda: protocol.parse_server_frame('{"type":"ping","message":1e999}'), "ping.message"),
    "ping message huge": (lambda: protocol.parse_server_frame('{"type":"ping","message":1%s}' % ("0" * 400)),
                          "ping.message"),
    "ack q": (lambda: protocol.parse_server_frame('{"type":"ack","u":"x","q":1%s}' % ("0" * 400)), "ack.q"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_huge_numbers_raise_a_protocol_error_naming_the_field(case: str) -> None:
    parse, field = CASES[case]
    with pytest.raises(protocol.ProtocolError) as refused:
        parse()
    assert field in refused.value.message, refused.value


def test_huge_numbers_in_free_form_order_fields_reject_the_signal() -> None:
    bundle = make_bundle("s1")
    content = bundle["signals"][0]["content"]
    content.update(exchange_type="spot", side="buy", type="buy_market", target_amount="5%",
                   trailing_profile={"steps": [{"price": HUGE}]})
    parsed = signal_schema.parse_bundle(bundle)
    rejected = parsed.signals[0]
    assert isinstance(rejected, signal_schema.RejectedSignal), rejected
    assert rejected.error.field == "s.signals[0].content.trailing_profile", rejected.error


async def test_publisher_sending_a_huge_integer_d_is_nacked_and_keeps_its_connection(hub: HubHandle) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    bundle = make_bundle("s1")
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
        await ws.send_str(protocol.build_publish_command(strategy["feed_id"], bundle, "u-huge", HUGE, None))
        nack = await recv_json(ws)
        assert nack["type"] == "nack" and nack["u"] == "u-huge" and "data.d" in nack["message"], nack
        ack = await publish(ws, strategy)  # the same connection, a good message
        assert ack["type"] == "ack" and ack["q"] == 1, ack
        await ws.close()


async def test_follower_resuming_from_a_huge_q_gets_an_error_and_keeps_its_connection(hub: HubHandle) -> None:
    await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        ws = await ws_connect(session, hub.base_url, token)
        await ws.send_str(raw_subscribe_frame({"s1": HUGE}))
        frame = await recv_json(ws)
        assert frame["type"] == "error" and "data.resume" in frame["message"], frame
        await subscribe(ws, ["s1"], resume={"s1": 0})  # the same connection, a good subscription
        await ws.close()


async def test_follower_skips_a_journaled_huge_d_with_a_reason_and_applies_the_next(
        hub: HubHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A journal written by an older or foreign hub holds d = 10**400 at q=1: the follower skips it with a reason
    (live and from history) and applies q=2, instead of stalling on an exception."""
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    await hub.state.store.append("s1", "u-huge", HUGE, make_bundle("s1"), None)  # bypasses the hub's check
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
        assert (await publish(ws, strategy))["q"] == 2
        await ws.close()
    token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
    applied: list[dict[str, Any]] = []

    async def handler(message: dict[str, Any]) -> None:
        applied.append(message)

    state = FollowerState(tmp_path / "follower")
    follower = FollowerClient(hub.base_url, token, state, replay_from_start=True, backoff_cap=0.5)
    follower.subscribe("s1", handler)
    caplog.set_level(logging.WARNING, logger="octobot_signals.feed.follower")
    await follower.start()
    try:
        for _ in range(100):
            if follower.last_applied("s1") >= 2:
                break
            await asyncio.sleep(0.05)
        assert [m["q"] for m in applied] == [2], (applied, caplog.text)
        assert follower.last_applied("s1") == 2
        assert follower.stats.rejected_invalid >= 1
        assert "invalid message skipped" in caplog.text and "d must be" in caplog.text, caplog.text
        assert "Traceback" not in caplog.text and "OverflowError" not in caplog.text, caplog.text
    finally:
        await follower.stop()
        state.close()
