"""Real OctoBot 2.1.1 bots trading live on 127.0.0.1 in the tests: the live demo's bot handling
(octobot_signals.demo.octobot_bots), plus a bot folder template installed once per test session.

A bot folder holds OctoBot's default tentacles and our package, both installed with OctoBot's own tentacles
manager (once per session, then copied per bot: an install takes several seconds).
"""
from __future__ import annotations

import functools
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from octobot_signals.demo import octobot_bots
from octobot_signals.demo.octobot_bots import EXCHANGE, OctoBotInstall  # noqa: F401 - the tests' names

from . import support
from .webui import DEFAULT_TENTACLES_ZIP, WebBot

T = TypeVar("T")
LiveBot = WebBot  # kill(), open_orders() and the logs: one bot class for every real-OctoBot test


@functools.lru_cache(maxsize=4)
def _template(venv: Path, package_zip: Path | None, root: Path) -> Path:
    """A bot folder with the default tentacles (and our package unless None), installed once per session
    (blocking: the first bot of a session waits ~7 s for it)."""
    name = "template-ours" if package_zip is not None else "template-stock"
    folder = root / name
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for zip_path in [DEFAULT_TENTACLES_ZIP] + ([package_zip] if package_zip is not None else []):
        output = support.install_tentacles(venv, folder, zip_path)
        assert "successfully processed" in output, output[-3000:]
    return folder


def new_bot_folder(venv: Path, root: Path, name: str, package_zip: Path | None) -> Path:
    """A fresh bot folder: the default tentacles, plus our package when given (None: a stock OctoBot)."""
    target = root / name
    shutil.copytree(_template(venv, package_zip, root / "templates"), target, symlinks=True)
    return target


async def import_profile(venv: Path, bot_dir: Path, url: str) -> dict[str, Any]:
    """OctoBot's own importer on our hub's personal link (the user's "import a profile"); the hub keeps serving."""
    return await octobot_bots.import_profile(OctoBotInstall.from_path(venv), bot_dir, url)


def point_at_exchange(bot_dir: Path, profile_dir: Path, exchange_url: str, **settings: Any) -> None:
    """octobot_bots.point_at_exchange on a profile of `bot_dir` (see there)."""
    octobot_bots.point_at_exchange(profile_dir, exchange_url, **settings)


def encrypt(venv: Path, value: str) -> str:
    return octobot_bots.encrypt(OctoBotInstall.from_path(venv), value)


def write_user_config(venv: Path, bot_dir: Path, profile_id: str, keys: tuple[str, str] | None = None, *,
                      mqtt_username: str | None = None) -> None:
    octobot_bots.write_user_config(OctoBotInstall.from_path(venv), bot_dir, profile_id, keys,
                                   mqtt_username=mqtt_username)


async def wait_for(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str,
                   on_timeout: Callable[[], str] = lambda: "") -> T:
    """octobot_bots.wait_for, failing the test with an AssertionError."""
    try:
        return await octobot_bots.wait_for(probe, timeout, what, on_timeout)
    except TimeoutError as err:
        raise AssertionError(str(err)) from None
