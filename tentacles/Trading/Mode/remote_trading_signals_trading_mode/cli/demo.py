"""`octobot-signals demo [--json] [--followers N] [--seconds S]`: the whole loop, offline, in one process."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from ..demo.loop import MAX_FOLLOWERS, run_demo
from ..demo.report import summary_table
from .args import UsageError
from .replay import quiet_octobot_logs

MIN_SECONDS = 3.0
MAX_SECONDS = 50.0  # the demo must end by itself within a minute, settling included


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="end with one JSON summary line")
    parser.add_argument("--followers", type=int, default=2, help=f"following bots (1-{MAX_FOLLOWERS}, default 2)")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help=f"length of the scripted price path ({MIN_SECONDS:g}-{MAX_SECONDS:g}, default 30)")


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def demo_command(args: argparse.Namespace) -> int:
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
