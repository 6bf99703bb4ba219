"""Publisher side of the strategy feed: nothing is dropped because the hub blipped.

publish() writes the bundle to the durable Outbox and returns; a single sender task keeps a
/cable connection (Bearer publish secret) and sends pending bundles oldest first, ONE at a
time: the next one leaves only after the hub acked the previous, which keeps the order even
across reconnects. A retry reuses the same `u` (and `d`, so the signature is the same), and
the hub's dedup on `u` turns at-least-once sending into exactly-once journaling.

- `ack` -> the row is marked acked with the hub's `q`.
- `nack` -> the hub refused the message as invalid: logged and marked rejected, never retried
  (retrying cannot fix it and would block everything behind it). Exception: a nack whose
  reason starts with "internal" (the hub's journal was unavailable) or "rate_limited" (the strategy
  published more than the hub's per-minute limit) is retried with backoff.
- no answer within ack_timeout, a closed link, a refused connection -> backoff and retry
  (ReconnectBackoff: the wait follows the outage, so a restarted hub gets the pending rows within
  about a second; an HTTP 4xx refusal or a rate_limited nack slows the retries down instead).

Only this strategy's rows are sent: an outbox written while the bot published to another strategy
keeps that strategy's rows pending (the hub would refuse them on this stream) until a publisher of
that strategy runs again.

The stream id sent as `feed_id` is read once from
`GET /api/v2/storefront/feeds/id/{strategy}`, which the hub also serves to the strategy's
own publish secret.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from ..core import protocol
from .backoff import LinkOutcome, ReconnectBackoff
from .outbox import Outbox, OutboxItem

WS_CLOSE_TIMEOUT = 5.0
RETRYABLE_NACK_PREFIXES = ("internal", "rate_limited")  # the hub's trouble or pace, not the message's


class PublishRefused(RuntimeError):
    """The hub refused the connection or the stream-id lookup with a client error (bad secret...)."""


@dataclass
class PublisherStats:
    published: int = 0  # bundles enqueued through publish()
    sent: int = 0  # publish frames written (retries included)
    acked: int = 0
    rejected: int = 0
    retries: int = 0
    reconnects: int = 0
    connects: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _LinkLost(Exception):
    """The connection ended while a message waited for its ack."""


class PublisherClient:
    def __init__(
        self,
        hub_url: str,
        publish_secret: str,
        strategy_id: str,
        outbox: Outbox,
        *,
        private_key_b64: str | None = None,
        ack_timeout: float = 10.0,
        request_timeout: float = 10.0,
        stale_after: float = float(protocol.STALE_AFTER_S),
        logger: logging.Logger | None = None,
        backoff_cap: float = 30.0,
        backoff_rng: random.Random | None = None,
    ) -> None:
        if not publish_secret:
            raise ValueError("a publish secret is required")
        self.hub_url = hub_url.rstrip("/")
        if not self.hub_url.startswith(("http://", "https://")):
            raise ValueError("hub_url must start with http:// or https://")
        self._secret = publish_secret
        self.strategy_id = protocol.validate_strategy_id(strategy_id)
        self.outbox = outbox
        self._private_key = protocol.load_private_key(private_key_b64) if private_key_b64 else None
        self.ack_timeout = ack_timeout
        self.request_timeout = request_timeout
        self.stale_after = stale_after
        self.logger = logger or logging.getLogger("octobot_signals.feed.publisher")
        self._backoff_cap = backoff_cap
        self._backoff_rng = backoff_rng  # the reconnect jitter: tests pass a scripted one
        self.stats = PublisherStats()
        self.feed_id: str | None = None
        self.connected = False

        self._wake = asyncio.Event()
        self._changed = asyncio.Event()  # set whenever a row leaves the pending state
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[protocol.Ack | protocol.Nack]] = {}
        self._welcomed: asyncio.Future[None] | None = None
        self._link = LinkOutcome()  # how the current connection goes: it paces the next one
        self._stopping = False

    # ------------------------------------------------------------------ public API

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if self._task is not None:
            # it ended without stop(): OctoBot closed the event loop it ran on (part of OctoBot's start runs in
            # a loop it then closes). Start afresh on this one: events, waiters and the session were that loop's
            self._wake, self._changed, self._waiting = asyncio.Event(), asyncio.Event(), {}
            if self._session is not None:
                with contextlib.suppress(Exception):  # its loop may be closed: nothing left to release then
                    await self._session.close()
        self._stopping = False
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.request_timeout)
        )
        self._wake.set()  # send whatever a previous run left in the outbox
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"publisher-{self.strategy_id}")

    async def stop(self) -> None:
        """Stop sending; pending bundles stay in the outbox for the next start()."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close_ws()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.connected = False

    async def publish(self, bundle: dict[str, Any]) -> str:
        """Store the bundle durably (returns its message id `u`), then wake the sender."""
        protocol.validate_bundle_shape(bundle, "bundle")
        if bundle["identifier"] != self.strategy_id:
            raise ValueError(
                f"bundle.identifier is {bundle['identifier']!r}, this publisher sends strategy {self.strategy_id!r}"
            )
        u = await self.outbox.aenqueue(self.strategy_id, bundle)
        self.stats.published += 1
        self._wake.set()
        return u

    async def flush(self, timeout: float) -> bool:
        """Wait until the outbox has nothing pending; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            if await self.outbox.acount_pending(self.strategy_id) == 0:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def close_link(self) -> None:
        """Cut the current connection (the sender reconnects): for tests and operators."""
        ws = self._ws
        if ws is not None and not ws.closed:
            asyncio.get_running_loop().create_task(ws.close())

    # ------------------------------------------------------------------ sender

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._secret}"}

    async def _close_ws(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), WS_CLOSE_TIMEOUT)

    async def _run(self) -> None:
        backoff = ReconnectBackoff(cap=self._backoff_cap, rng=self._backoff_rng)
        loop = asyncio.get_running_loop()
        while not self._stopping:
            # Connect only when there is something to send: an idle publisher holds no socket.
            await self._wake.wait()
            if await self.outbox.acount_pending(self.strategy_id) == 0:
                self._wake.clear()
                if await self.outbox.acount_pending(self.strategy_id) == 0:
                    continue
            # on self, not a return value: a lost link raises, and must not hide the rows it had settled
            link = self._link = LinkOutcome()
            try:
                await self._session_once()
            except asyncio.CancelledError:
                raise
            except PublishRefused as err:
                link.refused = True
                self.logger.error("publisher %s: %s", self.strategy_id, err)
            except (aiohttp.WSServerHandshakeError, aiohttp.ClientResponseError) as err:
                link.refused = 400 <= err.status < 500  # a 5xx is a hub in trouble: it may be back soon
                self.logger.warning("publisher %s: hub refused the connection: HTTP %s", self.strategy_id, err.status)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, _LinkLost) as err:
                self.logger.warning(
                    "publisher %s: link to %s lost (%s); pending bundles kept", self.strategy_id, self.hub_url,
                    type(err).__name__,
                )
            except Exception:
                self.logger.exception("publisher %s: unexpected error", self.strategy_id)
            finally:
                self.connected = False
                self._fail_waiters()
                await self._close_ws()
            if self._stopping:
                break
            backoff.link_ended(link, loop.time())
            self.stats.reconnects += 1
            self._wake.set()
            await backoff.sleep()

    async def _lookup_feed_id(self) -> str:
        assert self._session is not None
        url = f"{self.hub_url}/api/v2/storefront/feeds/id/{self.strategy_id}"
        async with self._session.get(
            url, headers=self._auth(), timeout=aiohttp.ClientTimeout(total=self.request_timeout)
        ) as resp:
            if resp.status in (401, 403, 404):
                raise PublishRefused(f"stream id lookup refused: HTTP {resp.status} (check the publish secret and "
                                     "the strategy id: OctoBot's octobot-signals card or OCTOBOT_SIGNALS_*)")
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            body = await resp.json()
        feed_id = body.get("feed_id") if isinstance(body, dict) else None
        if not isinstance(feed_id, str) or not feed_id:
            raise PublishRefused("stream id lookup returned no feed_id")
        return feed_id

    async def _session_once(self) -> None:
        """One connection: send everything pending (self._link says how it went)."""
        assert self._session is not None
        if self.feed_id is None:
            self.feed_id = await self._lookup_feed_id()
        ws_url = self.hub_url.replace("http", "ws", 1) + protocol.WS_PATH
        ws = await asyncio.wait_for(
            self._session.ws_connect(
                ws_url,
                headers=self._auth(),
                autoping=True,
                heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WS_CLOSE_TIMEOUT),
            ),
            self.request_timeout,
        )
        self._ws = ws
        self.stats.connects += 1
        loop = asyncio.get_running_loop()
        welcomed: asyncio.Future[None] = loop.create_future()
        self._welcomed = welcomed
        reader = loop.create_task(self._reader(ws))
        # A waiter must not sit out its whole ack timeout on a link that is already gone.
        reader.add_done_callback(lambda _: self._fail_waiters())
        try:
            await asyncio.wait({welcomed, reader}, timeout=self.request_timeout, return_when=asyncio.FIRST_COMPLETED)
            if not welcomed.done():
                raise _LinkLost()
            self._link.welcomed_at = loop.time()
            self.connected = True
            while not self._stopping:
                items = await self.outbox.apending(50, self.strategy_id)
                if not items:
                    self._wake.clear()
                    if await self.outbox.acount_pending(self.strategy_id):
                        continue
                    # Idle: keep the link while bundles may come, drop it when the link dies.
                    wake = asyncio.ensure_future(self._wake.wait())
                    done, _ = await asyncio.wait({wake, reader}, return_when=asyncio.FIRST_COMPLETED)
                    if reader in done:
                        wake.cancel()
                        return
                    continue
                for item in items:
                    if reader.done():
                        raise _LinkLost()
                    if await self._send_one(ws, item, reader):
                        self._link.worked = True
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    def _frame(self, item: OutboxItem) -> str:
        """The publish command of one row, signed when a key is set (performance_publisher sends snapshots)."""
        assert self.feed_id is not None
        g = (
            protocol.sign_message(self._private_key, item.d, self.strategy_id, item.bundle, item.u)
            if self._private_key is not None
            else None
        )
        return protocol.build_publish_command(self.feed_id, item.bundle, item.u, item.d, g)

    async def _send_one(self, ws: aiohttp.ClientWebSocketResponse, item: OutboxItem, reader: asyncio.Task[None]) -> bool:
        """Send one row and settle it. Raises on a lost link / timeout (the caller reconnects)."""
        frame = self._frame(item)
        future: asyncio.Future[protocol.Ack | protocol.Nack] = asyncio.get_running_loop().create_future()
        self._waiting[item.u] = future
        try:
            await asyncio.wait_for(ws.send_str(frame), self.ack_timeout)
            self.stats.sent += 1
            answer = await asyncio.wait_for(future, self.ack_timeout)
        finally:
            self._waiting.pop(item.u, None)
        if isinstance(answer, protocol.Ack):
            await self.outbox.amark_acked(item.u, answer.q)
            self.stats.acked += 1
            self._changed.set()
            return True
        if answer.message.startswith(RETRYABLE_NACK_PREFIXES):
            # over the per-minute limit, a quick retry is refused again: slow down
            self._link.refused = self._link.refused or answer.message.startswith("rate_limited")
            self.stats.retries += 1
            self.logger.warning("publisher %s: hub asked to retry u=%s: %s", self.strategy_id, item.u, answer.message)
            raise _LinkLost()
        self.logger.error("publisher %s: hub REJECTED u=%s: %s (not retried)", self.strategy_id, item.u, answer.message)
        await self.outbox.amark_rejected(item.u, answer.message)
        self.stats.rejected += 1
        self._changed.set()
        return True

    async def _reader(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Reads acks/nacks and pings; returns when the link is closed, broken or stale."""
        while True:
            try:
                msg = await ws.receive(timeout=self.stale_after)
            except asyncio.TimeoutError:
                self.logger.warning("publisher %s: link stale (no frame for %.0f s)", self.strategy_id, self.stale_after)
                return
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.ERROR):
                    return
                continue
            try:
                frame = protocol.parse_server_frame(msg.data)
            except protocol.ProtocolError as err:
                self.logger.warning("publisher %s: unreadable frame skipped: %s", self.strategy_id, err)
                continue
            if isinstance(frame, protocol.Welcome):
                if self._welcomed is not None and not self._welcomed.done():
                    self._welcomed.set_result(None)
            elif isinstance(frame, protocol.Ack | protocol.Nack):
                future = self._waiting.get(str(frame.u))
                if future is not None and not future.done():
                    future.set_result(frame)
            elif isinstance(frame, protocol.Error):
                self.logger.warning("publisher %s: hub error: %s", self.strategy_id, frame.message)

    def _fail_waiters(self) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(_LinkLost())
        self._waiting.clear()
