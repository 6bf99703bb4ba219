"""`octobot-signals mosquitto-config`: write a Mosquitto configuration for stock OctoBot followers.

Issues an MQTT username for every live follower token that has none, then writes mosquitto.conf, the
followers' ACL, the hub's ACL and password file into --out, and reloads a running Mosquitto started
from that folder. Usernames are not printed: a follower reads its own with `GET /api/mqtt`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..hub.mosquitto_config import (
    CONF_FILE,
    PID_FILE,
    MosquittoConfigError,
    MosquittoLayout,
    hub_password,
    parse_listener,
    reload_mosquitto,
    write_all,
)
from ..hub.store import DB_FILE, SqliteStore, StoreTables, is_postgresql_url
from .args import UsageError


def add_mosquitto_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="the hub's data directory")
    parser.add_argument("--store", default=None, metavar="postgresql://...",
                        help="the hub's PostgreSQL store, when it runs with one (default: the SQLite file in --data); "
                             "the password may come from PGPASSWORD instead of the URL")
    parser.add_argument("--out", type=Path, default=None, help="where to write the files (default DATA/mosquitto)")
    parser.add_argument("--listen", default="0.0.0.0:1883",
                        help="followers' listener HOST:PORT (default 0.0.0.0:1883; stock OctoBot always uses 1883)")
    parser.add_argument("--hub-listen", default="127.0.0.1:1884",
                        help="the hub's listener HOST:PORT (default 127.0.0.1:1884)")
    parser.add_argument("--user", default="mosquitto",
                        help="user Mosquitto switches to when started as root (default mosquitto, Debian's)")


def _open_store(args: argparse.Namespace) -> StoreTables:
    """The store the hub uses: the usernames and the hub's password must be the ones it reads."""
    if args.store is None:
        if not (args.data / DB_FILE).is_file():
            raise UsageError(f"--data: no hub store in {args.data} ({DB_FILE} missing)")
        return SqliteStore(args.data / DB_FILE)
    if not is_postgresql_url(args.store):
        raise UsageError("--store: expected a postgresql:// URL")
    from ..hub.store_pg import PgStore  # psycopg only when asked for
    from ..hub.store_pg_conn import StoreUnavailable, redact_url

    try:
        return PgStore(args.store, migrate=False)
    except StoreUnavailable as err:
        raise UsageError(f"--store {redact_url(args.store)}: {err}") from None


def mosquitto_command(args: argparse.Namespace) -> int:
    try:
        layout = MosquittoLayout(
            out_dir=(args.out or args.data / "mosquitto"),
            followers=parse_listener(args.listen, "--listen"),
            hub=parse_listener(args.hub_listen, "--hub-listen"),
            run_as=args.user,
        )
    except MosquittoConfigError as err:
        raise UsageError(str(err)) from None
    if layout.followers == layout.hub:
        raise UsageError("--listen and --hub-listen must differ")
    db = _open_store(args)
    try:
        readers = db.mqtt_readers()
        password = hub_password(db)
    finally:
        db.close()
    try:
        changed = write_all(layout, readers, password)
    except MosquittoConfigError as err:
        raise UsageError(str(err)) from None
    reloaded = bool(changed) and reload_mosquitto(layout.path(PID_FILE))
    print(f"wrote {layout.path(CONF_FILE)} ({len(readers)} follower usernames; "
          f"{len(changed)} files changed{', mosquitto reloaded' if reloaded else ''})")
    print(f"run: mosquitto -c {layout.path(CONF_FILE)}")
    print(f"then: octobot-signals hub --data {args.data} --mqtt-egress mqtt://{layout.hub.host}:{layout.hub.port} "
          f"--mosquitto-dir {layout.out_dir}")
    return 0
