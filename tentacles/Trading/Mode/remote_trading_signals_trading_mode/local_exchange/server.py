"""The local exchange: state, the aiohttp app on 127.0.0.1, and its async start/stop.

One event loop owns everything (handlers, price-path timers); nothing blocks, so no locks are
needed. A middleware records every HollaEx request in the request log and applies the
injected faults around the handler; /_control/ requests are neither logged nor faulted.

    async with LocalExchange({"accounts": [{"name": "leader", "balances": {"usdt": 10000}}]}) as x:
        key = x.keys_of("leader")[0]      # ApiKey(key, secret)
        x.url                             # http://127.0.0.1:<port>, ccxt's urls.api.rest
        x.set_price("btc-usdt", 49000)
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from .accounts import Account, Accounts, ApiKey
from .book import UserTrade
from .config import ExchangeConfig
from .control import PREFIX, ControlApi
from .decimals import to_decimal
from .errors import ApiError, bad_request
from .faults import FaultRule, Faults
from .hollaex_api import HollaexApi, reply
from .matching import Engine
from .price_path import PricePath
from .request_log import CURRENT, LoggedRequest, RequestLog

logger = logging.getLogger("local_exchange")
LOCAL_PEERS = ("127.0.0.1", "::1")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LocalExchange:
    def __init__(self, config: ExchangeConfig | dict[str, Any] | None = None) -> None:
        self.config = config if isinstance(config, ExchangeConfig) else ExchangeConfig.from_dict(config)
        self.accounts = Accounts()
        self.engine = Engine(self.config, self.accounts)
        self.log = RequestLog()
        self.faults = Faults()
        self.paths: dict[str, PricePath] = {}
        self._path_tasks: dict[str, asyncio.Task[None]] = {}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        for name, market in self.engine.markets.items():
            market.seed_history(self.config.history_hours, self.config.history_step_seconds,
                                self.config.history_volatility, random.Random(f"{self.config.seed}:{name}"))
        for spec in self.config.accounts:
            account = self.accounts.create(spec.name, spec.balances, spec.tier)
            for key, secret in spec.api_keys or [(None, None)]:
                self.accounts.create_key(account, key, secret)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the exchange is not started")
        return f"http://{self.config.host}:{self.port}"

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        app.add_routes(HollaexApi(self).routes())
        app.add_routes(ControlApi(self).routes())
        return app

    async def start(self) -> LocalExchange:
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the bound port, also when asked for 0
        for name, path in self.paths.items():
            self._schedule(name, path)
        logger.info("local exchange listening on %s", self.url)
        return self

    async def stop(self) -> None:
        for task in self._path_tasks.values():
            task.cancel()
        for task in list(self._path_tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._path_tasks.clear()
        self.faults.clear()  # releases hanging requests so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalExchange:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @staticmethod
    def now() -> float:
        return time.time()

    # -- scripting (the control API calls these too) ----------------------------------------
    def create_account(self, name: str, balances: dict[str, Decimal] | None = None, tier: int = 1,
                       api_key: str | None = None, secret: str | None = None) -> tuple[Account, ApiKey]:
        account = self.accounts.create(name, balances, tier)
        return account, self.accounts.create_key(account, api_key, secret)

    def keys_of(self, account: str) -> list[ApiKey]:
        return self.accounts.keys_of(self.accounts.get(account))

    def set_price(self, symbol: Any, price: Any, size: Any = None, max_fill: Any = None) -> list[UserTrade]:
        return self.engine.set_price(symbol, price, size, max_fill)

    def set_path(self, symbol: Any, prices: list[Any], interval: float | None = None,
                 loop: bool = False) -> PricePath:
        name = self.engine.market(symbol).spec.name
        if interval is not None and interval <= 0:
            raise bad_request("interval must be positive")
        path = PricePath([to_decimal(p, "price") for p in prices], interval, loop)
        self.clear_path(name)
        self.paths[name] = path
        if self._runner is not None:
            self._schedule(name, path)
        return path

    def clear_path(self, name: str) -> None:
        self.paths.pop(name, None)
        task = self._path_tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def step(self, symbol: Any, count: int = 1) -> list[UserTrade]:
        """Apply the next `count` prices of the market's path (fewer when it runs out)."""
        name = self.engine.market(symbol).spec.name
        path = self.paths.get(name)
        if path is None:
            raise bad_request(f"no price path for {name}")
        fills: list[UserTrade] = []
        for _ in range(max(0, count)):
            price = path.next_price()
            if price is None:
                break
            fills += self.engine.set_price(name, price)
        return fills

    def inject(self, **rule: Any) -> FaultRule:
        """In-process form of POST /_control/fail."""
        return self.faults.add(rule)

    def requests(self, since: float | None = None, method: str | None = None,
                 path: str | None = None) -> list[LoggedRequest]:
        return self.log.select(since, None, method, path)

    def _schedule(self, name: str, path: PricePath) -> None:
        if path.interval is not None and name not in self._path_tasks:
            self._path_tasks[name] = asyncio.get_running_loop().create_task(self._run_path(name, path))

    async def _run_path(self, name: str, path: PricePath) -> None:
        assert path.interval is not None
        while True:
            await asyncio.sleep(path.interval)
            price = path.next_price()
            if price is None:
                break
            try:
                self.engine.set_price(name, price)
            except ApiError as exc:
                logger.warning("price path %s stopped: %s", name, exc.message)
                break
        if self._path_tasks.get(name) is asyncio.current_task():
            del self._path_tasks[name]

    # -- views -----------------------------------------------------------------------------
    def account_json(self, account: Account) -> dict[str, Any]:
        return {**account.control_json(), "api_keys": [
            {"api_key": k.key, "active": k.active} for k in self.accounts.keys_of(account)
        ]}

    def state_json(self, with_secrets: bool = False) -> dict[str, Any]:
        """GET /_control/state; `with_secrets` is the child process's state file (its hand-off)."""
        accounts = []
        for account in self.accounts.by_id.values():
            entry = self.account_json(account)
            if with_secrets:
                entry["api_keys"] = [{"api_key": k.key, "secret": k.secret, "active": k.active}
                                     for k in self.accounts.keys_of(account)]
            accounts.append(entry)
        return {
            "url": self.url if self.port is not None else None,
            "port": self.port,
            "pid": os.getpid(),
            "markets": {
                name: {"price": m.last, "path": self.paths[name].to_json() if name in self.paths else None,
                       "max_fill_per_step": m.spec.max_fill_per_step, "active": m.spec.active}
                for name, m in self.engine.markets.items()
            },
            "accounts": accounts,
            "open_orders": len([o for o in self.engine.book.orders.values() if o.is_open]),
            "faults": [r.to_json() for r in self.faults.active()],
            "requests": len(self.log.entries),
        }

    # -- HTTP plumbing ---------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PREFIX + "/") or request.path == PREFIX:
            if request.remote not in LOCAL_PEERS:
                return reply({"message": "the control API answers 127.0.0.1 only"}, 403)
            return await self._answer(request, handler, control=True)
        entry = self.log.open(request.method, request.raw_path, await request.text())
        CURRENT.set(entry)
        rule = self.faults.take(request.method, request.path)
        if rule is not None and not rule.after:
            return await self._fault(request, rule, entry, None)
        response = await self._answer(request, handler)
        if rule is not None:
            return await self._fault(request, rule, entry, response.status)
        entry.finish(response.status)
        return response

    @staticmethod
    async def _answer(request: web.Request, handler: Handler, control: bool = False) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return reply({"message": exc.message}, exc.status)
        except web.HTTPException as exc:
            return reply({"message": exc.reason}, exc.status)
        except Exception as exc:
            if control and isinstance(exc, (ValueError, TypeError, KeyError)):
                return reply({"message": f"Invalid control request: {exc!r}"}, 400)
            logger.exception("local exchange: %s %s failed", request.method, request.path)
            return reply({"message": "Internal server error"}, 500)

    async def _fault(self, request: web.Request, rule: FaultRule, entry: LoggedRequest,
                     handled_status: int | None) -> web.StreamResponse:
        fault = rule.mode + ("-after" if rule.after else "")
        if rule.mode == "status":
            entry.finish(rule.status, fault, handled_status)
            if rule.json:
                return reply({"message": rule.message}, rule.status)
            html = f"<html><head><title>{rule.status} {rule.message}</title></head><body>" \
                   f"<center><h1>{rule.status} {rule.message}</h1></center></body></html>"
            return web.Response(status=rule.status, text=html, content_type="text/html")
        if rule.mode == "hang":
            await self.faults.hang(rule.hang_seconds)
        entry.finish(None, fault, handled_status)
        if request.transport is not None:
            request.transport.close()  # the client sees the connection end without an answer
        return web.Response(status=499)
