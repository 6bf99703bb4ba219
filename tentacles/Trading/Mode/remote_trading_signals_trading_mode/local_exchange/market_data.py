"""Public market data of one pair: the last price, public trades and candles, all from one feed.

Every price change prints one public trade, and every public trade updates the candle of each
resolution it falls in, so `/v2/trades` (where OctoBot's simulator takes its fill price),
`/v2/ticker` and `/v2/chart` always agree. A candle exists only for a period that had a trade
(HollaEx's charts have gaps too); the seeded history prints a trade every few minutes for the
last `history_hours`, ending now at the market's start price, so 1h..1d candles are complete.
"""
from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .config import MarketSpec
from .decimals import ZERO, floor_to, iso

RESOLUTIONS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400, "1w": 604800}
KEPT_TRADES = 1000
BOOK_LEVELS = 10


@dataclass
class PublicTrade:
    price: Decimal
    size: Decimal
    side: str
    t: float

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "price": self.price, "side": self.side, "timestamp": iso(self.t)}


class Candles:
    """OHLCV buckets per resolution, appended in time order."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[int, list[Decimal]]] = {res: {} for res in RESOLUTIONS}

    def add(self, t: float, price: Decimal, size: Decimal) -> None:
        for res, seconds in RESOLUTIONS.items():
            start = int(t // seconds) * seconds
            candle = self.buckets[res].get(start)
            if candle is None:
                self.buckets[res][start] = [price, price, price, price, size]
            else:
                candle[1] = max(candle[1], price)
                candle[2] = min(candle[2], price)
                candle[3] = price
                candle[4] += size

    def query(self, res: str, start: float, end: float) -> list[tuple[int, list[Decimal]]]:
        return [(t, c) for t, c in self.buckets[res].items() if start <= t <= end]


class MarketData:
    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.last: Decimal = spec.price
        self.trades: deque[PublicTrade] = deque(maxlen=KEPT_TRADES)
        self.candles = Candles()
        self.last_t = 0.0

    def record_trade(self, price: Decimal, size: Decimal | None = None, side: str | None = None,
                     t: float | None = None) -> PublicTrade:
        """Print a public trade (strictly later than the previous one, so clients sort them right)."""
        moment = max(time.time() if t is None else t, self.last_t + 0.001)
        if side is None:
            side = "buy" if price >= self.last else "sell"
        trade = PublicTrade(price=price, size=self.spec.trade_size if size is None else size, side=side, t=moment)
        self.last_t = moment
        self.last = price
        self.trades.append(trade)
        self.candles.add(moment, price, trade.size)
        return trade

    def seed_history(self, hours: int, step_seconds: int, volatility: Decimal, rng: random.Random,
                     now: float | None = None) -> None:
        """A random walk back in time from the start price, then replayed forward as trades."""
        now = time.time() if now is None else now
        steps = max(0, int(hours * 3600 // max(1, step_seconds)))
        step = self.spec.increment_price
        prices = [self.spec.price]
        sigma = float(volatility)
        for _ in range(steps):
            moved = Decimal(repr(float(prices[-1]) * math.exp(rng.gauss(0.0, sigma))))
            prices.append(max(self.spec.min_price, floor_to(moved, step)))
        prices.reverse()
        start_price = self.spec.price
        self.last = prices[0]
        for i, price in enumerate(prices):
            size = floor_to(self.spec.trade_size * Decimal(repr(0.5 + rng.random())), self.spec.increment_size)
            self.record_trade(price, max(size, self.spec.min_size), t=now - (steps - i) * step_seconds - 0.001)
        self.last = start_price

    def ticker_json(self, with_symbol: bool = False) -> dict[str, Any]:
        """The last 24 h from the 1h candles; `with_symbol` is the /v2/tickers form."""
        now = time.time()
        day = self.candles.query("1h", now - 86400, now)
        candles = [c for _, c in day]
        out: dict[str, Any] = {
            "open": candles[0][0] if candles else self.last,
            "close": self.last,
            "high": max((c[1] for c in candles), default=self.last),
            "low": min((c[2] for c in candles), default=self.last),
            "last": self.last,
            "volume": sum((c[4] for c in candles), ZERO),
        }
        if with_symbol:
            out.update(time=iso(now), symbol=self.spec.name)
        else:
            out["timestamp"] = iso(now)
        return out

    def trades_json(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        newest = list(self.trades)[-limit:] if limit > 0 else []
        return [t.to_json() for t in reversed(newest)]

    def chart_json(self, res: str, start: float, end: float) -> list[dict[str, Any]]:
        return [
            {"time": iso(t), "open": c[0], "high": c[1], "low": c[2], "close": c[3], "volume": c[4],
             "symbol": self.spec.name}
            for t, c in self.candles.query(res, start, end)
        ]

    def orderbook_json(self) -> dict[str, Any]:
        """A synthetic book around the last price (nothing trades against it)."""
        spacing = max(self.spec.increment_price, floor_to(self.last * Decimal("0.0005"), self.spec.increment_price))
        bids, asks = [], []
        for level in range(1, BOOK_LEVELS + 1):
            size = self.spec.trade_size * level
            bid = self.last - spacing * level
            if bid >= self.spec.min_price:
                bids.append([bid, size])
            asks.append([self.last + spacing * level, size])
        return {"bids": bids, "asks": asks, "timestamp": iso(time.time())}
