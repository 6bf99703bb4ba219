"""`octobot-signals chaos`: publish N signals while hub replicas, followers, links and PostgreSQL fail.

The leader is the real PublisherClient with its durable outbox (in this process); the followers are
`octobot-signals follow` child processes (the real mode on an offline simulated exchange, state on disk);
the hubs are `python -m octobot_signals.hub` child processes; every client reaches the hubs through its
own LinkProxy. Faults start at evenly spread points of the publishing (a seeded random kind, one fault of
each kind at a time) and stop when the last publish is acknowledged; whatever is down then comes back,
and the run measures how long until every follower printed the last q. chaos/check.py does the accounting.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from ..core import protocol
from ..demo.hub_admin import all_signals, create_follower_token, create_strategy
from ..demo.signal_bundles import BENCH_SYMBOL, bundle, new_order_id, order_content
from ..feed.backoff import Backoff, BackoffExhausted
from ..feed.outbox import ACKED, Outbox
from ..feed.publisher_client import PublisherClient
from .check import FollowerHistory, Report, Resend, check_run
from .pg import ChaosPostgres
from .procs import FollowerProcess, HubProcess, summary_of
from .proxy import LinkProxy
from .stalls import HubKillStalls

STRATEGY_ID = "chaos"
PRICE = Decimal(20000)
POSITION_TIMEOUT_S = 60.0
FLUSH_TIMEOUT_S = 300.0  # bounded: a hub that never comes back ends the run with the rows it lost
RESEND_TIMEOUT_S = 5.0
RESEND_WAIT_S = 10.0  # for a first ack and a live replica
PROGRESS_EVERY_S = 5.0
RESTART_ATTEMPTS = 6
QUIET_AFTER_S = 1.0  # after convergence: anything applied twice would show up now
WATCH_EVERY_S = 0.2  # the watchdog's period (crashes, stalls)
SABOTAGE_WAIT_S = 20.0
NEXT_LINE_WAIT_S = 3.0
KINDS_BASE = ("kill_follower", "kill_hub", "cut_publisher", "cut_follower", "resend")


@dataclass
class ChaosConfig:
    store: str  # "sqlite" | "postgresql"
    replicas: int
    signals: int
    followers: int
    rate: float  # signals published per second
    seed: int
    converge_timeout: float
    work_dir: Path
    break_follower: bool = False  # test aid: follower-1 loses its data at its first kill (the run must fail)


class ChaosRun:
    def __init__(self, config: ChaosConfig, write: Callable[[str], None]) -> None:
        self.config = config
        self.write = write
        self.rng = random.Random(config.seed)
        self.pg: ChaosPostgres | None = None
        self.hubs: list[HubProcess] = []
        self.followers: list[FollowerProcess] = []
        self.proxies: dict[str, LinkProxy] = {}
        self.outbox: Outbox | None = None
        self.publisher: PublisherClient | None = None
        self.published_u: list[str] = []
        self.resends: list[Resend] = []
        self.resends_unanswered = 0
        self.faults: Counter[str] = Counter()
        self.crashes: Counter[str] = Counter()  # "hub" and follower names
        self.stalls: dict[str, float] = {}  # follower -> longest stall (s)
        self._current_since: dict[str, float] = {}  # follower -> when it was last seen level with the acked head
        self.kill_stalls = HubKillStalls()  # the stalls around each hub kill (an added JSON field)
        # follower -> longest stall not caused by its own kill -9 (a bot restart): what the feed link costs
        self.feed_stalls: dict[str, float] = {}
        self._killed_at: dict[str, float] = {}  # follower -> its last kill -9
        self._busy: set[str] = set()
        self._fault_tasks: set[asyncio.Task[None]] = set()
        self._started = time.monotonic()
        self._admin_token = secrets.token_urlsafe(32)
        self._reader_token = ""
        self._publish_secret = ""
        self._broken = False

    # ------------------------------------------------------------------ set-up

    def _kinds(self) -> tuple[str, ...]:
        return KINDS_BASE + (("restart_postgres",) if self.config.store == "postgresql" else ())

    def _live_ports(self) -> list[int]:
        return [hub.port for hub in self.hubs if hub.up]

    def _log(self, text: str) -> None:
        self.write(f"[{time.monotonic() - self._started:7.1f} s] {text}")

    async def _set_up(self) -> None:
        work = self.config.work_dir
        store_url = None
        if self.config.store == "postgresql":
            self.pg = ChaosPostgres()
            await self.pg.start()
            store_url = self.pg.url()
            self._log("PostgreSQL 15 started on a Unix socket")
        self.hubs = [HubProcess(f"hub-{i + 1}", work / f"hub-{i + 1}", self._admin_token, store_url)
                     for i in range(self.config.replicas)]
        for hub in self.hubs:  # one after the other: the first one creates the schema
            await hub.start()
        self._log(f"{len(self.hubs)} hub process(es) up ({self.config.store})")
        first = self.hubs[0].base_url
        strategy = await create_strategy(first, self._admin_token, STRATEGY_ID, pairs=[BENCH_SYMBOL])
        tokens = [await create_follower_token(first, self._admin_token, STRATEGY_ID)
                  for _ in range(self.config.followers)]
        self._reader_token = tokens[0]
        for name in ["publisher", *(f"follower-{i + 1}" for i in range(self.config.followers))]:
            proxy = LinkProxy(name, self._live_ports, random.Random(self.rng.random()))
            await proxy.start()
            self.proxies[name] = proxy
        self.followers = [FollowerProcess(f"follower-{i + 1}", self.proxies[f"follower-{i + 1}"].url, STRATEGY_ID,
                                          token, work / f"follower-{i + 1}") for i, token in enumerate(tokens)]
        await asyncio.gather(*(follower.start() for follower in self.followers))
        # the strategy is empty: each follower's starting position must be q=0 before the first publish
        await asyncio.gather(*(follower.wait_position_recorded(POSITION_TIMEOUT_S) for follower in self.followers))
        self._log(f"{len(self.followers)} followers started")
        self.outbox = Outbox(work / "publisher")
        # a short backoff cap: the convergence figure should show the hub's recovery, not a 30 s sleep
        self.publisher = PublisherClient(self.proxies["publisher"].url, strategy["publish_secret"], STRATEGY_ID,
                                         self.outbox, ack_timeout=5.0, backoff_cap=2.0)
        await self.publisher.start()
        self._publish_secret = str(strategy["publish_secret"])

    # ------------------------------------------------------------------ faults

    def _start_fault(self, preferred: str) -> None:
        kinds = list(self._kinds())
        start = kinds.index(preferred)
        for kind in kinds[start:] + kinds[:start]:  # the preferred one, else the next free kind
            if kind not in self._busy:
                self._busy.add(kind)
                task = asyncio.ensure_future(self._fault(kind))
                self._fault_tasks.add(task)
                task.add_done_callback(self._fault_tasks.discard)
                return

    async def _fault(self, kind: str) -> None:
        down = round(self.rng.uniform(0.2, 1.5), 2)
        try:
            actions: dict[str, Callable[[float], Awaitable[bool]]] = {
                "kill_follower": self._kill_follower, "kill_hub": self._kill_hub,
                "cut_publisher": self._cut_publisher, "cut_follower": self._cut_follower,
                "resend": self._resend, "restart_postgres": self._restart_postgres,
            }
            if await actions[kind](down):
                self.faults[kind] += 1
        except Exception as err:  # a fault that cannot be undone ends the run's honesty: say so loudly
            self._log(f"FAULT {kind} failed: {type(err).__name__}: {err}")
            self.faults[f"{kind}_failed"] += 1
        finally:
            self._busy.discard(kind)

    async def _kill_follower(self, down: float) -> bool:
        follower = self.rng.choice([f for f in self.followers if f.up])
        sabotage = self.config.break_follower and not self._broken and self.followers[0].up
        if sabotage:
            follower = self.followers[0]
        # half of the kills land just after a line: the order is placed and reported, its q maybe not yet saved
        # (the window the mode's order map must cover); the other half at any moment
        right_after_a_line = self.rng.random() < 0.5 and await follower.next_line(NEXT_LINE_WAIT_S)
        self._killed_at[follower.name] = time.monotonic()
        await follower.kill()
        self.kill_stalls.follower_killed(follower.name)
        when = "just after a line" if right_after_a_line else "at a random moment"
        self._log(f"kill -9 {follower.name} {when} (at q={follower.last_q}), back in {down} s")
        if sabotage:
            self._broken = True
            # a bot whose disk was wiped: its saved position and order map are gone, so it starts "from now"
            await asyncio.to_thread(shutil.rmtree, follower.data_dir, True)
            self._log(f"--break-follower: {follower.name} lost its data directory")
            # back only once the hub has acked messages it never printed: its new start "from now" skips them
            deadline = time.monotonic() + SABOTAGE_WAIT_S
            while self.publisher is not None and self.publisher.stats.acked < follower.last_q + 3:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(down)
        await self._start_again(follower.name, follower.start)
        return True

    async def _kill_hub(self, down: float) -> bool:
        live = [hub for hub in self.hubs if hub.up]
        hub = self.rng.choice(live)
        await hub.kill()
        self.kill_stalls.hub_killed(hub.name, time.monotonic(), down)
        self._log(f"kill -9 {hub.name}, back in {down} s")
        await asyncio.sleep(down)
        await self._start_again(hub.name, hub.start)
        self.kill_stalls.hub_back(hub.name, time.monotonic())
        return True

    async def _start_again(self, name: str, start: Callable[[], Awaitable[None]]) -> None:
        """A restart can meet another fault (a hub starting while PostgreSQL is down): retried with backoff."""
        backoff = Backoff(base=0.5, cap=4.0, max_attempts=RESTART_ATTEMPTS)
        while True:
            try:
                await start()
                return
            except RuntimeError as err:
                try:
                    delay = backoff.next_delay()
                except BackoffExhausted:
                    raise err from None
                self._log(f"{name} did not start ({err}); again in {delay:.1f} s")
                await asyncio.sleep(delay)

    async def _cut_publisher(self, down: float) -> bool:
        self.proxies["publisher"].cut()
        self._log(f"link cut: publisher, restored in {down} s")
        await asyncio.sleep(down)
        self.proxies["publisher"].restore()
        return True

    async def _cut_follower(self, down: float) -> bool:
        follower = self.rng.choice(self.followers)
        proxy = self.proxies[follower.name]
        proxy.cut()
        self._log(f"link cut: {follower.name}, restored in {down} s")
        await asyncio.sleep(down)
        proxy.restore()
        return True

    async def _restart_postgres(self, down: float) -> bool:
        assert self.pg is not None
        self._log(f"PostgreSQL stopped (-m immediate), back in {down} s")
        await self.pg.restart(down)
        return True

    async def _resend(self, _down: float) -> bool:
        """Send acknowledged messages again, same u and d, to a random replica: the ack must carry the first q."""
        assert self.outbox is not None and self.publisher is not None
        deadline = time.monotonic() + RESEND_WAIT_S
        # the sender acks one message at a time in outbox order: the first `acked` rows are the acked ones
        while not (self.publisher.stats.acked and self.publisher.feed_id and self._live_ports()):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        acked = self.published_u[:self.publisher.stats.acked]
        picks = self.rng.sample(acked, min(5, len(acked)))
        items = [item for item in await asyncio.gather(*(asyncio.to_thread(self.outbox.get, u) for u in picks))
                 if item is not None and item.state == ACKED and item.q is not None]
        live = self._live_ports()
        if not items or not live:
            return False
        port = self.rng.choice(live)
        self._log(f"re-send of {len(items)} acked messages to port {port}")
        try:
            await self._resend_items(port, items)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            self.resends_unanswered += len(items)
            status = f" HTTP {err.status}" if isinstance(err, aiohttp.WSServerHandshakeError) else ""
            self._log(f"re-send unanswered ({type(err).__name__}{status}): the replica or its store may be restarting")
        return True

    async def _resend_items(self, port: int, items: list[Any]) -> None:
        assert self.publisher is not None and self.publisher.feed_id is not None
        timeout = aiohttp.ClientTimeout(total=RESEND_TIMEOUT_S * (len(items) + 1))
        headers = {"Authorization": f"Bearer {self._publish_secret}"}
        async with aiohttp.ClientSession(timeout=timeout) as session, session.ws_connect(
                f"ws://127.0.0.1:{port}{protocol.WS_PATH}", headers=headers, heartbeat=None) as ws:
            for item in items:
                frame = protocol.build_publish_command(self.publisher.feed_id, item.bundle, item.u, item.d, None)
                await asyncio.wait_for(ws.send_str(frame), RESEND_TIMEOUT_S)
                answer = await self._answer_for(ws, item.u)
                if isinstance(answer, protocol.Ack):
                    self.resends.append(Resend(item.u, int(item.q), int(answer.q)))
                else:
                    self.resends_unanswered += 1
                    self._log(f"re-send of u={item.u} answered {answer}")

    @staticmethod
    async def _answer_for(ws: aiohttp.ClientWebSocketResponse, u: str) -> protocol.Ack | protocol.Nack | None:
        deadline = time.monotonic() + RESEND_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            msg = await ws.receive(timeout=left)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return None
            with contextlib.suppress(protocol.ProtocolError):
                frame = protocol.parse_server_frame(msg.data)
                if isinstance(frame, protocol.Ack | protocol.Nack) and str(frame.u) == u:
                    return frame
        raise asyncio.TimeoutError()

    # ------------------------------------------------------------------ the run

    async def _lead(self) -> None:
        """Alternately a resting buy limit (0.1 % of the follower's funds, 20 % under the market: never fills)
        and its cancel, so every follower's book holds at most one copy."""
        assert self.publisher is not None
        total = self.config.signals
        spacing = max(6, total // 40)
        limit = str(PRICE * Decimal("0.8"))
        order_id = new_order_id()
        cycle: list[str] = []  # every kind once per cycle, in a seeded order: a short run still sees them all
        for index in range(total):
            if index % 2 == 0:
                order_id = new_order_id()
                content = order_content("create", order_id, price=limit, current=str(PRICE))
            else:
                content = order_content("cancel", order_id, price=limit, current=str(PRICE))
            self.published_u.append(await self.publisher.publish(bundle(STRATEGY_ID, content)))
            if index % spacing == spacing // 2:
                if not cycle:
                    cycle = self.rng.sample(self._kinds(), len(self._kinds()))
                self._start_fault(cycle.pop())
            await asyncio.sleep(1.0 / self.config.rate)

    async def _progress(self) -> None:
        assert self.publisher is not None
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            positions = " ".join(f"{f.name}=q{f.last_q}{'' if f.up else '(down)'}" for f in self.followers)
            self._log(f"published {len(self.published_u)}/{self.config.signals}, acked {self.publisher.stats.acked}; "
                      f"{positions}")

    async def _watchdog(self) -> None:
        """A child that died without being killed is a crash: counted (the run fails) and started again."""
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            self._measure_stalls()
            for hub in self.hubs:
                if hub.exited_by_itself and "kill_hub" not in self._busy:
                    self.crashes["hub"] += 1
                    self._log(f"CRASH: {hub.name} exited by itself (code {hub.proc.returncode if hub.proc else '?'})")
                    hub.port = 0
                    await self._start_again(hub.name, hub.start)
            for follower in self.followers:
                if follower.crashes > self.crashes[follower.name]:
                    self.crashes[follower.name] = follower.crashes
                    self._log(f"CRASH: {follower.name} exited by itself (see {follower.data_dir / 'follow.log'})")
                    if "kill_follower" not in self._busy:
                        await self._start_again(follower.name, follower.start)

    def _measure_stalls(self) -> None:
        """The longest time each follower printed nothing while the hub had acked messages it had not printed."""
        now = time.monotonic()
        head = self.publisher.stats.acked if self.publisher is not None else 0  # acks come in q order
        stalled_since: dict[str, float] = {}
        for follower in self.followers:
            if follower.last_q >= head:
                self._current_since.pop(follower.name, None)
                continue
            since = max(self._current_since.setdefault(follower.name, now), follower.last_q_at)
            stalled_since[follower.name] = since
            self.stalls[follower.name] = max(self.stalls.get(follower.name, 0.0), now - since)
            killed = self._killed_at.get(follower.name, since - 1.0)
            feed_end = min(now, killed) if killed >= since else now  # the part before its own kill
            self.feed_stalls[follower.name] = max(self.feed_stalls.get(follower.name, 0.0), feed_end - since)
        self.kill_stalls.observe(now, stalled_since, [f.name for f in self.followers])

    async def _converge(self, last_q: int) -> float | None:
        """Seconds from the last ack to every follower's line for `last_q`; None past the timeout."""
        deadline = time.monotonic() + self.config.converge_timeout
        while any(f.last_q < last_q for f in self.followers):
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.02)
        return max(f.last_q_at for f in self.followers)

    async def run(self) -> dict[str, Any]:
        config = self.config
        self._log(f"chaos run: {config.signals} signals, {config.followers} followers, {config.replicas} hub "
                  f"replica(s) on {config.store}, seed {config.seed}")
        background: list[asyncio.Task[None]] = []
        try:
            await self._set_up()
            background = [asyncio.ensure_future(self._progress()), asyncio.ensure_future(self._watchdog())]
            await self._lead()
            assert self.publisher is not None
            flushed = await self.publisher.flush(FLUSH_TIMEOUT_S)
            acked_at = time.monotonic()
            self._log(f"last publish acked (flushed={flushed}); faults stop, everything comes back")
            await asyncio.gather(*self._fault_tasks, return_exceptions=True)
            for proxy in self.proxies.values():
                proxy.restore()
            for hub in self.hubs:
                if not hub.up:
                    await self._start_again(hub.name, hub.start)
            published = await self._published_rows()
            last_q = max((q for _, q in published if q is not None), default=0)
            converged_at = await self._converge(last_q)
            converge_s = None if converged_at is None else max(0.0, converged_at - acked_at)
            await asyncio.sleep(QUIET_AFTER_S)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await asyncio.gather(*(follower.stop() for follower in self.followers))
            journal = await self._journal()
            report = check_run(published, journal, self.resends, [f.history for f in self.followers])
            if converge_s is None:
                report.examples.append(f"not converged within {config.converge_timeout:.0f} s")
            return self._summary(report, last_q, converge_s, flushed)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._tear_down()

    async def _published_rows(self) -> list[tuple[str, int | None]]:
        assert self.outbox is not None
        items = await asyncio.to_thread(lambda: [self.outbox.get(u) for u in self.published_u])  # type: ignore[union-attr]
        return [(u, item.q if item is not None and item.state == ACKED else None)
                for u, item in zip(self.published_u, items, strict=True)]

    async def _journal(self) -> list[tuple[int, str]]:
        hub = next(hub for hub in self.hubs if hub.up)
        messages = await all_signals(hub.base_url, self._reader_token, STRATEGY_ID)
        return [(int(m["q"]), str(m["u"])) for m in messages]

    async def _tear_down(self) -> None:
        for task in list(self._fault_tasks):
            task.cancel()
        await asyncio.gather(*self._fault_tasks, return_exceptions=True)
        if self.publisher is not None:
            await self.publisher.stop()
        if self.outbox is not None:
            self.outbox.close()
        await asyncio.gather(*(follower.stop() for follower in self.followers), return_exceptions=True)
        await asyncio.gather(*(hub.stop() for hub in self.hubs), return_exceptions=True)
        for proxy in self.proxies.values():
            await proxy.stop()
        if self.pg is not None:
            await self.pg.stop()

    def _summary(self, report: Report, last_q: int, converge_s: float | None, flushed: bool) -> dict[str, Any]:
        assert self.publisher is not None
        counters = report.counters()
        failed_faults = [kind for kind in self.faults if kind.endswith("_failed")]
        crashes = sum(self.crashes.values())
        if failed_faults:
            report.examples.append(f"faults that could not be carried out or undone: {failed_faults}")
        if crashes:
            report.examples.append(f"child processes that exited by themselves: {dict(self.crashes)}")
        if not flushed:
            report.examples.append(f"the outbox still held messages {FLUSH_TIMEOUT_S:.0f} s after the last publish")
        ok = report.ok and converge_s is not None and flushed and not failed_faults and not crashes
        return {
            "ok": ok, "store": self.config.store, "replicas": self.config.replicas, "signals": self.config.signals,
            "followers": self.config.followers, "seed": self.config.seed, "last_q": last_q,
            **counters, "converge_s": None if converge_s is None else round(converge_s, 3),
            "elapsed_s": round(time.monotonic() - self._started, 1),
            "faults": dict(sorted(self.faults.items())),
            "resends": {"acked": len(self.resends), "unanswered": self.resends_unanswered},
            "recognised_after_restart": report.recognised,
            "crashes": sum(self.crashes.values()),
            "hub_starts": sum(hub.starts for hub in self.hubs),
            "postgres_restarts": self.pg.restarts if self.pg is not None else 0,
            "publisher": self.publisher.stats.as_dict(),
            "longest_stall_s": round(max(self.stalls.values(), default=0.0), 2),
            # added fields: the longest stall a follower's own kill -9 did not cause (the feed link's cost); per hub
            # kill, the worst follower stall, and the worst part of one after the hub was back
            "longest_feed_stall_s": round(max(self.feed_stalls.values(), default=0.0), 2),
            "longest_stall_after_hub_back_s": self.kill_stalls.longest_after_back(),
            "hub_kill_stalls": self.kill_stalls.as_json(self._started),
            "per_follower": [{**summary_of(f), "longest_stall_s": round(self.stalls.get(f.name, 0.0), 2),
                              "longest_feed_stall_s": round(self.feed_stalls.get(f.name, 0.0), 2),
                              **report.per_follower.get(f.name, {})} for f in self.followers],
            "examples": report.examples,
        }


def history_to_json(history: FollowerHistory) -> str:
    """A follower's recorded runs, for a post-mortem of a failed run."""
    return json.dumps([{"lines": run.lines, "stopped": run.stopped} for run in history.runs])
