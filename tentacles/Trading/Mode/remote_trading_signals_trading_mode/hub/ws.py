"""The `/cable` WebSocket endpoint: subscribe (with resume/replay) and publish (with ack)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import WSMsgType, web

from ..core import protocol
from .auth import Principal, bearer_token
from .limits import seconds_text
from .state import STATE_KEY, HubState

logger = logging.getLogger("octobot_signals.hub.ws")

SEND_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
REPLAY_PAGE = 500


class FeedConnection:
    """One authenticated WebSocket: a bounded outgoing queue drained by its own writer task."""

    def __init__(self, state: HubState, ws: web.WebSocketResponse, principal: Principal, request: web.Request) -> None:
        self.state = state
        self.ws = ws
        self.principal = principal
        self.request = request
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=state.queue_size)
        self.subscribed: set[str] = set()
        # strategy id -> live frames that arrived while its replay runs (flushed after it).
        self.replaying: dict[str, list[tuple[int, str]]] = {}
        # strategy id -> last q sent once its replay ended: with several replicas a live frame may arrive after
        # the replay already sent it from the journal (the fan-out lags the journal), and it is dropped
        self.sent_q: dict[str, int] = {}
        self.closed = False
        # Set when the queue has room for replay frames (replay keeps half the queue free for
        # live frames and pings, so replaying never overflows the connection by itself).
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._close_task: asyncio.Task[None] | None = None
        self._send_started: float | None = None  # loop time the pending send began, for the watchdog
        self.identifier = protocol.CHANNEL_IDENTIFIER  # the client's identifier text, once it subscribed

    # ----------------------------------------------------------------- outgoing
    def deliver(self, strategy_id: str, q: int, frame: str) -> None:
        if self.closed:
            return
        frame = protocol.delivery_frame_for(frame, self.identifier)
        buffered = self.replaying.get(strategy_id)
        if buffered is not None:
            if len(buffered) >= self.state.queue_size:
                self.overflow()
            else:
                buffered.append((q, frame))
            return
        if q <= self.sent_q.get(strategy_id, 0):
            return
        self.sent_q[strategy_id] = q
        self.send_nowait(frame)

    def send_nowait(self, frame: str) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflow()

    def overflow(self) -> None:
        logger.warning("%s: outgoing queue full, disconnecting (it will resume)", self.principal.label)
        self.close_soon(protocol.CLOSE_TRY_AGAIN_LATER, "too slow: reconnect and resume")

    def close_soon(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._room.set()
        self.state.fanout.unsubscribe_all(self)
        self._close_task = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        for task in self._tasks:
            task.cancel()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            # A peer that stopped reading never answers the close handshake: drop the socket.
            transport = self.request.transport
            if transport is not None and not transport.is_closing():
                transport.abort()

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await self.queue.get()
                if self.queue.qsize() <= self._low_water:
                    self._room.set()
                # The send timeout is enforced by _pinger's watchdog: a wait_for per frame cost a task
                # and a timer per frame per connection, a third of the hub's CPU in 1,000-follower fan-out.
                self._send_started = loop.time()
                await self.ws.send_str(frame)
                self._send_started = None
        except asyncio.CancelledError:
            raise
        except Exception as err:  # reset, closing transport: this link is done
            logger.info("%s: send failed (%s), closing", self.principal.label, type(err).__name__)
            self._drop()

    def _drop(self) -> None:
        self.closed = True
        self._room.set()
        self.state.fanout.unsubscribe_all(self)
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def _pinger(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closed:
            await asyncio.sleep(protocol.PING_INTERVAL_S)
            started = self._send_started
            if started is not None and loop.time() - started > SEND_TIMEOUT_S:
                logger.info("%s: a send is stuck for over %ss, closing", self.principal.label, SEND_TIMEOUT_S)
                for task in self._tasks:
                    if task is not asyncio.current_task():
                        task.cancel()
                self._drop()
                return
            # Queued frames already prove the link is alive; never let a ping overflow the queue.
            if self.queue.empty():
                self.send_nowait(protocol.ping_frame(time.time()))

    @property
    def _high_water(self) -> int:
        return max(1, self.state.queue_size // 2)

    @property
    def _low_water(self) -> int:
        return self.state.queue_size // 4

    # ----------------------------------------------------------------- lifecycle
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._writer()), loop.create_task(self._pinger())]
        self.send_nowait(protocol.welcome_frame())
        try:
            async for msg in self.ws:
                if self.closed:
                    break
                if msg.type == WSMsgType.TEXT:
                    await self._handle_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.close_soon(protocol.CLOSE_POLICY_VIOLATION, "frames must be JSON text")
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.closed = True
            self.state.fanout.unsubscribe_all(self)
            for task in self._tasks:
                task.cancel()
            if self._close_task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._close_task
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle_text(self, text: str) -> None:
        try:
            command = protocol.parse_client_command(text)
        except protocol.ProtocolError as err:
            if err.fatal:
                code = protocol.CLOSE_TOO_LARGE if err.code == "too_large" else protocol.CLOSE_POLICY_VIOLATION
                logger.info("%s: closing on %s", self.principal.label, err.code)
                self.close_soon(code, err.message)
            elif err.u is not None:
                self.send_nowait(protocol.nack_frame(err.u, str(err)))
            else:
                self.send_nowait(protocol.error_frame(str(err)))
            return
        if isinstance(command, protocol.SubscribeCommand):
            await self._subscribe(command)
        else:
            await self._publish(command)

    # ----------------------------------------------------------------- subscribe
    async def _subscribe(self, command: protocol.SubscribeCommand) -> None:
        identifier = command.identifier
        if self.principal.kind == "publisher":
            self.send_nowait(
                protocol.reject_subscription_frame(identifier, "forbidden: a publish secret may only publish")
            )
            return
        if command.strategies is None:
            wanted = [s.id for s in self.state.followable(self.principal)]
        else:
            wanted = list(command.strategies)
            for strategy_id in wanted:
                strategy = self.state.strategies.get(strategy_id)
                if strategy is None:
                    self.send_nowait(protocol.reject_subscription_frame(identifier, f"unknown strategy {strategy_id}"))
                    return
                if not self.state.may_follow(self.principal, strategy):
                    self.send_nowait(
                        protocol.reject_subscription_frame(identifier, f"forbidden: not a follower of {strategy_id}")
                    )
                    return
        unknown_resume = sorted(set(command.resume) - set(wanted))
        if unknown_resume:
            self.send_nowait(
                protocol.reject_subscription_frame(identifier, f"resume names unsubscribed strategies: {unknown_resume}")
            )
            return
        new = [s for s in wanted if s not in self.subscribed]
        self.identifier = identifier  # deliveries echo the client's spelling, as confirmations do
        self.send_nowait(protocol.confirm_subscription_frame(identifier))
        for strategy_id in new:
            if strategy_id in command.resume:
                self.replaying[strategy_id] = []
            self.subscribed.add(strategy_id)
            self.state.fanout.subscribe(self, strategy_id)
        logger.info("%s subscribed to %d strategies (%d resumed)", self.principal.label, len(new), len(command.resume))
        for strategy_id in new:
            if strategy_id in command.resume:
                await self._replay(strategy_id, command.resume[strategy_id])

    async def _replay(self, strategy_id: str, after_q: int) -> None:
        # Subscribed BEFORE reading the journal: anything committed later reaches the
        # buffer, anything earlier is in the journal; the overlap is dropped by q.
        stream_id = self.state.strategies[strategy_id].stream_id
        last = after_q
        try:
            while not self.closed:
                entries = await self.state.store.read_after(strategy_id, last, REPLAY_PAGE)
                for entry in entries:
                    if self.closed:
                        return
                    # Awaiting here only paces this connection's own replay.
                    while self.queue.qsize() >= self._high_water and not self.closed:
                        self._room.clear()
                        await self._room.wait()
                    if self.closed:
                        return
                    frame = protocol.delivery_frame(self.identifier, entry.feed_message(stream_id))
                    self.send_nowait(frame)
                    last = entry.q
                if len(entries) < REPLAY_PAGE:
                    break
        finally:
            buffered = self.replaying.pop(strategy_id, [])
        for q, frame in buffered:
            if q > last:
                self.send_nowait(frame)
                last = q
        self.sent_q[strategy_id] = last

    # ----------------------------------------------------------------- publish
    async def _publish(self, command: protocol.PublishCommand) -> None:
        u = command.u
        if self.principal.kind != "publisher" or self.principal.strategy_id is None:
            self.send_nowait(protocol.nack_frame(u, "forbidden: only a strategy's publish secret may publish"))
            return
        strategy_id = self.principal.strategy_id
        strategy = self.state.strategies.get(strategy_id)
        if strategy is None:  # pragma: no cover - a secret always belongs to a stored strategy
            self.send_nowait(protocol.nack_frame(u, "unknown strategy"))
            return
        bundle = command.bundle
        if bundle["identifier"] != strategy_id:
            self.send_nowait(
                protocol.nack_frame(u, f"forbidden: this publish secret is for strategy {strategy_id}, "
                                       f"not {bundle['identifier']}")
            )
            return
        if command.feed_id != strategy.stream_id:
            self.send_nowait(protocol.nack_frame(u, f"bad_feed_id: data.feed_id is not the stream id of {strategy_id}"))
            return
        if strategy.public_key is not None:
            if command.g is None:
                self.send_nowait(protocol.nack_frame(u, "bad_signature: data.g missing (strategy has a public key)"))
                return
            if not protocol.verify_message(strategy.public_key, command.d, strategy_id, bundle, u, command.g):
                logger.warning("publisher:%s: bad signature on u=%s", strategy_id, u)
                self.send_nowait(protocol.nack_frame(u, "bad_signature: data.g does not verify"))
                return
        wait = self.state.limits.publish_retry_after(strategy_id)
        if wait is not None:
            self.send_nowait(protocol.nack_frame(
                u, f"rate_limited: at most {self.state.limits.settings.publishes_per_minute} publishes per minute "
                   f"for {strategy_id}, retry in {seconds_text(wait)}"))
            return
        async with self.state.publish_lock(strategy_id):
            try:
                result = await self.state.store.append(strategy_id, u, command.d, bundle, command.g)
            except Exception:
                logger.exception("journal append failed for %s", strategy_id)
                self.send_nowait(protocol.nack_frame(u, "internal: journal unavailable, retry"))
                return
            if result.created:
                message = protocol.make_feed_message(u, strategy.stream_id, command.d, result.q, bundle, command.g)
                frame = protocol.delivery_frame(protocol.CHANNEL_IDENTIFIER, message)
                self.state.fanout.publish(strategy_id, result.q, frame)
        self.send_nowait(protocol.ack_frame(u, result.q))


async def cable_handler(request: web.Request) -> web.StreamResponse:
    from .api import json_error  # local import: api imports nothing from here

    state: HubState = request.app[STATE_KEY]
    limits = state.limits
    address = request.remote or "unknown"
    blocked = limits.auth_retry_after(address)
    if blocked is not None:
        return json_error(429, "too_many_failed_auths",
                          f"too many failed authentications from this address: retry in {seconds_text(blocked)}")
    token = bearer_token(request)
    if token is None:
        return json_error(401, "unauthorized", "missing Authorization: Bearer token")
    principal = await state.auth.authenticate(token)
    if principal is None:
        limits.record_failed_auth(address)
        return json_error(401, "unauthorized", "unknown token")
    token_id = principal.follower.token_id if principal.follower is not None else None
    if token_id is not None and not limits.open_connection(token_id):
        return json_error(429, "too_many_connections",
                          f"at most {limits.settings.connections_per_token} open connections per follower token")
    try:
        # aiohttp refuses payloads >= max_msg_size; the protocol refuses only those > MAX_FRAME_BYTES.
        ws = web.WebSocketResponse(max_msg_size=protocol.MAX_FRAME_BYTES + 1, autoping=True)
        await ws.prepare(request)
        connection = FeedConnection(state, ws, principal, request)
        state.connections.add(connection)
        logger.info("%s connected", principal.label)
        try:
            await connection.run()
        finally:
            state.connections.discard(connection)
            logger.info("%s disconnected", principal.label)
    finally:
        if token_id is not None:
            limits.close_connection(token_id)
    return ws
