"""The control API under /_control/: how a test scripts the exchange while it runs.

No HollaEx auth (answered to 127.0.0.1 / ::1 only). JSON in (numbers or numeric strings), JSON
out (numbers). The endpoints and their bodies are listed in the package docstring.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .book import UserTrade
from .decimals import loads, optional_decimal, to_decimal
from .errors import ApiError, bad_request
from .hollaex_api import reply

if TYPE_CHECKING:
    from .server import LocalExchange

PREFIX = "/_control"


async def _body(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    try:
        body = loads(text) if text.strip() else {}
    except ValueError:
        raise bad_request("Invalid JSON body") from None
    if not isinstance(body, dict):
        raise bad_request("JSON body must be an object")
    return body


def _float(value: str | None) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except ValueError:
        raise bad_request(f"Invalid number {value!r}") from None


class ControlApi:
    def __init__(self, exchange: LocalExchange) -> None:
        self.x = exchange

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
            web.get(f"{p}/state", self.state),
            web.post(f"{p}/price", self.price), web.post(f"{p}/step", self.step),
            web.get(f"{p}/path", self.get_path), web.post(f"{p}/path", self.set_path),
            web.delete(f"{p}/path", self.delete_path), web.post(f"{p}/market", self.market),
            web.post(f"{p}/fill", self.fill), web.post(f"{p}/cancel", self.cancel),
            web.get(f"{p}/orders", self.orders), web.get(f"{p}/trades", self.trades),
            web.get(f"{p}/accounts", self.accounts), web.post(f"{p}/accounts", self.create_account),
            web.post(f"{p}/keys", self.create_key), web.delete(f"{p}/keys", self.freeze_key),
            web.post(f"{p}/balance", self.balance),
            web.get(f"{p}/fail", self.faults), web.post(f"{p}/fail", self.add_fault),
            web.delete(f"{p}/fail", self.clear_faults), web.post(f"{p}/release", self.release),
            web.get(f"{p}/requests", self.requests), web.delete(f"{p}/requests", self.clear_requests),
        ]

    def _trades_json(self, trades: list[UserTrade]) -> list[dict[str, Any]]:
        return [
            {**t.to_json(), "account": self.x.accounts.get(t.account_id).name, "maker": t.maker}
            for t in trades
        ]

    async def state(self, request: web.Request) -> web.Response:
        return reply(self.x.state_json())

    # -- prices ----------------------------------------------------------------------------
    async def price(self, request: web.Request) -> web.Response:
        """{symbol, price, size?, max_fill?}: print a trade at `price` now and fill what it crosses."""
        body = await _body(request)
        fills = self.x.set_price(body.get("symbol"), body.get("price"), body.get("size"), body.get("max_fill"))
        market = self.x.engine.market(body.get("symbol"))
        return reply({"symbol": market.spec.name, "price": market.last, "fills": self._trades_json(fills)})

    async def step(self, request: web.Request) -> web.Response:
        """{symbol, count?}: apply the next `count` (1) prices of the market's path."""
        body = await _body(request)
        market = self.x.engine.market(body.get("symbol"))
        fills = self.x.step(market.spec.name, int(body.get("count", 1)))
        path = self.x.paths.get(market.spec.name)
        return reply({"symbol": market.spec.name, "price": market.last, "fills": self._trades_json(fills),
                      "path": path.to_json() if path else None})

    async def get_path(self, request: web.Request) -> web.Response:
        name = self.x.engine.market(request.query.get("symbol")).spec.name
        path = self.x.paths.get(name)
        return reply({"symbol": name, "path": path.to_json() if path else None})

    async def set_path(self, request: web.Request) -> web.Response:
        """{symbol, prices: [...], interval?: seconds, loop?: false}: replaces the market's path."""
        body = await _body(request)
        prices = body.get("prices")
        if not isinstance(prices, list) or not prices:
            raise bad_request("prices must be a non-empty list")
        interval = optional_decimal(body.get("interval"), "interval")
        path = self.x.set_path(body.get("symbol"), prices, None if interval is None else float(interval),
                               bool(body.get("loop", False)))
        return reply({"symbol": self.x.engine.market(body.get("symbol")).spec.name, "path": path.to_json()})

    async def delete_path(self, request: web.Request) -> web.Response:
        name = self.x.engine.market(request.query.get("symbol")).spec.name
        self.x.clear_path(name)
        return reply({"symbol": name, "path": None})

    async def market(self, request: web.Request) -> web.Response:
        """{symbol, max_fill_per_step?: size|null, trade_size?, active?}: change a market live."""
        body = await _body(request)
        market = self.x.engine.markets.get(str(body.get("symbol", "")).lower())  # inactive ones too
        if market is None:
            raise bad_request("Invalid symbol")
        spec = market.spec
        if "max_fill_per_step" in body:
            spec.max_fill_per_step = optional_decimal(body["max_fill_per_step"], "max_fill_per_step")
        if "trade_size" in body:
            spec.trade_size = to_decimal(body["trade_size"], "trade_size")
        if "active" in body:
            spec.active = bool(body["active"])
        return reply({"symbol": spec.name, "max_fill_per_step": spec.max_fill_per_step,
                      "trade_size": spec.trade_size, "active": spec.active})

    # -- orders ----------------------------------------------------------------------------
    async def fill(self, request: web.Request) -> web.Response:
        """{order_id, size?: remaining, price?: the order's}: fill (part of) an open order now, as maker."""
        body = await _body(request)
        trade = self.x.engine.force_fill(str(body.get("order_id", "")), body.get("size"), body.get("price"))
        order = self.x.engine.book.get(trade.order_id)
        assert order is not None
        return reply({"order": self.x.engine.order_json(order), "trade": self._trades_json([trade])[0]})

    async def cancel(self, request: web.Request) -> web.Response:
        """{order_id}: the exchange cancels an open order itself (as if an operator did)."""
        body = await _body(request)
        order = self.x.engine.cancel(str(body.get("order_id", "")))
        return reply(self.x.engine.order_json(order))

    async def orders(self, request: web.Request) -> web.Response:
        """?account=&symbol=&open=true|false: every order of every account, oldest first."""
        q = request.query
        account = self.x.accounts.get(q["account"]).id if q.get("account") else None
        symbol = self.x.engine.market(q["symbol"]).spec.name if q.get("symbol") else None
        open_ = {"true": True, "false": False}.get(q.get("open", "").lower())
        orders = self.x.engine.book.query(account, symbol, open_)
        return reply({"orders": [
            {**self.x.engine.order_json(o), "account": self.x.accounts.get(o.account_id).name} for o in orders
        ]})

    async def trades(self, request: web.Request) -> web.Response:
        """?account=&symbol=: fills, oldest first."""
        q = request.query
        trades = self.x.engine.book.trades
        if q.get("account"):
            account_id = self.x.accounts.get(q["account"]).id
            trades = [t for t in trades if t.account_id == account_id]
        if q.get("symbol"):
            symbol = self.x.engine.market(q["symbol"]).spec.name
            trades = [t for t in trades if t.symbol == symbol]
        return reply({"trades": self._trades_json(trades)})

    # -- accounts --------------------------------------------------------------------------
    async def accounts(self, request: web.Request) -> web.Response:
        return reply({"accounts": [self.x.account_json(a) for a in self.x.accounts.by_id.values()]})

    async def create_account(self, request: web.Request) -> web.Response:
        """{name, balances?: {coin: total}, tier?: 1, api_key?, secret?} -> the account with its new key."""
        body = await _body(request)
        balances = {str(c): to_decimal(v, "balance") for c, v in (body.get("balances") or {}).items()}
        account, key = self.x.create_account(str(body.get("name", "")), balances, int(body.get("tier", 1)),
                                              body.get("api_key"), body.get("secret"))
        return reply({**self.x.account_json(account), "api_key": key.key, "secret": key.secret})

    async def create_key(self, request: web.Request) -> web.Response:
        """{account, api_key?, secret?} -> {account, api_key, secret} (the only time the secret is shown)."""
        body = await _body(request)
        account = self.x.accounts.get(body.get("account", ""))
        key = self.x.accounts.create_key(account, body.get("api_key"), body.get("secret"))
        return reply({"account": account.name, "api_key": key.key, "secret": key.secret})

    async def freeze_key(self, request: web.Request) -> web.Response:
        """?api_key=: the key is refused from now on (403 "API Key is frozen")."""
        key = self.x.accounts.keys.get(request.query.get("api_key", ""))
        if key is None:
            raise ApiError(404, "API key not found")
        key.active = False
        return reply({"api_key": key.key, "active": False})

    async def balance(self, request: web.Request) -> web.Response:
        """{account, balances: {coin: total}}: set totals (not below what open orders lock)."""
        body = await _body(request)
        account = self.x.accounts.get(body.get("account", ""))
        balances = {str(c): to_decimal(v, "balance") for c, v in (body.get("balances") or {}).items()}
        self.x.accounts.set_balances(account, balances)
        return reply(self.x.account_json(account))

    # -- failures and the request log --------------------------------------------------------
    async def faults(self, request: web.Request) -> web.Response:
        return reply({"rules": [r.to_json() for r in self.x.faults.active()]})

    async def add_fault(self, request: web.Request) -> web.Response:
        """{mode, status?, json?, count?, seconds?, paths?, methods?, after?, hang_seconds?}: see faults.py."""
        return reply(self.x.faults.add(await _body(request)).to_json())

    async def clear_faults(self, request: web.Request) -> web.Response:
        """?id=: remove one rule, or all of them; either way every hanging request is released."""
        raw = request.query.get("id")
        self.x.faults.clear(int(raw) if raw else None)
        return reply({"rules": [r.to_json() for r in self.x.faults.active()]})

    async def release(self, request: web.Request) -> web.Response:
        self.x.faults.release()
        return reply({"released": True})

    async def requests(self, request: web.Request) -> web.Response:
        """?since=<unix time>&since_id=&method=&path=: {now, requests: [...]}, oldest first."""
        q = request.query
        since_id = _float(q.get("since_id"))
        entries = self.x.log.select(_float(q.get("since")), None if since_id is None else int(since_id),
                                    q.get("method") or None, q.get("path") or None)
        return reply({"now": self.x.now(), "pid": os.getpid(), "requests": self.x.log.to_json(entries)})

    async def clear_requests(self, request: web.Request) -> web.Response:
        self.x.log.clear()
        return reply({"requests": []})
