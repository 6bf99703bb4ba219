"""A real OctoBot 2.1.1 with its web interface, as a user starts it, for browser journeys.

The bot runs from its own folder in its own Python 3.12 venv (support.octobot_venv), its web UI on a free
127.0.0.1 port; every start appends its output to one log file so a test can read what the bot said.
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from . import support

START_TIMEOUT_S = 180  # a cold start with the default tentacles is ~10 s here; CI machines are slower
STOP_TIMEOUT_S = 30
REPO = support.REPO
DEFAULT_TENTACLES_ZIP = REPO.parent / "shared" / "octobot-2.1.1" / "octobot-default-tentacles-2.1.1.zip"


@dataclass
class WebBot:
    venv: Path
    path: Path
    port: int
    log_file: Path
    starts: int = 0
    env: dict[str, str] = field(default_factory=dict)  # added to the bot's environment (e.g. COMMUNITY_FEED_URL)
    _process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Starts OctoBot and returns once its web interface answers (raises with the log tail otherwise)."""
        env = support.clean_env(WEB_ADDRESS="127.0.0.1", WEB_PORT=str(self.port), AUTO_OPEN_IN_WEB_BROWSER="false",
                                **self.env)
        self.starts += 1
        with self.log_file.open("a", encoding="utf-8") as log:
            log.write(f"\n===== start {self.starts} =====\n")
        log_handle = self.log_file.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(support.octobot_of(self.venv)), cwd=self.path, env=env,
                stdout=log_handle, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        finally:
            log_handle.close()  # the child keeps its own descriptor
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline:
                if self._process.returncode is not None:
                    raise AssertionError(f"OctoBot exited ({self._process.returncode}) while starting:\n"
                                         f"{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with session.get(f"{self.base_url}/terms", allow_redirects=False) as response:
                        if response.status < 500:
                            return
                await asyncio.sleep(0.5)
        raise AssertionError(f"OctoBot's web interface did not answer on {self.base_url} within "
                             f"{START_TIMEOUT_S} s:\n{self.log_tail()}")

    async def stop(self) -> None:
        """What Ctrl-C does; killed if it does not exit in time."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def log_text(self) -> str:
        """Everything the bot printed, plus its own log files."""
        parts = [self.log_file.read_text(encoding="utf-8", errors="replace")]
        for path in sorted((self.path / "logs").glob("*.log*")):
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(parts)

    def log_of_start(self, number: int) -> str:
        text = self.log_file.read_text(encoding="utf-8", errors="replace")
        marker = f"===== start {number} ====="
        return text.split(marker, 1)[1].split("===== start ", 1)[0] if marker in text else ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")[-chars:]
