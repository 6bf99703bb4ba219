"""The hub's memory under /cable replays to followers that never read (issue 17 item 3).

A hub child process (its RSS measured from /proc) journals MESSAGES messages of ~200 KB; then the
most connections one follower token may hold resume from q=0 and never read a byte. Each connection's
outgoing queue is bounded in bytes, and the replay reads the next journal page only when that queue
has drained, so the hub stays near its idle size instead of serializing the whole journal per socket.
`-s` prints the figures.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    HubProcess,
    RawWebSocket,
    admin_create_follower,
    admin_create_strategy,
    make_bundle,
    publish,
    publish_command,
    recv_json,
    subscribe,
    ws_connect,
)
from octobot_signals.core import protocol
from octobot_signals.hub.limits import MIN_SEND_QUEUE_BYTES, LimitSettings
from octobot_signals.hub.server import HubHandle, start_hub

MESSAGES = 600  # of ~200 KB each: 120 MB of journal
PAYLOAD = 200_000  # under the 256 KiB frame limit with the envelope
STUCK_SOCKETS = LimitSettings().connections_per_token
# Why 200 MB: with the default budgets each of the 8 connections holds at most 4 MiB of queued frames, plus
# one replay page in flight (2 MiB, briefly three copies while it is split into frames) and one frame in its
# socket's write buffer: about 85 MB at worst (measured: ~45). Unbounded, each replay queued 500 frames
# (100 MB) and held a parsed page of 500 more: ~1.6 GB measured, most of it never returned to the system.
MAX_GROWTH_MB = 200
MAX_LEFT_AFTER_MB = 100  # what the hub keeps once the stuck sockets are gone (allocator slack)
STUCK_SECONDS = 6.0  # under the send watchdog (10 s), which would drop the stuck sockets by itself


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def big_bundle(strategy_id: str, size: int) -> dict[str, Any]:
    bundle = make_bundle(strategy_id)
    bundle["signals"][0]["content"]["tag"] = "b" * size
    return bundle


async def publish_all(session: aiohttp.ClientSession, base_url: str, strategy: dict, messages: int = MESSAGES,
                      size: int = PAYLOAD) -> None:
    publisher = await ws_connect(session, base_url, strategy["publish_secret"])
    for start in range(0, messages, 50):  # pipelined in batches: the publisher's own acks stay small
        count = min(50, messages - start)
        for i in range(start, start + count):
            bundle = big_bundle(strategy["id"], size)
            await publisher.send_str(publish_command(strategy, bundle=bundle, u=f"m{i}-{uuid.uuid4().hex[:8]}")[0])
        for _ in range(count):
            ack = await recv_json(publisher, 30)
            assert ack["type"] == "ack", ack
    await publisher.close()


async def sample_peak(pid: int, seconds: float) -> float:
    peak = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(0.1)
    return peak


async def read_everything(session: aiohttp.ClientSession, base_url: str, token: str, strategy: dict) -> list[int]:
    """A well-behaved follower resuming from 0, then one live message: the q it got, in order."""
    follower = await ws_connect(session, base_url, token)
    await subscribe(follower, [strategy["id"]], resume={strategy["id"]: 0})
    got = [(await recv_json(follower, 20))["message"]["q"] for _ in range(MESSAGES)]
    publisher = await ws_connect(session, base_url, strategy["publish_secret"])
    await publisher.send_str(publish_command(strategy)[0])
    assert (await recv_json(publisher, 10))["q"] == MESSAGES + 1
    got.append((await recv_json(follower, 10))["message"]["q"])
    await publisher.close()
    await follower.close()
    return got


async def test_stuck_replays_keep_hub_memory_bounded(tmp_path: Path) -> None:
    with HubProcess(tmp_path / "hub") as hub:
        assert hub.proc is not None
        pid = hub.proc.pid
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            started = time.monotonic()
            await publish_all(session, hub.base_url, strategy)
            published_s = time.monotonic() - started
            await asyncio.sleep(0.5)
            baseline = rss_mb(pid)
            stuck = [await RawWebSocket.connect(hub.base_url, token) for _ in range(STUCK_SOCKETS)]
            try:
                for raw in stuck:
                    await raw.send_text(protocol.build_subscribe_command(["s1"], {"s1": 0}))
                peak = await sample_peak(pid, STUCK_SECONDS)
            finally:
                for raw in stuck:
                    raw.close()
            await asyncio.sleep(2.0)  # the hub notices the resets and frees the queues
            after = rss_mb(pid)
            print(f"\n[ws memory] {MESSAGES} x {PAYLOAD // 1000} kB published in {published_s:.1f} s; "
                  f"RSS baseline {baseline:.0f} MB, peak with {STUCK_SOCKETS} stuck replays {peak:.0f} MB "
                  f"(+{peak - baseline:.0f}), after they closed {after:.0f} MB (+{after - baseline:.0f})")
            # The token's connection slots are free again and a reader still gets everything, in q order.
            assert await read_everything(session, hub.base_url, token, strategy) == list(range(1, MESSAGES + 2))
        assert peak - baseline < MAX_GROWTH_MB, (baseline, peak)
        assert after - baseline < MAX_LEFT_AFTER_MB, (baseline, after)


# ---------------------------------------------------------------- in-process: the budgets' bookkeeping
@contextlib.asynccontextmanager
async def hub_with(tmp_path: Path, **settings: int) -> AsyncIterator[HubHandle]:
    handle = await start_hub("127.0.0.1", 0, tmp_path / "hub", admin_token=DEFAULT_ADMIN_TOKEN,
                             limits=LimitSettings(**settings))
    try:
        yield handle
    finally:
        await handle.stop()


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def close_of(raw: RawWebSocket, timeout: float = 10.0) -> tuple[int | None, str]:
    """Read until the hub closes: (close code, reason), or (None, "") when it dropped the socket."""
    try:
        while True:
            opcode, payload = await raw.read_frame(timeout)
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big"), payload[2:].decode()
    except (asyncio.IncompleteReadError, ConnectionError):
        return None, ""


async def raw_messages(raw: RawWebSocket, n: int, timeout: float = 10.0) -> list[int]:
    """The q of the next n feed messages on a raw socket (welcome, confirmation and pings skipped)."""
    got: list[int] = []
    while len(got) < n:
        opcode, payload = await raw.read_frame(timeout)
        assert opcode == 0x1, (opcode, payload[:200])
        frame = json.loads(payload)
        if "message" in frame and isinstance(frame["message"], dict):
            got.append(frame["message"]["q"])
    return got


async def test_replays_share_the_process_budget_and_give_every_byte_back(tmp_path: Path) -> None:
    total = 2 * 1024 * 1024
    async with hub_with(tmp_path, send_queue_total_bytes=total) as hub:
        budget = hub.state.limits.send_budget
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await publish_all(session, hub.base_url, strategy, messages=60, size=100_000)
            stuck = [await RawWebSocket.connect(hub.base_url, token) for _ in range(4)]
            try:
                for raw in stuck:
                    await raw.send_text(protocol.build_subscribe_command(["s1"], {"s1": 0}))
                peak = 0
                for _ in range(30):
                    await asyncio.sleep(0.05)
                    peak = max(peak, budget.used)
                    for connection in hub.state.connections:
                        outbox = connection.outbox
                        assert outbox.queued_bytes + outbox.aside_bytes <= outbox.max_bytes
                # 6 MB of journal for each of 4 readers, which are paced by the 2 MiB of the whole hub
                # (over it by one message per concurrent replay at most).
                assert total // 2 < peak <= total + 4 * protocol.MAX_FRAME_BYTES, peak
            finally:
                for raw in stuck:
                    raw.close()
            await wait_for(lambda: not hub.state.connections)
            assert (budget.used, budget.reserved) == (0, 0)
            follower = await ws_connect(session, hub.base_url, token)
            await subscribe(follower, ["s1"], resume={"s1": 0})
            assert [(await recv_json(follower, 10))["message"]["q"] for _ in range(60)] == list(range(1, 61))
            await follower.close()
            await wait_for(lambda: not hub.state.connections)
            assert (budget.used, budget.reserved) == (0, 0)


async def test_a_lagging_follower_is_dropped_when_the_hub_budget_is_spent(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Live frames over the process's budget: the follower that stopped reading goes (1013, it resumes);
    the one that reads gets every message."""
    caplog.set_level(logging.WARNING, "octobot_signals.hub.ws")
    async with hub_with(tmp_path, send_queue_total_bytes=1024 * 1024) as hub:
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
        stuck = await RawWebSocket.connect(hub.base_url, token)
        try:
            await stuck.send_text(protocol.build_subscribe_command(["s1"]))
            await wait_for(lambda: hub.state.fanout.count("s1") == 1)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                fast = await ws_connect(session, hub.base_url, token)
                await subscribe(fast, ["s1"])
                publisher = await ws_connect(session, hub.base_url, strategy["publish_secret"])
                for i in range(1, 101):
                    assert (await publish(publisher, strategy, bundle=big_bundle("s1", 100_000)))["q"] == i
                    assert (await recv_json(fast, 5))["message"]["q"] == i
                assert hub.state.fanout.count("s1") == 1  # the stuck one is gone, long before its own 4 MiB
                code, reason = await close_of(stuck)
                assert code in (protocol.CLOSE_TRY_AGAIN_LATER, None)  # None: the close frame could not get through
                if code is not None:
                    assert reason == "hub busy: reconnect and resume"
                assert "send budget is spent" in caplog.text
                await publisher.close()
                await fast.close()
        finally:
            stuck.close()
        await wait_for(lambda: not hub.state.connections)
        assert hub.state.limits.send_budget.used == 0


async def test_live_messages_during_a_byte_bound_replay_keep_q_order(tmp_path: Path) -> None:
    """The smallest queue (1 MiB): live messages published while a replay waits on a follower that is not
    reading yet outgrow the room set aside for them; the replay reads them from the journal instead."""
    async with hub_with(tmp_path, send_queue_bytes=1) as hub:
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await publish_all(session, hub.base_url, strategy, messages=40, size=100_000)
            follower = await RawWebSocket.connect(hub.base_url, token)  # reads nothing until told
            try:
                await follower.send_text(protocol.build_subscribe_command(["s1"], {"s1": 0}))
                await wait_for(lambda: any(c.subscribed for c in hub.state.connections))
                [connection] = [c for c in hub.state.connections if c.subscribed]
                assert connection.outbox.max_bytes == MIN_SEND_QUEUE_BYTES
                await wait_for(lambda: not connection.outbox.drained.is_set())  # the replay waits on the follower
                publisher = await ws_connect(session, hub.base_url, strategy["publish_secret"])
                for i in range(41, 51):  # 1 MB live: more than the quarter of the queue set aside for them
                    assert (await publish(publisher, strategy, bundle=big_bundle("s1", 100_000)))["q"] == i
                assert connection.replaying["s1"].lost_q > 40
                assert await raw_messages(follower, 50) == list(range(1, 51))
                assert (await publish(publisher, strategy))["q"] == 51
                assert await raw_messages(follower, 1) == [51]
                await publisher.close()
            finally:
                follower.close()
        await wait_for(lambda: not hub.state.connections)
        assert hub.state.limits.send_budget.used == 0
