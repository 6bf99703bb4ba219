"""`octobot-signals doctor --bot DIR`: is the RemoteTradingSignalsTradingMode a bot loads ours?

OctoBot's default tentacles ship a stock mode of the same class name in the same folder, and the
tentacles manager merges packages folder by folder: installing ours overwrites every stock file, and
reinstalling or updating OctoBot's default tentacles later overwrites them back (our other files stay,
unused). Nothing of ours runs in the bot then, so this check runs from outside, on the bot folder.
Exit code: 0 ours, 1 stock / mixed / missing, 2 unusable arguments.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .args import UsageError

MODE_FOLDER = Path("tentacles") / "Trading" / "Mode" / "remote_trading_signals_trading_mode"
OUR_PACKAGE = "octobot-signals"
# Files both packages ship: each must be ours, or the bot loads (or can import) stock code.
SHARED_FILES = ("__init__.py", "metadata.json", "remote_trading_signals_trading.py",
                "config/RemoteTradingSignalsTradingMode.json", "resources/RemoteTradingSignalsTradingMode.md",
                "tests/__init__.py", "tests/test_remote_trading_signals_trading_consumer.py",
                "tests/test_remote_trading_signals_trading_producer.py")
FIX = ("reinstall octobot-signals from the bot folder: `octobot-signals package --output dist` then "
       "`OctoBot tentacles --install --all --location dist/octobot-signals-tentacles-<version>.zip`, "
       "and restart OctoBot")


@dataclass
class Diagnosis:
    bot: str
    status: str  # "ours" | "stock" | "mixed" | "missing"
    origin_package: str | None = None
    version: str | None = None
    not_ours: list[str] = field(default_factory=list)
    message: str = ""
    fix: str | None = None


def _is_ours(relative: str, text: str, origin: str | None) -> bool:
    if relative == "metadata.json":
        return origin == OUR_PACKAGE
    if relative == "__init__.py":
        return "from .remote_trading_signals_trading_mode import" in text
    if relative == "remote_trading_signals_trading.py":
        return "OCTOBOT_SIGNALS_MARKER" in text
    if relative.endswith(".json"):
        return "hub_url" in text  # the stock default config has no hub
    return OUR_PACKAGE in text


def diagnose(bot_dir: Path) -> Diagnosis:
    """Reads the installed tentacle folder of bot_dir; never writes."""
    folder = bot_dir / MODE_FOLDER
    if not (folder / "metadata.json").is_file():
        return Diagnosis(str(bot_dir), "missing", message=f"no tentacle installed in {MODE_FOLDER}", fix=FIX)
    try:
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return Diagnosis(str(bot_dir), "mixed", message=f"{MODE_FOLDER}/metadata.json unreadable: {err}", fix=FIX)
    origin = metadata.get("origin_package") if isinstance(metadata, dict) else None
    version = metadata.get("version") if isinstance(metadata, dict) else None
    not_ours = []
    for relative in SHARED_FILES:
        path = folder / relative
        if path.is_file() and not _is_ours(relative, path.read_text(encoding="utf-8", errors="replace"), origin):
            not_ours.append(relative)
    diagnosis = Diagnosis(str(bot_dir), "ours", origin, version, not_ours)
    if origin != OUR_PACKAGE:
        diagnosis.status = "stock"
        leftovers = " (octobot-signals files are still there, unused)" if (folder / "core").is_dir() else ""
        diagnosis.message = (f"OctoBot loads the stock RemoteTradingSignalsTradingMode from {origin or 'an unknown'} "
                             f"package {version or ''}".rstrip() + leftovers)
        diagnosis.fix = FIX
    elif not_ours:
        diagnosis.status = "mixed"
        diagnosis.message = f"octobot-signals {version} is installed but these files are not ours: {', '.join(not_ours)}"
        diagnosis.fix = FIX
    else:
        diagnosis.message = f"octobot-signals {version} is installed; no stock file is left"
    return diagnosis


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bot", required=True, metavar="DIR", help="the OctoBot folder (where `OctoBot` runs)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def doctor_command(args: argparse.Namespace) -> int:
    bot_dir = Path(args.bot)
    if not bot_dir.is_dir():
        raise UsageError(f"--bot {args.bot}: not a folder")
    diagnosis = diagnose(bot_dir)
    if args.json:
        print(json.dumps(asdict(diagnosis)))
    else:
        print(f"{diagnosis.status}: {diagnosis.message}")
        if diagnosis.fix:
            print(f"fix: {diagnosis.fix}")
    return 0 if diagnosis.status == "ours" else 1
