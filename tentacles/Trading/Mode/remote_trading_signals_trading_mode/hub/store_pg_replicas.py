"""What keeps several hub replicas on one PostgreSQL database in step.

- A LISTEN connection (psycopg's async connection, on the event loop) receives `osig_journal`
  "<strategy> <q>" wake-ups, handed to fanout.ReplicaFanout, which reads the journal after the last q
  this replica delivered and feeds its own connections; and `osig_control` (a strategy created or
  edited, a publish secret replaced, a token revoked), which makes the replica reconcile at once.
- A poll every `poll_interval_s` (1.5 s) reads the head rows and reconciles too: it covers a dropped
  LISTEN connection, a failover, or a notification lost between COMMIT and a crash.
- Reconcile: the strategies in memory are reloaded from the database; a live follower connection whose
  token is revoked is closed; a live publisher connection whose secret is no longer its strategy's
  (rotated, archived, author disabled) is closed. The checks compare each connection's own credential,
  so a publisher that already reconnected with the new secret is never closed by mistake.

Reads run on a second store connection and thread (`reader`), so catch-up reads and polls never queue
behind the publishers' appends. The LISTEN connection must reach PostgreSQL directly or through a
session-mode pooler: a transaction-mode pooler (pgbouncer's default) drops LISTEN.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from ..core import protocol
from .auth import bearer_token, hash_secret
from .fanout import ReplicaFanout
from .store import AsyncStore
from .store_pg import CONTROL_CHANNEL, JOURNAL_CHANNEL
from .store_pg_conn import APPLICATION_NAME, CONNECT_TIMEOUT_S, TCP_SETTINGS, redact_url

if TYPE_CHECKING:
    from .state import HubState

logger = logging.getLogger("octobot_signals.hub.replicas")

POLL_INTERVAL_S = 1.5
LISTEN_LIVENESS_S = 5.0  # with no notification for this long, a `SELECT 1` proves the LISTEN link alive
QUERY_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 10.0  # reconnects go on while the hub runs (the poll delivers meanwhile), at most this far apart


def backoff_delay(attempt: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt))  # full jitter


class ReplicaSync:
    def __init__(self, state: HubState, reader: AsyncStore, fanout: ReplicaFanout,
                 poll_interval_s: float = POLL_INTERVAL_S) -> None:
        assert state.store.url is not None
        self._url = state.store.url
        self._state = state
        self._reader = reader
        self._fanout = fanout
        self._poll_interval_s = poll_interval_s
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False  # psycopg may turn a cancellation into QueryCanceled: the loops check this too
        self.listening = False  # tests and /api/health-like probes may read it
        self.listen_connects = 0  # successful LISTEN (re)connections

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen()), loop.create_task(self._poll())]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        _, stuck = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
        if stuck:
            logger.warning("replica sync: %d task(s) did not stop in %.0f s", len(stuck), STOP_TIMEOUT_S)
        await self._fanout.close()
        await self._reader.close()

    # -- LISTEN
    async def _listen(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                conn = await asyncio.wait_for(psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                    application_name=APPLICATION_NAME + "-listen", **TCP_SETTINGS), CONNECT_TIMEOUT_S + 5)
                try:
                    await asyncio.wait_for(conn.execute(f"LISTEN {JOURNAL_CHANNEL}; LISTEN {CONTROL_CHANNEL}"),
                                           QUERY_TIMEOUT_S)
                    self.listening = True
                    self.listen_connects += 1
                    if attempt:
                        logger.info("LISTEN connection back")
                    attempt = 0
                    self._kick.set()  # whatever was committed while nobody listened
                    while not self._stopping:
                        async for note in conn.notifies(timeout=LISTEN_LIVENESS_S):
                            self._on_notify(note.channel, note.payload)
                        await asyncio.wait_for(conn.execute("SELECT 1"), QUERY_TIMEOUT_S)
                finally:
                    self.listening = False
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), QUERY_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # never the URL's password: only the redacted URL and the error's type
                if self._stopping:
                    return
                delay = backoff_delay(attempt)
                attempt += 1
                logger.warning("LISTEN connection to %s lost (%s); retrying in %.1f s (the poll delivers meanwhile)",
                               redact_url(self._url), type(err).__name__, delay)
                await asyncio.sleep(delay)

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == JOURNAL_CHANNEL:
            strategy_id, _, q = payload.rpartition(" ")
            if strategy_id and q.isdigit():
                self._fanout.wake(strategy_id, int(q))
        elif channel == CONTROL_CHANNEL:
            self._kick.set()

    # -- poll + reconcile
    async def _poll(self) -> None:
        while not self._stopping:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self._poll_interval_s)
            self._kick.clear()
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                logger.warning("replica poll failed (%s); next in %.1f s", type(err).__name__, self._poll_interval_s)

    async def poll_once(self) -> None:
        state = self._state
        live = sorted({c.principal.follower.token_id for c in state.connections if c.principal.follower is not None})
        strategies, hashes, revoked = await asyncio.wait_for(
            self._reader.run(lambda db: db.replica_snapshot(live)), QUERY_TIMEOUT_S * 3)
        fresh = {s.id: s for s in strategies}
        for strategy_id in [s for s in state.strategies if s not in fresh]:
            del state.strategies[strategy_id]
        state.strategies.update(fresh)  # in place: every holder of the dict sees the new strategies
        for connection in list(state.connections):
            principal = connection.principal
            if principal.follower is not None and principal.follower.token_id in revoked:
                connection.close_soon(protocol.CLOSE_POLICY_VIOLATION, "token revoked")
            elif principal.kind == "publisher":
                token = bearer_token(connection.request)
                if token is None or hashes.get(principal.strategy_id or "") != hash_secret(token):
                    connection.close_soon(protocol.CLOSE_POLICY_VIOLATION, "publish secret replaced")
        heads = await asyncio.wait_for(self._reader.run(lambda db: db.journal_heads()), QUERY_TIMEOUT_S * 3)
        for strategy_id, q in heads.items():
            self._fanout.wake(strategy_id, q)


async def start_replicas(state: HubState) -> ReplicaSync:
    """Before the site serves: puts the cross-replica fan-out in front of the local one (and of the MQTT
    egress's, when configured) and starts listening."""
    assert state.store.url is not None
    reader = AsyncStore(Path("."), state.store.url, migrate=False)
    await reader.open()
    try:
        positions = await reader.run(lambda db: db.journal_heads())

        def stream_id_of(strategy_id: str) -> str | None:
            strategy = state.strategies.get(strategy_id)
            return strategy.stream_id if strategy else None

        fanout = ReplicaFanout(state.fanout, reader.read_after, stream_id_of, positions)
        state.fanout = fanout  # type: ignore[assignment]
        sync = ReplicaSync(state, reader, fanout)
        await sync.start()
    except BaseException:
        await reader.close()
        raise
    return sync
