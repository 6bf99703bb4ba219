"""Run the local exchange as a child process (the live tests run it next to real OctoBot bots).

    python -m octobot_signals.local_exchange --port 0 --config exchange.json --state-file state.json

When it listens it prints one JSON line `{"url": ..., "port": ..., "pid": ...}` on stdout and
writes the state file (atomically, mode 0600): url, port, pid, markets, and every account with
its API keys and secrets, the hand-off a test needs to configure its bots. SIGTERM or SIGINT
stops it cleanly; the state file is then rewritten with `"status": "stopped"`.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .decimals import dumps
from .server import LocalExchange


def write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(dumps(state))
    os.replace(tmp, path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m octobot_signals.local_exchange", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, help="JSON config (markets, tiers, accounts, seed, history)")
    parser.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--state-file", type=Path, help="where to write url, port and accounts once listening")
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    raw: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    if args.port is not None:
        raw["port"] = args.port
    exchange = await LocalExchange(raw).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.state_file:
            write_state(args.state_file, {"status": "running", **exchange.state_json(with_secrets=True)})
        print(json.dumps({"url": exchange.url, "port": exchange.port, "pid": os.getpid()}), flush=True)
        await stop.wait()
    finally:
        if args.state_file:
            with contextlib.suppress(OSError):
                write_state(args.state_file, {"status": "stopped", **exchange.state_json(with_secrets=True)})
        await exchange.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
