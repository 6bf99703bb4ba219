"""3 hub processes on one PostgreSQL database; kill -9 one replica mid-stream.

Publishers (the real PublisherClient with its durable outbox) and followers (the real FollowerClient)
are spread over the replicas through small TCP load balancers on 127.0.0.1 (what an operator puts in
front of replicas: it forwards the WebSocket upgrade as bytes). Each balancer prefers one replica and
falls back to the next that accepts. Replica 0 carries strategy s1's publisher and two followers;
it is SIGKILLed while both strategies publish. Then:
- every follower ends with 1..n for both strategies, in order, each message applied once;
- the journal holds every published u exactly once, and each u's q is the one its publisher's outbox
  recorded from its ack (a u re-sent through another replica got the same q);
- a u journaled through replica 0 before the kill and re-sent through replica 2 returns the same q.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import aiohttp
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    HubProcess,
    admin_create_follower,
    admin_create_strategy,
    auth,
    make_bundle,
    publish,
    ws_connect,
)
from octobot_signals.feed.follower_client import FollowerClient
from octobot_signals.feed.outbox import Outbox
from octobot_signals.feed.publisher_client import PublisherClient
from octobot_signals.feed.state_store import FollowerState
from pg_helpers import PgServer, pg_server  # noqa: F401  (fixture)

N = 150  # messages per strategy
TIMEOUT = aiohttp.ClientTimeout(total=10)
CONVERGE_S = 60.0


def replica_process(data: Path, store_url: str) -> HubProcess:
    """`python -m octobot_signals.hub --store postgresql://...` as a child process."""
    return HubProcess(data, extra_args=["--store", store_url])


class Balancer:
    """A TCP load balancer: each connection goes to the first replica that accepts, its preferred one first."""

    def __init__(self, ports: list[int], prefer: int) -> None:
        self.order = ports[prefer:] + ports[:prefer]
        self.server: asyncio.Server | None = None
        self.port = 0
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Balancer:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self.order:
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
                break
            except (OSError, asyncio.TimeoutError):
                continue
        else:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            await asyncio.gather(self._copy(reader, up_writer), self._copy(up_reader, writer))
        finally:
            self._pipes.discard(task)
            for w in (writer, up_writer):
                w.close()

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()  # one side ended (a replica died): end the other, the client reconnects

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


class Recorder:
    def __init__(self) -> None:
        self.applied: dict[str, list[tuple[int, str]]] = {"s1": [], "s2": []}

    def handler(self, strategy_id: str) -> Any:
        async def handle(message: dict[str, Any]) -> None:
            self.applied[strategy_id].append((message["q"], message["u"]))
        return handle


async def history(session: aiohttp.ClientSession, base_url: str, strategy_id: str, token: str) -> list[dict[str, Any]]:
    async with session.get(f"{base_url}/api/strategies/{strategy_id}/signals?after=0&limit=5000",
                           headers=auth(token)) as resp:
        assert resp.status == 200
        return await resp.json()


async def test_three_replicas_kill_one_mid_stream(tmp_path: Path, pg_server: PgServer) -> None:  # noqa: F811
    store_url = pg_server.create_database()
    replicas = [replica_process(tmp_path / f"replica{i}", store_url) for i in range(3)]
    balancers: list[Balancer] = []
    clients: list[Any] = []
    try:
        for replica in replicas:
            replica.start()
        ports = [r.port for r in replicas]
        balancers = [await Balancer(ports, prefer).start() for prefer in range(3)]
        s1 = await admin_create_strategy(replicas[0].base_url, DEFAULT_ADMIN_TOKEN, "s1")
        s2 = await admin_create_strategy(replicas[1].base_url, DEFAULT_ADMIN_TOKEN, "s2")
        reader_token = (await admin_create_follower(replicas[2].base_url, DEFAULT_ADMIN_TOKEN, "s1"))["token"]
        await asyncio.sleep(0.2)  # the other replicas learn of s1 and s2 (NOTIFY; the poll within 1.5 s)

        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            # a u journaled through replica 0, re-sent after its death through replica 2: the same q
            probe_bundle = make_bundle("s1", tag="probe")
            direct = await ws_connect(session, replicas[0].base_url, s1["publish_secret"])
            probe = await publish(direct, s1, bundle=probe_bundle, u="probe-u", d=1.0)
            assert probe == {"type": "ack", "u": "probe-u", "q": 1}

            recorders = []
            for index in range(6):  # two followers homed on each replica
                token = (await admin_create_follower(replicas[index % 3].base_url, DEFAULT_ADMIN_TOKEN, "s1"))["token"]
                recorder = Recorder()
                follower = FollowerClient(balancers[index % 3].base_url, token, FollowerState(tmp_path / f"f{index}"),
                                          replay_from_start=True, backoff_cap=0.5, stale_after=6.0)
                for strategy_id in ("s1", "s2"):
                    follower.subscribe(strategy_id, recorder.handler(strategy_id))
                await follower.start()
                clients.append(follower)
                recorders.append(recorder)
            for follower in clients:
                await follower.wait_until_subscribed(15)

            publishers = {
                "s1": PublisherClient(balancers[0].base_url, s1["publish_secret"], "s1", Outbox(tmp_path / "o1"),
                                      backoff_cap=0.5, ack_timeout=3),
                "s2": PublisherClient(balancers[1].base_url, s2["publish_secret"], "s2", Outbox(tmp_path / "o2"),
                                      backoff_cap=0.5, ack_timeout=3),
            }
            for publisher in publishers.values():
                await publisher.start()
                clients.append(publisher)

            async def stream(strategy_id: str, count: int) -> list[str]:
                sent = []
                for i in range(count):
                    sent.append(await publishers[strategy_id].publish(make_bundle(strategy_id, tag=f"{strategy_id}-{i}")))
                    await asyncio.sleep(0.01)
                return sent

            streams = [asyncio.create_task(stream("s1", N - 1)), asyncio.create_task(stream("s2", N))]
            deadline = time.monotonic() + 30
            while publishers["s1"].stats.acked < 40 and time.monotonic() < deadline:  # mid-stream, however slow
                await asyncio.sleep(0.005)
            acked_before = publishers["s1"].stats.acked
            replicas[0].kill()
            killed_at = time.monotonic()
            assert 40 <= acked_before < N - 20, acked_before  # really mid-stream
            sent = {"s1": ["probe-u", *await streams[0]], "s2": await streams[1]}
            for publisher in publishers.values():
                assert await publisher.flush(CONVERGE_S), publisher.stats.as_dict()

            again = await ws_connect(session, replicas[2].base_url, s1["publish_secret"])
            assert await publish(again, s1, bundle=probe_bundle, u="probe-u", d=1.0) == probe

            # the journal: every u once, q gap-free, and each u at the q its publisher's ack reported
            for strategy_id in ("s1", "s2"):
                journal = await history(session, replicas[1].base_url, strategy_id, reader_token)
                assert [m["q"] for m in journal] == list(range(1, N + 1))
                assert [m["u"] for m in journal if m["u"] != "probe-u"] == [u for u in sent[strategy_id]
                                                                             if u != "probe-u"]
                outbox = publishers[strategy_id].outbox
                acked = {m["u"]: outbox.get(m["u"]).q for m in journal if m["u"] != "probe-u"}  # type: ignore[union-attr]
                assert acked == {m["u"]: m["q"] for m in journal if m["u"] != "probe-u"}

            # every follower: 1..N of both strategies, in order, each applied once
            deadline = time.monotonic() + CONVERGE_S
            while time.monotonic() < deadline and not all(
                    len(r.applied["s1"]) >= N and len(r.applied["s2"]) >= N for r in recorders):
                await asyncio.sleep(0.1)
            converged = time.monotonic() - killed_at
            journals = {s: [(m["q"], m["u"]) for m in await history(session, replicas[2].base_url, s, reader_token)]
                        for s in ("s1", "s2")}
            for index, recorder in enumerate(recorders):
                for strategy_id in ("s1", "s2"):
                    assert recorder.applied[strategy_id] == journals[strategy_id], (index, strategy_id)
            # the followers and the publisher that were on replica 0 came back through another replica
            assert all(clients[i].stats.reconnects >= 1 for i in (0, 3)), [c.stats.as_dict() for c in clients[:6]]
            assert publishers["s1"].stats.reconnects >= 1 and publishers["s1"].stats.acked == N - 1
            print(f"s1 publisher: {publishers['s1'].stats.as_dict()}")
            print(f"\n3 replicas, replica 0 killed mid-stream: {len(recorders)} followers x 2 strategies x {N} "
                  f"messages converged {converged:.1f} s after the kill")
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.stop(), 10)
        for balancer in balancers:
            await balancer.stop()
        for replica in replicas:
            replica.terminate()
