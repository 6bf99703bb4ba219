"""A Mosquitto (Debian's `mosquitto` 2.0) configuration for stock OctoBot followers and the hub's egress.

Two listeners, each with its own settings (`per_listener_settings true`):
- followers: stock OctoBot 2.1.1 connects with a username (its `community.mqtt_uuid`) and no password,
  all with the same client id. So: `allow_anonymous true` (no password to check), `use_username_as_clientid
  true` (otherwise followers would disconnect each other; a client without a username is refused), and an
  ACL that lets each hub-issued username READ its strategies' topics and nothing else. Nobody may write
  there. An unknown or revoked username connects but receives nothing.
- hub: a password (PBKDF2-SHA512, Mosquitto's `$7$` format) and write access to `t/#`.

The followers' ACL is the one file that changes with tokens: `MosquittoAclSync` (run by the hub with
`--mosquitto-dir`) rewrites it when a token, membership or strategy changes and sends Mosquitto SIGHUP,
which reloads it; Mosquitto checks read access again on every delivery, so a revoked name stops
receiving at once, even on a connection that stays open.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path

from ..core import protocol
from .mqtt_egress import HUB_MQTT_USERNAME, TOPIC_PREFIX
from .mqtt_tables import MqttReader
from .store import AsyncStore, SqliteStore

logger = logging.getLogger("octobot_signals.hub.mosquitto")

CONF_FILE = "mosquitto.conf"
FOLLOWERS_ACL = "followers.acl"
HUB_ACL = "hub.acl"
HUB_PASSWD = "hub.passwd"
PID_FILE = "mosquitto.pid"
HUB_PASSWORD_META = "mqtt_hub_password"
PASSWORD_ENV = "OCTOBOT_SIGNALS_MQTT_PASSWORD"
# Mosquitto reads its config line by line: anything written into it must be a plain token.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_SAFE_HOST = re.compile(r"[A-Za-z0-9_.:-]{1,253}")


class MosquittoConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Listener:
    host: str
    port: int


def parse_listener(value: str, field_name: str) -> Listener:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not _SAFE_HOST.fullmatch(host):
        raise MosquittoConfigError(f"{field_name}: expected HOST:PORT, got {value!r}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise MosquittoConfigError(f"{field_name}: port must be 1..65535, got {port_text!r}")
    return Listener(host.strip("[]"), int(port_text))


@dataclass(frozen=True)
class MosquittoLayout:
    out_dir: Path
    followers: Listener = Listener("0.0.0.0", 1883)  # the stock feed's port is fixed at 1883
    hub: Listener = Listener("127.0.0.1", 1884)
    run_as: str = "mosquitto"  # Debian's package user; Mosquitto started as root switches to it

    def path(self, name: str) -> Path:
        return self.out_dir / name


def _check_path(path: Path, field_name: str) -> str:
    text = str(path)
    if any(ch in text for ch in "\r\n\0") or text != text.strip():
        raise MosquittoConfigError(f"{field_name}: unusable path {text!r}")
    return text


def render_conf(layout: MosquittoLayout) -> str:
    if not _SAFE_NAME.fullmatch(layout.run_as):
        raise MosquittoConfigError(f"user: {layout.run_as!r} is not a plain user name")
    p = {name: _check_path(layout.path(name).resolve(), "out dir")
         for name in (FOLLOWERS_ACL, HUB_ACL, HUB_PASSWD, PID_FILE)}
    return f"""# Written by `octobot-signals mosquitto-config`; the hub rewrites {FOLLOWERS_ACL} when tokens change.
# Run: mosquitto -c {_check_path(layout.path(CONF_FILE).resolve(), "out dir")}
per_listener_settings true
user {layout.run_as}
pid_file {p[PID_FILE]}
# The hub's journal is the durable copy and stock followers use clean sessions: nothing to persist here.
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
# off: with use_username_as_clientid, these lines would write every follower's MQTT name into the log
connection_messages false

# Stock OctoBot followers: username = the name the hub issued (community.mqtt_uuid), no password.
# Read-only, per username; an unknown or revoked name receives nothing. Plain MQTT: the name is
# visible on the wire, and it grants reading signals only.
listener {layout.followers.port} {layout.followers.host}
allow_anonymous true
use_username_as_clientid true
acl_file {p[FOLLOWERS_ACL]}

# The hub's egress: password required, may write the signal topics.
listener {layout.hub.port} {layout.hub.host}
allow_anonymous false
password_file {p[HUB_PASSWD]}
acl_file {p[HUB_ACL]}
"""


def render_followers_acl(readers: list[MqttReader]) -> str:
    lines = ["# One block per live follower token (hub-issued username): read its strategies' topics only."]
    for reader in readers:
        if not _SAFE_NAME.fullmatch(reader.username):
            raise MosquittoConfigError(f"username {reader.username!r} is not a plain token")
        lines.append(f"user {reader.username}")
        for strategy_id in reader.strategy_ids:
            protocol.validate_strategy_id(strategy_id)  # [A-Za-z0-9_-] only: no MQTT wildcard, no newline
            lines.append(f"topic read {TOPIC_PREFIX}{strategy_id}")
    return "\n".join(lines) + "\n"


def render_hub_acl(username: str = HUB_MQTT_USERNAME) -> str:
    return f"user {username}\ntopic write {TOPIC_PREFIX}#\n"


def mosquitto_password_line(username: str, password: str, *, iterations: int = 101,
                            salt: bytes | None = None) -> str:
    """A `mosquitto_passwd` line (`$7$`: PBKDF2-SHA512, 12-byte salt, 64-byte hash, base64).

    101 iterations is mosquitto_passwd's own default; the hub's password is 256 random bits, so the
    KDF's cost adds nothing against guessing and every egress connect pays it.
    """
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, dklen=64)
    return (f"{username}:$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}\n")


def hub_password(db: SqliteStore) -> str:
    """The hub's MQTT password, created once and kept in the hub's store (like its other secrets' owner)."""
    password = db.get_meta(HUB_PASSWORD_META)
    if password is None:
        password = secrets.token_urlsafe(32)
        db.set_meta(HUB_PASSWORD_META, password)
    return password


def write_atomic(path: Path, text: str, mode: int = 0o640) -> bool:
    """Write via a temporary file and rename (Mosquitto never reads half a file); False when unchanged."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_text(encoding="utf-8") == text:
            return False
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return True


def reload_mosquitto(pid_file: Path) -> bool:
    """SIGHUP the Mosquitto that wrote pid_file (it rereads its ACL and password files)."""
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def write_all(layout: MosquittoLayout, readers: list[MqttReader], password: str) -> list[Path]:
    """Every file of the layout; returns the ones that changed. The password file keeps its salt when the
    password is unchanged (rewriting it each time would reload Mosquitto for nothing)."""
    layout.out_dir.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    passwd = layout.path(HUB_PASSWD)
    if not _password_file_matches(passwd, HUB_MQTT_USERNAME, password):
        write_atomic(passwd, mosquitto_password_line(HUB_MQTT_USERNAME, password))
        changed.append(passwd)
    for name, text in ((CONF_FILE, render_conf(layout)), (HUB_ACL, render_hub_acl()),
                       (FOLLOWERS_ACL, render_followers_acl(readers))):
        if write_atomic(layout.path(name), text):
            changed.append(layout.path(name))
    return changed


def _password_file_matches(path: Path, username: str, password: str) -> bool:
    try:
        line = path.read_text(encoding="utf-8").strip()
    except OSError:
        return False
    name, _, encoded = line.partition(":")
    parts = encoded.split("$")  # ['', '7', iterations, salt, hash]
    if name != username or len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    expected = mosquitto_password_line(username, password, iterations=int(parts[2]), salt=salt).strip()
    return secrets.compare_digest(expected.encode(), line.encode())


class MosquittoAclSync:
    """Keeps `followers.acl` equal to the store's live follower tokens, and reloads Mosquitto after a change.

    Polls a cheap fingerprint (counts, public ids) on the store thread; the full ACL is built only when it
    moves. A token revoked by any path (API, web pages, another process on the same store) drops out of
    the ACL within one interval.
    """

    def __init__(self, store: AsyncStore, out_dir: Path, interval_s: float = 1.0) -> None:
        self._store = store
        self.out_dir = out_dir
        self.interval_s = interval_s
        self._fingerprint: tuple[object, ...] | None = None
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0
        self._warned_reload = False

    async def start(self) -> None:
        await self.sync()
        self._task = asyncio.create_task(self._loop(), name="mosquitto-acl-sync")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # a full disk must not end the sync: it retries at the next interval
                logger.exception("mosquitto ACL sync failed")

    async def sync(self) -> bool:
        """Rewrite the ACL if the tokens changed; True when Mosquitto was told to reload."""
        fingerprint = await self._store.run(lambda db: db.mqtt_readers_fingerprint())
        if fingerprint == self._fingerprint:
            return False
        readers = await self._store.run(lambda db: db.mqtt_readers())
        text = render_followers_acl(readers)
        path = self.out_dir / FOLLOWERS_ACL
        changed = await asyncio.to_thread(write_atomic, path, text)
        self._fingerprint = fingerprint
        if not changed:
            return False
        reloaded = await asyncio.to_thread(reload_mosquitto, self.out_dir / PID_FILE)
        if reloaded:
            self.reloads += 1
            logger.info("followers' MQTT ACL rewritten (%d live tokens); mosquitto reloaded", len(readers))
        elif not self._warned_reload:
            self._warned_reload = True
            logger.warning("followers' MQTT ACL rewritten in %s but mosquitto could not be signalled "
                           "(no readable %s); reload it yourself, e.g. systemctl reload mosquitto",
                           self.out_dir, PID_FILE)
        return reloaded
