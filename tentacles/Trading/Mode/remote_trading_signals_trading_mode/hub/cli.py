"""`octobot-signals hub` arguments and command (wired by cli/main.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .limits import LimitSettings
from .mqtt_cli import add_mqtt_hub_arguments, mqtt_settings_from_args
from .server import ADMIN_TOKEN_ENV, run_hub
from .store import is_postgresql_url


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 = any free port)")
    parser.add_argument("--data", required=True, type=Path, help="data directory (SQLite journal, tokens; "
                        "with --store only web.key, the same file on every replica)")
    parser.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="postgresql://user@host/db: keep everything in PostgreSQL, shared by several hub replicas "
        "(default: the SQLite file in --data). Put the password in $PGPASSWORD or ~/.pgpass rather than "
        "in the URL; it is never logged",
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="external base URL used in profile links, e.g. https://hub.example.org (default http://HOST:PORT)",
    )
    parser.add_argument(
        "--signup",
        choices=("open", "invite", "closed"),
        default="invite",
        help="who may create an account on the hub's pages: anyone, holders of an operator's invitation "
        "(default), or nobody",
    )
    defaults = LimitSettings()
    parser.add_argument("--max-connections-per-token", type=int, default=defaults.connections_per_token,
                        metavar="N", help="live /cable connections one follower token may hold "
                        f"(default {defaults.connections_per_token})")
    parser.add_argument("--max-publishes-per-minute", type=int, default=defaults.publishes_per_minute,
                        metavar="N", help="publish commands one strategy may send per minute; more are refused "
                        f"with a retryable rate_limited nack (default {defaults.publishes_per_minute})")
    parser.add_argument("--max-failed-auths", type=int, default=defaults.failed_auths_per_window, metavar="N",
                        help="failed authentications from one address before it is refused for "
                        f"{defaults.failed_auth_window_s:.0f} s (default {defaults.failed_auths_per_window})")
    parser.add_argument("--max-send-queue-mib", type=int, default=defaults.send_queue_bytes // 2**20, metavar="MIB",
                        help="outgoing frames one /cable connection may hold, in MiB; a follower that stops reading "
                        f"is closed (1013) and resumes (default {defaults.send_queue_bytes // 2**20}, at least 1)")
    parser.add_argument("--max-send-queue-total-mib", type=int, default=defaults.send_queue_total_bytes // 2**20,
                        metavar="MIB", help="outgoing frames all /cable connections together may hold, in MiB "
                        f"(default {defaults.send_queue_total_bytes // 2**20}, at least 1)")
    add_mqtt_hub_arguments(parser)
    parser.epilog = (
        f"The admin token comes from ${ADMIN_TOKEN_ENV}, or is generated on first start and printed once."
    )


def hub_command(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        print("--port must be in 0..65535", file=sys.stderr)
        return 2
    for flag, value in (("--max-connections-per-token", args.max_connections_per_token),
                        ("--max-publishes-per-minute", args.max_publishes_per_minute),
                        ("--max-failed-auths", args.max_failed_auths),
                        ("--max-send-queue-mib", args.max_send_queue_mib),
                        ("--max-send-queue-total-mib", args.max_send_queue_total_mib)):
        if value < 1:
            print(f"{flag} must be >= 1, got {value}", file=sys.stderr)
            return 2
    limits = LimitSettings(connections_per_token=args.max_connections_per_token,
                           publishes_per_minute=args.max_publishes_per_minute,
                           failed_auths_per_window=args.max_failed_auths,
                           send_queue_bytes=args.max_send_queue_mib * 2**20,
                           send_queue_total_bytes=args.max_send_queue_total_mib * 2**20)
    try:
        mqtt = mqtt_settings_from_args(args)
    except ValueError as err:  # a bad --mqtt-egress / --mosquitto-dir, named in the message
        print(err, file=sys.stderr)
        return 2
    if args.store is not None and not is_postgresql_url(args.store):
        print("--store must be a postgresql:// URL (omit it for the SQLite file in --data)", file=sys.stderr)
        return 2
    try:
        run_hub(args.host, args.port, args.data, public_url=args.public_url, signup=args.signup, mqtt=mqtt,
                limits=limits, store_url=args.store)
    except OSError as err:
        print(f"hub failed to start: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="octobot-signals hub", description="Run a strategy feed hub.")
    add_hub_arguments(parser)
    return hub_command(parser.parse_args(argv))
