"""The local HollaEx exchange (tests/local_exchange) against ccxt's own async hollaex client.

ccxt is the client a stock OctoBot trades through, so what ccxt parses and raises here is what
the live tests' bots will see: markets, candles, trades, balances that lock and move with fills
and fees, HollaEx's errors mapped to ccxt's exceptions, injected outages and lost responses.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest
import pytest_asyncio
from octobot_signals.local_exchange import LocalExchange, signature, signed_headers

REPO = Path(__file__).resolve().parents[1]
START_USDT = Decimal(100000)


def client(x: LocalExchange, key: str, secret: str, timeout_ms: int = 3000) -> ccxt.hollaex:
    return ccxt.hollaex({
        "apiKey": key, "secret": secret, "urls": {"api": {"rest": x.url}},
        "enableRateLimit": False, "timeout": timeout_ms,
    })


class Env:
    def __init__(self, x: LocalExchange, ccxt_client: ccxt.hollaex, http: aiohttp.ClientSession) -> None:
        self.x = x
        self.c = ccxt_client
        self.http = http

    async def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        async with self.http.request(method, self.x.url + "/_control" + path, json=body) as resp:
            return resp.status, json.loads(await resp.text(), parse_float=Decimal)

    def usdt(self) -> tuple[Decimal, Decimal]:
        holding = self.x.accounts.get("alice").holding("usdt")
        return holding.total, holding.available

    def btc(self) -> Decimal:
        return self.x.accounts.get("alice").holding("btc").total


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    config = {"accounts": [{"name": "alice", "balances": {"usdt": str(START_USDT)},
                            "api_keys": [{"api_key": "alice-key", "secret": "alice-secret"}]}]}
    async with LocalExchange(config) as x:
        c = client(x, "alice-key", "alice-secret")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            try:
                await c.load_markets()
                yield Env(x, c, http)
            finally:
                await c.close()


async def test_public_market_data_is_one_consistent_feed(env: Env) -> None:
    markets = env.c.markets
    assert set(markets) == {"BTC/USDT", "ETH/USDT"}
    btc = markets["BTC/USDT"]
    assert btc["id"] == "btc-usdt" and btc["active"] is True
    assert btc["precision"] == {"amount": 0.0001, "price": 0.1, "cost": None, "base": None, "quote": None}
    assert btc["limits"]["amount"] == {"min": 0.0001, "max": 100.0}
    assert (await env.c.fetch_ticker("BTC/USDT"))["last"] == 50000.0
    candles = await env.c.fetch_ohlcv("BTC/USDT", "1h")
    assert len(candles) >= 200 and candles[-1][4] == 50000.0  # seeded history ends at the start price
    hour = 3600_000
    assert all(b[0] - a[0] == hour for a, b in zip(candles[:-1], candles[1:], strict=True))
    assert all(c[3] <= min(c[1], c[4]) and c[2] >= max(c[1], c[4]) for c in candles)
    assert (await env.c.fetch_trades("BTC/USDT"))[-1]["price"] == 50000.0

    env.x.set_price("btc-usdt", "50123.4")  # a price change is a public trade and a candle update
    assert (await env.c.fetch_trades("BTC/USDT"))[-1]["price"] == 50123.4
    assert (await env.c.fetch_ticker("BTC/USDT"))["last"] == 50123.4
    last = (await env.c.fetch_ohlcv("BTC/USDT", "1h"))[-1]
    assert last[4] == 50123.4 and last[2] >= 50123.4
    assert (await env.c.fetch_ohlcv("BTC/USDT", "1m"))[-1][4] == 50123.4
    tickers = await env.c.fetch_tickers()
    assert tickers["ETH/USDT"]["last"] == 3000.0
    book = await env.c.fetch_order_book("BTC/USDT")
    assert book["bids"][0][0] < 50123.4 < book["asks"][0][0]
    assert set(await env.c.fetch_trading_fees()) == {"BTC/USDT", "ETH/USDT"}
    for path in ("/v2/health", "/v2/kit"):
        async with env.http.get(env.x.url + path) as resp:
            assert resp.status == 200
    async with env.http.get(env.x.url + "/v2/kit") as resp:
        assert (await resp.json())["info"]["url"] == env.x.url


async def test_our_signature_is_ccxt_signature(env: Env) -> None:
    body = {"symbol": "btc-usdt", "side": "buy", "size": "0.01", "type": "limit", "price": "49000"}
    signed = env.c.sign("order", "private", "POST", body)
    headers = signed["headers"]
    assert headers["api-signature"] == signature(
        "alice-secret", "POST", "/v2/order", headers["api-expires"], signed["body"]
    )
    signed = env.c.sign("orders", "private", "GET", {"symbol": "btc-usdt", "open": True})
    path = signed["url"][len(env.x.url):]
    assert path == "/v2/orders?symbol=btc-usdt&open=true"
    assert signed["headers"]["api-signature"] == signature("alice-secret", "GET", path, signed["headers"]["api-expires"])


async def test_limit_buy_locks_funds_then_fills_when_price_crosses(env: Env) -> None:
    balance = await env.c.fetch_balance()
    assert balance["USDT"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}
    order = await env.c.create_order("BTC/USDT", "limit", "buy", 0.01, 49000)
    assert order["status"] == "open" and order["filled"] == 0.0
    balance = await env.c.fetch_balance()
    assert balance["USDT"] == {"free": 99510.0, "used": 490.0, "total": 100000.0}
    assert [o["id"] for o in await env.c.fetch_open_orders("BTC/USDT")] == [order["id"]]

    env.x.set_price("btc-usdt", 49500)  # not crossed yet
    assert (await env.c.fetch_order(order["id"]))["status"] == "open"
    fills = env.x.set_price("btc-usdt", 48900)  # crossed: fills at its limit, as maker (0.1 %)
    assert [(f.size, f.price, f.maker) for f in fills] == [(Decimal("0.01"), Decimal(49000), True)]
    done = await env.c.fetch_order(order["id"])
    assert done["status"] == "closed" and done["filled"] == 0.01 and done["info"]["average"] == "49000"
    assert done["info"]["fee"] == "0.00001" and done["info"]["fee_coin"] == "btc"
    assert env.usdt() == (START_USDT - 490, START_USDT - 490)
    assert env.btc() == Decimal("0.00999")
    balance = await env.c.fetch_balance()
    assert balance["BTC"]["total"] == 0.00999 and balance["USDT"]["used"] == 0.0
    assert await env.c.fetch_open_orders("BTC/USDT") == []
    assert [o["id"] for o in await env.c.fetch_closed_orders("BTC/USDT")] == [order["id"]]
    trades = await env.c.fetch_my_trades("BTC/USDT")
    assert [(t["order"], t["price"], t["amount"], t["fee"]["cost"], t["fee"]["currency"]) for t in trades] == [
        (order["id"], 49000.0, 0.01, 0.00001, "BTC")
    ]

    sell = await env.c.create_order("BTC/USDT", "limit", "sell", 0.005, 50000)  # locks base
    assert (await env.c.fetch_balance())["BTC"]["used"] == 0.005
    env.x.set_price("btc-usdt", 50000.5)
    assert (await env.c.fetch_order(sell["id"]))["status"] == "closed"
    assert env.usdt()[0] == START_USDT - 490 + 250 - Decimal("0.25")  # fee in the quote received


async def test_market_buy_fills_at_the_last_trade_price(env: Env) -> None:
    env.x.set_price("btc-usdt", 51000)
    order = await env.c.create_order("BTC/USDT", "market", "buy", 0.02)
    assert order["status"] == "closed" and order["filled"] == 0.02
    assert order["price"] is None and order["info"]["average"] == "51000"  # OctoBot reads average
    assert order["info"]["fee"] == "0.00004"  # taker 0.2 %
    assert env.usdt() == (START_USDT - 1020, START_USDT - 1020)
    assert env.btc() == Decimal("0.01996")
    last = (await env.c.fetch_trades("BTC/USDT"))[-1]
    assert (last["price"], last["amount"], last["side"]) == (51000.0, 0.02, "buy")
    marketable = await env.c.create_order("BTC/USDT", "limit", "buy", 0.01, 52000)  # fills at 51000, taker
    assert marketable["status"] == "closed" and marketable["info"]["average"] == "51000"
    assert env.usdt() == (START_USDT - 1530, START_USDT - 1530)
    with pytest.raises(ccxt.InsufficientFunds):
        await env.c.create_order("BTC/USDT", "market", "buy", 10)
    with pytest.raises(ccxt.InsufficientFunds):
        await env.c.create_order("BTC/USDT", "limit", "sell", 1, 60000)
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await env.c.create_order("BTC/USDT", "limit", "buy", 0.01, 52000, {"postOnly": True})
    with pytest.raises(ccxt.BadRequest):
        await env.c.create_order("BTC/USDT", "limit", "buy", 0.01, 0.5)  # below min_price


async def test_partial_fills_then_cancel_keeps_the_filled_part(env: Env) -> None:
    order = await env.c.create_order("BTC/USDT", "limit", "buy", 0.04, 49000)
    status, answer = await env.control("POST", "/fill", {"order_id": order["id"], "size": "0.01"})
    assert status == 200 and answer["order"]["status"] == "pfilled" and answer["trade"]["maker"] is True
    partial = await env.c.fetch_order(order["id"])
    assert partial["status"] == "open" and partial["filled"] == 0.01 and partial["remaining"] == 0.03
    assert env.usdt() == (START_USDT - 490, START_USDT - 490 - 1470)

    # a per-step cap: each crossing price change fills at most 0.01 of a resting order
    status, _ = await env.control("POST", "/market", {"symbol": "btc-usdt", "max_fill_per_step": "0.01"})
    assert status == 200
    status, _ = await env.control("POST", "/path", {"symbol": "btc-usdt", "prices": [49500, 48800, 48700]})
    status, stepped = await env.control("POST", "/step", {"symbol": "btc-usdt", "count": 2})
    assert status == 200 and stepped["price"] == Decimal(48800) and len(stepped["fills"]) == 1
    assert stepped["path"]["remaining"] == 1
    assert (await env.c.fetch_order(order["id"]))["filled"] == 0.02

    canceled = await env.c.cancel_order(order["id"])
    assert canceled["status"] == "canceled"
    after = await env.c.fetch_order(order["id"])
    assert after["status"] == "canceled" and after["filled"] == 0.02
    assert env.usdt() == (START_USDT - 980, START_USDT - 980)  # the unfilled part's lock is released
    assert env.btc() == Decimal("0.02") - Decimal("0.00002")
    with pytest.raises(ccxt.OrderNotFound):
        await env.c.cancel_order(order["id"])  # not open any more
    status, stepped = await env.control("POST", "/step", {"symbol": "btc-usdt"})
    assert stepped["fills"] == [] and stepped["path"]["remaining"] == 0


async def test_unknown_order_and_the_key_rights_probe(env: Env) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        await env.c.cancel_order("12345")  # OctoBot's start-up probe: 404 {"message": "Order not found"}
    with pytest.raises(ccxt.OrderNotFound):
        await env.c.fetch_order("no-such-order")
    probe = env.x.requests(method="DELETE")[-1]
    assert (probe.path, probe.status, probe.account) == ("/v2/order?order_id=12345", 404, "alice")
    user = await env.c.private_get_user()  # OctoBot's get_account_id
    assert (str(user["id"]), user["username"]) == ("1", "alice")
    status, answer = await env.control("POST", "/step", {"symbol": "btc-usdt", "count": "x"})
    assert status == 400 and "Invalid control request" in answer["message"]


async def test_bad_credentials_are_refused_like_hollaex(env: Env) -> None:
    for key, secret in (("alice-key", "wrong-secret"), ("no-such-key", "alice-secret")):
        bad = client(env.x, key, secret)
        try:
            with pytest.raises(ccxt.AuthenticationError):
                await bad.fetch_balance()
        finally:
            await bad.close()
    assert [r.status for r in env.x.requests(path="/v2/user/balance")] == [403, 403]

    expired = signed_headers("alice-key", "alice-secret", "GET", "/v2/user/balance", expires_in=-5)
    async with env.http.get(env.x.url + "/v2/user/balance", headers=expired) as resp:
        assert resp.status == 403 and "API request is expired" in (await resp.json())["message"]
    async with env.http.get(env.x.url + "/v2/user/balance") as resp:
        assert resp.status == 403

    status, _ = await env.control("DELETE", "/keys?api_key=alice-key")
    assert status == 200
    with pytest.raises(ccxt.AuthenticationError):
        await env.c.fetch_balance()


async def test_stop_order_waits_for_its_stop_price(env: Env) -> None:
    await env.c.create_order("BTC/USDT", "market", "buy", 0.01)
    stop = await env.c.create_order("BTC/USDT", "market", "sell", 0.005, None, {"stopPrice": 48000})
    assert stop["status"] == "open" and stop["triggerPrice"] == 48000.0
    assert json.loads(env.x.requests(method="POST")[-1].body)["stop"] == "48000"  # ccxt sends `stop`
    env.x.set_price("btc-usdt", 49000)
    assert (await env.c.fetch_order(stop["id"]))["status"] == "open"
    env.x.set_price("btc-usdt", 47900)  # falls through the stop: sells at the last price, taker
    done = await env.c.fetch_order(stop["id"])
    assert done["status"] == "closed" and done["info"]["average"] == "47900"


async def test_503_injection_then_back(env: Env) -> None:
    since = time.time()
    status, rule = await env.control("POST", "/fail", {"mode": "status", "status": 503, "count": 2,
                                                       "paths": ["/v2/user/*"]})
    assert status == 200 and rule["count"] == 2
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await env.c.fetch_balance()
    assert (await env.c.fetch_balance())["USDT"]["total"] == 100000.0
    status, log = await env.control("GET", f"/requests?since={since}")
    assert [(r["path"], r["status"], r["fault"]) for r in log["requests"]] == [
        ("/v2/user/balance", 503, "status"), ("/v2/user/balance", 503, "status"), ("/v2/user/balance", 200, None)
    ]
    assert all(since < r["t"] <= log["now"] for r in log["requests"])

    env.x.inject(mode="status", status=500, json=True, seconds=30, methods=["GET"], paths=["/v2/ticker"])
    with pytest.raises(ccxt.NetworkError):
        await env.c.fetch_ticker("BTC/USDT")
    status, rules = await env.control("GET", "/fail")
    assert [r["hits"] for r in rules["rules"]] == [1]
    await env.control("DELETE", "/fail")
    assert (await env.c.fetch_ticker("BTC/USDT"))["last"] == 50000.0


async def test_lost_response_creates_the_order_once(env: Env) -> None:
    env.x.inject(mode="drop", after=True, methods=["POST"], paths=["/v2/order"])
    with pytest.raises(ccxt.NetworkError):
        await env.c.create_order("BTC/USDT", "limit", "buy", 0.01, 49000)
    first = await env.c.fetch_open_orders("BTC/USDT")
    assert len(first) == 1  # the exchange did take it
    assert [o["id"] for o in await env.c.fetch_open_orders("BTC/USDT")] == [first[0]["id"]]
    post = env.x.requests(method="POST")
    assert [(r.status, r.fault, r.handled_status) for r in post] == [(None, "drop-after", 200)]

    slow = client(env.x, "alice-key", "alice-secret", timeout_ms=300)
    try:
        await slow.load_markets()
        env.x.inject(mode="hang", after=True, methods=["POST"], paths=["/v2/order"], hang_seconds=5)
        started = time.monotonic()
        with pytest.raises(ccxt.RequestTimeout):
            await slow.create_order("BTC/USDT", "limit", "buy", 0.01, 48000)
        assert time.monotonic() - started < 2
        env.x.faults.release()
        opened = await slow.fetch_open_orders("BTC/USDT")
        assert sorted(o["price"] for o in opened) == [48000.0, 49000.0]
        env.x.inject(mode="hang", methods=["GET"], paths=["/v2/orders"], hang_seconds=5)  # before: nothing done
        with pytest.raises(ccxt.RequestTimeout):
            await slow.fetch_open_orders("BTC/USDT")
    finally:
        await slow.close()
    assert len(await env.c.fetch_open_orders("BTC/USDT")) == 2

    # aiohttp (under ccxt) resends an idempotent request once when a kept-alive connection drops:
    # one dropped GET goes unseen, two make ccxt raise
    env.x.inject(mode="drop", count=1, paths=["/v2/user/balance"])
    assert (await env.c.fetch_balance())["USDT"]["total"] == 100000.0
    env.x.inject(mode="drop", count=2, paths=["/v2/user/balance"])
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await env.c.fetch_balance()
    assert [r.status for r in env.x.requests(path="/v2/user/balance")] == [None, 200, None, None]


async def test_control_api_accounts_keys_balances_and_timed_path(env: Env) -> None:
    status, bob = await env.control("POST", "/accounts", {"name": "bob", "balances": {"usdt": 500, "eth": "1.5"}})
    assert status == 200 and bob["balances"]["eth"]["total"] == Decimal("1.5")
    status, key = await env.control("POST", "/keys", {"account": "bob", "api_key": "bob-2", "secret": "s2"})
    assert status == 200 and key["secret"] == "s2"
    status, _ = await env.control("POST", "/balance", {"account": "bob", "balances": {"usdt": "1000.5"}})
    bob_client = client(env.x, "bob-2", "s2")
    try:
        balance = await bob_client.fetch_balance()
        assert balance["USDT"]["free"] == 1000.5 and balance["ETH"]["total"] == 1.5
        await bob_client.create_order("ETH/USDT", "limit", "sell", 1, 3100)
        status, _ = await env.control("POST", "/balance", {"account": "bob", "balances": {"eth": "0.5"}})
        assert status == 400  # below what the open order locks
    finally:
        await bob_client.close()
    status, accounts = await env.control("GET", "/accounts")
    assert [a["name"] for a in accounts["accounts"]] == ["alice", "bob"]
    assert "secret" not in json.dumps(accounts, default=str)
    status, orders = await env.control("GET", "/orders?account=bob&open=true")
    assert [(o["account"], o["symbol"], o["status"]) for o in orders["orders"]] == [("bob", "eth-usdt", "new")]

    status, _ = await env.control("POST", "/path", {"symbol": "eth-usdt", "prices": [3050, 3100.5], "interval": 0.05})
    for _ in range(100):
        if env.x.engine.markets["eth-usdt"].last == Decimal("3100.5"):
            break
        await asyncio.sleep(0.02)
    status, state = await env.control("GET", "/state")
    assert state["markets"]["eth-usdt"]["price"] == Decimal("3100.5") and state["open_orders"] == 0
    status, trades = await env.control("GET", "/trades?account=bob")
    assert [(t["price"], t["maker"]) for t in trades["trades"]] == [(Decimal(3100), True)]
    assert "secret" not in json.dumps(state, default=str)
    status, answer = await env.control("POST", "/price", {"symbol": "nope-usdt", "price": 1})
    assert status == 400 and answer["message"] == "Invalid symbol"


async def test_child_process_with_state_file(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    config = tmp_path / "exchange.json"
    config.write_text(json.dumps({"accounts": [{"name": "leader", "balances": {"usdt": 1000}}],
                                  "markets": {"btc-usdt": {"price": 20000}}, "history": {"hours": 24}}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "octobot_signals.local_exchange", "--port", "0", "--config", str(config),
         "--state-file", str(state_file)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ""},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 15)
        ready = json.loads(line)
        state = json.loads(state_file.read_text())
        assert state["status"] == "running" and state["port"] == ready["port"] == int(ready["url"].rsplit(":", 1)[1])
        key = state["accounts"][0]["api_keys"][0]
        assert oct(state_file.stat().st_mode & 0o777) == "0o600"
        c = ccxt.hollaex({"apiKey": key["api_key"], "secret": key["secret"], "enableRateLimit": False,
                          "urls": {"api": {"rest": ready["url"]}}})
        try:
            assert list(await c.load_markets()) == ["BTC/USDT"]
            assert (await c.fetch_balance())["USDT"]["total"] == 1000.0
            async with aiohttp.ClientSession() as http:
                async with http.post(ready["url"] + "/_control/price", json={"symbol": "btc-usdt", "price": 20100}):
                    pass
            assert (await c.fetch_ticker("BTC/USDT"))["last"] == 20100.0
        finally:
            await c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    assert json.loads(state_file.read_text())["status"] == "stopped"
