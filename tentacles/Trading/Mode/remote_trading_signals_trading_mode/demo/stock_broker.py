"""Debian's mosquitto for stock OctoBot followers, set up the way the README says (pip-side: bench and tests).

`octobot-signals mosquitto-config` writes the broker's files from the hub's data folder, then mosquitto runs
them: followers on port 1883 (the only port OctoBot's stock community feed uses) of a loopback address where
it is free (a system broker may hold 127.0.0.1:1883), the hub on a private port with its password.
"""
from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

STOCK_MQTT_PORT = 1883
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    return found or next((path for path in MOSQUITTO_PATHS if Path(path).is_file()), None)


def port_is_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def stock_broker_host() -> str:
    """A loopback address whose port 1883 is free."""
    for last in range(1, 10):
        host = f"127.0.0.{last}"
        if port_is_free(STOCK_MQTT_PORT, host):
            return host
    raise RuntimeError("port 1883 is taken on 127.0.0.1-9: stock OctoBot followers need one of them")


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


async def write_config(hub_data: Path, out: Path, host: str, hub_port: int) -> None:
    """`octobot-signals mosquitto-config`, as a user runs it (the hub's data folder must hold its store)."""
    result = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "octobot_signals.cli.main", "mosquitto-config", "--data", str(hub_data),
        "--out", str(out), "--listen", f"{host}:{STOCK_MQTT_PORT}", "--hub-listen", f"127.0.0.1:{hub_port}",
        "--user", getpass.getuser()], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"mosquitto-config failed: {result.stderr[-2000:]}")


@contextlib.contextmanager
def running_mosquitto(conf: Path, host: str, hub_port: int, timeout: float = 10.0) -> Iterator[subprocess.Popen[bytes]]:
    """mosquitto on `conf`, once both listeners accept; always stopped on exit."""
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("Debian's mosquitto is not installed (apt-get install -y mosquitto)")
    log = conf.with_name("mosquitto.log")
    with open(log, "ab") as handle:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=handle, stderr=handle)
    try:
        deadline = time.monotonic() + timeout
        while not (_accepts(host, STOCK_MQTT_PORT) and _accepts("127.0.0.1", hub_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
