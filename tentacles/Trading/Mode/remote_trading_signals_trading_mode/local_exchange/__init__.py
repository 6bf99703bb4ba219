"""A local HollaEx-compatible exchange for tests and the live demo: our own code, pip-side only (never in the
tentacle zip a bot installs, like hub/, cli/, demo/, bench/ and chaos/).

A stock OctoBot's `hollaex` tentacle (and ccxt's hollaex client under it) trades against it
unpatched: point `urls.api.rest` (OctoBot: `specific_config/hollaex.json` `"rest"`) at its url.
HollaEx REST lives under /v2 (hollaex_api.py), with HMAC API keys (auth.py), balances that lock
and move with fills and fees (accounts.py, matching.py), and a scripted price that prints public
trades and candles (market_data.py). Tests script it through the control API below.

In-process (one event loop, port 0 picks a free port):

    from octobot_signals.local_exchange import LocalExchange
    async with LocalExchange({"accounts": [{"name": "leader", "balances": {"usdt": 10000}}]}) as x:
        key = x.keys_of("leader")[0]                  # .key, .secret
        client = ccxt.async_support.hollaex({"apiKey": key.key, "secret": key.secret,
                                             "urls": {"api": {"rest": x.url}}})
        x.set_price("btc-usdt", 49000)                # also: x.set_path, x.step, x.inject, x.requests

As a child process (cwd = the repository root; prints `{"url", "port", "pid"}` on one stdout
line once listening, writes the state file with every account's keys and secrets; SIGTERM stops):

    python -m octobot_signals.local_exchange --port 0 --config exchange.json --state-file state.json

Config JSON (every key optional): {"port": 0, "seed": 1,
  "markets": {"btc-usdt": {"price": 50000, "increment_size": 0.0001, "increment_price": 0.1,
      "min_size": 0.0001, "max_size": 100, "min_price": 1, "max_price": 10000000,
      "trade_size": 0.01, "max_fill_per_step": null, "active": true}, "eth-usdt": {}},
  "tiers": {"1": {"maker": 0.1, "taker": 0.2}},            (percent, HollaEx's unit)
  "accounts": [{"name": "leader", "tier": 1, "balances": {"usdt": 10000, "btc": 0},
                "api_keys": [{"api_key": "...", "secret": "..."}]}],   (no api_keys: one is made)
  "history": {"hours": 200, "step_seconds": 300, "volatility": 0.002}, "kit_name": "local-hollaex"}

Control API (same server, prefix /_control, no HollaEx auth, 127.0.0.1 only; JSON bodies take
numbers or numeric strings, answers carry numbers; errors are 4xx `{"message": ...}`):

- GET  /_control/state -> {url, port, pid, markets: {name: {price, path, max_fill_per_step, active}},
       accounts: [...], open_orders, faults: [...], requests}
- POST /_control/price {symbol, price, size?, max_fill?} -> {symbol, price, fills: [fill]}
       prints a public trade at `price` now (size: the market's trade_size), updates candles,
       triggers stops and fills what the price crosses (max_fill caps each resting order's fill)
- POST /_control/path {symbol, prices: [...], interval?: seconds, loop?: false} -> {symbol, path}
       replaces the market's path; with `interval` a timer applies the next price every interval
       (first one after one interval), without it only /_control/step does
- POST /_control/step {symbol, count?: 1} -> {symbol, price, fills, path}
- GET  /_control/path?symbol= -> {symbol, path: {prices, interval, loop, index, remaining} | null}
- DELETE /_control/path?symbol= -> stops and forgets it
- POST /_control/market {symbol, max_fill_per_step?: size|null, trade_size?, active?} -> the settings
- POST /_control/fill {order_id, size?: remaining, price?: the order's} -> {order, trade}
       fills (part of) an open order now, as maker, without printing a public trade
- POST /_control/cancel {order_id} -> order   (the exchange cancels it; 404 if not open)
- GET  /_control/orders?account=&symbol=&open=true|false -> {orders: [order + "account"]}
- GET  /_control/trades?account=&symbol= -> {trades: [fill]}
- GET  /_control/accounts -> {accounts: [{id, name, tier, balances: {coin: {total, available,
       locked}}, api_keys: [{api_key, active}]}]}
- POST /_control/accounts {name, balances?, tier?, api_key?, secret?} -> account + {api_key, secret}
- POST /_control/keys {account, api_key?, secret?} -> {account, api_key, secret}
- DELETE /_control/keys?api_key= -> {api_key, active: false}   (refused from now on: 403)
- POST /_control/balance {account, balances: {coin: total}} -> account   (totals; not below locked)
- POST /_control/fail {mode: "status"|"hang"|"drop", status?: 503, json?: false, message?,
       count?: N, seconds?: T, paths?: ["/v2/order", "/v2/user/*"], methods?: ["POST"],
       after?: false, hang_seconds?: 60} -> the rule (with its id)
       applies to the next `count` matching requests and/or for `seconds` (neither: count 1);
       paths match the path without its query, exactly or by a prefix ending in "*".
       status: answers `status` with an nginx-like HTML body (ccxt: ExchangeNotAvailable for 503)
       or `{"message"}` when json (ccxt hollaex: NetworkError); hang: holds the request
       hang_seconds (or until released) then closes the connection unanswered; drop: closes it
       at once. after=true: the request is handled for real first (the order IS created, the
       cancel IS done) and only its answer is lost or replaced: the "lost response" case.
- GET  /_control/fail -> {rules: [...]}  (live rules, with hits and what is left)
- DELETE /_control/fail?id= -> removes one rule or all; releases every hanging request either way
- POST /_control/release -> ends every hang now (still unanswered)
- GET  /_control/requests?since=<unix time>&since_id=&method=&path= -> {now, pid, requests: [
       {id, t, method, path (with query, as sent), body, status (null: no answer sent), fault
       (null|"status"|"hang"|"drop", "-after" for lost responses), handled_status, account,
       duration}]}   HollaEx requests only, oldest first; DELETE /_control/requests clears it.

Shapes: an order is HollaEx's {id, created_by, side, symbol, type, size, filled, price (null for
market orders), average (null until filled), stop, status new|pfilled|filled|canceled, fee,
fee_coin, fee_structure, meta, created_at, updated_at}; a fill is {side, symbol, size, price,
timestamp, order_id, fee, fee_coin, account, maker}. The matching rule is in matching.py.
"""
from .auth import signature, signed_headers
from .config import ExchangeConfig
from .server import LocalExchange

__all__ = ["ExchangeConfig", "LocalExchange", "signature", "signed_headers"]
