"""The hub's /cable WebSocket over real sockets, with raw clients."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hub_helpers import (
    HubEnv,
    RawWebSocket,
    admin_create_follower,
    admin_create_strategy,
    auth,
    make_bundle,
    publish,
    publish_command,
    recv_json,
    running_hub,
    subscribe,
    ws_connect,
)
from octobot_signals.core import protocol


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[HubEnv]:
    async with running_hub(tmp_path / "hub") as hub:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            yield HubEnv(hub, session)


async def collect(ws: aiohttp.ClientWebSocketResponse, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    frames = []
    for _ in range(n):
        frame = await recv_json(ws, timeout)
        assert "message" in frame and frame.get("identifier") == protocol.CHANNEL_IDENTIFIER, frame
        frames.append(frame["message"])
    return frames


async def assert_silent(ws: aiohttp.ClientWebSocketResponse, seconds: float = 0.3) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await recv_json(ws, seconds)


async def test_ordered_delivery_to_several_followers(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    followers = []
    for _ in range(3):
        ws = await env.connect(await env.follower_token("s1"))
        await subscribe(ws, ["s1"])
        followers.append(ws)
    publisher = await env.connect(strategy["publish_secret"])
    sent = []
    for _ in range(20):
        ack = await publish(publisher, strategy)
        assert ack["type"] == "ack", ack
        sent.append((ack["u"], ack["q"]))
    assert [q for _, q in sent] == list(range(1, 21))
    for ws in followers:
        messages = await collect(ws, 20)
        assert [(m["u"], m["q"]) for m in messages] == sent
        assert all(m["i"] == strategy["feed_id"] and m["s"]["identifier"] == "s1" for m in messages)
        await assert_silent(ws, 0.1)


async def test_subscribe_all_and_visibility(env: HubEnv) -> None:
    public = await env.strategy("pub")
    private = await env.strategy("priv", visibility="private")
    outsider = await env.connect(await env.follower_token("pub"))
    await subscribe(outsider)  # everything it may follow: the public one only
    member = await env.connect(await env.follower_token("priv"))
    await subscribe(member)
    for strategy in (public, private):
        publisher = await env.connect(strategy["publish_secret"])
        assert (await publish(publisher, strategy))["type"] == "ack"
    got_member = await collect(member, 2)
    assert sorted(m["s"]["identifier"] for m in got_member) == ["priv", "pub"]
    got_outsider = await collect(outsider, 1)
    assert got_outsider[0]["s"]["identifier"] == "pub"
    await assert_silent(outsider)
    # Explicitly asking for the private strategy is rejected, and the link stays usable.
    await outsider.send_str(protocol.build_subscribe_command(["priv"]))
    frame = await recv_json(outsider)
    assert frame["type"] == "reject_subscription" and "priv" in frame["message"], frame
    await outsider.send_str(protocol.build_subscribe_command(["missing"]))
    frame = await recv_json(outsider)
    assert frame["type"] == "reject_subscription" and "missing" in frame["message"], frame


async def test_resume_replays_before_live(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    token = await env.follower_token("s1")
    publisher = await env.connect(strategy["publish_secret"])
    acks = [await publish(publisher, strategy) for _ in range(5)]
    follower = await env.connect(token)
    await subscribe(follower, ["s1"], resume={"s1": 3})
    assert [m["q"] for m in await collect(follower, 2)] == [4, 5]
    assert (await publish(publisher, strategy))["q"] == 6
    assert [m["q"] for m in await collect(follower, 1)] == [6]
    # A fresh follower resuming from 0 gets everything, same ids.
    late = await env.connect(token)
    await subscribe(late, resume={"s1": 0})
    assert [m["u"] for m in (await collect(late, 6))[:5]] == [a["u"] for a in acks]
    await assert_silent(late)
    # Resuming past the end replays nothing; resume for a strategy not subscribed is refused.
    other = await env.connect(token)
    await subscribe(other, ["s1"], resume={"s1": 99})
    await assert_silent(other)
    await other.send_str(protocol.build_subscribe_command(["s1"], {"zzz": 0}))
    assert (await recv_json(other))["type"] == "reject_subscription"


async def test_resume_during_live_publishing_is_gapless(env: HubEnv) -> None:
    """Replay and live traffic race: the follower still sees 1..N once each, in order."""
    strategy = await env.strategy("s1")
    token = await env.follower_token("s1")
    publisher = await env.connect(strategy["publish_secret"])
    for _ in range(300):
        await publisher.send_str(publish_command(strategy)[0])
    total = 300 + 100

    async def publish_more() -> None:
        for _ in range(100):
            await publisher.send_str(publish_command(strategy)[0])
            await asyncio.sleep(0)

    follower = await env.connect(token)
    task = asyncio.create_task(publish_more())
    await asyncio.sleep(0.01)  # some of the first 300 are journaled, some still in flight
    await subscribe(follower, ["s1"], resume={"s1": 0})
    messages = await collect(follower, total, timeout=10)
    await task
    assert [m["q"] for m in messages] == list(range(1, total + 1))
    await assert_silent(follower)


async def test_duplicate_u_returns_same_ack_and_is_journaled_once(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    follower = await env.connect(await env.follower_token("s1"))
    await subscribe(follower, ["s1"])
    publisher = await env.connect(strategy["publish_secret"])
    bundle = make_bundle("s1")
    first = await publish(publisher, strategy, bundle=bundle, u="same-id", d=100.0)
    assert first == {"type": "ack", "u": "same-id", "q": 1}
    # Same u again (even from a new connection, as after a publisher restart).
    publisher2 = await env.connect(strategy["publish_secret"])
    again = await publish(publisher2, strategy, bundle=bundle, u="same-id", d=100.0)
    assert again == first
    nxt = await publish(publisher, strategy)
    assert nxt["q"] == 2
    assert [m["u"] for m in await collect(follower, 2)] == ["same-id", nxt["u"]]
    await assert_silent(follower)
    async with env.session.get(f"{env.url}/api/strategies/s1/signals", headers=auth(strategy["publish_secret"])) as r:
        assert [m["q"] for m in await r.json()] == [1, 2]


async def test_publish_refusals(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    other = await env.strategy("s2")
    token = await env.follower_token("s1")
    # A follower token may not publish.
    follower = await env.connect(token)
    nack = await publish(follower, strategy)
    assert nack["type"] == "nack" and "forbidden" in nack["message"], nack
    # Another strategy's secret may not publish on s1 (bundle names s1, secret is s2's).
    wrong = await env.connect(other["publish_secret"])
    nack = await publish(wrong, {**strategy, "feed_id": other["feed_id"]})
    assert nack["type"] == "nack" and "forbidden" in nack["message"], nack
    # A publish secret may not subscribe.
    await wrong.send_str(protocol.build_subscribe_command())
    frame = await recv_json(wrong)
    assert frame["type"] == "reject_subscription" and "forbidden" in frame["message"], frame
    publisher = await env.connect(strategy["publish_secret"])
    # Wrong stream id, too many signals, bad version: nacked by u, the link stays.
    nack = await publish(publisher, {**strategy, "feed_id": "st_nope"}, u="u-feed")
    assert nack["type"] == "nack" and nack["u"] == "u-feed" and "feed_id" in nack["message"], nack
    nack = await publish(publisher, strategy, bundle=make_bundle("s1", 101), u="u-big")
    assert nack == {"type": "nack", "u": "u-big", "message": nack["message"]} and "101" in nack["message"]
    bundle = {**make_bundle("s1"), "version": "2.0.0"}
    nack = await publish(publisher, strategy, bundle=bundle)
    assert nack["type"] == "nack" and "version" in nack["message"], nack
    # Exactly 100 signals is fine; nothing refused was journaled.
    ack = await publish(publisher, strategy, bundle=make_bundle("s1", 100))
    assert ack["type"] == "ack" and ack["q"] == 1, ack


async def test_refused_command_keeps_connection(env: HubEnv) -> None:
    await env.strategy("s1")
    ws = await env.connect(await env.follower_token("s1"))
    await ws.send_str(json.dumps({"command": "dance", "identifier": protocol.CHANNEL_IDENTIFIER}))
    frame = await recv_json(ws)
    assert frame["type"] == "error" and "command" in frame["message"], frame
    await ws.send_str(json.dumps({"command": "subscribe", "identifier": "{}"}))
    assert (await recv_json(ws))["type"] == "error"
    await subscribe(ws, ["s1"])


async def test_signatures(env: HubEnv) -> None:
    private_key, public_key = protocol.generate_keypair()
    forger_key, _ = protocol.generate_keypair()
    strategy = await env.strategy("signed", public_key=public_key)
    follower = await env.connect(await env.follower_token("signed"))
    await subscribe(follower, ["signed"])
    publisher = await env.connect(strategy["publish_secret"])
    nack = await publish(publisher, strategy)  # unsigned
    assert nack["type"] == "nack" and "g" in nack["message"], nack
    nack = await publish(publisher, strategy, private_key=forger_key)
    assert nack["type"] == "nack" and "signature" in nack["message"], nack
    ack = await publish(publisher, strategy, private_key=private_key)
    assert ack["type"] == "ack" and ack["q"] == 1, ack
    [message] = await collect(follower, 1)
    assert protocol.parse_feed_message(message).verify(public_key)
    await assert_silent(follower)


async def test_oversize_frame_closes_1009_and_hub_serves_others(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    bystander = await env.connect(await env.follower_token("s1"))
    await subscribe(bystander, ["s1"])
    victim = await env.connect(strategy["publish_secret"])
    await victim.send_str("x" * (protocol.MAX_FRAME_BYTES + 1))
    msg = await asyncio.wait_for(victim.receive(), 5)
    while msg.type == aiohttp.WSMsgType.TEXT:  # a ping may come first
        msg = await asyncio.wait_for(victim.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1009, msg
    publisher = await env.connect(strategy["publish_secret"])
    assert (await publish(publisher, strategy))["type"] == "ack"
    assert len(await collect(bystander, 1)) == 1


async def test_frame_at_the_limit_is_read(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    publisher = await env.connect(strategy["publish_secret"])
    bundle = make_bundle("s1")
    bundle["signals"][0]["content"]["tag"] = ""
    text, _ = publish_command(strategy, bundle=bundle, u="edge", d=5.0)
    bundle["signals"][0]["content"]["tag"] = "p" * (protocol.MAX_FRAME_BYTES - len(text.encode()))
    text, _ = publish_command(strategy, bundle=bundle, u="edge", d=5.0)
    assert len(text.encode()) == protocol.MAX_FRAME_BYTES
    await publisher.send_str(text)
    assert (await recv_json(publisher)) == {"type": "ack", "u": "edge", "q": 1}
    # One byte more is over the limit.
    bundle["signals"][0]["content"]["tag"] += "p"
    await publisher.send_str(publish_command(strategy, bundle=bundle, u="edge2", d=5.0)[0])
    msg = await asyncio.wait_for(publisher.receive(), 5)
    while msg.type == aiohttp.WSMsgType.TEXT:
        msg = await asyncio.wait_for(publisher.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1009, msg


async def test_garbage_frame_closes_1008_and_hub_serves_others(env: HubEnv) -> None:
    strategy = await env.strategy("s1")
    token = await env.follower_token("s1")
    bystander = await env.connect(token)
    await subscribe(bystander, ["s1"])
    for garbage in ["{not json", "[1,2,3]"]:
        victim = await env.connect(token)
        await victim.send_str(garbage)
        msg = await asyncio.wait_for(victim.receive(), 5)
        while msg.type == aiohttp.WSMsgType.TEXT:
            msg = await asyncio.wait_for(victim.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008, msg
    victim = await env.connect(token)
    await victim.send_bytes(b"\x00\x01")
    msg = await asyncio.wait_for(victim.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008, msg
    publisher = await env.connect(strategy["publish_secret"])
    assert (await publish(publisher, strategy))["type"] == "ack"
    assert len(await collect(bystander, 1)) == 1


async def test_ws_auth_failures(env: HubEnv) -> None:
    await env.strategy("s1")
    for headers in [{}, auth("wrong-token"), {"Authorization": "Basic abc"}]:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await env.session.ws_connect(env.url + protocol.WS_PATH, headers=headers)
        assert info.value.status == 401
    # A token in the URL is ignored.
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await env.session.ws_connect(env.url + protocol.WS_PATH + "?token=" + await env.follower_token("s1"))
    assert info.value.status == 401


async def test_ping_frames_are_compact(env: HubEnv) -> None:
    await env.strategy("s1")
    ws = await env.connect(await env.follower_token("s1"))
    start = time.time()
    msg = await asyncio.wait_for(ws.receive(), protocol.PING_INTERVAL_S + 2)
    assert msg.type == aiohttp.WSMsgType.TEXT
    assert msg.data.startswith('{"type":"ping","message":')
    now = json.loads(msg.data)["message"]
    assert isinstance(now, int) and abs(now - start) < protocol.PING_INTERVAL_S + 2
    assert msg.data == protocol.ping_frame(now)


async def test_slow_follower_does_not_delay_a_fast_one(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub", queue_size=20) as hub:
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
        slow = await RawWebSocket.connect(hub.base_url, token)
        try:
            await slow.send_text(protocol.build_subscribe_command(["s1"]))
            # Wait until the hub registered the slow subscriber, then never read from it again.
            for _ in range(100):
                if hub.state.fanout.count("s1") == 1:
                    break
                await asyncio.sleep(0.01)
            assert hub.state.fanout.count("s1") == 1
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                fast = await ws_connect(session, hub.base_url, token)
                await subscribe(fast, ["s1"])
                publisher = await ws_connect(session, hub.base_url, strategy["publish_secret"])
                big = "b" * 100_000  # ~100 kB per message fills the stuck socket quickly
                latencies = []
                for i in range(120):
                    bundle = make_bundle("s1")
                    bundle["signals"][0]["content"]["tag"] = big
                    started = time.perf_counter()
                    ack = await publish(publisher, strategy, bundle=bundle, u=f"m{i}-{uuid.uuid4().hex[:6]}")
                    assert ack["type"] == "ack", ack
                    [message] = await collect(fast, 1)
                    latencies.append(time.perf_counter() - started)
                    assert message["q"] == i + 1
                assert max(latencies) < 1.0, max(latencies)
                # The stuck follower was dropped (1013 if the close frame got through, else aborted).
                assert hub.state.fanout.count("s1") == 1
                code = await slow.drain_until_closed(timeout=10)
                assert code in (protocol.CLOSE_TRY_AGAIN_LATER, None)
                await publisher.close()
                await fast.close()
        finally:
            slow.close()


async def test_big_replay_with_a_small_queue_and_live_traffic(tmp_path: Path) -> None:
    """A replay longer than the queue, while another strategy streams live: nothing dropped, no overflow."""
    async with running_hub(tmp_path / "hub", queue_size=20) as hub:
        s1 = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        s2 = await admin_create_strategy(hub.base_url, hub.admin_token, "s2")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            p1 = await ws_connect(session, hub.base_url, s1["publish_secret"])
            p2 = await ws_connect(session, hub.base_url, s2["publish_secret"])
            for _ in range(200):
                await p1.send_str(publish_command(s1)[0])
            for _ in range(200):
                assert (await recv_json(p1))["type"] == "ack"
            follower = await ws_connect(session, hub.base_url, token)
            await follower.send_str(protocol.build_subscribe_command(["s2"]))
            assert (await recv_json(follower))["type"] == "confirm_subscription"
            await follower.send_str(protocol.build_subscribe_command(["s1"], {"s1": 0}))

            async def live() -> None:
                for _ in range(10):  # well under the queue size: a follower that reads keeps up
                    assert (await publish(p2, s2))["type"] == "ack"

            task = asyncio.create_task(live())
            got: dict[str, list[int]] = {"s1": [], "s2": []}
            confirmed = False
            while len(got["s1"]) < 200 or len(got["s2"]) < 10:
                frame = await recv_json(follower, 10)
                if frame.get("type") == "confirm_subscription":
                    confirmed = True
                    continue
                message = frame["message"]
                got[message["s"]["identifier"]].append(message["q"])
            await task
            assert confirmed
            assert got == {"s1": list(range(1, 201)), "s2": list(range(1, 11))}
            assert hub.state.fanout.count("s1") == 1 and hub.state.fanout.count("s2") == 1


async def test_follower_vanishing_mid_replay_is_cleaned_up(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub", queue_size=20) as hub:
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            publisher = await ws_connect(session, hub.base_url, strategy["publish_secret"])
            bundle = make_bundle("s1")
            bundle["signals"][0]["content"]["tag"] = "r" * 50_000
            for _ in range(150):
                await publisher.send_str(publish_command(strategy, bundle=bundle)[0])
            for _ in range(150):
                assert (await recv_json(publisher))["type"] == "ack"
            raw = await RawWebSocket.connect(hub.base_url, token)
            await raw.send_text(protocol.build_subscribe_command(["s1"], {"s1": 0}))
            await asyncio.sleep(0.3)  # the replay is now stuck on the unread socket
            assert len(hub.state.connections) == 2
            raw.close()
            for _ in range(200):
                if len(hub.state.connections) == 1:
                    break
                await asyncio.sleep(0.05)
            assert len(hub.state.connections) == 1  # only the publisher is left
            assert hub.state.fanout.count("s1") == 0
            # The hub still serves a normal follower.
            follower = await ws_connect(session, hub.base_url, token)
            await subscribe(follower, ["s1"], resume={"s1": 148})
            assert [m["q"] for m in await collect(follower, 2)] == [149, 150]


async def test_identifier_is_compared_as_json_and_echoed_as_sent(env: HubEnv) -> None:
    """ActionCable reads the identifier as JSON: OctoBot's 2022 client sent Python's json.dumps spelling."""
    strategy = await env.strategy("s1")
    token = await env.follower_token("s1")
    publisher = await env.connect(strategy["publish_secret"])
    assert (await publish(publisher, strategy))["q"] == 1
    spaced = json.dumps({"channel": "Spree::MessageChannel"})  # '{"channel": "Spree::MessageChannel"}'
    assert spaced != protocol.CHANNEL_IDENTIFIER
    follower = await env.connect(token)
    data = json.dumps({"strategies": ["s1"], "resume": {"s1": 0}})
    await follower.send_str(json.dumps({"command": "subscribe", "identifier": spaced, "data": data}))
    confirmed = await recv_json(follower)
    assert confirmed == {"type": "confirm_subscription", "identifier": spaced}
    replayed = await recv_json(follower)  # a replayed message carries the client's identifier text
    assert (replayed["identifier"], replayed["message"]["q"]) == (spaced, 1)
    canonical = await env.connect(token)
    await subscribe(canonical, ["s1"])
    assert (await publish(publisher, strategy))["q"] == 2
    live = await recv_json(follower)  # live fan-out too, while another follower keeps the canonical text
    assert (live["identifier"], live["message"]["q"]) == (spaced, 2)
    assert [m["q"] for m in await collect(canonical, 1)] == [2]
    for bad in ('{"channel": "Other"}', "not json", '["Spree::MessageChannel"]', "x" * 2000):
        await follower.send_str(json.dumps({"command": "subscribe", "identifier": bad, "data": data}))
        frame = await recv_json(follower)
        assert "bad_identifier" in json.dumps(frame), (bad[:40], frame)
