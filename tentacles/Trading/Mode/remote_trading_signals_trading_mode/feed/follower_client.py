"""Follower side of the strategy feed: one /cable connection, many strategies, no silent loss.

Guarantees (PROTOCOL.md "Ordering and delivery guarantees"):
- Each strategy's messages reach its handler in `q` order, one at a time (one worker task and
  queue per strategy), and `q` is persisted as applied only after the handler returned.
- After any disconnect or restart the client resumes from the last applied `q`; a gap is filled
  from the history endpoint before later messages are applied; duplicates (same `q`, or same
  `u` under a new `q`) never reach the handler twice.

Choices worth knowing:
- A strategy this follower has never seen starts "from now": before its first subscription
  the client asks the hub for the strategy's latest `q` (`last_q` of the storefront feed lookup;
  a hub without that field is paged through instead) and records it, so the strategy's past is
  not replayed into the bot, but nothing published after that moment can be missed, even across
  a restart. Pass `replay_from_start=True` to apply the whole history instead.
- Every HTTP answer is read with a size limit. A history page may stop short of `limit` at the
  hub's byte budget (header `X-Next-After`); the client goes on with `after=`. A page over the
  client's own limit (a hub without a byte budget) is asked again with half the `limit`.
- A message whose signature is missing or wrong (when the strategy has a configured public
  key) is logged, counted in `stats.rejected_signatures` and SKIPPED: its `q` is recorded as
  processed. The hub journaled it under that `q` for good, so waiting for a "genuine" q=N
  would block the strategy forever; later messages keep flowing. Its `u` is not remembered,
  so a forged copy cannot shadow a genuine message's id.
- A handler that raises is retried (history catch-up after a short backoff) up to
  `max_handler_attempts` times; then the message is logged as rejected and skipped, so one
  poison message cannot block a strategy.
- The token travels only in the Authorization header; it is never logged.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from ..core import protocol
from .backoff import Backoff, BackoffExhausted, LinkOutcome, ReconnectBackoff
from .state_store import FollowerState

MessageHandler = Callable[[dict[str, Any]], Awaitable[None]]

HISTORY_PAGE = protocol.DEFAULT_HISTORY_LIMIT
BASELINE_PAGE = protocol.MAX_HISTORY_LIMIT
# what one history answer may weigh here: the hub's byte budget per page (4 MiB) plus one message over it
MAX_HISTORY_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_LOOKUP_RESPONSE_BYTES = 64 * 1024  # the feed lookup answer is a few dozen bytes
INLINE_JSON_BYTES = 256 * 1024  # larger answers are parsed off the event loop
NEXT_AFTER_HEADER = "X-Next-After"  # the hub cut this page at its byte budget: more may follow
STRATEGY_QUEUE_SIZE = 1000  # a full queue stops reading: the hub then drops us and we resume
WS_CLOSE_TIMEOUT = 5.0


class HistoryError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"history request failed: HTTP {status}: {message}")
        self.status = status


class ResponseTooLarge(HistoryError):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(200, f"answer over {max_bytes} bytes")


async def _read_bounded(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, refused past `max_bytes` without reading the rest into memory."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise ResponseTooLarge(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLarge(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse_json(body: bytes) -> Any:
    try:
        if len(body) > INLINE_JSON_BYTES:
            return await asyncio.to_thread(json.loads, body)
        return json.loads(body)
    except (ValueError, RecursionError) as err:
        raise HistoryError(200, f"answer is not JSON: {type(err).__name__}") from None


@dataclass(frozen=True)
class HistoryPage:
    messages: list[Any]
    cut_by_size: bool  # the hub stopped at its byte budget: ask again from the last q


@dataclass
class FollowerStats:
    received: int = 0  # feed messages delivered over the socket
    applied: int = 0  # handler returned successfully
    duplicates: int = 0  # same q or same u seen again: ignored
    gaps_filled: int = 0  # messages obtained from the history endpoint and applied
    rejected_signatures: int = 0
    rejected_invalid: int = 0  # envelope failed validation
    handler_failures: int = 0  # handler raised (each attempt)
    rejected_handler: int = 0  # gave up after max_handler_attempts
    reconnects: int = 0
    connects: int = 0
    history_requests: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _ws_url(hub_url: str) -> str:
    if hub_url.startswith("https://"):
        return "wss://" + hub_url[len("https://"):] + protocol.WS_PATH
    if hub_url.startswith("http://"):
        return "ws://" + hub_url[len("http://"):] + protocol.WS_PATH
    raise ValueError("hub_url must start with http:// or https://")


class FollowerClient:
    def __init__(
        self,
        hub_url: str,
        token: str,
        state: FollowerState,
        *,
        public_keys: dict[str, str] | None = None,
        stale_after: float = float(protocol.STALE_AFTER_S),
        request_timeout: float = 10.0,
        logger: logging.Logger | None = None,
        replay_from_start: bool = False,
        max_handler_attempts: int = 3,
        backoff_cap: float = 30.0,
        backoff_rng: random.Random | None = None,
    ) -> None:
        if not token:
            raise ValueError("a follower token is required")
        self.hub_url = hub_url.rstrip("/")
        self._ws_url = _ws_url(self.hub_url)
        self._token = token
        self._state = state
        self._public_keys = dict(public_keys or {})
        for strategy_id, key in self._public_keys.items():
            protocol.validate_strategy_id(strategy_id, "public_keys key")
            protocol.validate_public_key(key)
        self.stale_after = stale_after
        self.request_timeout = request_timeout
        self.logger = logger or logging.getLogger("octobot_signals.feed.follower")
        self.replay_from_start = replay_from_start
        self.max_handler_attempts = max_handler_attempts
        self._backoff_cap = backoff_cap
        self._backoff_rng = backoff_rng  # the reconnect jitter: tests pass a scripted one
        self.stats = FollowerStats()
        self.last_rejection: str | None = None  # last reject_subscription reason, for operators

        self._handlers: dict[str, MessageHandler] = {}
        self._trackers: dict[str, protocol.SequenceTracker] = {}
        self._recent: dict[str, protocol.RecentIds] = {}
        self._queues: dict[str, asyncio.Queue[tuple[str, Any]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[tuple[str, int], int] = {}
        self._retry_handles: set[asyncio.TimerHandle] = set()
        self._confirmed = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------------ public API

    @property
    def strategies(self) -> list[str]:
        return list(self._handlers)

    def last_applied(self, strategy_id: str) -> int:
        tracker = self._trackers.get(strategy_id)
        return tracker.last_applied if tracker else self._state.last_q(strategy_id)

    def set_public_key(self, strategy_id: str, public_key: str | None) -> None:
        protocol.validate_strategy_id(strategy_id)
        if public_key is None:
            self._public_keys.pop(strategy_id, None)
        else:
            self._public_keys[strategy_id] = protocol.validate_public_key(public_key)

    def subscribe(self, strategy_id: str, handler: MessageHandler) -> None:
        """Follow a strategy (or replace its handler). Takes effect at once when running."""
        protocol.validate_strategy_id(strategy_id)
        is_new = strategy_id not in self._handlers
        self._handlers[strategy_id] = handler
        if not is_new:
            return
        self._recent[strategy_id] = protocol.RecentIds()
        known = self._state.all_last_q()
        if strategy_id in known:
            self._trackers[strategy_id] = protocol.SequenceTracker(known[strategy_id])
        elif self.replay_from_start:
            self._trackers[strategy_id] = protocol.SequenceTracker(0)
        # else: tracker created from the hub's latest q on the next connection (see module doc)
        if self._session is not None:
            self._start_worker(strategy_id)
            # Simplest correct way to add a strategy to a live link: reconnect with the full
            # set and resume positions (the first reconnect comes within ReconnectBackoff.first).
            self._confirmed.clear()
            self._drop_link()

    async def start(self, *, connect: bool = True) -> None:
        """Start processing. connect=False runs without the live link: only messages given to
        ingest() are processed (gap fill still uses the history endpoint)."""
        if self._session is not None:
            return
        self._stopping = False
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.request_timeout)
        )
        for strategy_id in self._handlers:
            self._start_worker(strategy_id)
        if connect:
            self._run_task = asyncio.get_running_loop().create_task(self._run(), name="follower-client")

    async def ingest(self, message: dict[str, Any]) -> None:
        """Process a feed message obtained out of band (another transport, a journal file...),
        with the same ordering, dedup, gap-fill and signature rules as live deliveries."""
        if self._session is None:
            raise RuntimeError("start() the client first")
        self.stats.received += 1
        await self._route(message)

    async def stop(self) -> None:
        self._stopping = True
        for handle in self._retry_handles:
            handle.cancel()
        self._retry_handles.clear()
        tasks = [t for t in [self._run_task, *self._workers.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._run_task = None
        self._workers.clear()
        self._queues.clear()
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), WS_CLOSE_TIMEOUT)
        self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._confirmed.clear()

    async def wait_until_subscribed(self, timeout: float) -> None:
        """Wait for the hub's confirm_subscription (raises asyncio.TimeoutError)."""
        await asyncio.wait_for(self._confirmed.wait(), timeout)

    async def wait_for_q(self, strategy_id: str, q: int, timeout: float) -> None:
        """Wait until `q` of a strategy was processed (handy for tests and demos)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.last_applied(strategy_id) < q:
            if loop.time() >= deadline:
                raise asyncio.TimeoutError(f"{strategy_id}: q={self.last_applied(strategy_id)} < {q}")
            await asyncio.sleep(0.01)

    def close_link(self) -> None:
        """Cut the current connection (the client reconnects and resumes): for tests and operators."""
        self._drop_link()

    # ------------------------------------------------------------------ connection loop

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _drop_link(self) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            asyncio.get_running_loop().create_task(ws.close())

    async def _run(self) -> None:
        backoff = ReconnectBackoff(cap=self._backoff_cap, rng=self._backoff_rng)
        loop = asyncio.get_running_loop()
        while not self._stopping:
            # filled in by _connect_once as it goes: an exception ending the link must not hide that it had worked
            link = LinkOutcome()
            try:
                await self._connect_once(link)
            except asyncio.CancelledError:
                raise
            except (aiohttp.WSServerHandshakeError, aiohttp.ClientResponseError) as err:
                self.logger.warning("feed connection refused by %s: HTTP %s", self.hub_url, err.status)
                link.refused = 400 <= err.status < 500  # a 5xx is a hub in trouble: it may be back soon
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, HistoryError) as err:
                self.logger.warning("feed connection to %s failed: %s", self.hub_url, type(err).__name__)
            except Exception:  # never let the loop die: log and retry with backoff
                self.logger.exception("unexpected feed client error")
            finally:
                self._confirmed.clear()
                ws, self._ws = self._ws, None
                if ws is not None and not ws.closed:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(ws.close(), WS_CLOSE_TIMEOUT)
            if self._stopping:
                break
            backoff.link_ended(link, loop.time())
            self.stats.reconnects += 1
            await backoff.sleep()

    async def _connect_once(self, link: LinkOutcome) -> None:
        """One connection's life, told in `link` (it decides how soon the next one is tried)."""
        assert self._session is not None
        ws = await asyncio.wait_for(
            self._session.ws_connect(
                self._ws_url,
                headers=self._auth(),
                autoping=True,
                heartbeat=None,
                max_msg_size=protocol.MAX_FRAME_BYTES * 2,  # our own check below gives the clear error
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WS_CLOSE_TIMEOUT),
            ),
            self.request_timeout,
        )
        self._ws = ws
        self.stats.connects += 1
        first = await self._receive_frame(ws, self.request_timeout)
        if not isinstance(first, protocol.Welcome):
            self.logger.warning("feed: expected welcome, got %s", type(first).__name__)
            return
        link.welcomed_at = asyncio.get_running_loop().time()
        if not self._handlers:
            # Nothing to follow yet: keep the link (subscribe() will cycle it).
            pass
        else:
            await self._establish_baselines()
            resume = {s: t.last_applied for s, t in self._trackers.items() if s in self._handlers}
            await ws.send_str(protocol.build_subscribe_command(list(self._handlers), resume))
        while not self._stopping:
            frame = await self._receive_frame(ws, self.stale_after)
            if frame is None:
                return
            if isinstance(frame, protocol.Delivery):
                self.stats.received += 1
                await self._route(frame.message)
            elif isinstance(frame, protocol.Confirm):
                link.worked = True
                self.last_rejection = None
                self._confirmed.set()
                self.logger.info("feed: subscribed to %d strategies on %s", len(self._handlers), self.hub_url)
            elif isinstance(frame, protocol.Reject):
                self.last_rejection = frame.message
                self.logger.error("feed: subscription rejected by hub: %s", frame.message)
                link.refused = True
                return
            elif isinstance(frame, protocol.Error):
                self.logger.warning("feed: hub reported an error: %s", frame.message)

    async def _receive_frame(self, ws: aiohttp.ClientWebSocketResponse, timeout: float) -> Any:
        """Next parsed server frame, or None when the link is closed / stale / broken."""
        while True:
            try:
                msg = await ws.receive(timeout=timeout)
            except asyncio.TimeoutError:
                self.logger.warning("feed: no frame for %.0f s, link is stale: reconnecting", timeout)
                return None
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                self.logger.info("feed: link closed by hub (%s)", msg.extra or msg.data)
                return None
            if msg.type == aiohttp.WSMsgType.ERROR:
                self.logger.warning("feed: link error: %s", type(msg.data).__name__)
                return None
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                return protocol.parse_server_frame(msg.data)
            except protocol.ProtocolError as err:
                self.logger.warning("feed: unreadable frame from hub skipped: %s", err)

    async def _establish_baselines(self) -> None:
        """For never-seen strategies: start after the hub's latest q (see module doc)."""
        for strategy_id in list(self._handlers):
            if strategy_id in self._trackers:
                continue
            latest = await self._hub_last_q(strategy_id)
            if latest is None:
                latest = await self._last_q_from_history(strategy_id)
            await self._state.aset_last_q(strategy_id, latest)
            self._trackers[strategy_id] = protocol.SequenceTracker(latest)
            self.logger.info("feed: following %s from q=%d on (earlier history not replayed)", strategy_id, latest)

    async def _hub_last_q(self, strategy_id: str) -> int | None:
        """The strategy's latest q in one small request, or None from a hub that does not say."""
        try:
            body, _ = await self._get_json(f"/api/v2/storefront/feeds/id/{strategy_id}", {},
                                           MAX_LOOKUP_RESPONSE_BYTES)
        except HistoryError:
            return None  # a hub without the lookup: its history answers (or says what is wrong)
        last_q = body.get("last_q") if isinstance(body, dict) else None
        if isinstance(last_q, int) and not isinstance(last_q, bool) and last_q >= 0:
            return last_q
        return None

    async def _last_q_from_history(self, strategy_id: str) -> int:
        # a hub without `last_q`: page through the journal (it never cuts pages by size, see module doc)
        latest = 0
        limit = BASELINE_PAGE
        while True:
            page, limit = await self._fetch_fitting_page(strategy_id, latest, limit)
            q = page.messages[-1].get("q") if page.messages and isinstance(page.messages[-1], dict) else None
            if not (isinstance(q, int) and not isinstance(q, bool) and q > latest):
                return latest
            latest = q
            if len(page.messages) < limit and not page.cut_by_size:
                return latest

    async def _get_json(self, path: str, params: dict[str, str], max_bytes: int) -> tuple[Any, Any]:
        """(parsed body, headers) of a GET on the hub; HistoryError on any failure status."""
        assert self._session is not None
        async with self._session.get(
            self.hub_url + path,
            params=params,
            headers=self._auth(),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
        ) as resp:
            if resp.status != 200:
                text = (await _read_bounded(resp, 4096)).decode("utf-8", "replace")
                raise HistoryError(resp.status, text[:200])
            body = await _read_bounded(resp, max_bytes)
            headers = resp.headers
        return await _parse_json(body), headers

    async def _fetch_history(self, strategy_id: str, after: int, limit: int) -> HistoryPage:
        self.stats.history_requests += 1
        body, headers = await self._get_json(f"/api/strategies/{strategy_id}/signals",
                                             {"after": str(after), "limit": str(limit)}, MAX_HISTORY_RESPONSE_BYTES)
        if not isinstance(body, list):
            raise HistoryError(200, "history is not a JSON list")
        return HistoryPage(body, NEXT_AFTER_HEADER in headers)

    async def _fetch_fitting_page(self, strategy_id: str, after: int, limit: int) -> tuple[HistoryPage, int]:
        """A history page and the limit it was asked with: halved while the answer is over our size limit (a hub
        without a byte budget). One message over the limit raises ResponseTooLarge: no hub following the
        protocol's frame limit sends that."""
        while True:
            try:
                return await self._fetch_history(strategy_id, after, limit), limit
            except ResponseTooLarge:
                if limit == 1:
                    raise
                limit = max(1, limit // 2)

    # ------------------------------------------------------------------ per-strategy processing

    def _start_worker(self, strategy_id: str) -> None:
        if strategy_id in self._workers:
            return
        self._queues[strategy_id] = asyncio.Queue(maxsize=STRATEGY_QUEUE_SIZE)
        self._workers[strategy_id] = asyncio.get_running_loop().create_task(
            self._worker(strategy_id), name=f"follower-{strategy_id}"
        )

    async def _route(self, message: dict[str, Any]) -> None:
        bundle = message.get("s")
        strategy_id = bundle.get("identifier") if isinstance(bundle, dict) else None
        queue = self._queues.get(strategy_id) if isinstance(strategy_id, str) else None
        if queue is None:
            # Unreadable or not ours: a later message's gap fill (which knows the strategy)
            # settles it if it was ours.
            self.stats.rejected_invalid += 1
            self.logger.warning("feed: delivered message for an unknown strategy skipped (u=%.40r)", message.get("u"))
            return
        await queue.put(("message", message))

    async def _worker(self, strategy_id: str) -> None:
        queue = self._queues[strategy_id]
        while True:
            kind, payload = await queue.get()
            try:
                if kind == "message":
                    await self._on_message(strategy_id, payload, from_history=False)
                else:
                    await self._catch_up(strategy_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.logger.exception("feed: error while processing %s", strategy_id)

    async def _on_message(self, strategy_id: str, raw: Any, *, from_history: bool) -> bool:
        """Process one message in order. False when processing must stop (retry scheduled)."""
        tracker = self._trackers.get(strategy_id)
        if tracker is None:  # ingest() on a never-seen strategy without a live link: from the state (0)
            tracker = self._trackers[strategy_id] = protocol.SequenceTracker(self._state.last_q(strategy_id))
        try:
            message = protocol.parse_feed_message(raw)
            if message.strategy_id != strategy_id:
                raise protocol.ProtocolError("bad_message", f"s.identifier is not {strategy_id}")
        # ProtocolError is the expected refusal; the others mean a check missed a hostile value (e.g. an
        # OverflowError): still this message's fault, so it is skipped with a reason instead of stalling the worker
        except (protocol.ProtocolError, ValueError, ArithmeticError, TypeError) as err:
            self.stats.rejected_invalid += 1
            reason = err if isinstance(err, protocol.ProtocolError) else f"{type(err).__name__}: {err}"
            self.logger.warning("feed %s: invalid message skipped: %s", strategy_id, reason)
            q = raw.get("q") if isinstance(raw, dict) else None
            # Only a history entry is surely this strategy's: record its q so nothing waits on it.
            if from_history and isinstance(q, int) and not isinstance(q, bool) and tracker.classify(q) == "apply":
                await self._advance(strategy_id, q)
            return True
        verdict = tracker.classify(message.q)
        if verdict == "duplicate":
            self.stats.duplicates += 1
            return True
        if verdict == "gap":
            if not from_history:
                self.logger.info(
                    "feed %s: gap (have q=%d, got q=%d): filling from history", strategy_id, tracker.last_applied,
                    message.q,
                )
                complete = await self._catch_up(strategy_id)
                verdict = tracker.classify(message.q)
                if verdict == "duplicate":
                    self.stats.duplicates += 1  # the history covered it
                    return True
                if not complete:
                    return False  # history unreachable or a handler failed: retry scheduled
            # The hub says those q do not exist (never expected): do not wait forever.
            self.logger.error(
                "feed %s: hub history has no q in (%d, %d): continuing", strategy_id, tracker.last_applied,
                message.q,
            )
        applied = await self._apply(strategy_id, message)
        if applied and from_history:
            self.stats.gaps_filled += 1
        return applied

    async def _apply(self, strategy_id: str, message: protocol.FeedMessage) -> bool:
        public_key = self._public_keys.get(strategy_id)
        if public_key is not None and not message.verify(public_key):
            reason = "unsigned" if message.g is None else "signature does not verify"
            self.stats.rejected_signatures += 1
            self.logger.warning(
                "feed %s: REJECTED q=%d u=%.40s: %s (skipped, see module doc)", strategy_id, message.q, message.u,
                reason,
            )
            await self._advance(strategy_id, message.q)
            return True
        if message.u in self._recent[strategy_id]:
            self.stats.duplicates += 1
            await self._advance(strategy_id, message.q)
            return True
        handler = self._handlers[strategy_id]
        key = (strategy_id, message.q)
        try:
            await handler(message.to_dict())
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.stats.handler_failures += 1
            attempts = self._failures.get(key, 0) + 1
            if attempts >= self.max_handler_attempts:
                self._failures.pop(key, None)
                self.stats.rejected_handler += 1
                self.logger.error(
                    "feed %s: q=%d u=%.40s REJECTED after %d failed attempts (last: %s: %s)", strategy_id,
                    message.q, message.u, attempts, type(err).__name__, err,
                )
                await self._advance(strategy_id, message.q)
                return True
            self._failures[key] = attempts
            self.logger.warning(
                "feed %s: handler failed on q=%d (attempt %d/%d): %s: %s", strategy_id, message.q, attempts,
                self.max_handler_attempts, type(err).__name__, err,
            )
            self._schedule_catch_up(strategy_id, 0.2 * (2 ** (attempts - 1)))
            return False
        self._failures.pop(key, None)
        self._recent[strategy_id].add(message.u)
        await self._advance(strategy_id, message.q)
        self.stats.applied += 1
        return True

    async def _advance(self, strategy_id: str, q: int) -> None:
        self._trackers[strategy_id].applied(q)
        await self._state.aset_last_q(strategy_id, q)

    def _schedule_catch_up(self, strategy_id: str, delay: float) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._retry_handles.discard(handle)
            queue = self._queues.get(strategy_id)
            if queue is not None and not self._stopping:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(("catch_up", None))

        handle = loop.call_later(delay, fire)
        self._retry_handles.add(handle)

    async def _catch_up(self, strategy_id: str) -> bool:
        """Apply history after the last applied q until caught up. False if it had to stop early."""
        backoff = Backoff(base=0.2, cap=5.0, max_attempts=5)
        limit = HISTORY_PAGE
        while not self._stopping:
            after = self._trackers[strategy_id].last_applied
            try:
                page, limit = await self._fetch_fitting_page(strategy_id, after, limit)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, HistoryError, ValueError) as err:
                try:
                    delay = backoff.next_delay()
                except BackoffExhausted:
                    self.logger.error(
                        "feed %s: history unavailable (%s): will catch up on the next message or reconnect",
                        strategy_id, err,
                    )
                    return False
                await asyncio.sleep(delay)
                continue
            for raw in page.messages:
                if not await self._on_message(strategy_id, raw, from_history=True):
                    return False
            if not page.messages or (len(page.messages) < limit and not page.cut_by_size):
                return True
        return False
