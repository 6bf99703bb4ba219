"""A real OctoBot 2.1.1 with its web interface, as a user starts it, for browser journeys and live tests.

The bot runs from its own folder in its own Python 3.12 venv (support.octobot_venv), its web UI on a free
127.0.0.1 port; every start appends its output to one log file so a test can read what the bot said. The
process handling is the live demo's own (octobot_signals.demo.octobot_bots.BotProcess): one implementation.
"""
from __future__ import annotations

from pathlib import Path

from octobot_signals.demo.octobot_bots import BotProcess, OctoBotInstall

from . import support

REPO = support.REPO
DEFAULT_TENTACLES_ZIP = REPO.parent / "shared" / "octobot-2.1.1" / "octobot-default-tentacles-2.1.1.zip"


class WebBot(BotProcess):
    def __init__(self, venv: Path, path: Path, port: int, log_file: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(OctoBotInstall.from_path(venv), path, port, log_file, env)
        self.venv = venv
