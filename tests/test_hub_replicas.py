"""Two hub replicas in one process on one PostgreSQL database: cross-replica delivery (LISTEN/NOTIFY
wake-ups, the journal as the source), a re-sent u through the other replica, control changes (new
strategy, edit, revoked token, rotated secret) reaching the other replica, and the poll delivering while
the LISTEN connection is down. The 3-process kill -9 run is tests/test_hub_replicas_kill.py."""
from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
import pytest_asyncio
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    admin_create_follower,
    admin_create_strategy,
    auth,
    make_bundle,
    publish,
    publish_command,
    recv_json,
    subscribe,
    ws_connect,
)
from octobot_signals.hub.fanout import LocalFanout, ReplicaFanout
from octobot_signals.hub.server import ADMIN_TOKEN_ENV, HubHandle, start_hub
from octobot_signals.hub.store import JournalEntry
from octobot_signals.hub.store_pg_conn import redact_url
from pg_helpers import PgServer, pg_server  # noqa: F401  (fixture)

TIMEOUT = aiohttp.ClientTimeout(total=10)


class Pair:
    def __init__(self, a: HubHandle, b: HubHandle, url: str, session: aiohttp.ClientSession) -> None:
        self.a, self.b, self.url, self.session = a, b, url, session


@pytest_asyncio.fixture
async def pair(tmp_path: Path, pg_server: PgServer) -> AsyncIterator[Pair]:  # noqa: F811
    url = pg_server.create_database()
    a = await start_hub("127.0.0.1", 0, tmp_path / "a", admin_token=DEFAULT_ADMIN_TOKEN, store_url=url)
    b = await start_hub("127.0.0.1", 0, tmp_path / "b", admin_token=DEFAULT_ADMIN_TOKEN, store_url=url)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            yield Pair(a, b, url, session)
    finally:
        await a.stop()
        await b.stop()


async def eventually(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


async def until_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return time.monotonic() - started


def cut_listen_connections(url: str) -> int:
    """What a failover or a pooler restart does to the replicas' LISTEN connections (off the loop: the
    hubs run on it)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as admin:
        return len(admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = 'octobot-signals-hub-listen'").fetchall())


async def messages(ws: aiohttp.ClientWebSocketResponse, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    return [(await recv_json(ws, timeout))["message"] for _ in range(n)]


async def test_publishers_on_both_replicas_followers_on_both_get_one_sequence(pair: Pair) -> None:
    strategy = await admin_create_strategy(pair.a.base_url, DEFAULT_ADMIN_TOKEN, "s1")
    # B learns of the new strategy by NOTIFY (milliseconds; the poll's 1.5 s at worst)
    assert await eventually(lambda: asyncio.sleep(0, "s1" in pair.b.state.strategies), 2.0)
    token = (await admin_create_follower(pair.b.base_url, DEFAULT_ADMIN_TOKEN, "s1"))["token"]
    followers = []
    for hub in (pair.a, pair.b, pair.b):
        ws = await ws_connect(pair.session, hub.base_url, token)
        await subscribe(ws, ["s1"])
        followers.append(ws)
    publishers = [await ws_connect(pair.session, hub.base_url, strategy["publish_secret"]) for hub in (pair.a, pair.b)]

    async def run(publisher: aiohttp.ClientWebSocketResponse, tag: str) -> dict[str, int]:
        acked = {}
        for i in range(60):
            ack = await publish(publisher, strategy, u=f"{tag}-{i}")
            assert ack["type"] == "ack", ack
            acked[ack["u"]] = ack["q"]
        return acked

    async def resume_midway() -> list[dict[str, Any]]:
        await asyncio.sleep(0.05)  # a follower that joins on B from 0 while both replicas publish
        ws = await ws_connect(pair.session, pair.b.base_url, token)
        await subscribe(ws, ["s1"], resume={"s1": 0})
        return await messages(ws, 120)

    late_task = asyncio.create_task(resume_midway())
    acks_a, acks_b = await asyncio.gather(run(publishers[0], "a"), run(publishers[1], "b"))
    acked = {**acks_a, **acks_b}
    assert sorted(acked.values()) == list(range(1, 121))
    by_q = {q: u for u, q in acked.items()}
    for ws in followers:
        got = await messages(ws, 120)
        assert [(m["q"], m["u"]) for m in got] == [(q, by_q[q]) for q in range(1, 121)]
        with pytest.raises(asyncio.TimeoutError):
            await recv_json(ws, 0.3)
    late = await late_task
    assert [m["q"] for m in late] == list(range(1, 121))
    # a u re-sent through the other replica (a publisher that failed over): its first q, journaled once
    bundle = make_bundle("s1")
    first = await publish(publishers[0], strategy, bundle=bundle, u="failover-u", d=1.0)
    again = await publish(publishers[1], strategy, bundle=bundle, u="failover-u", d=1.0)
    assert first == again == {"type": "ack", "u": "failover-u", "q": 121}
    for ws in followers:
        assert [m["u"] for m in await messages(ws, 1)] == ["failover-u"]
        with pytest.raises(asyncio.TimeoutError):
            await recv_json(ws, 0.3)


async def test_cross_replica_latency(pair: Pair) -> None:
    strategy = await admin_create_strategy(pair.a.base_url, DEFAULT_ADMIN_TOKEN, "s1")
    token = (await admin_create_follower(pair.a.base_url, DEFAULT_ADMIN_TOKEN, "s1"))["token"]
    follower = await ws_connect(pair.session, pair.b.base_url, token)
    await subscribe(follower, ["s1"])
    publisher = await ws_connect(pair.session, pair.a.base_url, strategy["publish_secret"])
    samples = []
    for _ in range(100):
        started = time.perf_counter()
        await publisher.send_str(publish_command(strategy)[0])
        await messages(follower, 1)
        samples.append((time.perf_counter() - started) * 1000)
        assert (await recv_json(publisher))["type"] == "ack"
    samples.sort()
    print(f"\npublish on A -> delivered on B (n=100): p50 {statistics.median(samples):.2f} ms, "
          f"p99 {samples[98]:.2f} ms")
    assert samples[98] < 500  # NOTIFY, not the 1.5 s poll, carries it


async def test_control_changes_reach_the_other_replica(pair: Pair) -> None:
    # a strategy created on A is followable on B at once (NOTIFY), an edit is seen there too
    strategy = await admin_create_strategy(pair.a.base_url, DEFAULT_ADMIN_TOKEN, "s1")
    follower = await admin_create_follower(pair.a.base_url, DEFAULT_ADMIN_TOKEN, "s1")
    assert await eventually(lambda: asyncio.sleep(0, "s1" in pair.b.state.strategies), 2.0)
    async with pair.session.patch(f"{pair.a.base_url}/api/strategies/s1", json={"name": "Renamed"},
                                  headers=auth(DEFAULT_ADMIN_TOKEN)) as resp:
        assert resp.status == 200
    assert await eventually(lambda: asyncio.sleep(0, pair.b.state.strategies["s1"].name == "Renamed"), 2.0)

    # a token revoked on A drops its live connection on B
    ws = await ws_connect(pair.session, pair.b.base_url, follower["token"])
    await subscribe(ws, ["s1"])
    async with pair.session.delete(f"{pair.a.base_url}/api/followers/{follower['token_id']}",
                                   headers=auth(DEFAULT_ADMIN_TOKEN)) as resp:
        assert resp.status == 200
    assert await until_closed(ws) < 2.0

    # a secret rotated on B drops A's publisher with the old one; a publisher with the new one stays
    old = await ws_connect(pair.session, pair.a.base_url, strategy["publish_secret"])
    assert (await publish(old, strategy))["type"] == "ack"
    async with pair.session.post(f"{pair.b.base_url}/api/strategies/s1/publish-secret",
                                 headers=auth(DEFAULT_ADMIN_TOKEN)) as resp:
        new_secret = (await resp.json())["publish_secret"]
    fresh = await ws_connect(pair.session, pair.a.base_url, new_secret)
    assert await until_closed(old) < 2.0
    await pair.a.replicas.poll_once()  # a reconcile after the change: the new secret's connection survives it
    assert (await publish(fresh, strategy))["type"] == "ack"


async def test_the_poll_delivers_without_listen_and_listen_reconnects(pair: Pair) -> None:
    strategy = await admin_create_strategy(pair.a.base_url, DEFAULT_ADMIN_TOKEN, "s1")
    token = (await admin_create_follower(pair.a.base_url, DEFAULT_ADMIN_TOKEN, "s1"))["token"]
    follower = await ws_connect(pair.session, pair.b.base_url, token)
    await subscribe(follower, ["s1"])
    publisher = await ws_connect(pair.session, pair.a.base_url, strategy["publish_secret"])
    assert pair.a.replicas is not None and pair.b.replicas is not None and pair.b.replicas.listening

    # the LISTEN connections are cut by the server: both replicas reconnect and deliver again by NOTIFY
    connects = pair.b.replicas.listen_connects
    assert await asyncio.to_thread(cut_listen_connections, pair.url) == 2
    started = time.monotonic()
    assert await eventually(lambda: asyncio.sleep(0, pair.b.replicas.listen_connects > connects), 10.0)
    print(f"\nLISTEN back {time.monotonic() - started:.2f} s after the server cut it")
    ack = await publish(publisher, strategy)
    assert [m["q"] for m in await messages(follower, 1, timeout=2)] == [ack["q"]]

    # no LISTEN at all on B (its listener stopped): the 1.5 s poll of the head rows still delivers, in order
    pair.b.replicas._tasks[0].cancel()  # noqa: SLF001 - the listener task; the poll task keeps running
    await asyncio.sleep(0.1)
    started = time.monotonic()
    acks = [await publish(publisher, strategy) for _ in range(5)]
    got = await messages(follower, 5, timeout=5)
    assert [m["q"] for m in got] == [a["q"] for a in acks] == [2, 3, 4, 5, 6]
    assert time.monotonic() - started < 4.0


async def test_the_store_url_password_is_never_logged(tmp_path: Path, pg_server: PgServer,  # noqa: F811
                                                      caplog: pytest.LogCaptureFixture) -> None:
    url = pg_server.create_database()
    # the test server trusts local connections, so any password is accepted: it only has to stay unlogged
    with_password = url.replace("postgres@", "postgres:pw-not-for-logs-7319@", 1)
    caplog.set_level(logging.DEBUG)
    hub = await start_hub("127.0.0.1", 0, tmp_path / "hub", admin_token=DEFAULT_ADMIN_TOKEN, store_url=with_password)
    try:
        assert await eventually(lambda: asyncio.sleep(0, hub.replicas is not None and hub.replicas.listening), 5.0)
        assert await asyncio.to_thread(cut_listen_connections, url) == 1  # a reconnect logs the URL too
        await asyncio.sleep(0.5)
    finally:
        await hub.stop()
    text = caplog.text
    assert "postgres:***@" in text and "pw-not-for-logs-7319" not in text
    assert redact_url("postgresql://u:secret@h/db?password=other&sslmode=require") == \
        "postgresql://u:***@h/db?password=%2A%2A%2A&sslmode=require"


def test_cli_refuses_other_urls_and_reports_an_unreachable_database(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "octobot_signals.hub", "--port", "0", "--data", str(tmp_path / "d")]
    bad = subprocess.run([*command, "--store", "mysql://u:pw@h/db"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "postgresql://" in bad.stderr and "pw" not in bad.stderr
    missing = tmp_path / "no-server-here"
    down = subprocess.run([*command, "--store", f"postgresql://u:pw-7319@/db?host={missing}"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, ADMIN_TOKEN_ENV: DEFAULT_ADMIN_TOKEN})
    assert down.returncode == 1, down.stderr[-2000:]
    assert "hub failed to start: PostgreSQL unreachable at postgresql://u:***@/db" in down.stderr
    assert "pw-7319" not in down.stderr + down.stdout


class JournalStub:
    """read_after over an in-memory journal: the fan-out's contract without a database."""

    def __init__(self, n: int) -> None:
        self.entries = [JournalEntry("s1", q, f"u{q}", q, {"identifier": "s1"}, None) for q in range(1, n + 1)]
        self.reads = 0

    async def read_after(self, strategy_id: str, after_q: int, limit: int) -> list[JournalEntry]:
        self.reads += 1
        await asyncio.sleep(0)
        return [e for e in self.entries if e.q > after_q][:limit]


class Notified(LocalFanout):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def publish(self, strategy_id: str, q: int, frame: str) -> None:
        super().publish(strategy_id, q, frame)
        self.seen.append(q)


class Sink:
    def __init__(self) -> None:
        self.qs: list[int] = []

    def deliver(self, strategy_id: str, q: int, frame: str) -> None:
        self.qs.append(q)


async def test_replica_fanout_orders_local_and_remote_appends() -> None:
    journal = JournalStub(6)
    fanout = ReplicaFanout(LocalFanout(), journal.read_after, lambda s: "st_1", {"s1": 0})
    sink = Sink()
    fanout.subscribe(sink, "s1")
    fanout.publish("s1", 1, "frame-1")  # this replica's next q: handed over at once, no read
    assert sink.qs == [1] and journal.reads == 0
    fanout.publish("s1", 3, "frame-3")  # q=2 came from another replica: read from the journal, in order
    fanout.wake("s1", 2)
    fanout.publish("s1", 4, "frame-4")
    await asyncio.sleep(0.05)
    fanout.wake("s1", 6)
    fanout.wake("s1", 5)
    await asyncio.sleep(0.05)
    assert sink.qs == [1, 2, 3, 4, 5, 6]
    await fanout.close()


async def test_replica_fanout_skips_unfollowed_strategies_but_not_for_a_notified_fanout() -> None:
    plain_journal, notified_journal = JournalStub(3), JournalStub(3)
    plain = ReplicaFanout(LocalFanout(), plain_journal.read_after, lambda s: "st_1", {})
    plain.wake("s1", 3)
    notified = Notified()
    egress_side = ReplicaFanout(notified, notified_journal.read_after, lambda s: "st_1", {})
    egress_side.wake("s1", 3)
    await asyncio.sleep(0.05)
    assert plain_journal.reads == 0 and plain.delivered("s1") == 3  # nobody here: moved on, nothing read
    assert notified.seen == [1, 2, 3]  # the MQTT egress's fan-out hears of every q
    await plain.close()
    await egress_side.close()


async def test_replicas_ride_out_a_postgresql_crash_restart(tmp_path: Path) -> None:
    """The database crashes and comes back: the append that hit the dead link is nacked (retryable), the
    stores reconnect, LISTEN comes back, and the re-sent u is journaled once, delivered on the other replica."""
    server = PgServer().start()
    a = b = None
    try:
        url = server.create_database()
        a = await start_hub("127.0.0.1", 0, tmp_path / "a", admin_token=DEFAULT_ADMIN_TOKEN, store_url=url)
        b = await start_hub("127.0.0.1", 0, tmp_path / "b", admin_token=DEFAULT_ADMIN_TOKEN, store_url=url)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            strategy = await admin_create_strategy(a.base_url, DEFAULT_ADMIN_TOKEN, "s1")
            token = (await admin_create_follower(a.base_url, DEFAULT_ADMIN_TOKEN, "s1"))["token"]
            assert await eventually(lambda: asyncio.sleep(0, "s1" in b.state.strategies), 2.0)
            follower = await ws_connect(session, b.base_url, token)
            await subscribe(follower, ["s1"], resume={"s1": 0})
            publisher = await ws_connect(session, a.base_url, strategy["publish_secret"])
            for _ in range(3):
                assert (await publish(publisher, strategy))["type"] == "ack"
            assert [m["q"] for m in await messages(follower, 3)] == [1, 2, 3]
            connects = b.replicas.listen_connects  # type: ignore[union-attr]

            await asyncio.to_thread(server.crash_restart)
            # the first use of B's old store connection is this token lookup: answered, not a 500
            async with session.get(f"{b.base_url}/api/strategies", headers=auth(token)) as resp:
                assert resp.status == 200, await resp.text()
            bundle, nacks = make_bundle("s1"), []
            for _attempt in range(40):  # what the publisher client does: the same u again, with backoff
                answer = await publish(publisher, strategy, bundle=bundle, u="after-crash", d=2.0)
                if answer["type"] == "ack":
                    break
                nacks.append(answer["message"])
                await asyncio.sleep(0.25)
            assert answer == {"type": "ack", "u": "after-crash", "q": 4}, nacks
            assert all(n.startswith("internal") for n in nacks), nacks
            assert [m["q"] for m in await messages(follower, 1, timeout=5)] == [4]
            assert (await publish(publisher, strategy))["q"] == 5
            assert [m["q"] for m in await messages(follower, 1, timeout=5)] == [5]
            assert await eventually(lambda: asyncio.sleep(0, b.replicas.listen_connects > connects), 15.0)
            print(f"\nafter the crash restart: {len(nacks)} retryable nack(s) before the re-sent u was journaled")
    finally:
        for hub in (a, b):
            if hub is not None:
                await hub.stop()
        server.stop()
