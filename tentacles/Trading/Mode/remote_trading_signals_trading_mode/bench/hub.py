"""The benchmark's hub: `python -m octobot_signals.hub` as a child process.

A separate process gives the hub its own core (the followers' sockets are served by the bench
process) and lets the bench read the hub's own memory from /proc/<pid>/status.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from ..demo.octobot_bots import free_port
from ..hub.server import ADMIN_TOKEN_ENV

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class HubSubprocess:
    def __init__(self, data_dir: Path, store_url: str | None = None, admin_token: str | None = None) -> None:
        self.data_dir = data_dir
        self.store_url = store_url  # postgresql://...: a replica on a shared database (None: SQLite in data_dir)
        self.port = free_port()
        # replicas of one database must share it: each stores the hash of the token it was started with
        self.admin_token = admin_token or secrets.token_urlsafe(32)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, ADMIN_TOKEN_ENV: self.admin_token, "PYTHONUNBUFFERED": "1"}
        with open(self.data_dir / "hub.log", "ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "octobot_signals.hub", "--host", "127.0.0.1", "--port", str(self.port),
                 "--data", str(self.data_dir),
                 # the fan-out bench connects its 1,000 followers with one token, far over the default limit
                 "--max-connections-per-token", "100000", "--max-publishes-per-minute", "1000000",
                 *(["--store", self.store_url] if self.store_url else [])],
                stdout=log, stderr=log, env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"hub exited early with code {self.proc.returncode} (see {self.data_dir}/hub.log)")
                try:
                    async with session.get(self.base_url + "/api/health") as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    pass
                await asyncio.sleep(0.05)
        self.stop()
        raise RuntimeError("hub did not start in time")

    def rss_kb(self) -> int:
        """The hub process's resident memory (VmRSS), in kB."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("VmRSS not found")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
