"""A throwaway PostgreSQL server for tests: Debian's PostgreSQL 15 binaries, run as the `postgres` user
(`runuser`; the server refuses to run as root), listening only on a Unix socket in a private temp dir
(listen_addresses=''), never on a shared TCP port. initdb + start take well under a second.

    with PgServer() as server:
        url = server.create_database("t1")     # postgresql://postgres@/t1?host=/tmp/pg...&port=5432

The `pg_server` (session) and `store_url` (parametrized: sqlite, postgresql) fixtures are imported by
the test modules that run the same contract on both stores: `from pg_helpers import pg_server, store_url`.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _pg_bin() -> Path:
    """$OCTOBOT_SIGNALS_PG_BIN, else Debian's PostgreSQL 15, else the newest Debian version installed."""
    if os.environ.get("OCTOBOT_SIGNALS_PG_BIN"):
        return Path(os.environ["OCTOBOT_SIGNALS_PG_BIN"])
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "initdb").exists():
        return preferred
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else preferred


PG_BIN = _pg_bin()
PG_USER = "postgres"
PORT = 5432  # only names the socket file inside the private dir: no TCP port is opened
STEP_TIMEOUT_S = 60


def pg_available() -> str | None:
    """None when a server can run here, else why not (the test is then skipped with that reason)."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL server binaries missing in {PG_BIN} (run .ci/postgres.sh)"
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return "no postgres user (run .ci/postgres.sh)"
    if os.geteuid() != 0:
        return "runuser needs root to start the server as postgres"
    return None


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", PG_USER, "--", *args], check=True, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S)


class PgServer:
    def __init__(self) -> None:
        # short path: a Unix socket path is limited to ~107 bytes
        self.root = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.started = False

    def start(self) -> PgServer:
        reason = pg_available()
        if reason:
            pytest.skip(reason)
        shutil.chown(self.root, PG_USER, PG_USER)
        os.chmod(self.root, 0o700)
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "--no-sync", "--auth=trust", "-U", PG_USER,
                     "--encoding=UTF8", "--locale=C.UTF-8")
        # fsync stays on (the default): the tests measure and rely on durable commits
        options = f"-c listen_addresses='' -k {self.socket_dir} -p {PORT} -c max_connections=200"
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                     "-t", str(STEP_TIMEOUT_S), "-o", options, "start")
        self.started = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@/{database}?host={self.socket_dir}&port={PORT}"

    def create_database(self, name: str | None = None) -> str:
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def crash_restart(self) -> None:
        """`pg_ctl stop -m immediate` (a crash: no shutdown checkpoint, every connection dropped), then start."""
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        options = f"-c listen_addresses='' -k {self.socket_dir} -p {PORT} -c max_connections=200"
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                     "-t", str(STEP_TIMEOUT_S), "-o", options, "start")

    def stop(self) -> None:
        if self.started:
            try:
                _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            finally:
                self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def require_pg() -> None:
    """Skip where PostgreSQL cannot run, except in CI, where a missing server is a failure (.ci/postgres.sh)."""
    reason = pg_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # pytest then runs the finalizers: a SIGTERMed run leaves no server behind


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    require_pg()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    server = PgServer().start()
    try:
        yield server
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """None (the SQLite file in the hub's data dir) or a fresh PostgreSQL database: the same tests run on both."""
    if request.param == "sqlite":
        return None
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database()
