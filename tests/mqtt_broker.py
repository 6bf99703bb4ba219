"""Debian's `mosquitto`, run by the MQTT tests on free 127.0.0.1 ports, from the files that
`octobot-signals mosquitto-config` writes (the command under test), plus helpers to talk to a hub over HTTP.

    layout = write_mosquitto_config(data_dir, out_dir, followers_port, hub_port)
    with MosquittoProcess(out_dir / "mosquitto.conf", [followers_port, hub_port]) as broker:
        broker.restart()
    sub = Subscriber(followers_port, username, ["t/s1"]); sub.start(); await sub.wait_for(3)
"""
from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from hub_helpers import HTTP_TIMEOUT, auth

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def require_mosquitto() -> str:
    if not Path(MOSQUITTO).is_file():
        # CI installs it (.ci/mosquitto.sh); a developer machine without it skips with the fix named
        pytest.skip("Debian's mosquitto is not installed: bash .ci/mosquitto.sh (apt-get install -y mosquitto)")
    return MOSQUITTO


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def write_mosquitto_config(data_dir: Path, out_dir: Path, followers_port: int, hub_port: int) -> str:
    """`octobot-signals mosquitto-config` as a user runs it; returns its stdout.

    --user: Mosquitto started as root switches to this user; the test's files live in a private tmp
    folder only the current user can read, so it runs as the current user.
    """
    result = subprocess.run(
        [sys.executable, "-m", "octobot_signals.cli.main", "mosquitto-config", "--data", str(data_dir),
         "--out", str(out_dir), "--listen", f"127.0.0.1:{followers_port}", "--hub-listen",
         f"127.0.0.1:{hub_port}", "--user", getpass.getuser()],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def with_test_persistence(conf: Path, state_dir: Path) -> Path:
    """A copy of the generated config with broker persistence on, for tests whose *checking* subscriber
    must not miss messages while it reconnects after a broker restart (a persistent session queues them).
    Stock followers use clean sessions, so the generated config keeps persistence off."""
    text = conf.read_text(encoding="utf-8")
    assert "persistence false\n" in text
    text = text.replace("persistence false\n",
                        f"persistence true\npersistence_location {state_dir}/\nautosave_interval 1\n", 1)
    copy = conf.with_name("mosquitto-test-persistent.conf")
    copy.write_text(text, encoding="utf-8")
    return copy


class MosquittoProcess:
    def __init__(self, conf: Path, ports: list[int], log: Path | None = None) -> None:
        self.conf = conf
        self.ports = ports
        self.log = log or conf.with_name("mosquitto.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        require_mosquitto()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if all(self._accepts(port) for port in self.ports):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen in time: {self.log.read_text()[-2000:]}")

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    def reloads(self) -> int:
        """How many times this broker reread its files (SIGHUP): its own log line, at level information."""
        return self.log.read_text(errors="replace").count("Reloading config")

    async def wait_reloaded(self, before: int, timeout: float = 10.0) -> None:
        """SIGHUP is asynchronous: the hub has signalled, this waits until Mosquitto has actually reloaded."""
        deadline = time.monotonic() + timeout
        while self.reloads() <= before:
            assert time.monotonic() < deadline, "mosquitto did not reload"
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> MosquittoProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def mqtt_identity(base_url: str, follower_token: str) -> dict[str, Any]:
    """GET /api/mqtt: the MQTT username the hub issued for this follower token, and its topics."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.get(f"{base_url}/api/mqtt", headers=auth(follower_token)) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return body


async def revoke(base_url: str, admin_token: str, token_id: str) -> None:
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.delete(f"{base_url}/api/followers/{token_id}", headers=auth(admin_token)) as resp:
            assert resp.status == 200, await resp.text()


class Subscriber:
    """A follower-side MQTT client on the followers' listener; reconnects by itself (like the stock feed)."""

    def __init__(self, port: int, username: str | None, topics: list[str], *, persistent: bool = False) -> None:
        self.port = port
        self.username = username
        self.topics = topics
        self.persistent = persistent  # a broker-side session that queues messages while reconnecting
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.subscribed = asyncio.Event()
        self.refused: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, username=self.username,
                                          identifier="CommunityMQTTFeed",  # the stock feed's fixed id
                                          clean_session=not self.persistent, timeout=2) as client:
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        self.messages.append((time.time(), json.loads(message.payload)))
            except aiomqtt.MqttError as err:
                self.subscribed.clear()
                self.refused = str(err)
                await asyncio.sleep(0.02)

    def qs(self) -> list[int]:
        return [m["q"] for _, m in self.messages]

    async def wait_for(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len({m["u"] for _, m in self.messages}) < count:
            assert time.monotonic() < deadline, f"{self.username}: {len(self.messages)}/{count} received"
            await asyncio.sleep(0.01)


def assert_in_order(qs: list[int], first: int, last: int) -> int:
    """Every q from first to last, none out of order; a repeat may only follow itself. Returns repeats."""
    assert all(b >= a for a, b in zip(qs, qs[1:], strict=False)), f"out of order: {qs}"
    assert sorted(set(qs)) == list(range(first, last + 1)), f"lost: {sorted(set(range(first, last + 1)) - set(qs))}"
    return len(qs) - len(set(qs))
