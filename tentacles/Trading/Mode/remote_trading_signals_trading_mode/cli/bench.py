"""`octobot-signals bench [--json] [--mode-cpu [--stock-zip PATH]] [--octobot PATH]`: signal -> order latency, hub
fan-out, catch-up, hub memory, optionally the mode's CPU per bundle type with and without a long order map
history beside the stock mode's, and optionally our follower bot beside the stock follower bot, live in real
OctoBots."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from ..bench.run import BenchOptions, run_bench, target_lines
from ..bench.stock import stock_source_problem
from .args import UsageError
from .replay import quiet_octobot_logs

MAX_FOLLOWERS = 5000
MAX_SAMPLES = 100000
MAX_HISTORY_LINKS = 1_000_000
MAX_FEED_GAP_MS = 1000


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    parser.add_argument("--samples", type=int, default=200, help="signal -> order samples (default 200)")
    parser.add_argument("--followers", default="10,100,1000",
                        help="fan-out sizes, comma separated (default 10,100,1000)")
    parser.add_argument("--catch-up", type=int, default=1000, dest="catch_up",
                        help="signals missed by the catching-up follower (default 1000)")
    parser.add_argument("--rounds", type=int, default=0,
                        help="signals published per fan-out size (default: automatic, 50-200)")
    parser.add_argument("--pg-replicas", type=int, default=2, dest="pg_replicas", metavar="N",
                        help="also run the fan-out across N hub replicas on a throwaway PostgreSQL 15 (needs its "
                             "server binaries and root for runuser; default 2, 0 = off; skipped with the reason "
                             "when PostgreSQL cannot run here)")
    parser.add_argument("--mode-cpu", action="store_true", dest="mode_cpu",
                        help="also measure the mode's CPU per bundle type (JSON: mode_cpu_ms)")
    parser.add_argument("--mode-cpu-only", action="store_true", dest="mode_cpu_only",
                        help="measure only the mode's CPU per bundle type (no hub)")
    parser.add_argument("--mode-samples", type=int, default=200, dest="mode_samples",
                        help="rounds of the four bundle types for --mode-cpu (default 200)")
    parser.add_argument("--history-links", type=int, default=100_000, dest="history_links",
                        help="order map links of history for --mode-cpu's second run (default 100000)")
    parser.add_argument("--stock-zip", type=Path, default=None, dest="stock_zip", metavar="PATH",
                        help="with --mode-cpu[-only]: also measure OctoBot's stock mode on the same exchange and "
                             "bundles, from its default tentacles zip or its remote_trading_signals_trading.py "
                             "(JSON: mode_cpu_ms.stock and mode_cpu_ms.vs_stock)")
    parser.add_argument("--octobot", type=Path, default=None, metavar="PATH",
                        help="also run our follower bot beside OctoBot's stock follower bot, both real OctoBot 2.1.1 "
                             "(PATH: its venv or bin/OctoBot) trading live on a local exchange, on the same signals: "
                             "publish -> order at the exchange p50/p99, RSS and CPU idle and copying (JSON: octobot_live; "
                             "needs Debian's mosquitto for the stock bot)")
    parser.add_argument("--octobot-signals", type=int, default=50, dest="octobot_signals", metavar="N",
                        help="with --octobot: buy limits published (each then cancelled; default 50)")
    parser.add_argument("--default-tentacles", type=Path, default=None, dest="default_tentacles", metavar="ZIP",
                        help="with --octobot: OctoBot's default tentacles zip (offline machines; otherwise OctoBot "
                             "downloads them at its first start)")
    parser.add_argument("--feed-gap-ms", type=float, default=0.0, dest="feed_gap_ms", metavar="MS",
                        help="with --mode-cpu[-only]: idle MS before each measured bundle, as a live follower does "
                             "between messages (default 0: back to back; JSON: mode_cpu_ms.feed_gap_ms)")


def _followers(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--followers {text!r}: expected comma-separated whole numbers") from None
    if not sizes or any(not 1 <= size <= MAX_FOLLOWERS for size in sizes):
        raise UsageError(f"--followers {text!r}: each size must be between 1 and {MAX_FOLLOWERS}")
    return sizes


def _stock_zip(args: argparse.Namespace) -> Path | None:
    if args.stock_zip is None:
        return None
    if not (args.mode_cpu or args.mode_cpu_only):
        raise UsageError("--stock-zip needs --mode-cpu or --mode-cpu-only")
    if problem := stock_source_problem(args.stock_zip):
        raise UsageError(f"--stock-zip {args.stock_zip}: {problem}")
    return args.stock_zip.resolve()


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def bench_command(args: argparse.Namespace) -> int:
    if not 1 <= args.samples <= MAX_SAMPLES:
        raise UsageError(f"--samples must be between 1 and {MAX_SAMPLES}, got {args.samples}")
    if not 1 <= args.catch_up <= MAX_SAMPLES:
        raise UsageError(f"--catch-up must be between 1 and {MAX_SAMPLES}, got {args.catch_up}")
    if not 0 <= args.rounds <= 10000:
        raise UsageError(f"--rounds must be between 0 and 10000, got {args.rounds}")
    if not 1 <= args.mode_samples <= MAX_SAMPLES:
        raise UsageError(f"--mode-samples must be between 1 and {MAX_SAMPLES}, got {args.mode_samples}")
    if not 0 <= args.history_links <= MAX_HISTORY_LINKS:
        raise UsageError(f"--history-links must be between 0 and {MAX_HISTORY_LINKS}, got {args.history_links}")
    if not 0 <= args.feed_gap_ms <= MAX_FEED_GAP_MS:
        raise UsageError(f"--feed-gap-ms must be between 0 and {MAX_FEED_GAP_MS}, got {args.feed_gap_ms:g}")
    if args.feed_gap_ms and not (args.mode_cpu or args.mode_cpu_only):
        raise UsageError("--feed-gap-ms needs --mode-cpu or --mode-cpu-only")
    if not 0 <= args.pg_replicas <= 8:
        raise UsageError(f"--pg-replicas must be between 0 and 8, got {args.pg_replicas}")
    if args.octobot is None and args.default_tentacles is not None:
        raise UsageError("--default-tentacles goes with --octobot")
    if not 1 <= args.octobot_signals <= 1000:
        raise UsageError(f"--octobot-signals must be between 1 and 1000, got {args.octobot_signals}")
    if args.default_tentacles is not None and not args.default_tentacles.is_file():
        raise UsageError(f"--default-tentacles {args.default_tentacles}: no such file")
    octobot = None
    if args.octobot is not None:
        from ..demo.octobot_bots import OctoBotInstall
        try:
            OctoBotInstall.from_path(args.octobot)
        except ValueError as err:
            raise UsageError(str(err)) from None
        octobot = args.octobot.resolve()
    options = BenchOptions(samples=args.samples, followers=_followers(args.followers), catch_up=args.catch_up,
                           rounds=args.rounds, mode_cpu=args.mode_cpu or args.mode_cpu_only,
                           mode_cpu_only=args.mode_cpu_only, mode_samples=args.mode_samples,
                           history_links=args.history_links, pg_replicas=args.pg_replicas,
                           stock_zip=_stock_zip(args), feed_gap_ms=args.feed_gap_ms, octobot=octobot,
                           octobot_signals=args.octobot_signals,
                           default_tentacles=args.default_tentacles.resolve() if args.default_tentacles else None)
    quiet_octobot_logs()
    try:
        result = asyncio.run(run_bench(options, _write))
    except (KeyboardInterrupt, asyncio.CancelledError) as stop:  # Ctrl-C, or SIGTERM during the live bench
        _write("bench stopped: everything it started is gone")
        return 130 if isinstance(stop, KeyboardInterrupt) else 143
    for line in target_lines(result):
        _write(line)
    if args.json:
        _write(json.dumps(result, separators=(",", ":")))
    return 0
