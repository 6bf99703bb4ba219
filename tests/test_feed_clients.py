"""Follower and publisher clients against a real hub on 127.0.0.1 (real sockets, real SQLite)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    admin_create_follower,
    admin_create_strategy,
    auth,
    free_port,
    make_bundle,
    publish_command,
    recv_json,
    running_hub,
    ws_connect,
)
from octobot_signals.core import protocol
from octobot_signals.feed.follower_client import FollowerClient
from octobot_signals.feed.outbox import Outbox
from octobot_signals.feed.publisher_client import PublisherClient
from octobot_signals.feed.state_store import FollowerState
from octobot_signals.hub.server import start_hub

TIMEOUT = 15.0


async def greeted(request: web.Request) -> web.WebSocketResponse:
    """Upgrade to a websocket and say the hub's welcome, as every fake hub here does first."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str(protocol.welcome_frame())
    return ws


class Recorder:
    """A follower handler that records what it got (and can be told to fail)."""

    def __init__(self, fail_times: dict[int, int] | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail_times = dict(fail_times or {})
        self.attempts: Counter[int] = Counter()

    async def __call__(self, message: dict[str, Any]) -> None:
        q = message["q"]
        self.attempts[q] += 1
        if self.fail_times.get(q, 0) > 0:
            self.fail_times[q] -= 1
            raise RuntimeError(f"handler failure on q={q}")
        self.messages.append(message)

    @property
    def qs(self) -> list[int]:
        return [m["q"] for m in self.messages]

    @property
    def tags(self) -> list[str]:
        return [m["s"]["signals"][0]["content"]["order_id"] for m in self.messages]


async def wait_until(predicate: Any, timeout: float = TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def tagged_bundle(strategy_id: str, tag: str) -> dict[str, Any]:
    bundle = make_bundle(strategy_id)
    bundle["signals"][0]["content"]["order_id"] = tag
    return bundle


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    async with running_hub(tmp_path / "hub") as handle:
        yield handle


async def new_follower(hub: Any, path: Path, strategy_id: str, handler: Recorder, token: str | None = None,
                       **kwargs: Any) -> FollowerClient:
    token = token or (await admin_create_follower(hub.base_url, hub.admin_token, strategy_id))["token"]
    client = FollowerClient(hub.base_url, token, FollowerState(path), backoff_cap=1.0, **kwargs)
    client.subscribe(strategy_id, handler)
    await client.start()
    await client.wait_until_subscribed(TIMEOUT)
    return client


async def stop_all(*clients: Any) -> None:
    for client in clients:
        await client.stop()
        state = getattr(client, "_state", None)
        if state is not None:
            state.close()
        outbox = getattr(client, "outbox", None)
        if outbox is not None:
            outbox.close()


async def test_ordered_delivery_to_several_followers(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    recorders = [Recorder() for _ in range(3)]
    followers = [await new_follower(hub, tmp_path / f"f{i}", "s1", rec) for i, rec in enumerate(recorders)]
    publisher = PublisherClient(hub.base_url, strategy["publish_secret"], "s1", Outbox(tmp_path / "outbox"))
    await publisher.start()
    try:
        tags = [f"order-{i}" for i in range(25)]
        for tag in tags:
            await publisher.publish(tagged_bundle("s1", tag))
        assert await publisher.flush(TIMEOUT)
        for rec in recorders:
            await wait_until(lambda rec=rec: len(rec.messages) == 25)
            assert rec.qs == list(range(1, 26))
            assert rec.tags == tags
            assert all(m["i"] == strategy["feed_id"] and m["t"] == "t" for m in rec.messages)
        for follower in followers:
            assert follower.last_applied("s1") == 25 and follower.stats.duplicates == 0
        assert publisher.stats.acked == 25 and publisher.outbox.count("acked") == 25
    finally:
        await stop_all(publisher, *followers)


async def test_resume_after_cut_link_and_after_restart(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
    rec = Recorder()
    follower = await new_follower(hub, tmp_path / "f", "s1", rec, token=token)
    publisher = PublisherClient(hub.base_url, strategy["publish_secret"], "s1", Outbox(tmp_path / "outbox"))
    await publisher.start()
    try:
        for i in range(5):
            await publisher.publish(tagged_bundle("s1", f"a{i}"))
        await wait_until(lambda: len(rec.messages) == 5)
        # Cut the follower's socket and publish while it reconnects.
        follower.close_link()
        for i in range(5):
            await publisher.publish(tagged_bundle("s1", f"b{i}"))
        await wait_until(lambda: len(rec.messages) == 10)
        assert follower.stats.connects >= 2
        # Stop the follower (a bot restart), publish, start a new client on the same state file.
        await stop_all(follower)
        for i in range(5):
            await publisher.publish(tagged_bundle("s1", f"c{i}"))
        assert await publisher.flush(TIMEOUT)
        rec2 = Recorder()
        follower = await new_follower(hub, tmp_path / "f", "s1", rec2, token=token)
        await wait_until(lambda: len(rec2.messages) == 5)
        await asyncio.sleep(0.2)  # nothing else may arrive
        assert rec.qs == list(range(1, 11))
        assert rec2.qs == list(range(11, 16)) and rec2.tags == [f"c{i}" for i in range(5)]
    finally:
        await stop_all(publisher, follower)


async def test_new_follower_starts_from_now_unless_asked(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    async with aiohttp.ClientSession() as session:
        ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
        for i in range(3):
            text, _ = publish_command(strategy, bundle=tagged_bundle("s1", f"old{i}"))
            await ws.send_str(text)
            assert (await recv_json(ws))["type"] == "ack"
        fresh, full = Recorder(), Recorder()
        f1 = await new_follower(hub, tmp_path / "fresh", "s1", fresh)
        f2 = await new_follower(hub, tmp_path / "full", "s1", full, replay_from_start=True)
        try:
            text, _ = publish_command(strategy, bundle=tagged_bundle("s1", "new"))
            await ws.send_str(text)
            await wait_until(lambda: len(fresh.messages) == 1 and len(full.messages) == 4)
            assert fresh.tags == ["new"] and fresh.qs == [4]
            assert full.qs == [1, 2, 3, 4]
            # "from now" came from the hub's last_q: not one page of the strategy's history was read
            assert f1.stats.history_requests == 0
        finally:
            await ws.close()
            await stop_all(f1, f2)


async def test_gap_is_filled_from_history_in_order(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
    async with aiohttp.ClientSession() as session:
        ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
        for i in range(8):
            text, _ = publish_command(strategy, bundle=tagged_bundle("s1", f"t{i}"))
            await ws.send_str(text)
            assert (await recv_json(ws))["type"] == "ack"
        await ws.close()
        async with session.get(f"{hub.base_url}/api/strategies/s1/signals?after=0", headers=auth(token)) as resp:
            journal = await resp.json()
    state = FollowerState(tmp_path / "f")
    state.set_last_q("s1", 2)  # this bot applied q 1..2 before
    rec = Recorder()
    follower = FollowerClient(hub.base_url, token, state)
    follower.subscribe("s1", rec)
    await follower.start(connect=False)  # only what we hand it: q=6 arrives first, 3..5 are missing
    try:
        await follower.ingest(journal[5])
        # Catch-up reads history until caught up: 3..5 first, then 6, and 7..8 as well.
        await wait_until(lambda: len(rec.messages) == 6)
        assert rec.qs == [3, 4, 5, 6, 7, 8]
        assert follower.stats.gaps_filled == 6 and follower.stats.duplicates == 1  # the live q=6
        for message in journal:  # everything again: all duplicates, nothing re-applied
            await follower.ingest(message)
        await wait_until(lambda: follower.stats.duplicates == 9)
        assert rec.qs == [3, 4, 5, 6, 7, 8]
        assert FollowerState(tmp_path / "f").last_q("s1") == 8  # durable
    finally:
        await stop_all(follower)


async def test_duplicate_u_is_applied_once(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    rec = Recorder()
    follower = await new_follower(hub, tmp_path / "f", "s1", rec)
    try:
        async with aiohttp.ClientSession() as session:
            ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
            bundle = tagged_bundle("s1", "dup")
            text, u = publish_command(strategy, bundle=bundle, d=1764000000.5)
            for _ in range(3):  # a publisher retrying the same message
                await ws.send_str(text)
                assert await recv_json(ws) == {"type": "ack", "u": u, "q": 1}
            text2, _ = publish_command(strategy, bundle=tagged_bundle("s1", "next"))
            await ws.send_str(text2)
            assert (await recv_json(ws))["q"] == 2
            await ws.close()
        await wait_until(lambda: len(rec.messages) == 2)
        # A relay that re-numbers a replayed message (same u, new q) must not apply it twice.
        replayed = dict(rec.messages[1])
        replayed["q"] = 3
        replayed["u"] = u
        await follower.ingest(replayed)
        await wait_until(lambda: follower.last_applied("s1") == 3)
        assert rec.tags == ["dup", "next"]
        assert follower.stats.duplicates == 1 and rec.attempts[1] == 1
    finally:
        await stop_all(follower)


async def test_forged_and_unsigned_messages_rejected(hub: Any, tmp_path: Path) -> None:
    # The hub knows no key for this strategy (it relays anything); the follower does.
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    private_key, public_key = protocol.generate_keypair()
    other_private, _ = protocol.generate_keypair()
    rec = Recorder()
    follower = await new_follower(hub, tmp_path / "f", "s1", rec, public_keys={"s1": public_key})
    try:
        async with aiohttp.ClientSession() as session:
            ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
            for tag, key in [("good1", private_key), ("unsigned", None), ("forged", other_private),
                             ("good2", private_key)]:
                text, _ = publish_command(strategy, bundle=tagged_bundle("s1", tag), private_key=key)
                await ws.send_str(text)
                assert (await recv_json(ws))["type"] == "ack"
            # A signature from the right key over different content is forged too.
            bundle = tagged_bundle("s1", "tampered")
            text, u = publish_command(strategy, bundle=bundle, private_key=private_key, d=1.0)
            data = json.loads(json.loads(text)["data"])
            data["d"] = 2.0
            await ws.send_str(json.dumps({"command": "message", "identifier": protocol.CHANNEL_IDENTIFIER,
                                          "data": json.dumps(data)}))
            assert (await recv_json(ws))["type"] == "ack"
            await ws.close()
        await wait_until(lambda: follower.last_applied("s1") == 5)
        assert rec.tags == ["good1", "good2"]
        assert follower.stats.rejected_signatures == 3
    finally:
        await stop_all(follower)


async def test_signed_publisher_and_hub_side_key(hub: Any, tmp_path: Path) -> None:
    private_key, public_key = protocol.generate_keypair()
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1", public_key=public_key)
    rec = Recorder()
    follower = await new_follower(hub, tmp_path / "f", "s1", rec, public_keys={"s1": public_key})
    signed = PublisherClient(hub.base_url, strategy["publish_secret"], "s1", Outbox(tmp_path / "o1"),
                             private_key_b64=private_key)
    unsigned = PublisherClient(hub.base_url, strategy["publish_secret"], "s1", Outbox(tmp_path / "o2"))
    await signed.start()
    await unsigned.start()
    try:
        await signed.publish(tagged_bundle("s1", "ok"))
        await unsigned.publish(tagged_bundle("s1", "refused"))
        assert await signed.flush(TIMEOUT) and await unsigned.flush(TIMEOUT)
        assert unsigned.stats.rejected == 1 and unsigned.outbox.count("rejected") == 1  # nack: not retried
        await wait_until(lambda: len(rec.messages) == 1)
        assert rec.tags == ["ok"] and rec.messages[0]["g"]
    finally:
        await stop_all(signed, unsigned, follower)


async def test_handler_failures_are_retried_then_bounded(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    rec = Recorder(fail_times={2: 1, 3: 99})  # q=2 fails once; q=3 is poison
    follower = await new_follower(hub, tmp_path / "f", "s1", rec)
    publisher = PublisherClient(hub.base_url, strategy["publish_secret"], "s1", Outbox(tmp_path / "o"))
    await publisher.start()
    try:
        for i in range(4):
            await publisher.publish(tagged_bundle("s1", f"m{i}"))
        await wait_until(lambda: follower.last_applied("s1") == 4)
        assert rec.qs == [1, 2, 4]
        assert rec.attempts[2] == 2 and rec.attempts[3] == 3
        assert follower.stats.rejected_handler == 1
    finally:
        await stop_all(publisher, follower)


async def test_publisher_outbox_survives_hub_outage(tmp_path: Path) -> None:
    port = free_port()
    hub_dir = tmp_path / "hub"
    hub = await start_hub("127.0.0.1", port, hub_dir, admin_token=DEFAULT_ADMIN_TOKEN)
    publisher = follower = None
    try:
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        rec = Recorder()
        follower = await new_follower(hub, tmp_path / "f", "s1", rec)
        publisher = PublisherClient(hub.base_url, strategy["publish_secret"], "s1", Outbox(tmp_path / "outbox"),
                                    backoff_cap=0.5, ack_timeout=3)
        await publisher.start()
        for i in range(3):
            await publisher.publish(tagged_bundle("s1", f"before{i}"))
        assert await publisher.flush(TIMEOUT)
        await hub.stop()
        # Hub down: publish() still returns at once; bundles wait on disk.
        for i in range(4):
            await publisher.publish(tagged_bundle("s1", f"during{i}"))
        assert not await publisher.flush(0.5)
        # The bot restarts too: a new client on the same outbox file picks the bundles up.
        await stop_all(publisher)
        publisher = PublisherClient(hub.base_url, strategy["publish_secret"], "s1", Outbox(tmp_path / "outbox"),
                                    backoff_cap=0.5, ack_timeout=3)
        assert publisher.outbox.count_pending() == 4
        await publisher.start()
        await publisher.publish(tagged_bundle("s1", "during4"))
        await asyncio.sleep(0.3)
        hub = await start_hub("127.0.0.1", port, hub_dir, admin_token=DEFAULT_ADMIN_TOKEN)
        assert await publisher.flush(TIMEOUT)
        await wait_until(lambda: len(rec.messages) == 8)
        await asyncio.sleep(0.2)
        assert rec.qs == list(range(1, 9))
        assert rec.tags == [f"before{i}" for i in range(3)] + [f"during{i}" for i in range(5)]
        assert len(set(m["u"] for m in rec.messages)) == 8
    finally:
        await stop_all(*(c for c in (publisher, follower) if c is not None))
        await hub.stop()


async def test_stale_link_is_detected_and_reconnected(tmp_path: Path) -> None:
    # A server that says welcome then goes silent (no pings): the follower must not hang on it.
    connections = 0

    async def silent(request: web.Request) -> web.WebSocketResponse:
        nonlocal connections
        connections += 1
        assert request.headers["Authorization"] == "Bearer tok-secret"
        assert "tok-secret" not in str(request.url)
        ws = await greeted(request)
        async for _ in ws:  # subscribe command: never answered
            pass
        return ws

    async def history(request: web.Request) -> web.Response:
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/cable", silent)
    app.router.add_get("/api/strategies/{id}/signals", history)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    follower = FollowerClient(f"http://127.0.0.1:{port}", "tok-secret", FollowerState(tmp_path / "f"),
                              stale_after=0.3, backoff_cap=0.2)
    follower.subscribe("s1", Recorder())
    await follower.start()
    try:
        await wait_until(lambda: connections >= 3, timeout=10)
        assert follower.stats.reconnects >= 2
    finally:
        await stop_all(follower)
        await runner.cleanup()


def big_bundle(strategy_id: str, tag: str, size: int) -> dict[str, Any]:
    bundle = tagged_bundle(strategy_id, tag)
    bundle["signals"][0]["content"]["note"] = "x" * size
    return bundle


async def test_history_pages_are_bounded_by_bytes_and_the_follower_reads_them_all(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
    n, size = 24, 200 * 1024  # 4.8 MB of journal: more than one page's byte budget (4 MiB)
    async with aiohttp.ClientSession() as session:
        ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
        for i in range(n):
            text, _ = publish_command(strategy, bundle=big_bundle("s1", f"big{i}", size))
            await ws.send_str(text)
            assert (await recv_json(ws))["type"] == "ack"
        await ws.close()
        async with session.get(f"{hub.base_url}/api/strategies/s1/signals?after=0&limit=500",
                               headers=auth(token)) as resp:
            body = await resp.read()
            next_after = resp.headers.get("X-Next-After")
        page = json.loads(body)
        assert 1 <= len(page) < n, "one page holds at most the byte budget"
        assert len(body) <= 4 * 1024 * 1024 + 2 * size
        assert next_after == str(page[-1]["q"])  # says the page was cut and where to go on from
        async with session.get(f"{hub.base_url}/api/strategies/s1/signals?after={n - 1}&limit=1",
                               headers=auth(token)) as resp:
            last = (await resp.json())[0]
            assert "X-Next-After" not in resp.headers
    state = FollowerState(tmp_path / "f")
    state.set_last_q("s1", 0)
    rec = Recorder()
    follower = FollowerClient(hub.base_url, token, state)
    follower.subscribe("s1", rec)
    await follower.start(connect=False)
    try:
        await follower.ingest(last)  # q=24 first: 1..23 are filled from history, across byte-cut pages
        await wait_until(lambda: len(rec.messages) == n)
        assert rec.qs == list(range(1, n + 1))
        assert follower.stats.history_requests >= 2
    finally:
        await stop_all(follower)


async def test_an_unbounded_history_answer_is_not_read_past_the_limit(tmp_path: Path) -> None:
    # A hub that knows no byte budget and no last_q (or a hostile one): its history answers are as large as
    # `limit` makes them, streamed without a length. The follower stops reading at its own limit, asks for
    # smaller pages, and still applies everything in order; a new follower still starts "from now".
    n, size = 250, 200 * 1024  # 50 MB for any limit >= 250
    messages = [{"u": f"u{q}", "i": "st_s1", "t": "t", "v": "1.0.0", "d": 1764000000 + q, "q": q, "g": None,
                 "s": big_bundle("s1", f"m{q}", size)} for q in range(1, n + 1)]
    written: list[tuple[int, int]] = []  # (limit asked, bytes the hub could send for it)

    async def history(request: web.Request) -> web.StreamResponse:
        after, limit = int(request.query["after"]), int(request.query["limit"])
        body = json.dumps([m for m in messages if m["q"] > after][:limit]).encode()
        resp = web.StreamResponse()  # chunked: no Content-Length to refuse it by
        await resp.prepare(request)
        sent = 0
        try:
            for start in range(0, len(body), 256 * 1024):
                await resp.write(body[start:start + 256 * 1024])
                sent += min(256 * 1024, len(body) - start)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the follower hung up
        written.append((limit, sent))
        return resp

    async def lookup(request: web.Request) -> web.Response:
        return web.json_response({"feed_id": "st_s1"})  # an older hub: no last_q

    async def cable(request: web.Request) -> web.WebSocketResponse:
        ws = await greeted(request)
        async for _ in ws:  # the subscribe command
            await ws.send_str(protocol.confirm_subscription_frame())
        return ws

    app = web.Application()
    app.router.add_get("/api/strategies/{id}/signals", history)
    app.router.add_get("/api/v2/storefront/feeds/id/{id}", lookup)
    app.router.add_get("/cable", cable)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    fresh = FollowerClient(url, "tok", FollowerState(tmp_path / "fresh"), backoff_cap=0.2)
    fresh.subscribe("s1", Recorder())
    catching_up = FollowerClient(url, "tok", FollowerState(tmp_path / "old"))
    rec = Recorder()
    catching_up.subscribe("s1", rec)
    try:
        await fresh.start()
        await fresh.wait_until_subscribed(TIMEOUT)
        assert fresh.last_applied("s1") == n  # from the history's last q, as before last_q existed
        await catching_up.start(connect=False)
        await catching_up.ingest(messages[-1])
        await wait_until(lambda: len(rec.messages) == n, timeout=60)
        assert rec.qs == list(range(1, n + 1))
        full_page = len(json.dumps(messages))
        # a refused answer was cut short (what reached the socket: the follower's 8 MiB plus what the kernel
        # and the client buffer meanwhile), never read whole
        refused = [sent for limit, sent in written if limit >= n]
        assert refused and max(refused) < full_page * 3 // 4, (written, full_page)
    finally:
        await stop_all(fresh, catching_up)
        await runner.cleanup()


# ---------------------------------------------------------------- reconnect pacing (feed/backoff.py ReconnectBackoff)


class TopRng(random.Random):
    """Every jittered wait at its ceiling: the pacing becomes exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


@contextlib.asynccontextmanager
async def fake_hub(cable: Any) -> AsyncIterator[str]:
    async def lookup(request: web.Request) -> web.Response:
        return web.json_response({"feed_id": "st_s1", "last_q": 0})

    app = web.Application()
    app.router.add_get("/cable", cable)
    app.router.add_get("/api/v2/storefront/feeds/id/{id}", lookup)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def _publish_u(text: str) -> str:
    return str(json.loads(json.loads(text)["data"])["u"])


async def test_a_rejected_subscription_slows_the_follower_down(tmp_path: Path) -> None:
    """A hub that says no is not asked again at once: 2 s, then 4 s... (a dropped link is retried within 0.25 s)."""
    loop = asyncio.get_running_loop()
    connected: list[float] = []

    async def cable(request: web.Request) -> web.WebSocketResponse:
        connected.append(loop.time())
        ws = await greeted(request)
        async for _ in ws:  # the subscribe command
            await ws.send_str(protocol.reject_subscription_frame(protocol.CHANNEL_IDENTIFIER, "not yours"))
        return ws

    async with fake_hub(cable) as url:
        follower = FollowerClient(url, "tok", FollowerState(tmp_path / "f"), backoff_rng=TopRng())
        follower.subscribe("s1", Recorder())
        await follower.start()
        try:
            await wait_until(lambda: len(connected) == 2, timeout=5)
            assert connected[1] - connected[0] >= 1.9 and follower.last_rejection == "not yours"
        finally:
            await stop_all(follower)


async def test_a_rate_limited_publisher_slows_down(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    connected: list[float] = []

    async def cable(request: web.Request) -> web.WebSocketResponse:
        connected.append(loop.time())
        ws = await greeted(request)
        async for msg in ws:
            await ws.send_str(protocol.nack_frame(_publish_u(msg.data), "rate_limited: retry in 20 s"))
        return ws

    async with fake_hub(cable) as url:
        publisher = PublisherClient(url, "secret", "s1", Outbox(tmp_path / "outbox"), backoff_rng=TopRng())
        await publisher.start()
        try:
            await publisher.publish(tagged_bundle("s1", "a"))
            await wait_until(lambda: len(connected) == 2, timeout=5)
            assert connected[1] - connected[0] >= 1.9 and publisher.stats.retries >= 1
        finally:
            await stop_all(publisher)


async def test_a_publisher_link_lost_after_an_ack_is_retried_at_once_even_after_an_outage(tmp_path: Path) -> None:
    """Three refused upgrades (HTTP 503: waits of 0.25, 1 and 1 s), then a link that acks one row and dies with the
    next in flight: it worked, so the next attempt comes within 0.25 s, not after another second."""
    loop = asyncio.get_running_loop()
    connected: list[float] = []

    async def cable(request: web.Request) -> web.StreamResponse:
        connected.append(loop.time())
        if len(connected) <= 3:
            return web.Response(status=503)
        ws = await greeted(request)
        acked = 0
        async for msg in ws:
            if len(connected) == 4 and acked == 1:
                break  # the hub dies with this row in flight
            acked += 1
            await ws.send_str(protocol.ack_frame(_publish_u(msg.data), acked))
        await ws.close()
        return ws

    async with fake_hub(cable) as url:
        publisher = PublisherClient(url, "secret", "s1", Outbox(tmp_path / "outbox"), backoff_rng=TopRng())
        await publisher.publish(tagged_bundle("s1", "a"))
        await publisher.publish(tagged_bundle("s1", "b"))
        await publisher.start()
        try:
            assert await publisher.flush(TIMEOUT)
            gaps = [round(later - earlier, 2) for earlier, later in zip(connected, connected[1:], strict=False)]
            assert len(connected) == 5 and gaps[1] >= 0.9 and gaps[-1] < 0.5, gaps
        finally:
            await stop_all(publisher)
