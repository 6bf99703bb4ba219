"""Start and stop a hub: `start_hub` (in-process, for tests and the demo) and `run_hub` (blocking CLI)."""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..core import protocol
from .api import MAX_BODY_BYTES, add_routes, error_middleware
from .auth import Authenticator, hash_secret, new_secret
from .limits import Limits, LimitSettings
from .mqtt_runtime import MqttRuntime, MqttSettings, start_mqtt
from .performance_service import PERFORMANCE_KEY, PerformanceService, PerformanceSettings
from .state import STATE_KEY, HubState
from .store import AsyncStore
from .web.app import page_middleware, setup_web
from .web.context import SIGNUP_MODES, SignupMode
from .ws import cable_handler

if TYPE_CHECKING:
    from .store_pg_replicas import ReplicaSync

logger = logging.getLogger("octobot_signals.hub")

ADMIN_TOKEN_ENV = "OCTOBOT_SIGNALS_ADMIN_TOKEN"
ADMIN_HASH_KEY = "admin_token_sha256"


@dataclass
class HubHandle:
    host: str
    port: int
    data_dir: Path
    admin_token: str | None  # plaintext when given or generated now; None when only its hash is known
    state: HubState
    _runner: web.AppRunner = field(repr=False)
    _stopped: bool = False
    mqtt: MqttRuntime | None = field(default=None, repr=False)  # --mqtt-egress / --mosquitto-dir
    replicas: ReplicaSync | None = field(default=None, repr=False)  # --store postgresql://: LISTEN + poll

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + protocol.WS_PATH

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for connection in list(self.state.connections):
            connection.close_soon(1001, "hub shutting down")
        await self._runner.cleanup()
        if self.replicas is not None:  # first: its catch-up feeds the MQTT egress's fan-out too
            await self.replicas.stop()
        if self.mqtt is not None:  # after the last publish, before the store closes (it saves its position)
            await self.mqtt.stop()
        await self.state.store.close()
        logger.info("hub stopped")


async def _resolve_admin_token(store: AsyncStore, given: str | None) -> tuple[str, str | None]:
    """(hash, plaintext or None). Precedence: argument, environment, stored hash, new token."""
    token = given or os.environ.get(ADMIN_TOKEN_ENV) or None
    stored = await store.run(lambda db: db.get_meta(ADMIN_HASH_KEY))
    if token is not None:
        token_hash = hash_secret(token)
        if stored is None or not hmac.compare_digest(stored, token_hash):
            await store.run(lambda db: db.set_meta(ADMIN_HASH_KEY, token_hash))
        return token_hash, token
    if stored is not None:
        return stored, None
    token = new_secret("adm")
    token_hash = hash_secret(token)
    await store.run(lambda db: db.set_meta(ADMIN_HASH_KEY, token_hash))
    # Printed once, on stdout only (never to the log); only its hash is kept.
    print(f"Generated hub admin token (shown once, store it now): {token}", flush=True)
    return token_hash, token


async def start_hub(
    host: str,
    port: int,
    data_dir: Path | str,
    admin_token: str | None = None,
    public_url: str | None = None,
    queue_size: int = 1000,
    signup: SignupMode = "invite",
    mqtt: MqttSettings | None = None,
    limits: LimitSettings | None = None,
    store_url: str | None = None,
    performance: PerformanceSettings | None = None,
) -> HubHandle:
    """Start a hub on host:port (port 0 = ephemeral) with its state in data_dir.

    queue_size: outgoing frames buffered per connection before a follower counts as too slow.
    signup: how people get an account on the web pages: "open", "invite" (an operator's code) or "closed".
    mqtt: the MQTT egress for stock OctoBot followers and the Mosquitto ACL sync (off when None).
    limits: connections per follower token, publishes per strategy per minute, failed auths per address.
    store_url: a postgresql:// URL: the state lives there, shared with other hub replicas (default: the
    SQLite file in data_dir, which still holds web.key either way).
    performance: how often a strategy may report a performance snapshot (default: once per 10 s).
    """
    if signup not in SIGNUP_MODES:
        raise ValueError(f"signup must be one of {SIGNUP_MODES}, got {signup!r}")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = AsyncStore(data_dir, store_url)
    await store.open()
    mqtt_runtime: MqttRuntime | None = None
    replicas: ReplicaSync | None = None
    try:
        admin_hash, admin_plain = await _resolve_admin_token(store, admin_token)
        strategies = await store.run(lambda db: db.load_strategies())
        state = HubState(store=store, auth=Authenticator(store, admin_hash), hub_url="", queue_size=queue_size,
                         limits=Limits(limits))
        state.strategies = {s.id: s for s in strategies}
        # page_middleware inside error_middleware: pages answer HTML, the API keeps its JSON errors.
        app = web.Application(middlewares=[error_middleware, page_middleware], client_max_size=MAX_BODY_BYTES)
        app[STATE_KEY] = state
        app[PERFORMANCE_KEY] = PerformanceService(performance or PerformanceSettings())
        add_routes(app)
        from .api_performance import add_performance_routes  # GET /api/strategies/{id}/performance

        add_performance_routes(app)
        if mqtt is not None:
            mqtt_runtime = await start_mqtt(app, state, mqtt)
        if store.shared:  # after the MQTT egress's fan-out: the cross-replica one feeds it too
            from .store_pg_replicas import start_replicas

            replicas = await start_replicas(state)
        setup_web(app, data_dir, signup, secure_cookies=(public_url or "").lower().startswith("https://"))
        app.router.add_get(protocol.WS_PATH, cable_handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
    except BaseException:
        if mqtt_runtime is not None:
            await mqtt_runtime.stop()
        if replicas is not None:
            await replicas.stop()
        await store.close()
        raise
    bound_port = port
    server = site._server  # aiohttp exposes the bound sockets only through the server object
    if server is not None and getattr(server, "sockets", None):
        bound_port = server.sockets[0].getsockname()[1]
    handle = HubHandle(host, bound_port, data_dir, admin_plain, state, runner, mqtt=mqtt_runtime, replicas=replicas)
    state.hub_url = (public_url or handle.base_url).rstrip("/")
    logger.info("hub listening on %s (data in %s, store %s, %d strategies)", handle.base_url, data_dir,
                _store_label(store_url), len(strategies))
    return handle


def _store_label(store_url: str | None) -> str:
    if store_url is None:
        return "sqlite"
    from .store_pg_conn import redact_url  # the password never reaches a log

    return redact_url(store_url)


async def serve_forever(host: str, port: int, data_dir: Path | str, public_url: str | None = None,
                        signup: SignupMode = "invite", mqtt: MqttSettings | None = None,
                        limits: LimitSettings | None = None, store_url: str | None = None) -> None:
    handle = await start_hub(host, port, data_dir, public_url=public_url, signup=signup, mqtt=mqtt, limits=limits,
                             store_url=store_url)
    print(f"octobot-signals hub listening on {handle.base_url} (ws {handle.ws_url})", flush=True)
    print(f"hub pages: {handle.state.hub_url}/ (sign-ups: {signup}; operator: {handle.state.hub_url}/operator/login)",
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await handle.stop()


def run_hub(host: str, port: int, data_dir: Path | str, public_url: str | None = None,
            signup: SignupMode = "invite", mqtt: MqttSettings | None = None,
            limits: LimitSettings | None = None, store_url: str | None = None) -> None:
    """Blocking: run a hub until SIGINT/SIGTERM."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve_forever(host, port, data_dir, public_url, signup, mqtt, limits, store_url))
