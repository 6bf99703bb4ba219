"""Hostile inputs through the real mode: each refused with a reason naming the problem, nothing placed,
and the next valid signal still applied."""
from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
import signal_factory as sf
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec


def _msg(**content_overrides: Any) -> dict[str, Any]:
    content = sf.order_content(order_type="buy_limit", limit_price=19000.0)
    content.update(content_overrides)
    return sf.message(sf.signal(content))


def _with(path: str, value: Any) -> dict[str, Any]:
    """A valid message with one envelope / bundle key replaced (value None deletes it)."""
    message = _msg()
    target = message
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return message


_DELETE = object()


def _nested(depth: int) -> dict[str, Any]:
    content = sf.order_content(order_type="buy_limit", limit_price=19000.0)
    node = content
    for level in range(depth):
        child = sf.order_content(side="sell", order_type="sell_limit", limit_price=21000.0,
                                 order_id=f"child{level}", chained_to=node["order_id"])
        node["additional_orders"] = [child]
        node = child
    return sf.message(sf.signal(content))


C = "s.signals[0].content"  # where the order content of a one-signal message sits

# (case, input, the path of the offending value: what the reason must start with, before ": ")
HOSTILE: list[tuple[str, Any, str]] = [
    ("garbage text", "{not json", "not a feed message"),
    ("json array", "[1, 2, 3]", "message"),
    ("json number", "42", "message"),
    ("empty object", {}, "u"),
    ("missing s", _with("s", _DELETE), "s"),
    ("s is a list", _with("s", []), "s"),
    ("u is a number", _with("u", 12), "u"),
    ("u huge", _with("u", "x" * 1_000_000), "u"),
    ("bad channel type", _with("t", "x"), "t"),
    # a hub never delivers a performance snapshot (protocol 3), but a follower handed one must not trade on it
    ("performance snapshot", {**_msg(), "t": "p", "s": {"identifier": sf.STRATEGY, "t": 1.8e9, "equity": "1000",
                                                       "currency": "USDT"}}, "t"),
    ("version 2.0.0", _with("v", "2.0.0"), "v"),
    ("version 0.9", _with("v", "0.9"), "v"),
    ("version garbage", _with("v", "abc"), "v"),
    ("bundle version 3", _with("s.version", "3.0.0"), "s.version"),
    ("q is bool", _with("q", True), "q"),
    ("q negative", _with("q", -4), "q"),
    ("d is nan", _with("d", float("nan")), "d"),
    ("identifier not url-safe", _with("s.identifier", "../../etc"), "s.identifier"),
    ("other strategy id", _with("s.identifier", "someone-else"), "s.identifier"),
    ("signals not a list", _with("s.signals", {"a": 1}), "s.signals"),
    ("no signals", _with("s.signals", []), "s.signals"),
    ("too many signals", _with("s.signals", [sf.signal(sf.order_content())] * 101), "s.signals"),
    ("unknown topic", sf.message({"topic": "weather", "content": {}, "dependencies": None}), "s.signals[0].topic"),
    ("share zero", _msg(target_amount="0%"), f"{C}.target_amount"),
    ("share over 100", _msg(target_amount="150%"), f"{C}.target_amount"),
    ("share negative", _msg(target_amount="-5%"), f"{C}.target_amount"),
    ("share garbage", _msg(target_amount="lots"), f"{C}.target_amount"),
    ("share is a float", _msg(target_amount=float("inf")), f"{C}.target_amount"),
    ("limit price inf", _msg(limit_price="Infinity"), f"{C}.limit_price"),
    ("limit price negative", _msg(limit_price=-19000.0), f"{C}.limit_price"),
    ("limit price bool", _msg(limit_price=True), f"{C}.limit_price"),
    ("quantity 1e999", _msg(quantity="1e999"), f"{C}.quantity"),
    ("unknown order type", _msg(type="moon_order"), f"{C}.type"),
    ("unknown action", _msg(action="explode"), f"{C}.action"),
    ("unknown side", _msg(side="up"), f"{C}.side"),
    ("missing order id", _msg(order_id=None), f"{C}.order_id"),
    ("order id huge", _msg(order_id="o" * 100_000), f"{C}.order_id"),
    ("unknown symbol", _msg(symbol="DOGE/EUR"), f"{C}.symbol"),
    ("malformed symbol", _msg(symbol="BTCUSDT"), f"{C}.symbol"),
    ("wrong exchange type", _msg(exchange_type="future"), f"{C}.exchange_type"),
    ("symbol huge", _msg(symbol="B" * 5000 + "/USDT"), f"{C}.symbol"),
    ("tag huge", _msg(tag="t" * 1_000_000), f"{C}.tag"),
    ("deep nesting", _nested(6), C + ".additional_orders[0]" * 5 + ".additional_orders"),
    ("content not a dict", sf.message({"topic": "orders", "content": "buy!", "dependencies": None}), C),
]


@pytest.mark.parametrize("name,hostile,field_path", HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_input_refused_and_next_signal_applied(name, hostile, field_path):
    spec = SimExchangeSpec(portfolio={"USDT": Decimal(1000), "BTC": Decimal("0.1")},
                           prices={"BTC/USDT": Decimal(20000)})
    async with follower_on_sim_exchange(spec, {"trading_strategy": sf.STRATEGY}) as f:
        raw = hostile if isinstance(hostile, str) else json.dumps(copy.deepcopy(hostile))
        outcomes = await f.apply(raw)
        assert outcomes, name
        assert all(o.result.value == "rejected" for o in outcomes), [(o.result, o.reason) for o in outcomes]
        assert all(o.reason for o in outcomes)
        # the reason names the offending value by its path ("s.signals[0].content.side: ..."), not just
        # any text that happens to contain the field's name
        assert any(o.reason.partition(": ")[0] == field_path for o in outcomes), [o.reason for o in outcomes]
        assert all(len(o.reason) < 2000 for o in outcomes), "reasons must stay readable"
        assert f.sim.open_orders() == []
        assert f.sim.portfolio()["USDT"]["available"] == Decimal(1000)
        follow_up = await f.apply(_msg(target_amount="10%"))
        assert [o.result.value for o in follow_up] == ["created"]
        assert len(f.sim.open_orders()) == 1
