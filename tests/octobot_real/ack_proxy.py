"""A TCP proxy between a publishing bot and the hub that can keep the hub's acks from reaching the bot.

The bot's hub address is the proxy's; every byte from the bot reaches the hub. The proxy reads the bot's
WebSocket frames (a client's frames are masked; aiohttp's ws_connect does not compress them by default) and
records each signal publish command it forwards: (connection number, `u`, held). After `hold()`, a
connection on which the bot sends a signal publish gets nothing more from the hub: the frame still reaches
the hub, which journals the bundle and acks it, and the ack (with every later frame of that connection) is
dropped. The bot is left between its order and its ack. `release()` lets new connections through again.
HTTP requests (the stream-id lookup, the hub check) and the performance snapshots' link (topic "p") are
never held.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from octobot_signals.core import protocol

CONNECT_TIMEOUT_S = 5.0
CHUNK = 64 * 1024
TEXT_OPCODE = 0x1


@dataclass
class _Link:
    number: int
    upgraded: bool = False  # the hub answered 101: from now on the bot sends WebSocket frames
    held: bool = False  # the hub's bytes are dropped from now on
    pending: bytearray = field(default_factory=bytearray)  # the bot's bytes not yet parsed into frames


@dataclass(frozen=True)
class Publish:
    link: int
    u: str
    held: bool  # its answer was dropped


def client_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Complete (opcode, unmasked payload) frames at the start of `buffer`, removed from it."""
    frames = []
    while len(buffer) >= 2:
        opcode, masked, length, position = buffer[0] & 0x0F, buffer[1] & 0x80, buffer[1] & 0x7F, 2
        if length in (126, 127):
            size = 2 if length == 126 else 8
            if len(buffer) < position + size:
                break
            length = int.from_bytes(buffer[position:position + size], "big")
            position += size
        mask = b""
        if masked:
            mask = bytes(buffer[position:position + 4])
            position += 4
        if len(buffer) < position + length:
            break
        payload = bytes(buffer[position:position + length])
        del buffer[:position + length]
        if mask:
            payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        frames.append((opcode, payload))
    return frames


def signal_publish_u(payload: bytes) -> str | None:
    """The `u` of a signal publish command (the publisher's frame), None for anything else."""
    try:
        command = json.loads(payload)
        data = json.loads(command["data"]) if command.get("command") == "message" else {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if isinstance(data, dict) and data.get("topic") == protocol.CHANNEL_TYPE_SIGNALS and isinstance(data.get("u"), str):
        return data["u"]
    return None


class AckHoldProxy:
    def __init__(self, hub_port: int) -> None:
        self.hub_port = hub_port
        self.port = 0
        self.holding = False
        self.publishes: list[Publish] = []
        self.dropped = 0  # bytes of the hub's answers dropped on held connections
        self._numbers = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self) -> None:
        """From now on a connection that publishes a signal gets no answer from the hub."""
        self.holding = True

    def release(self) -> None:
        """New connections go through whole again (a held one stays held until it closes)."""
        self.holding = False

    async def __aenter__(self) -> AckHoldProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *_: Any) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _accept(self, bot_reader: asyncio.StreamReader, bot_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        link = _Link(next(self._numbers))
        try:
            try:
                hub_reader, hub_writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.hub_port), CONNECT_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError):
                bot_writer.transport.abort()
                return
            self._writers.update((bot_writer, hub_writer))
            pipes = [asyncio.ensure_future(self._bot_to_hub(link, bot_reader, hub_writer)),
                     asyncio.ensure_future(self._hub_to_bot(link, hub_reader, bot_writer))]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
                for writer in (bot_writer, hub_writer):
                    self._writers.discard(writer)
                    writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _bot_to_hub(self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(CHUNK):
                if link.upgraded:
                    link.pending.extend(data)
                    for opcode, payload in client_frames(link.pending):
                        u = signal_publish_u(payload) if opcode == TEXT_OPCODE else None
                        if u is not None:
                            # decided before the frame reaches the hub: its ack cannot slip through
                            link.held = link.held or self.holding
                            self.publishes.append(Publish(link.number, u, link.held))
                writer.write(data)
                await writer.drain()

    async def _hub_to_bot(self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(CHUNK):
                if not link.upgraded and data.startswith(b"HTTP/1.1 101 "):
                    link.upgraded = True
                if link.held:
                    self.dropped += len(data)
                    continue
                writer.write(data)
                await writer.drain()
