"""Driving the real OctoBot 2.1.1 (its own Python 3.12 venv) from the 3.11 test process.

Everything runs through subprocesses with a temporary bot folder as the working directory, the
way a user runs OctoBot. The venv comes from .ci/octobot_venv.sh (created once, then cached).
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from octobot_signals.demo import octobot_bots

SKIP_ENV = "OCTOBOT_SIGNALS_SKIP_REAL"
VENV_ENV = "OCTOBOT_SIGNALS_OCTOBOT_VENV"  # optional: use this venv instead of the cached one
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV_SCRIPT = REPO / ".ci" / "octobot_venv.sh"
COLLECTOR_SOURCE = HERE / "collector"
COLLECTOR_CLASS = "SyntheticHistoryCollector"
# Generous bounds: a cold OctoBot start is ~3 s here; CI machines can be several times slower.
COMMAND_TIMEOUT_S = 240
VENV_CREATE_TIMEOUT_S = 900


def skip_requested() -> bool:
    return os.environ.get(SKIP_ENV) == "1"


@functools.lru_cache(maxsize=1)  # one check per test session (`OctoBot --version` takes ~3 s)
def octobot_venv() -> Path:
    """The OctoBot 2.1.1 venv, created by .ci/octobot_venv.sh when it is missing (then cached)."""
    given = os.environ.get(VENV_ENV)
    if given:
        return Path(given)
    result = subprocess.run(["bash", str(VENV_SCRIPT)], capture_output=True, text=True,
                            timeout=VENV_CREATE_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{VENV_SCRIPT} failed ({result.returncode}): {result.stderr[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def octobot_of(venv: Path) -> Path:
    return venv / "bin" / "OctoBot"


def profile_schema_of(venv: Path) -> Path:
    """OctoBot 2.1.1's own profile schema, read from the installed bot (never copied into this repo)."""
    found = sorted(venv.glob("lib/python3.*/site-packages/octobot/config/profile_schema.json"))
    if not found:
        raise FileNotFoundError(f"octobot/config/profile_schema.json not found in {venv}")
    return found[0]


def select_profile(venv: Path, bot_dir: Path, profile_id: str) -> None:
    """What selecting a profile in the web UI does: user/config.json's "profile" = the profile id.

    A bot that never started has no user/config.json yet: start from OctoBot's own default config.
    """
    config_path = bot_dir / "user" / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
    else:
        defaults = sorted(venv.glob("lib/python3.*/site-packages/octobot/config/default_config.json"))
        config = json.loads(defaults[0].read_text(encoding="utf-8"))
    config["profile"] = profile_id
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config, indent=4), encoding="utf-8")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for OctoBot: nothing from the 3.11 venv or from this project's settings leaks in."""
    return octobot_bots.clean_env(**extra)


def run(command: list[str | Path], cwd: Path, *, timeout: float = COMMAND_TIMEOUT_S,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs a command to completion (stdout and stderr merged); raises with the output tail on failure."""
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env or clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        raise AssertionError(f"{command[0]} exited {result.returncode}:\n{result.stdout[-4000:]}")
    return result


async def run_async(command: list[str | Path], cwd: Path, *, timeout: float = COMMAND_TIMEOUT_S,
                    env: dict[str, str] | None = None) -> str:
    """Like run(), without blocking the event loop (an in-process hub keeps serving meanwhile)."""
    try:
        return await octobot_bots.run_async(command, cwd, timeout=timeout, env=env)
    except RuntimeError as err:  # a failed command fails the test
        raise AssertionError(str(err)) from None


def last_json_line(output: str) -> dict[str, Any]:
    """Our probe scripts print one JSON object as their last stdout line (OctoBot logs come before)."""
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON result in output:\n{output[-3000:]}")


def build_collector_zip(target_dir: Path) -> Path:
    """A tentacles package holding only the test history collector (Backtesting/collectors/exchanges)."""
    target = target_dir / "octobot-signals-test-collector.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(COLLECTOR_SOURCE.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, "reference_tentacles/" + path.relative_to(COLLECTOR_SOURCE).as_posix())
    return target


def install_tentacles(venv: Path, bot_dir: Path, package_zip: Path) -> str:
    """`OctoBot tentacles --install --all --location ZIP` in bot_dir: what a user runs."""
    return run([octobot_of(venv), "tentacles", "--install", "--all", "--location", package_zip], bot_dir).stdout


def write_data_file(venv: Path, bot_dir: Path, *, exchange: str, time_frame: str,
                    candles: dict[str, list[list[float]]]) -> Path:
    """A backtesting data file written by the bot's own database code; returns its path relative to bot_dir."""
    relative = Path("backtesting") / "data" / f"{COLLECTOR_CLASS}_{exchange}_synthetic.data"
    (bot_dir / relative.parent).mkdir(parents=True, exist_ok=True)
    spec = bot_dir / "data_spec.json"
    spec.write_text(json.dumps({"path": str(relative), "exchange": exchange, "time_frame": time_frame,
                                "candles": candles}), encoding="utf-8")
    run([python_of(venv), HERE / "make_data_file.py", spec], bot_dir)
    return relative


def run_project_cli(*args: str) -> str:
    """`octobot-signals ARGS` with this (3.11) interpreter; returns stdout."""
    result = subprocess.run([sys.executable, "-m", "octobot_signals.cli.main", *args], capture_output=True,
                            text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise AssertionError(f"octobot-signals {args[0]} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout
