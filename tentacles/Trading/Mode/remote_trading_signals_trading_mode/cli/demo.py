"""`octobot-signals demo [--json] [--followers N] [--seconds S] [--octobot PATH [--default-tentacles ZIP]]`.

Plain: the whole loop, offline, in one process. With --octobot: the same loop with real OctoBot 2.1.1 bots
on a local exchange, each with its web UI (demo/octobot_live.py)."""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path

from ..demo.loop import MAX_FOLLOWERS, run_demo
from ..demo.report import summary_table
from .args import UsageError
from .replay import quiet_octobot_logs

MIN_SECONDS = 3.0
MAX_SECONDS = 50.0  # the demo must end by itself within a minute, settling included


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="end with one JSON summary line")
    parser.add_argument("--followers", type=int, default=2, help=f"following bots (1-{MAX_FOLLOWERS}, default 2)")
    parser.add_argument("--seconds", type=float, default=None,
                        help=f"length of the scripted price path ({MIN_SECONDS:g}-{MAX_SECONDS:g}, default 30); "
                        "with --octobot: how long the bots keep running after the script (default: until Ctrl-C)")
    parser.add_argument("--octobot", metavar="PATH",
                        help="run the loop with real OctoBot 2.1.1 bots: PATH is an OctoBot venv or its bin/OctoBot "
                        "(two followers, simulated and real trading, on a local exchange; web UIs printed)")
    parser.add_argument("--default-tentacles", metavar="ZIP", type=Path,
                        help="with --octobot: OctoBot's default tentacles zip, installed before ours (offline "
                        "machines; otherwise OctoBot downloads them at its first start)")


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def demo_command(args: argparse.Namespace) -> int:
    if args.octobot is not None:
        return _live_demo(args)
    if args.default_tentacles is not None:
        raise UsageError("--default-tentacles goes with --octobot")
    if args.seconds is None:
        args.seconds = 30.0
    if not 1 <= args.followers <= MAX_FOLLOWERS:
        raise UsageError(f"--followers must be between 1 and {MAX_FOLLOWERS}, got {args.followers}")
    if not MIN_SECONDS <= args.seconds <= MAX_SECONDS:  # also refuses nan
        raise UsageError(f"--seconds must be between {MIN_SECONDS:g} and {MAX_SECONDS:g}, got {args.seconds}")
    quiet_octobot_logs()
    summary = asyncio.run(run_demo(args.followers, args.seconds, _write))
    _write("")
    for line in summary_table(summary):
        _write(line)
    if args.json:
        _write(json.dumps(summary, separators=(",", ":")))
    return 0


def _live_demo(args: argparse.Namespace) -> int:
    from ..demo.octobot_live import run_live_demo  # loads the local exchange and OctoBot handling only here

    if args.followers != 2:
        raise UsageError("--followers: the live demo runs two following OctoBots (simulated and real trading)")
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds >= 0):
        raise UsageError(f"--seconds must be >= 0 with --octobot, got {args.seconds}")
    if args.default_tentacles is not None and not args.default_tentacles.is_file():
        raise UsageError(f"--default-tentacles {args.default_tentacles}: no such file")
    tentacles = args.default_tentacles.resolve() if args.default_tentacles is not None else None

    def report(summary: dict) -> None:
        _write("")
        for line in summary_table(summary):
            _write(line)
        if args.json:
            _write(json.dumps(summary, separators=(",", ":")))

    try:
        asyncio.run(run_live_demo(args.octobot, args.seconds, _write, tentacles, report))
    except ValueError as err:  # a bad --octobot path, named
        raise UsageError(str(err)) from None
    except (RuntimeError, TimeoutError) as err:  # a bot that did not start, an install that failed: say what
        print(f"live demo failed: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError) as stop:  # Ctrl-C, or SIGTERM (demo/octobot_bots.py)
        _write("stopped: every bot, the hub and the exchange this demo started are gone")
        return 130 if isinstance(stop, KeyboardInterrupt) else 143
    return 0
