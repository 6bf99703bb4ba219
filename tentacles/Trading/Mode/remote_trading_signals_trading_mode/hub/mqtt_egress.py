"""MQTT egress: republish every journaled message on an MQTT broker, in the stock OctoBot feed's format.

Stock OctoBot 2.1.1 followers (no plugin) read topic `t/<strategy id>` at QoS 1, plain JSON envelope
(see shared/OCTOBOT-NOTES.md). The journal is the source of truth: the egress keeps, per strategy, the
last q the broker acknowledged (PUBACK), reads what follows from the journal and publishes it one
message at a time, so order holds across reconnects. The position is saved in the hub's store, so a
broker restart or a hub restart resumes right after the last acknowledged message. A message sent
but not acknowledged when the link broke is sent again (same `u`, in order; the stock feed dedups on `u`).

Numbers in the signals go out as JSON numbers, as octobot-trading writes them: the stock mode needs it
(see mqtt_stock_envelope). Only this copy changes; the journal, /cable and the history stay as published.

Live messages wake the egress through `NotifyingFanout` (the hub's fan-out calls it after each append),
so nothing polls the journal on the store thread the publishers use.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from .fanout import LocalFanout
from .mqtt_stock_envelope import stock_feed_message
from .store import AsyncStore, SqliteStore

logger = logging.getLogger("octobot_signals.hub.mqtt_egress")

TOPIC_PREFIX = "t/"  # CommunityChannelTypes.SIGNAL: what the stock feed subscribes to
QOS = 1  # the stock feed subscribes at QoS 1
HUB_MQTT_USERNAME = "octobot-signals-hub"
DEFAULT_MQTT_PORT = 1883


class EgressUrlError(ValueError):
    pass


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int

    @property
    def key(self) -> str:
        """Positions are kept per broker: a new broker starts from the present, not from an old position."""
        return f"{self.host}:{self.port}"


def parse_broker_url(url: str, field_name: str = "--mqtt-egress") -> BrokerAddress:
    """`mqtt://host[:port]`. Credentials are refused here: they would end up in shell history and logs."""
    if not isinstance(url, str) or len(url) > 300:
        raise EgressUrlError(f"{field_name}: expected mqtt://host:port")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "mqtt":
        raise EgressUrlError(f"{field_name}: scheme must be mqtt:// (got {parts.scheme or 'none'!r})")
    if parts.username is not None or parts.password is not None:
        raise EgressUrlError(f"{field_name}: no credentials in the URL; the hub's MQTT password comes from "
                             "its store (octobot-signals mosquitto-config) or $OCTOBOT_SIGNALS_MQTT_PASSWORD")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise EgressUrlError(f"{field_name}: expected mqtt://host:port, nothing after the port")
    try:
        port = parts.port
    except ValueError:
        raise EgressUrlError(f"{field_name}: port must be 1..65535") from None
    host = parts.hostname
    if not host:
        raise EgressUrlError(f"{field_name}: missing host")
    if port == 0:
        raise EgressUrlError(f"{field_name}: port must be 1..65535")
    return BrokerAddress(host, port or DEFAULT_MQTT_PORT)


def backoff_delay(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)].

    Jitter spreads reconnects when many hubs (or restarts) hit one broker at the same moment.
    """
    return rng() * min(cap, base * (2 ** min(attempt, 30)))


class NotifyingFanout(LocalFanout):
    """The hub's local fan-out, plus a callback after each journaled message (the egress's wake-up)."""

    def __init__(self, on_publish: Callable[[str, int], None]) -> None:
        super().__init__()
        self._on_publish = on_publish

    def publish(self, strategy_id: str, q: int, frame: str) -> None:
        super().publish(strategy_id, q, frame)
        try:
            self._on_publish(strategy_id, q)
        except Exception:  # the egress must never break live delivery to WebSocket followers
            logger.exception("mqtt egress notification failed")


def feed_payload(message: dict[str, Any]) -> bytes:
    """The plain JSON envelope the stock feed `json.loads` (compact, UTF-8), with order and position numbers
    as JSON numbers: the stock mode misreads decimal strings (mqtt_stock_envelope). `message` is not modified,
    so what /cable and the history serve stays as journaled."""
    return json.dumps(stock_feed_message(message), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class EgressSettings:
    broker: BrokerAddress
    username: str = HUB_MQTT_USERNAME
    password: str | None = None
    connect_timeout_s: float = 5.0
    publish_timeout_s: float = 5.0  # one PUBACK; past it the link counts as broken and is rebuilt
    keepalive_s: int = 15
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 10.0
    batch: int = 200  # journal rows read per store call
    idle_check_s: float = 5.0  # safety net: look at the journal even when no notification came


class MqttEgress:
    """One task: connect, publish everything past each strategy's position, wait for more; on any
    failure, back off (capped, jittered) and reconnect. It retries for as long as the hub runs and
    never drops a message: the journal holds them while the broker is away."""

    def __init__(self, store: AsyncStore, strategy_ids: Callable[[], list[str]], stream_id_of: Callable[[str], str],
                 settings: EgressSettings) -> None:
        self._store = store
        self._strategy_ids = strategy_ids
        self._stream_id_of = stream_id_of
        self.settings = settings
        self._positions: dict[str, int] = {}  # last q acknowledged by the broker, per strategy
        self._saved: dict[str, int] = {}  # last q written to the store
        self._latest: dict[str, int] = {}  # highest q the hub told us about
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._save_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = asyncio.Event()
        self.connections = 0  # successful connects (tests and logs)
        self.published = 0  # PUBACKed messages since start

    @property
    def broker_key(self) -> str:
        return self.settings.broker.key

    def position(self, strategy_id: str) -> int:
        return self._positions.get(strategy_id, 0)

    def notify(self, strategy_id: str, q: int) -> None:
        """Called by the fan-out right after a message is journaled; never blocks."""
        if q > self._latest.get(strategy_id, 0):
            self._latest[strategy_id] = q
        self._wake.set()

    async def start(self) -> None:
        broker = self.broker_key
        ids = list(self._strategy_ids())
        self._positions = await self._store.run(lambda db: db.start_egress_positions(broker, ids))
        self._saved = dict(self._positions)
        self._task = asyncio.create_task(self._run(), name="mqtt-egress")
        logger.info("mqtt egress to %s started (%d strategies)", broker, len(ids))

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in (self._task, self._save_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._save_positions()  # what was acknowledged last, before the store closes

    # -- the loop
    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                async with self._client() as client:
                    attempt = 0
                    self.connections += 1
                    self.connected.set()
                    logger.info("mqtt egress connected to %s", self.broker_key)
                    await self._pump(client)
            except asyncio.CancelledError:
                raise
            except (aiomqtt.MqttError, OSError, asyncio.TimeoutError) as err:
                self.connected.clear()
                delay = backoff_delay(attempt, self.settings.backoff_base_s, self.settings.backoff_cap_s)
                # err never holds the password (paho reports codes and socket errors only)
                log = logger.warning if attempt < 5 else logger.error
                log("mqtt egress to %s: %s; retry %d in %.2f s", self.broker_key, err, attempt + 1, delay)
                attempt += 1
                await self._sleep(delay)
            except Exception:
                self.connected.clear()
                logger.exception("mqtt egress: unexpected error; restarting in %.1f s", self.settings.backoff_cap_s)
                await self._sleep(self.settings.backoff_cap_s)
        self.connected.clear()

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        return aiomqtt.Client(
            s.broker.host, s.broker.port, username=s.username, password=s.password,
            # a unique id per connection: a restarted hub never kicks a stale session of its own off, or waits on it
            identifier=f"{s.username}-{secrets.token_hex(4)}",
            protocol=aiomqtt.ProtocolVersion.V311, clean_session=True, keepalive=s.keepalive_s,
            timeout=s.connect_timeout_s,
        )

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop_waiter(), delay)

    async def _stop_waiter(self) -> None:
        while not self._stopping:
            self._wake.clear()
            await self._wake.wait()

    async def _pump(self, client: aiomqtt.Client) -> None:
        while not self._stopping:
            self._wake.clear()  # before reading: a notification during the read wakes the next round
            sent = 0
            for strategy_id in self._strategy_ids():
                sent += await self._publish_pending(client, strategy_id)
            if sent == 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.idle_check_s)

    async def _publish_pending(self, client: aiomqtt.Client, strategy_id: str) -> int:
        if strategy_id not in self._positions:
            # created while the hub runs: its journal starts at q=1, and the saved 0 keeps a restart from
            # treating it as a strategy this broker never saw (which starts at the present)
            self._positions[strategy_id] = 0
            self._schedule_save()
        after = self._positions[strategy_id]
        latest = self._latest.get(strategy_id)
        if latest is not None and latest <= after:
            return 0
        batch = self.settings.batch
        entries = await self._store.read_after(strategy_id, after, batch)
        if not entries:
            self._latest.setdefault(strategy_id, after)  # caught up: the next read waits for a notification
            return 0
        stream_id = self._stream_id_of(strategy_id)
        topic = TOPIC_PREFIX + strategy_id
        for entry in entries:
            await client.publish(topic, feed_payload(entry.feed_message(stream_id)), qos=QOS,
                                 timeout=self.settings.publish_timeout_s)
            self._positions[strategy_id] = entry.q
            self.published += 1
            self._schedule_save()
        return len(entries)

    # -- saving positions: at most one store write in flight; acks arriving meanwhile are folded into the next
    def _schedule_save(self) -> None:
        if self._save_task is None or self._save_task.done():
            self._save_task = asyncio.create_task(self._save_positions(), name="mqtt-egress-save")

    async def _save_positions(self) -> None:
        broker = self.broker_key
        while True:
            changed = {sid: q for sid, q in self._positions.items() if self._saved.get(sid) != q}
            if not changed:
                return

            def write(db: SqliteStore, changed: dict[str, int] = changed) -> None:
                for sid, q in changed.items():
                    db.set_egress_position(broker, sid, q)

            try:
                await self._store.run(write)
            except RuntimeError:  # store closed: the hub is stopping, the next start resends at worst
                return
            self._saved.update(changed)
