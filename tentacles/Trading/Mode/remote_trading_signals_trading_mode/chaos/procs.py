"""The chaos run's child processes: hub replicas (`python -m octobot_signals.hub`) and followers
(`octobot-signals follow --json`), started, SIGKILLed and started again with the same data.

Secrets go to the children through their environment only (the admin token, the follower token), never
on a command line, which `ps` shows to every user of the machine.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from ..demo.octobot_bots import free_port
from ..hub.server import ADMIN_TOKEN_ENV
from .check import FollowerHistory, FollowerRun

HUB_START_TIMEOUT_S = 30.0
FOLLOWER_START_TIMEOUT_S = 90.0  # a follower imports the whole OctoBot stack: seconds on a busy machine
STOP_TIMEOUT_S = 20.0
FOLLOWER_TOKEN_ENV = "OCTOBOT_SIGNALS_FOLLOWER_TOKEN"
# the hub's own limits must not be what the run measures: every follower shares one proxy address
UNLIMITED = ["--max-connections-per-token", "100000", "--max-publishes-per-minute", "1000000",
             "--max-failed-auths", "100000"]


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)


class HubProcess:
    """One hub replica. A restart takes a new free port (the proxies follow it): no wait on a port the
    killed process may still hold in the kernel."""

    def __init__(self, name: str, data_dir: Path, admin_token: str, store_url: str | None) -> None:
        self.name = name
        self.data_dir = data_dir
        self._admin_token = admin_token
        self.store_url = store_url
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and self.port != 0

    @property
    def exited_by_itself(self) -> bool:
        """It answered its health check, nobody stopped it, and it is gone."""
        return self.proc is not None and self.proc.returncode is not None and self.port != 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        args = [sys.executable, "-m", "octobot_signals.hub", "--host", "127.0.0.1", "--port", str(port),
                "--data", str(self.data_dir), *UNLIMITED]
        if self.store_url is not None:
            args += ["--store", self.store_url]  # a Unix-socket URL without a password (trust auth)
        env = {**os.environ, ADMIN_TOKEN_ENV: self._admin_token, "PYTHONUNBUFFERED": "1"}
        with open(self.data_dir / "hub.log", "ab") as log:  # the child keeps its own copy of the fd
            self.proc = await asyncio.create_subprocess_exec(*args, stdout=log, stderr=log, env=env,
                                                             stdin=asyncio.subprocess.DEVNULL)
        deadline = time.monotonic() + HUB_START_TIMEOUT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"{self.name} exited with code {self.proc.returncode} "
                                       f"(see {self.data_dir / 'hub.log'})")
                try:
                    async with session.get(f"http://127.0.0.1:{port}/api/health") as resp:
                        if resp.status == 200:
                            self.port = port
                            self.starts += 1
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    pass
                await asyncio.sleep(0.05)
        await _kill(self.proc)
        raise RuntimeError(f"{self.name} did not answer /api/health within {HUB_START_TIMEOUT_S:.0f} s")

    async def kill(self) -> None:
        self.port = 0  # the proxies stop choosing it at once
        if self.proc is not None:
            await _kill(self.proc)
            self.kills += 1

    async def stop(self) -> None:
        self.port = 0
        if self.proc is not None:
            await _terminate(self.proc)

    def rss_kb(self) -> int | None:
        if not self.up or self.proc is None:
            return None
        with contextlib.suppress(OSError), open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None


class FollowerProcess:
    """`octobot-signals follow --json` with its state in `data_dir`; every run's lines are kept."""

    def __init__(self, name: str, hub_url: str, strategy_id: str, token: str, data_dir: Path) -> None:
        self.name = name
        self.data_dir = data_dir
        self.strategy_id = strategy_id
        self._args = [sys.executable, "-m", "octobot_signals.cli.main", "follow", "--hub", hub_url,
                      "--strategy", strategy_id, "--data", str(data_dir), "--portfolio", "USDT=100000",
                      "--price", "BTC/USDT=20000", "--json"]
        self._env = {**os.environ, FOLLOWER_TOKEN_ENV: token, "PYTHONUNBUFFERED": "1"}
        self.history = FollowerHistory(name)
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._following = asyncio.Event()
        self._line = asyncio.Event()  # set at every outcome line
        self.last_q = 0  # highest q of any line printed, all runs
        self.last_q_at = 0.0  # monotonic time that line was read
        self.unreadable = 0
        self.kills = 0
        self.crashes = 0  # runs that ended without our kill or stop
        self._exit_expected = False

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run = FollowerRun()
        self.history.runs.append(run)
        self._following.clear()
        self._exit_expected = False
        with open(self.data_dir / "follow.log", "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(*self._args, env=self._env, stdout=asyncio.subprocess.PIPE,
                                                             stderr=log, stdin=asyncio.subprocess.DEVNULL)
        self._reader = asyncio.ensure_future(self._read(self.proc, run))
        waiter = asyncio.ensure_future(self._following.wait())
        try:
            await asyncio.wait({waiter, self._reader}, timeout=FOLLOWER_START_TIMEOUT_S,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self._following.is_set():
            await _kill(self.proc)
            raise RuntimeError(f"{self.name} did not start (see {self.data_dir / 'follow.log'})")

    async def _read(self, proc: asyncio.subprocess.Process, run: FollowerRun) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                self.unreadable += 1  # never seen: the child writes whole lines, far below a pipe's atomic size
                continue
            if not isinstance(line, dict):
                continue
            if "following" in line:
                self._following.set()
            elif "stopped" in line:
                run.stopped = line["stopped"]
            else:
                run.lines.append(line)
                self._line.set()
                q = line.get("q")
                if isinstance(q, int) and q > self.last_q:
                    self.last_q = q
                    self.last_q_at = time.monotonic()
        await proc.wait()
        if not self._exit_expected:
            self.crashes += 1

    async def next_line(self, timeout: float) -> bool:
        """Wait for the follower's next outcome line (False after `timeout`)."""
        self._line.clear()
        try:
            await asyncio.wait_for(self._line.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def wait_position_recorded(self, timeout: float) -> None:
        """Until the follower saved its starting position for the strategy (its first connection to the hub):
        from then on a restart resumes there, so nothing published later can be skipped as "history"."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self._position_recorded):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not reach the hub within {timeout:.0f} s")
            if not self.up:
                raise RuntimeError(f"{self.name} exited (see {self.data_dir / 'follow.log'})")
            await asyncio.sleep(0.1)

    def _position_recorded(self) -> bool:
        for path in self.data_dir.rglob("follower_state.sqlite"):
            try:
                with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as conn:
                    row = conn.execute("SELECT 1 FROM follower_progress WHERE strategy_id = ?",
                                       (self.strategy_id,)).fetchone()
            except sqlite3.Error:
                continue  # not created yet
            if row is not None:
                return True
        return False

    async def kill(self) -> None:
        self._exit_expected = True
        if self.proc is not None:
            await _kill(self.proc)
            self.kills += 1
        await self._drain()

    async def stop(self) -> None:
        """SIGTERM: the follower finishes its message and prints its `stopped` summary (open orders)."""
        self._exit_expected = True
        if self.proc is not None:
            await _terminate(self.proc)
        await self._drain()

    async def _drain(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._reader, STOP_TIMEOUT_S)
            self._reader = None


def summary_of(follower: FollowerProcess) -> dict[str, Any]:
    return {"name": follower.name, "runs": len(follower.history.runs), "kills": follower.kills,
            "crashes": follower.crashes,
            "last_q": follower.last_q, "lines": sum(len(run.lines) for run in follower.history.runs)}
