"""A throwaway PostgreSQL server for `octobot-signals chaos --store postgresql`.

Debian's PostgreSQL 15 server binaries (`initdb`, `pg_ctl`; `.ci/setup` installs them), run as the
`postgres` user through `runuser` (the server refuses to run as root), listening only on a Unix socket in
a private temp dir (`listen_addresses=''`): no TCP port is opened, nothing is shared with other jobs.
`restart()` stops it with `-m immediate` (no shutdown checkpoint: what a crash leaves) and starts it on the
same data: every committed transaction must be there again.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("OCTOBOT_SIGNALS_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
PORT = 5432  # names the socket file in the private dir only
STEP_TIMEOUT_S = 60.0
DATABASE = "chaos"


def unavailable_reason() -> str | None:
    """None when a server can run here, else why not."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL server binaries missing in {PG_BIN} (install Debian's postgresql package)"
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return f"no {PG_USER} user on this machine"
    if os.geteuid() != 0:
        return "starting the server as the postgres user (runuser) needs root"
    return None


class ChaosPostgres:
    def __init__(self) -> None:
        self.root: Path | None = None
        self.running = False
        self.restarts = 0

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def url(self, database: str = DATABASE) -> str:
        assert self.root is not None
        return f"postgresql://{PG_USER}@/{database}?host={self.root}&port={PORT}"

    async def _as_postgres(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec("runuser", "-u", PG_USER, "--", *args,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                    stdin=asyncio.subprocess.DEVNULL)
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), STEP_TIMEOUT_S)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise RuntimeError(f"{Path(args[0]).name} took over {STEP_TIMEOUT_S:.0f} s") from None
        if proc.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): {output.decode(errors='replace')[-500:]}")

    async def start(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        # a short path: a Unix socket path is limited to ~107 bytes
        self.root = Path(tempfile.mkdtemp(prefix="pgchaos", dir="/tmp"))
        shutil.chown(self.root, PG_USER, PG_USER)
        os.chmod(self.root, 0o700)
        await self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "--no-sync", "--auth=trust",
                                "-U", PG_USER, "--encoding=UTF8", "--locale=C.UTF-8")
        await self._pg_ctl_start()
        await self._as_postgres(str(PG_BIN / "createdb"), "-h", str(self.root), "-p", str(PORT), "-U", PG_USER,
                                DATABASE)

    async def _pg_ctl_start(self) -> None:
        assert self.root is not None
        # fsync stays on (the default): the run relies on durable commits across the restarts
        options = f"-c listen_addresses='' -k {self.root} -p {PORT} -c max_connections=200"
        await self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                                "-w", "-t", str(int(STEP_TIMEOUT_S)), "-o", options, "start")
        self.running = True

    async def crash_stop(self) -> None:
        self.running = False
        await self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    async def restart(self, down_s: float) -> None:
        await self.crash_stop()
        await asyncio.sleep(down_s)
        await self._pg_ctl_start()
        self.restarts += 1

    async def stop(self) -> None:
        if self.root is None:
            return
        if self.running:
            with contextlib.suppress(RuntimeError):
                await self.crash_stop()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
