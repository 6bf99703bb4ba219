"""The `/cable` WebSocket endpoint: subscribe (with resume/replay) and publish (with ack)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from aiohttp import WSMsgType, web

from ..core import protocol
from .api_common import json_error
from .auth import Principal, bearer_token
from .fanout import Outbox
from .limits import MIN_SEND_QUEUE_BYTES, seconds_text
from .performance_service import performance_service
from .state import STATE_KEY, HubState
from .store import HistoryPage

logger = logging.getLogger("octobot_signals.hub.ws")

SEND_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
REPLAY_PAGE = 500  # journal messages per replay read at most; the queue's byte room bounds it too
ROOM_WAIT_S = 1.0
LOST_RETRY_S = 0.05


class _Aside:
    """Live frames of one strategy that arrived while its replay runs, in q order (the fan-out's).

    When they outgrow the connection's room they are dropped and `lost_q` remembers the last one:
    those messages are journaled, so the replay reads on until it has sent them, then the frames set
    aside since (q > lost_q, gap-free) follow. A replay never overflows a reading connection this way.
    """

    __slots__ = ("frames", "lost_q")

    def __init__(self) -> None:
        self.frames: list[tuple[int, str]] = []
        self.lost_q = 0

    def drop(self, outbox: Outbox, q: int) -> None:
        for _, frame in self.frames:
            outbox.drop_aside(frame)
        self.frames.clear()
        self.lost_q = max(self.lost_q, q)


class FeedConnection:
    """One authenticated WebSocket: an outgoing queue bounded in frames and bytes, drained by its own writer task."""

    def __init__(self, state: HubState, ws: web.WebSocketResponse, principal: Principal, request: web.Request) -> None:
        self.state = state
        self.ws = ws
        self.principal = principal
        self.request = request
        limits = state.limits
        self.outbox = Outbox(limits.send_budget, state.queue_size,
                             max(limits.settings.send_queue_bytes, MIN_SEND_QUEUE_BYTES))
        self.subscribed: set[str] = set()
        # strategy id -> live frames that arrived while its replay runs (flushed after it), held in the outbox
        self.replaying: dict[str, _Aside] = {}
        # strategy id -> last q sent once its replay ended: with several replicas a live frame may arrive after
        # the replay already sent it from the journal (the fan-out lags the journal), and it is dropped
        self.sent_q: dict[str, int] = {}
        self.closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._close_task: asyncio.Task[None] | None = None
        self._send_started: float | None = None  # loop time the pending send began, for the watchdog
        self.identifier = protocol.CHANNEL_IDENTIFIER  # the client's identifier text, once it subscribed

    # ----------------------------------------------------------------- outgoing
    def deliver(self, strategy_id: str, q: int, frame: str) -> None:
        if self.closed:
            return
        frame = protocol.delivery_frame_for(frame, self.identifier)
        aside = self.replaying.get(strategy_id)
        if aside is not None:
            if len(aside.frames) < max(1, self.state.queue_size // 4) and self.outbox.set_aside(frame):
                aside.frames.append((q, frame))
            else:  # no room to hold it: the replay reads it from the journal instead
                aside.drop(self.outbox, q)
            return
        if q <= self.sent_q.get(strategy_id, 0):
            return
        self.sent_q[strategy_id] = q
        # shed: over the process's budget, a connection whose queue has not drained goes first
        if not self.outbox.put(frame, shed=True):
            self.overflow()

    def send_nowait(self, frame: str) -> None:
        if self.closed:
            return
        if not self.outbox.put(frame):
            self.overflow()

    def overflow(self) -> None:
        if self.state.limits.send_budget.over():
            logger.warning("%s: the hub's send budget is spent and this connection lags, disconnecting "
                           "(it will resume)", self.principal.label)
            self.close_soon(protocol.CLOSE_TRY_AGAIN_LATER, "hub busy: reconnect and resume")
            return
        logger.warning("%s: outgoing queue full, disconnecting (it will resume)", self.principal.label)
        self.close_soon(protocol.CLOSE_TRY_AGAIN_LATER, "too slow: reconnect and resume")

    def close_soon(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.state.fanout.unsubscribe_all(self)
        self._free()
        self._close_task = asyncio.get_running_loop().create_task(self._close(code, reason))

    def _free(self) -> None:
        """Give back every byte this connection holds (idempotent): its queue and its replay buffers."""
        self.outbox.clear()
        for aside in self.replaying.values():
            aside.drop(self.outbox, 0)

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
                frame = await self.outbox.get()
                # The send timeout is enforced by _pinger's watchdog: a wait_for per frame cost a task
                # and a timer per frame per connection, a third of the hub's CPU in 1,000-follower fan-out.
                self._send_started = loop.time()
                await self.ws.send_str(frame)
                self._send_started = None
                self.outbox.sent(frame)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # reset, closing transport: this link is done
            logger.info("%s: send failed (%s), closing", self.principal.label, type(err).__name__)
            self._drop()

    def _drop(self) -> None:
        self.closed = True
        self.state.fanout.unsubscribe_all(self)
        self._free()
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
            if not len(self.outbox):
                self.send_nowait(protocol.ping_frame(time.time()))

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
            self._free()  # after the writer stopped: nothing is queued any more

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
        elif isinstance(command, protocol.PublishCommand):
            await self._publish(command)
        else:  # a performance snapshot (topic "p"): stored beside the journal, never fanned out
            self.send_nowait(await performance_service(self.request.app).receive(self, command))

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
                # a private strategy this token may not see is refused like an unknown id (no existence oracle)
                refusal = self.state.follow_refusal(self.principal, strategy_id)
                if refusal is not None:
                    self.send_nowait(protocol.reject_subscription_frame(identifier, refusal))
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
                self.replaying[strategy_id] = _Aside()
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
                page, count, limit = await self._replay_page(strategy_id, stream_id, last)
                if page is None or self.closed:
                    return
                prefix = '{"identifier":' + json.dumps(self.identifier, ensure_ascii=False) + ',"message":'
                # The store's page is the history API's: one feed message per line, spliced unparsed (split on
                # "\n" only: JSON escapes it in strings, not U+2028 and the other breaks splitlines() knows).
                for line in page.body.decode("utf-8").split("\n")[:count]:
                    if not self.outbox.put(prefix + line + "}"):
                        self.overflow()
                        return
                if page.last_q is not None:
                    last = page.last_q
                if page.cut_by_size or count >= limit:
                    continue
                if last >= self.replaying[strategy_id].lost_q:
                    break  # the journal has nothing more after `last`, and what came live since is set aside
                if not count:  # pragma: no cover - the fan-out handed over a q this read does not show yet
                    await asyncio.sleep(LOST_RETRY_S)
        finally:
            aside = self.replaying.pop(strategy_id, None) or _Aside()
            for q, frame in aside.frames:
                if q > last and not self.closed:
                    self.outbox.queue_aside(frame)
                    last = q
                else:
                    self.outbox.drop_aside(frame)
        self.sent_q[strategy_id] = last

    async def _replay_page(self, strategy_id: str, stream_id: str, after_q: int) -> tuple[HistoryPage | None, int, int]:
        """The next journal page once this queue has drained and the process has room: (page, lines, limit).

        Sized to what the queue may still take (half of its bounds), reserved in the process's budget
        while it is read; the page exceeds its byte size by one message at most. None if closed meanwhile."""
        budget = self.outbox.budget
        while not self.closed and not (self.outbox.drained.is_set() and budget.room.is_set()):
            event = budget.room if self.outbox.drained.is_set() else self.outbox.drained
            with contextlib.suppress(asyncio.TimeoutError):  # re-checks `closed` at least every second
                await asyncio.wait_for(event.wait(), ROOM_WAIT_S)
        if self.closed:
            return None, 0, 0
        limit = min(REPLAY_PAGE, self.outbox.replay_frames)
        size = max(1, min(self.outbox.replay_bytes, budget.free()))
        budget.reserve(size)
        try:
            page = await self.state.store.run(
                lambda db: db.read_history_page(strategy_id, stream_id, after_q, limit, jsonl=True, max_bytes=size))
        finally:
            budget.unreserve(size)
        return page, page.body.count(b"\n"), limit

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
