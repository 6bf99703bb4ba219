"""Real OctoBot 2.1.1 bots run as a user runs them, for the live demo and the live tests (pip-side only).

Each bot is its own folder (OctoBot's default tentacles, then our package, installed by OctoBot's own
tentacles manager), its own process in OctoBot's venv (Python 3.12, never this one), its web UI on a
127.0.0.1 port. A follower's profile comes from the hub's personal link through OctoBot's own importer; what
a user then does by hand is done in files: the profile's exchange pointed at a local HollaEx-compatible
exchange (`specific_config/hollaex.json`, read by OctoBot's stock `hollaex` tentacle) and, for real trading,
the API keys in `user/config.json`, encrypted the way OctoBot stores them. OctoBot rewrites
`user/config.json` at start, so it is written before each start.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")
EXCHANGE = "hollaex"
OCTOBOT_VERSION = "2.1.1"
START_TIMEOUT_S = 180  # a cold start with the default tentacles is ~10 s here; CI machines are slower
STOP_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 240


@dataclass(frozen=True)
class OctoBotInstall:
    """Where OctoBot 2.1.1 is: its `OctoBot` entry and the Python of its venv."""

    entry: Path
    python: Path

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> OctoBotInstall:
        """An OctoBot venv folder, or its `bin/OctoBot` entry; refuses anything else with the reason."""
        given = Path(path).expanduser()
        entry = given if given.is_file() else given / "bin" / "OctoBot"
        python = entry.parent / "python"
        if not entry.is_file() or not python.exists():
            raise ValueError(f"--octobot {path}: no OctoBot entry there (expected a venv with bin/OctoBot and "
                             f"bin/python, or that bin/OctoBot itself)")
        return cls(entry, python)

    def version(self) -> str:
        code = "import importlib.metadata as m; print(m.version('octobot'))"
        result = subprocess.run([str(self.python), "-c", code], capture_output=True, text=True, timeout=60,
                                env=clean_env(), check=False)
        return result.stdout.strip() if result.returncode == 0 else ""


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (systemd, `timeout`, `kill`) cancels the running task like Ctrl-C: every bot it started is
    stopped on the way out instead of outliving it."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@contextlib.asynccontextmanager
async def workspace(prefix: str) -> AsyncIterator[tuple[Path, contextlib.AsyncExitStack]]:
    """A temporary folder for bots and their logs, and an exit stack for what is started in it: on the way out
    (normal end, Ctrl-C, SIGTERM) everything on the stack is stopped, then the folder removed."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(stop_on_sigterm())
            yield tmp, stack
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for OctoBot: nothing of this project's venv or settings leaks in."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
           and not key.startswith("OCTOBOT_SIGNALS_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


async def run_async(command: list[str | Path], cwd: Path, *, timeout: float = COMMAND_TIMEOUT_S,
                    env: dict[str, str] | None = None) -> str:
    """Runs a command to completion without blocking the event loop; raises with the output tail on failure."""
    process = await asyncio.create_subprocess_exec(
        *[str(part) for part in command], cwd=cwd, env=env or clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode("utf-8", errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{Path(str(command[0])).name} exited {process.returncode}:\n{text[-4000:]}")
    return text


async def install_tentacles(install: OctoBotInstall, bot_dir: Path, package_zip: Path) -> str:
    """`OctoBot tentacles --install --all --location ZIP` in the bot folder: what a user runs."""
    bot_dir.mkdir(parents=True, exist_ok=True)
    output = await run_async([install.entry, "tentacles", "--install", "--all", "--location", package_zip], bot_dir)
    if "successfully processed" not in output:
        raise RuntimeError(f"OctoBot could not install {package_zip.name}:\n{output[-3000:]}")
    return output


_IMPORT_PROFILE = """
import json, os, sys
import octobot.constants as constants
import octobot_commons.profiles as profiles
profile = profiles.download_and_install_profile(sys.argv[1], constants.PROFILE_FILE_SCHEMA)
if profile is None:
    raise SystemExit("OctoBot's importer refused the profile (see above)")
print(json.dumps({"id": profile.profile_id, "name": profile.name, "path": os.path.relpath(profile.path)}))
"""


async def import_profile(install: OctoBotInstall, bot_dir: Path, url: str) -> dict[str, Any]:
    """OctoBot's own importer on the hub's personal link (the user's "import a profile"): {id, name, path}."""
    output = await run_async([install.python, "-c", _IMPORT_PROFILE, url], bot_dir)
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no profile imported:\n{output[-3000:]}")


def point_at_exchange(profile_dir: Path, exchange_url: str, *, real_trading: bool,
                      portfolio: dict[str, float] | None = None, mode_settings: dict[str, Any] | None = None) -> None:
    """The profile trades on the local exchange: simulated on its live prices, or for real with the keys."""
    (profile_dir / "specific_config").mkdir(exist_ok=True)
    (profile_dir / "specific_config" / "hollaex.json").write_text(json.dumps(
        {"rest": exchange_url, "has_websockets": False, "fee_tiers": "1"}), encoding="utf-8")
    path = profile_dir / "profile.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    config = document["config"]
    config["exchanges"] = {EXCHANGE: {"enabled": True, "exchange-type": "spot"}}
    config["trader"]["enabled"] = real_trading
    config["trader-simulator"]["enabled"] = not real_trading
    if portfolio is not None:
        config["trader-simulator"]["starting-portfolio"] = portfolio
    path.write_text(json.dumps(document, indent=4), encoding="utf-8")
    if mode_settings:
        mode_path = profile_dir / "specific_config" / "RemoteTradingSignalsTradingMode.json"
        mode = json.loads(mode_path.read_text(encoding="utf-8"))
        mode.update(mode_settings)
        mode_path.write_text(json.dumps(mode, indent=4), encoding="utf-8")


def encrypt(install: OctoBotInstall, value: str) -> str:
    """OctoBot's own encryption of exchange credentials (octobot_commons fields_utils), run in its venv."""
    code = ("import sys; from octobot_commons.configuration import fields_utils; "
            "print(fields_utils.encrypt(sys.argv[1]).decode())")
    result = subprocess.run([str(install.python), "-c", code, value], capture_output=True, text=True,
                            timeout=60, check=True, env=clean_env())
    return result.stdout.strip()


def _default_config(install: OctoBotInstall) -> dict[str, Any]:
    code = ("import json, os, octobot; print(open(os.path.join(os.path.dirname(octobot.__file__), 'config', "
            "'default_config.json')).read())")
    result = subprocess.run([str(install.python), "-c", code], capture_output=True, text=True, timeout=60,
                            check=True, env=clean_env())
    return json.loads(result.stdout)


def write_user_config(install: OctoBotInstall, bot_dir: Path, profile_id: str, keys: tuple[str, str] | None = None,
                      *, mqtt_username: str | None = None) -> None:
    """user/config.json as a user leaves it: the profile selected, terms accepted, the exchange keys if any; for a
    stock follower over MQTT, the username our hub issued (`community.mqtt_uuid`, read by OctoBot's own feed)."""
    path = bot_dir / "user" / "config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else _default_config(install)
    config["profile"] = profile_id
    config["accepted_terms"] = True
    config.setdefault("services", {}).setdefault("web", {})["auto-open-in-web-browser"] = False
    if keys is not None:
        key, secret = keys
        config["exchanges"] = {EXCHANGE: {"api-key": encrypt(install, key), "api-secret": encrypt(install, secret),
                                          "api-password": encrypt(install, ""), "exchange-type": "spot"}}
    if mqtt_username is not None:
        config.setdefault("community", {})["mqtt_uuid"] = mqtt_username
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=4), encoding="utf-8")


class BotProcess:
    """One OctoBot, started as a user starts it; every start appends its output to one log file."""

    def __init__(self, install: OctoBotInstall, path: Path, port: int, log_file: Path,
                 env: dict[str, str] | None = None) -> None:
        self.install = install
        self.path = path
        self.port = port
        self.log_file = log_file
        self.env = dict(env or {})  # added to the bot's environment (e.g. COMMUNITY_FEED_URL)
        self.starts = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Starts OctoBot and returns once its web interface answers (raises with the log tail otherwise)."""
        env = clean_env(WEB_ADDRESS="127.0.0.1", WEB_PORT=str(self.port), AUTO_OPEN_IN_WEB_BROWSER="false", **self.env)
        self.starts += 1
        with self.log_file.open("a", encoding="utf-8") as log:
            log.write(f"\n===== start {self.starts} =====\n")
        log_handle = self.log_file.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self.install.entry), cwd=self.path, env=env,
                stdout=log_handle, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        finally:
            log_handle.close()  # the child keeps its own descriptor
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline:
                if self._process.returncode is not None:
                    raise RuntimeError(f"OctoBot exited ({self._process.returncode}) while starting:\n"
                                       f"{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with session.get(f"{self.base_url}/terms", allow_redirects=False) as response:
                        if response.status < 500:
                            return
                await asyncio.sleep(0.5)
        raise RuntimeError(f"OctoBot's web interface did not answer on {self.base_url} within "
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
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def kill(self) -> None:
        """SIGKILL to the whole bot (no shutdown code runs), like a crash or an OOM kill."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    async def open_orders(self) -> list[dict[str, Any]]:
        """OctoBot's own `/api/orders` (what its orders page shows): real orders first, then simulated ones."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(f"{self.base_url}/api/orders") as response:
                if response.status != 200:
                    raise RuntimeError(f"{self.base_url}/api/orders answered {response.status}")
                return await response.json()

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


async def wait_for(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str,
                   on_timeout: Callable[[], str] = lambda: "") -> T:
    """Polls `probe` until it returns something truthy (bounded; bots poll their exchange every few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{on_timeout()}")
        await asyncio.sleep(0.5)
