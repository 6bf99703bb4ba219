"""Real OctoBot 2.1.1 bots trading live on 127.0.0.1: a bot folder as a user has it, pointed at the local exchange.

A bot folder holds OctoBot's default tentacles and our package, both installed with OctoBot's own tentacles
manager (once per test session, then copied per bot: an install takes ~20 s). A follower's profile comes from
our hub's personal link through OctoBot's own importer; what a user then does by hand is done here in files:
the profile's exchange is pointed at the local exchange (`specific_config/hollaex.json`, read by OctoBot's
stock `hollaex` tentacle), and for real trading the API keys go in `user/config.json`, encrypted the way
OctoBot stores them. OctoBot rewrites `user/config.json` at start, so it is written before each start.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from . import support
from .webui import DEFAULT_TENTACLES_ZIP, WebBot

T = TypeVar("T")
EXCHANGE = "hollaex"


@functools.lru_cache(maxsize=4)
def _template(venv: Path, package_zip: Path | None, root: Path) -> Path:
    """A bot folder with the default tentacles (and our package unless None), installed once per session."""
    name = "template-ours" if package_zip is not None else "template-stock"
    folder = root / name
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    output = support.install_tentacles(venv, folder, DEFAULT_TENTACLES_ZIP)
    assert "successfully processed" in output, output[-3000:]
    if package_zip is not None:
        output = support.install_tentacles(venv, folder, package_zip)
        assert "successfully processed" in output, output[-3000:]
    return folder


def new_bot_folder(venv: Path, root: Path, name: str, package_zip: Path | None) -> Path:
    """A fresh bot folder: the default tentacles, plus our package when given (None: a stock OctoBot)."""
    target = root / name
    shutil.copytree(_template(venv, package_zip, root / "templates"), target, symlinks=True)
    return target


async def import_profile(venv: Path, bot_dir: Path, url: str) -> dict[str, Any]:
    """OctoBot's own importer on our hub's personal link (the user's "import a profile"); the hub keeps serving."""
    output = await support.run_async([support.python_of(venv), support.HERE / "import_profile.py", url], bot_dir)
    return support.last_json_line(output)


def point_at_exchange(bot_dir: Path, profile_dir: Path, exchange_url: str, *, real_trading: bool,
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


def encrypt(venv: Path, value: str) -> str:
    """OctoBot's own encryption of exchange credentials (octobot_commons fields_utils), run in its venv."""
    code = ("import sys; from octobot_commons.configuration import fields_utils; "
            "print(fields_utils.encrypt(sys.argv[1]).decode())")
    result = subprocess.run([str(support.python_of(venv)), "-c", code, value], capture_output=True, text=True,
                            timeout=60, check=True, env=support.clean_env())
    return result.stdout.strip()


def write_user_config(venv: Path, bot_dir: Path, profile_id: str, keys: tuple[str, str] | None = None, *,
                      mqtt_username: str | None = None) -> None:
    """user/config.json as a user leaves it: the profile selected, terms accepted, the exchange keys if any; for a
    stock follower over MQTT, the username our hub issued (`community.mqtt_uuid`, read by OctoBot's own feed)."""
    support.select_profile(venv, bot_dir, profile_id)
    path = bot_dir / "user" / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["accepted_terms"] = True
    config.setdefault("services", {}).setdefault("web", {})["auto-open-in-web-browser"] = False
    if keys is not None:
        key, secret = keys
        config["exchanges"] = {EXCHANGE: {"api-key": encrypt(venv, key), "api-secret": encrypt(venv, secret),
                                          "api-password": encrypt(venv, ""), "exchange-type": "spot"}}
    if mqtt_username is not None:
        config.setdefault("community", {})["mqtt_uuid"] = mqtt_username
    path.write_text(json.dumps(config, indent=4), encoding="utf-8")


@dataclass
class LiveBot(WebBot):
    """A live bot: its web UI's open orders, its log, and a crash (kill -9) on request."""

    def kill(self) -> None:
        """SIGKILL to the whole bot (no shutdown code runs), like a crash or an OOM kill."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    async def open_orders(self) -> list[dict[str, Any]]:
        """OctoBot's own `/api/orders` (what its orders page shows): the open orders, real or simulated."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(f"{self.base_url}/api/orders") as response:
                assert response.status == 200, await response.text()
                body = await response.json()
        return body  # real orders first, then simulated ones: {symbol, type, price, amount, id, ...}

    def log_since(self, start_number: int) -> str:
        return self.log_of_start(start_number)


async def wait_for(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str,
                   on_timeout: Callable[[], str] = lambda: "") -> T:
    """Polls `probe` until it returns something truthy (bounded; the bots poll their exchange every few s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{on_timeout()}")
        await asyncio.sleep(0.5)
