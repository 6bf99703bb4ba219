"""HollaEx REST v2, the endpoints a stock OctoBot 2.1.1 (through ccxt's hollaex client) calls.

Public: constants, tiers, ticker, tickers, trades, chart, orderbook(s), health, kit.
Private (HMAC, see auth.py): user, user/balance, user/trades, orders, order (GET, POST, DELETE),
order/all. Answers are HollaEx's JSON shapes with numbers; errors are `{"message": ...}`.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .accounts import Account
from .auth import authenticate
from .decimals import dumps, loads, parse_iso
from .errors import ORDER_NOT_FOUND, ApiError, bad_request
from .market_data import RESOLUTIONS
from .request_log import CURRENT

if TYPE_CHECKING:
    from .server import LocalExchange

RESOLUTION_ALIASES = {"1": "1m", "5": "5m", "15": "15m", "60": "1h", "240": "4h", "1D": "1d", "1W": "1w"}
MAX_OPEN_ORDERS_PER_MARKET = 50
TOO_MANY_ORDERS = "Error 1010 - You are only allowed to have maximum 50 active orders per market"


def reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json")


def _int(query: Any, key: str, default: int, low: int = 1, high: int | None = None) -> int:
    try:
        value = int(query.get(key, default))
    except ValueError:
        raise bad_request(f"Invalid {key}") from None
    value = max(low, value)
    return min(high, value) if high is not None else value


def _date(query: Any, key: str) -> float | None:
    raw = query.get(key)
    if not raw:
        return None
    try:
        return float(raw) / (1000 if float(raw) > 1e11 else 1)
    except ValueError:
        pass
    try:
        return parse_iso(raw)
    except ValueError:
        raise bad_request(f"Invalid {key}") from None


def _page(items: list[Any], query: Any, key: Any) -> list[Any]:
    """HollaEx's listing options: order_by, order (desc by default), limit (50, max 100), page."""
    items = sorted(items, key=key, reverse=query.get("order", "desc") != "asc")
    limit = _int(query, "limit", 50, high=100)
    page = _int(query, "page", 1)
    return items[(page - 1) * limit: page * limit]


class HollaexApi:
    def __init__(self, exchange: LocalExchange) -> None:
        self.exchange = exchange
        self.engine = exchange.engine

    def routes(self) -> list[web.RouteDef]:
        r = "/v2"
        return [
            web.get(f"{r}/health", self.health), web.get(f"{r}/kit", self.kit),
            web.get(f"{r}/constants", self.constants), web.get(f"{r}/tiers", self.tiers),
            web.get(f"{r}/ticker", self.ticker), web.get(f"{r}/tickers", self.tickers),
            web.get(f"{r}/trades", self.trades), web.get(f"{r}/chart", self.chart),
            web.get(f"{r}/orderbook", self.orderbook), web.get(f"{r}/orderbooks", self.orderbooks),
            web.get(f"{r}/user", self.user), web.get(f"{r}/user/balance", self.balance),
            web.get(f"{r}/user/trades", self.user_trades), web.get(f"{r}/orders", self.orders),
            web.get(f"{r}/order", self.get_order), web.post(f"{r}/order", self.post_order),
            web.delete(f"{r}/order", self.delete_order), web.delete(f"{r}/order/all", self.delete_all),
        ]

    async def account(self, request: web.Request) -> Account:
        body = await request.text()
        account = authenticate(self.exchange.accounts, request.method, request.raw_path, request.headers, body)
        entry = CURRENT.get()
        if entry is not None:
            entry.account = account.name
        return account

    # -- public ----------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return reply({"name": self.exchange.config.kit_name, "version": "2.0.0", "host": self.exchange.url,
                      "basePath": "/v2", "status": True})

    async def kit(self, request: web.Request) -> web.Response:
        name = self.exchange.config.kit_name
        return reply({
            "api_name": name, "title": name, "logo_image": "", "links": {"referral_link": ""},
            "info": {"url": self.exchange.url, "name": name, "active": True, "status": True},
            "color": {}, "captcha": {}, "defaults": {}, "features": {}, "interface": {},
        })

    async def constants(self, request: web.Request) -> web.Response:
        coins = {
            coin: {
                "id": i + 1, "fullname": coin.upper(), "symbol": coin, "code": coin, "active": True,
                "allow_deposit": True, "allow_withdrawal": True, "withdrawal_fee": 0, "min": 0.0001,
                "max": 100000000, "increment_unit": 0.0001, "type": "blockchain", "is_public": True,
                "created_at": "2020-01-01T00:00:00.000Z",
            }
            for i, coin in enumerate(self.engine.coins())
        }
        pairs = {}
        for i, market in enumerate(self.engine.markets.values()):
            s = market.spec
            pairs[s.name] = {
                "id": i + 1, "name": s.name, "pair_base": s.base, "pair_2": s.quote, "active": s.active,
                "increment_size": s.increment_size, "increment_price": s.increment_price,
                "min_size": s.min_size, "max_size": s.max_size, "min_price": s.min_price,
                "max_price": s.max_price, "is_public": True, "created_at": "2020-01-01T00:00:00.000Z",
            }
        quicktrade = [{"type": "pro", "symbol": name, "active": True} for name in pairs]
        return reply({"coins": coins, "pairs": pairs, "config": {"tiers": len(self.engine.tiers)},
                      "quicktrade": quicktrade, "status": True})

    async def tiers(self, request: web.Request) -> web.Response:
        out = {}
        for level, tier in sorted(self.engine.tiers.items()):
            out[str(level)] = {
                "id": level, "name": f"Tier {level}", "icon": "", "description": "",
                "fees": {"maker": {p: tier.maker for p in self.engine.markets},
                         "taker": {p: tier.taker for p in self.engine.markets}},
                "note": "",
            }
        return reply(out)

    async def ticker(self, request: web.Request) -> web.Response:
        return reply(self.engine.market(request.query.get("symbol")).ticker_json())

    async def tickers(self, request: web.Request) -> web.Response:
        return reply({name: m.ticker_json(with_symbol=True) for name, m in self.engine.markets.items()})

    async def trades(self, request: web.Request) -> web.Response:
        limit = _int(request.query, "limit", 50, low=0, high=1000)
        symbol = request.query.get("symbol")
        markets = [self.engine.market(symbol)] if symbol else list(self.engine.markets.values())
        return reply({m.spec.name: m.trades_json(limit) for m in markets})

    async def chart(self, request: web.Request) -> web.Response:
        market = self.engine.market(request.query.get("symbol"))
        raw = request.query.get("resolution", "1h")
        res = RESOLUTION_ALIASES.get(raw, raw)
        if res not in RESOLUTIONS:
            raise bad_request("Invalid resolution")
        end = _date(request.query, "to") or time.time()
        start = _date(request.query, "from") or end - RESOLUTIONS[res] * 500
        return reply(market.chart_json(res, start, end))

    async def orderbook(self, request: web.Request) -> web.Response:
        market = self.engine.market(request.query.get("symbol"))
        return reply({market.spec.name: market.orderbook_json()})

    async def orderbooks(self, request: web.Request) -> web.Response:
        return reply({name: m.orderbook_json() for name, m in self.engine.markets.items()})

    # -- private ---------------------------------------------------------------------------
    async def user(self, request: web.Request) -> web.Response:
        return reply((await self.account(request)).user_json())

    async def balance(self, request: web.Request) -> web.Response:
        return reply((await self.account(request)).balance_json(self.engine.coins()))

    async def user_trades(self, request: web.Request) -> web.Response:
        account = await self.account(request)
        q = request.query
        symbol = self.engine.market(q["symbol"]).spec.name if q.get("symbol") else None
        trades = self.engine.book.user_trades(account.id, symbol, _date(q, "start_date"), _date(q, "end_date"))
        data = _page(trades, q, key=lambda t: t.t)
        return reply({"count": len(trades), "data": [t.to_json() for t in data]})

    async def orders(self, request: web.Request) -> web.Response:
        account = await self.account(request)
        q = request.query
        symbol = self.engine.market(q["symbol"]).spec.name if q.get("symbol") else None
        open_ = {"true": True, "false": False}.get(q.get("open", "").lower())
        orders = self.engine.book.query(
            account.id, symbol, open_, q.get("side"), q.get("status"), _date(q, "start_date"), _date(q, "end_date")
        )
        by_update = q.get("order_by") == "updated_at"
        data = _page(orders, q, key=lambda o: o.updated_at if by_update else o.created_at)
        return reply({"count": len(orders), "data": [self.engine.order_json(o) for o in data]})

    async def get_order(self, request: web.Request) -> web.Response:
        account = await self.account(request)
        order = self.engine.book.get(request.query.get("order_id", ""), account.id)
        if order is None:
            raise ApiError(404, ORDER_NOT_FOUND)
        return reply(self.engine.order_json(order))

    async def post_order(self, request: web.Request) -> web.Response:
        account = await self.account(request)
        try:
            body = loads(await request.text() or "{}")
        except ValueError:
            raise bad_request("Invalid JSON body") from None
        if not isinstance(body, dict):
            raise bad_request("Invalid JSON body")
        symbol = self.engine.market(body.get("symbol")).spec.name
        if len([o for o in self.engine.book.open_orders(symbol) if o.account_id == account.id]) \
                >= MAX_OPEN_ORDERS_PER_MARKET:
            raise bad_request(TOO_MANY_ORDERS)
        order = self.engine.place(account, body)
        return reply(self.engine.order_json(order))

    async def delete_order(self, request: web.Request) -> web.Response:
        account = await self.account(request)
        order = self.engine.cancel(request.query.get("order_id", ""), account.id)
        return reply(self.engine.order_json(order))

    async def delete_all(self, request: web.Request) -> web.Response:
        account = await self.account(request)
        orders = self.engine.cancel_all(account, request.query.get("symbol", ""))
        return reply([self.engine.order_json(o) for o in orders])
