"""Sans-I/O contract of performance snapshots (protocol 3, docs/PERFORMANCE.md): a publishing bot's portfolio value.

A snapshot travels as a `/cable` publish command whose `data.topic` is "p" (signals use "t"). The hub stores
it in the strategy's track record, never in the signal journal: it takes no `q`, no follower receives it, so
no follower can ever trade on it. Money is Decimal here; on the wire it is a decimal string (a JSON number is
read too, through the same checks as every protocol number).

Clock-free: `parse_snapshot` checks shapes and numbers; the hub then checks times against its own clock
(`check_times`), which is why `now` is a parameter there and nowhere else.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import protocol
from .decimal_util import DecimalInputError, plain, to_decimal

TOPIC_PERFORMANCE = "p"
MAX_TRADES_PER_SNAPSHOT = 100
MAX_FILLS_PER_SNAPSHOT = 1_000_000
MAX_CLOCK_SKEW_S = 300.0  # a snapshot measured further in the future than this is refused
MAX_SNAPSHOT_AGE_S = 7 * 86400.0  # an outbox backlog older than this no longer joins the record
MIN_TIME = 1_000_000_000  # 2001-09-09: anything earlier is a unit mistake (milliseconds?) or junk
CURRENCY_RE = re.compile(r"[A-Za-z0-9._-]{1,16}")
TRADE_ID_MAX_CHARS = 128
SYMBOL_MAX_CHARS = 64
SNAPSHOT_KEYS = frozenset({"identifier", "t", "equity", "currency", "flow", "fills", "trades"})
TRADE_KEYS = frozenset({"id", "t", "symbol", "pnl", "currency"})


@dataclass(frozen=True)
class ClosedTrade:
    id: str
    t: float
    symbol: str | None
    pnl: Decimal | None  # realized result; None: OctoBot did not know it
    currency: str | None


@dataclass(frozen=True)
class Snapshot:
    strategy_id: str
    t: float
    equity: Decimal
    currency: str
    flow: Decimal = Decimal(0)  # net deposit (+) / withdrawal (-) since the previous snapshot, in `currency`
    fills: int = 0  # fills since the previous snapshot
    trades: tuple[ClosedTrade, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PerformanceCommand:
    """A `message` command with data.topic "p": one snapshot, to be acked, never journaled."""

    identifier: str
    feed_id: str
    version: str
    snapshot_raw: dict[str, Any]  # the JSON object as sent: what the signature covers
    snapshot: Snapshot
    u: str
    d: int | float
    g: str | None


def _fail(field_name: str, problem: str, code: str = "bad_snapshot") -> protocol.ProtocolError:
    return protocol.ProtocolError(code, f"{field_name} {problem}")


def _money(value: Any, field_name: str, *, allow_negative: bool) -> Decimal:
    if not isinstance(value, str):
        protocol.json_number(value, field_name, "bad_snapshot")  # NaN, Infinity, 1e999, 400-digit ints
    try:
        return to_decimal(value, allow_negative=allow_negative)
    except DecimalInputError as err:
        raise _fail(field_name, str(err)) from err


def _time(value: Any, field_name: str) -> float:
    number = protocol.json_number(value, field_name, "bad_snapshot", " (unix seconds)")
    if number < MIN_TIME or number > 2**40:
        raise _fail(field_name, f"must be unix seconds (after {MIN_TIME}), got {number}")
    return float(number)


def _text(value: Any, field_name: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _fail(field_name, f"must be a string of 1-{limit} chars")
    return value


def _currency(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not CURRENCY_RE.fullmatch(value):
        raise _fail(field_name, "must be 1-16 chars of [A-Za-z0-9._-] (the reference market, e.g. USDT)")
    return value


def _trade(raw: Any, index: int) -> ClosedTrade:
    name = f"trades[{index}]"
    if not isinstance(raw, dict):
        raise _fail(name, "must be an object")
    unknown = set(raw) - TRADE_KEYS
    if unknown:
        raise _fail(name, f"has unknown keys: {sorted(unknown)}")
    pnl = raw.get("pnl")
    symbol = raw.get("symbol")
    currency = raw.get("currency")
    return ClosedTrade(
        id=_text(raw.get("id"), f"{name}.id", TRADE_ID_MAX_CHARS),
        t=_time(raw.get("t"), f"{name}.t"),
        symbol=None if symbol is None else _text(symbol, f"{name}.symbol", SYMBOL_MAX_CHARS),
        pnl=None if pnl is None else _money(pnl, f"{name}.pnl", allow_negative=True),
        currency=None if currency is None else _currency(currency, f"{name}.currency"),
    )


def parse_snapshot(raw: Any, field_name: str = "data.value") -> Snapshot:
    """A snapshot object -> Snapshot; ProtocolError (code bad_snapshot, naming the field) otherwise."""
    if not isinstance(raw, dict):
        raise _fail(field_name, "must be a JSON object (a performance snapshot)")
    unknown = set(raw) - SNAPSHOT_KEYS
    if unknown:
        raise _fail(field_name, f"has unknown keys: {sorted(unknown)}")
    strategy_id = protocol.validate_strategy_id(raw.get("identifier"), f"{field_name}.identifier")
    fills = raw.get("fills", 0)
    fills = protocol.json_integer(fills, f"{field_name}.fills", 0, MAX_FILLS_PER_SNAPSHOT, "bad_snapshot")
    trades_raw = raw.get("trades", [])
    if not isinstance(trades_raw, list) or len(trades_raw) > MAX_TRADES_PER_SNAPSHOT:
        raise _fail(f"{field_name}.trades", f"must be a list of at most {MAX_TRADES_PER_SNAPSHOT} closed trades")
    trades = tuple(_trade(item, i) for i, item in enumerate(trades_raw))
    if len({trade.id for trade in trades}) != len(trades):
        raise _fail(f"{field_name}.trades", "repeats a trade id")
    flow = raw.get("flow")
    return Snapshot(
        strategy_id=strategy_id,
        t=_time(raw.get("t"), f"{field_name}.t"),
        equity=_money(raw.get("equity"), f"{field_name}.equity", allow_negative=False),
        currency=_currency(raw.get("currency"), f"{field_name}.currency"),
        flow=Decimal(0) if flow is None else _money(flow, f"{field_name}.flow", allow_negative=True),
        fills=fills,
        trades=trades,
    )


def check_times(snapshot: Snapshot, now: float) -> None:
    """The hub's clock checks: nothing measured in the future (beyond the skew), nothing too old."""
    times = [("data.value.t", snapshot.t)] + [(f"data.value.trades[{i}].t", trade.t)
                                             for i, trade in enumerate(snapshot.trades)]
    for name, value in times:
        if value > now + MAX_CLOCK_SKEW_S:
            raise protocol.ProtocolError(
                "future_time", f"{name} is {value - now:.0f} s in the future (max clock skew {MAX_CLOCK_SKEW_S:.0f} s)")
    if snapshot.t < now - MAX_SNAPSHOT_AGE_S:
        raise protocol.ProtocolError(
            "stale", f"data.value.t is {(now - snapshot.t) / 86400:.1f} days old (max {MAX_SNAPSHOT_AGE_S / 86400:.0f})")


def snapshot_dict(snapshot: Snapshot) -> dict[str, Any]:
    """The wire object of a snapshot (what a publisher sends): Decimal as plain decimal strings."""
    body: dict[str, Any] = {"identifier": snapshot.strategy_id, "t": snapshot.t, "equity": plain(snapshot.equity),
                            "currency": snapshot.currency}
    if snapshot.flow:
        body["flow"] = plain(snapshot.flow)
    if snapshot.fills:
        body["fills"] = snapshot.fills
    if snapshot.trades:
        body["trades"] = [_trade_dict(trade) for trade in snapshot.trades]
    return body


def _trade_dict(trade: ClosedTrade) -> dict[str, Any]:
    item: dict[str, Any] = {"id": trade.id, "t": trade.t}
    if trade.symbol is not None:
        item["symbol"] = trade.symbol
    item["pnl"] = None if trade.pnl is None else plain(trade.pnl)
    if trade.currency is not None:
        item["currency"] = trade.currency
    return item


# ----------------------------------------------------------------------------- signatures


def signing_payload(d: int | float, strategy_id: str, snapshot: dict[str, Any], u: str) -> bytes:
    # "p" where a signal's payload has "s": a signature over one kind can never verify as the other
    return protocol.canonical_json({"d": d, "i": strategy_id, "p": snapshot, "u": u})


def sign(private_key: Any, d: int | float, strategy_id: str, snapshot: dict[str, Any], u: str) -> str:
    return protocol.sign(private_key, signing_payload(d, strategy_id, snapshot, u))


def verify(public_key: str, d: Any, strategy_id: str, snapshot: Any, u: Any, g: Any) -> bool:
    try:
        payload = signing_payload(d, strategy_id, snapshot, u)
    except (TypeError, ValueError):
        return False
    return protocol.verify(public_key, payload, g)


# ----------------------------------------------------------------------------- frames


def parse_command(identifier: str, data: dict[str, Any], u: str) -> PerformanceCommand:
    """The rest of a publish command's `data` once its topic said "p" (u already read, for the nack)."""
    feed_id = data.get("feed_id")
    if not isinstance(feed_id, str) or not feed_id:
        raise protocol.ProtocolError("bad_feed_id", "data.feed_id must be a non-empty string")
    version = data.get("version")
    if not protocol.is_supported_feed_version(version):
        raise protocol.ProtocolError("bad_version", "data.version must be >= 1.0.0 and < 2.0.0")
    d = protocol.json_number(data.get("d"), "data.d", "bad_timestamp", " (unix seconds)")
    g = data.get("g")
    if g is not None and (not isinstance(g, str) or len(g) > 512):
        raise protocol.ProtocolError("bad_signature", "data.g must be a base64 string or null")
    value_json = data.get("value")
    if not isinstance(value_json, str):
        raise _fail("data.value", "must be a JSON string of the performance snapshot")
    try:
        raw = json.loads(value_json)
    except (ValueError, RecursionError) as err:
        raise _fail("data.value", "is not valid JSON") from err
    return PerformanceCommand(identifier, feed_id, version, raw, parse_snapshot(raw), u, d, g)


def build_command(feed_id: str, snapshot: dict[str, Any], u: str, d: int | float, g: str | None) -> str:
    data = {"topic": TOPIC_PERFORMANCE, "feed_id": feed_id, "version": protocol.FEED_VERSION,
            "value": _dump(snapshot), "u": u, "d": d, "g": g}
    return _dump({"command": "message", "identifier": protocol.CHANNEL_IDENTIFIER, "data": _dump(data)})


def ack_frame(u: str) -> str:
    # no "q": a snapshot takes no place in the signal sequence
    return _dump({"type": "ack", "u": u, "topic": TOPIC_PERFORMANCE})


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
