"""The chaos run's TCP proxy: one listener on 127.0.0.1 per client, in front of the hub replicas.

Each client (the publisher, every follower) talks to the hub only through its own proxy, so the run can
cut that client's link alone. A new connection goes to one live replica picked at random (a load
balancer: with replicas, a follower's WebSocket and its history requests may land on different
replicas). `cut()` resets every connection of that client and refuses new ones until `restore()`.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

CONNECT_TIMEOUT_S = 2.0
# an idle hub link still carries the hub's ping every 3 s: 60 s of silence means a dead peer
IDLE_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 10.0
CHUNK = 64 * 1024


class LinkProxy:
    def __init__(self, name: str, targets: Callable[[], list[int]], rng: random.Random) -> None:
        self.name = name
        self._targets = targets  # ports of the replicas that are up now
        self._rng = rng
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.up = True
        self.port = 0
        self.connections = 0
        self.cuts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        self._reset_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        """Reset every live connection (both ends see the link die) and refuse new ones."""
        self.up = False
        self.cuts += 1
        self._reset_all()

    def restore(self) -> None:
        self.up = True

    def reset_connections(self) -> None:
        """Drop the live connections only (what a replica's death looks like to its clients)."""
        self._reset_all()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            if transport is not None and not transport.is_closing():
                transport.abort()  # RST, not a polite close: a cut link says goodbye to nobody
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(client_reader, client_writer)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self.up:
            client_writer.transport.abort()
            return
        targets = self._targets()
        self._rng.shuffle(targets)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for port in targets:  # a replica that died a moment ago refuses: try the next one
            try:
                upstream = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT_S)
                break
            except (OSError, asyncio.TimeoutError):
                continue
        if upstream is None or not self.up:
            if upstream is not None:
                upstream[1].transport.abort()
            client_writer.transport.abort()
            return
        hub_reader, hub_writer = upstream
        self.connections += 1
        self._writers.update((client_writer, hub_writer))
        pipes = [asyncio.ensure_future(self._pipe(client_reader, hub_writer)),
                 asyncio.ensure_future(self._pipe(hub_reader, client_writer))]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for writer in (client_writer, hub_writer):
                self._writers.discard(writer)
                if not writer.transport.is_closing():
                    writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.TimeoutError, ConnectionError):
            while True:
                data = await asyncio.wait_for(reader.read(CHUNK), IDLE_TIMEOUT_S)
                if not data:
                    return
                writer.write(data)
                await asyncio.wait_for(writer.drain(), DRAIN_TIMEOUT_S)
