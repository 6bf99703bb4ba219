"""Reusable helpers to run a real hub in tests (in-process or as a subprocess) and talk to it.

    from hub_helpers import running_hub, HubProcess, admin_create_strategy, admin_create_follower

    async with running_hub(tmp_path) as hub:            # HubHandle: .base_url .ws_url .admin_token .stop()
        strat = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")   # dict incl. publish_secret, feed_id
        token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]

    with HubProcess(data_dir) as proc:                  # `python -m octobot_signals.hub`, .base_url, .kill(), .restart()
        ...
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from octobot_signals.core import protocol
from octobot_signals.hub.server import ADMIN_TOKEN_ENV, HubHandle, start_hub

PYTHON = sys.executable
DEFAULT_ADMIN_TOKEN = "adm_test_" + "x" * 40
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@contextlib.asynccontextmanager
async def running_hub(
    data_dir: Path,
    admin_token: str = DEFAULT_ADMIN_TOKEN,
    port: int = 0,
    public_url: str | None = None,
    queue_size: int = 1000,
) -> AsyncIterator[HubHandle]:
    """An in-process hub on 127.0.0.1 (ephemeral port unless given); always stopped on exit."""
    handle = await start_hub(
        "127.0.0.1", port, data_dir, admin_token=admin_token, public_url=public_url, queue_size=queue_size
    )
    try:
        yield handle
    finally:
        await handle.stop()


def strategy_body(strategy_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": strategy_id,
        "name": f"Strategy {strategy_id}",
        "visibility": "public",
        "pairs": ["BTC/USDT"],
        "exchange_type": "spot",
        "exchange": "binance",
    }
    body.update(overrides)
    return body


async def admin_create_strategy(base_url: str, admin_token: str, strategy_id: str, **overrides: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.post(
            f"{base_url}/api/strategies", json=strategy_body(strategy_id, **overrides), headers=auth(admin_token)
        ) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return body


async def admin_create_follower(base_url: str, admin_token: str, strategy_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.post(f"{base_url}/api/strategies/{strategy_id}/followers", headers=auth(admin_token)) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return body


def make_bundle(strategy_id: str, n_signals: int = 1, tag: str = "x") -> dict[str, Any]:
    signal_ = {
        "topic": "orders",
        "content": {"action": "create", "symbol": "BTC/USDT", "order_id": f"{tag}-{uuid.uuid4().hex[:8]}"},
        "dependencies": None,
    }
    return {"identifier": strategy_id, "version": "1.0.0", "signals": [dict(signal_) for _ in range(n_signals)]}


def publish_command(
    strategy: dict[str, Any],
    bundle: dict[str, Any] | None = None,
    u: str | None = None,
    private_key: str | None = None,
    d: float | None = None,
) -> tuple[str, str]:
    """(frame text, u) of a publish command for a strategy dict as returned by admin_create_strategy."""
    bundle = bundle if bundle is not None else make_bundle(strategy["id"])
    u = u or uuid.uuid4().hex
    d = d if d is not None else round(time.time(), 3)
    g = protocol.sign_message(private_key, d, strategy["id"], bundle, u) if private_key else None
    return protocol.build_publish_command(strategy["feed_id"], bundle, u, d, g), u


async def ws_connect(session: aiohttp.ClientSession, base_url: str, token: str | None) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(
        base_url.replace("http://", "ws://", 1) + protocol.WS_PATH, headers=auth(token), timeout=aiohttp.ClientWSTimeout(ws_close=5)
    )
    frame = await recv_json(ws)
    assert frame == {"type": "welcome"}, frame
    return ws


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0, skip_pings: bool = True) -> dict[str, Any]:
    """Next JSON frame (pings skipped); raises AssertionError on close/timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        msg = await asyncio.wait_for(ws.receive(), max(remaining, 0.01))
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        frame = json.loads(msg.data)
        if skip_pings and frame.get("type") == "ping":
            continue
        return frame


async def subscribe(
    ws: aiohttp.ClientWebSocketResponse, strategies: list[str] | None = None, resume: dict[str, int] | None = None
) -> None:
    await ws.send_str(protocol.build_subscribe_command(strategies, resume))
    frame = await recv_json(ws)
    assert frame.get("type") == "confirm_subscription", frame


async def publish(ws: aiohttp.ClientWebSocketResponse, strategy: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Publish one bundle and return the ack/nack frame."""
    text, _ = publish_command(strategy, **kwargs)
    await ws.send_str(text)
    return await recv_json(ws)


class HubEnv:
    """One running hub and a client session: create strategies and followers as the admin, connect to /cable."""

    def __init__(self, hub: HubHandle, session: aiohttp.ClientSession) -> None:
        self.hub = hub
        self.session = session
        self.url = hub.base_url
        self.admin_token = hub.admin_token or DEFAULT_ADMIN_TOKEN

    async def strategy(self, strategy_id: str, **overrides: Any) -> dict[str, Any]:
        return await admin_create_strategy(self.url, self.admin_token, strategy_id, **overrides)

    async def follower(self, strategy_id: str) -> dict[str, Any]:
        return await admin_create_follower(self.url, self.admin_token, strategy_id)

    async def follower_token(self, strategy_id: str) -> str:
        return (await self.follower(strategy_id))["token"]

    async def connect(self, token: str | None) -> aiohttp.ClientWebSocketResponse:
        return await ws_connect(self.session, self.url, token)


HUB_MODULE = [PYTHON, "-m", "octobot_signals.hub"]
HUB_CLI = [PYTHON, "-m", "octobot_signals.cli.main", "hub"]  # what a user types: `octobot-signals hub`


class HubProcess:
    """A hub as a child process on a fixed port (so restarts keep the URL); its output in DATA/LOG_NAME.

    command: `python -m octobot_signals.hub` (default) or the `octobot-signals hub` CLI;
    extra_args: e.g. `--store postgresql://...`, `--mqtt-egress ...`.
    """

    def __init__(self, data_dir: Path, port: int | None = None, admin_token: str = DEFAULT_ADMIN_TOKEN, *,
                 command: list[str] | None = None, extra_args: list[str] | None = None,
                 log_name: str = "hub-process.log") -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.admin_token = admin_token
        self.command = command or HUB_MODULE
        self.extra_args = extra_args or []
        self.log_path = data_dir / log_name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, ADMIN_TOKEN_ENV: self.admin_token, "PYTHONUNBUFFERED": "1"}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a")  # closed right after spawn (the child keeps its copy)
        try:
            self.proc = subprocess.Popen(
                [*self.command, "--host", "127.0.0.1", "--port", str(self.port), "--data", str(self.data_dir),
                 *self.extra_args],
                stdout=log,
                stderr=log,
                env=env,
            )
        finally:
            log.close()
        # Poll /api/health (bounded) rather than reading the child's pipe, which could block.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited early with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/api/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"hub did not start in time: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.is_file() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def __enter__(self) -> HubProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()


class RawWebSocket:
    """A hand-rolled WebSocket client on a raw socket with a tiny receive buffer.

    aiohttp's client keeps reading into memory; this one lets a test stop reading entirely,
    which is what a stuck follower looks like to the hub.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, base_url: str, token: str, rcvbuf: int = 4096, timeout: float = 5.0) -> RawWebSocket:
        host_port = base_url.split("://", 1)[1]
        host, _, port = host_port.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: caps the TCP window
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (host, int(port))), timeout)
        reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {protocol.WS_PATH} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send_text(self, text: str) -> None:
        payload = text.encode()
        length = len(payload)
        if length < 126:
            header = bytes([0x81, 0x80 | length])
        elif length < 65536:
            header = bytes([0x81, 0x80 | 126]) + length.to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + length.to_bytes(8, "big")
        # An all-zero mask key keeps the payload as is (clients must mask; the key's value is free).
        self.writer.write(header + b"\0\0\0\0" + payload)
        await asyncio.wait_for(self.writer.drain(), 5)

    async def read_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame."""
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await asyncio.wait_for(self.reader.readexactly(2), timeout), "big")
        elif length == 127:
            length = int.from_bytes(await asyncio.wait_for(self.reader.readexactly(8), timeout), "big")
        payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return head[0] & 0x0F, payload

    async def drain_until_closed(self, timeout: float = 10.0) -> int | None:
        """Read everything until the hub closes; the close code if a close frame came, else None (dropped)."""
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise AssertionError("hub did not close the connection in time")
                opcode, payload = await self.read_frame(remaining)
                if opcode == 0x8:
                    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    def close(self) -> None:
        self.writer.transport.abort()
