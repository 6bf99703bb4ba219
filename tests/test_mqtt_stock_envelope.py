"""The MQTT egress's stock envelope: decimal strings in order and position signals become JSON numbers
(as octobot-trading's publisher writes them), nothing else changes, and nothing ever raises."""
from __future__ import annotations

import copy
import json
from typing import Any

import octobot_trading.enums as trading_enums
import pytest
from octobot_signals.core.signal_schema import (
    SignalValidationError,
    parse_order_content,
    parse_position_content,
)
from octobot_signals.hub.mqtt_egress import feed_payload
from octobot_signals.hub.mqtt_stock_envelope import (
    ORDER_NUMBER_FIELDS,
    POSITION_NUMBER_FIELDS,
    json_number,
    stock_feed_message,
    stock_signal,
)


def _order(order_id: str, **fields: Any) -> dict[str, Any]:
    content = {"action": "create", "strategy": "s", "symbol": "BTC/USDT", "exchange": "binance",
               "exchange_type": "spot", "side": "buy", "type": "buy_limit", "quantity": "0.05",
               "target_amount": "0.1%", "target_position": None, "limit_price": "16000", "stop_price": "0",
               "current": "16100.25", "updated_limit_price": "0", "order_id": order_id, "tag": "42",
               "group_id": "7", "additional_orders": []}
    content.update(fields)
    return content


def _message(*signals: dict[str, Any]) -> dict[str, Any]:
    return {"u": "u-1", "i": "stream", "t": "t", "v": "1.0.0", "d": 1764000000.5, "q": 3,
            "s": {"identifier": "grid-1", "version": "1.0.0", "signals": list(signals)}, "g": "sig=="}


def _orders(content: Any) -> dict[str, Any]:
    return {"topic": "orders", "content": content, "dependencies": None}


# ---- values
@pytest.mark.parametrize(("text", "number"), [
    ("0", 0.0), ("16000", 16000.0), ("16000.5", 16000.5), ("0.00001", 1e-05), ("1e-05", 1e-05),
    (" 42.1 ", 42.1), ("-3.5", -3.5), ("+2", 2.0), (".5", 0.5), ("7.", 7.0), ("-0", 0.0),
    ("0.1000000000000000055511151231257827", 0.1),  # the float nearest the decimal: a float's rounding only
])
def test_decimal_strings_become_floats(text: str, number: float) -> None:
    converted = json_number(text)
    assert type(converted) is float and converted == number


@pytest.mark.parametrize("value", [
    "0.1%", "5a%", "abc", "", " ", "NaN", "nan", "inf", "-Infinity", "1_000", "0x10", "1,5", "1e99999",
    "1e400",  # overflows a float: stays text rather than become inf
    "1e-400",  # a non-zero value that a float would turn into 0: stays text
    "1" * 65, None, True, False, 3, 2.5, [], {}, ["1"], {"a": "1"},
])
def test_anything_else_is_left_as_is(value: object) -> None:
    assert json_number(value) is value


# ---- order contents
def test_order_numbers_become_floats_other_fields_stay() -> None:
    content = _order("leader-1", updated_target_amount="2a%", target_position="5",
                     active_trigger_price="15900", active_swap_strategy_timeout="30",
                     associated_order_ids=["1", "2"], trailing_profile={"steps": ["1"]},
                     cancel_policy_kwargs={"expiration_time": "10"})
    out = stock_signal(_orders(content))["content"]
    assert out["limit_price"] == 16000.0 and type(out["limit_price"]) is float
    assert out["stop_price"] == 0 and type(out["stop_price"]) is float  # falsy now, as the stock mode needs
    assert (out["quantity"], out["current"], out["updated_limit_price"]) == (0.05, 16100.25, 0.0)
    assert (out["active_trigger_price"], out["active_swap_strategy_timeout"]) == (15900.0, 30.0)
    # shares, position targets, ids, tags and free-form dicts are not numbers to the stock mode
    for key in ("target_amount", "updated_target_amount", "target_position", "order_id", "tag", "group_id",
                "symbol", "associated_order_ids", "trailing_profile", "cancel_policy_kwargs"):
        assert out[key] == content[key], key
    assert out["target_amount"] == "0.1%"


def test_nested_additional_orders_are_converted_at_every_level() -> None:
    leaf = _order("tp-2", limit_price="18000.5", stop_price="0")
    middle = _order("sl-1", type="stop_loss", limit_price="15000", stop_price="15000.25", additional_orders=[leaf])
    top = _order("entry", additional_orders=[middle, "not an order", 7])
    out = stock_signal(_orders(top))["content"]
    assert out["limit_price"] == 16000.0
    nested = out["additional_orders"]
    assert nested[1:] == ["not an order", 7]  # unexpected items are passed on as they came
    assert (nested[0]["limit_price"], nested[0]["stop_price"]) == (15000.0, 15000.25)
    deepest = nested[0]["additional_orders"][0]
    assert (deepest["limit_price"], deepest["stop_price"], deepest["target_amount"]) == (18000.5, 0.0, "0.1%")


def test_very_deep_nesting_never_raises() -> None:
    content: dict[str, Any] = _order("leaf")
    for depth in range(2000):  # far deeper than anything journaled (PROTOCOL.md: 5 levels)
        content = _order(f"o{depth}", additional_orders=[content])
    out = stock_signal(_orders(content))["content"]
    assert out["limit_price"] == 16000.0


def test_position_leverage_becomes_a_float() -> None:
    signal = {"topic": "positions", "content": {"action": "edit", "symbol": "BTC/USDT:USDT", "exchange": "binance",
                                                "exchange_type": "future", "side": None, "leverage": "3",
                                                "strategy": "10"}}
    out = stock_signal(signal)["content"]
    assert out["leverage"] == 3.0 and type(out["leverage"]) is float
    assert out["strategy"] == "10" and out["side"] is None


@pytest.mark.parametrize("signal", [
    None, "text", 3, [], {"topic": "orders"}, {"topic": "orders", "content": "x"}, {"topic": "orders", "content": []},
    {"topic": ["orders"], "content": {"limit_price": "1"}},  # an unhashable topic
    {"topic": "other", "content": {"limit_price": "1"}},
    {"topic": "orders", "content": {"limit_price": "1", "additional_orders": "not a list"}},
])
def test_unexpected_signals_are_left_as_is(signal: object) -> None:
    before = copy.deepcopy(signal)
    out = stock_signal(signal)
    if isinstance(signal, dict) and isinstance(signal.get("content"), dict) and signal.get("topic") == "orders":
        assert out["content"]["limit_price"] == 1.0 and out["content"]["additional_orders"] == "not a list"
    else:
        assert out is signal
    assert signal == before


@pytest.mark.parametrize("message", [
    {}, {"s": None}, {"s": "x"}, {"s": {"signals": None}}, {"s": {"signals": {"a": 1}}}, {"u": "x", "s": []},
])
def test_unexpected_envelopes_are_left_as_is(message: dict[str, Any]) -> None:
    assert stock_feed_message(message) is message


def test_the_journaled_message_is_not_modified_and_the_envelope_is_kept() -> None:
    message = _message(_orders(_order("a", additional_orders=[_order("b")])), {"topic": "positions", "content": {
        "action": "edit", "symbol": "BTC/USDT", "exchange_type": "future", "leverage": "2"}})
    journaled = json.dumps(message, sort_keys=True)  # what /cable and the history serve (and signatures cover)
    out = stock_feed_message(message)
    assert json.dumps(message, sort_keys=True) == journaled
    assert {k: v for k, v in out.items() if k != "s"} == {k: v for k, v in message.items() if k != "s"}
    assert {k: v for k, v in out["s"].items() if k != "signals"} == {"identifier": "grid-1", "version": "1.0.0"}
    assert out["s"]["signals"][0]["content"]["additional_orders"][0]["limit_price"] == 16000.0
    assert out["s"]["signals"][1]["content"]["leverage"] == 2.0


def test_feed_payload_is_compact_json_with_numbers() -> None:
    payload = feed_payload(_message(_orders(_order("a", symbol="ÉTH/USDT"))))
    text = payload.decode("utf-8")
    assert ", " not in text and ": " not in text and "ÉTH" in text  # compact, UTF-8 (not \u escapes)
    assert '"limit_price":16000.0' in text and '"stop_price":0.0' in text and '"target_amount":"0.1%"' in text
    content = json.loads(payload)["s"]["signals"][0]["content"]
    assert content["stop_price"] or content["limit_price"] == 16000.0  # the stock mode's own price pick


# ---- the field sets, checked against octobot-trading and our validator (the hub cannot import either)
def _number_only_fields(parse: Any, base: dict[str, Any], names: list[str]) -> set[str]:
    """Fields our validator reads as numbers only: it accepts "12.5" there and refuses "5%"."""
    found = set()
    for name in names:
        accepts_number = _accepts(parse, {**base, name: "12.5"}, name)
        refuses_share = not _accepts(parse, {**base, name: "5%"}, name)
        if accepts_number and refuses_share:
            found.add(name)
    return found


def _accepts(parse: Any, content: dict[str, Any], name: str) -> bool:
    try:
        parse(content)
    except SignalValidationError as err:
        assert err.field == f"content.{name}", err  # refused for this field, not for the base content
        return False
    return True


def test_order_fields_are_octobot_tradings_and_the_numbers_our_validator_reads() -> None:
    names = [attr.value for attr in trading_enums.TradingSignalOrdersAttrs]
    assert ORDER_NUMBER_FIELDS <= set(names)
    base = _order("probe", additional_orders=None)
    assert _number_only_fields(parse_order_content, base, names) == ORDER_NUMBER_FIELDS


def test_position_fields_are_octobot_tradings_and_the_numbers_our_validator_reads() -> None:
    names = [attr.value for attr in trading_enums.TradingSignalPositionsAttrs]
    assert POSITION_NUMBER_FIELDS <= set(names)
    base = {"action": "edit", "symbol": "BTC/USDT:USDT", "exchange": "binance", "exchange_type": "future",
            "side": None, "leverage": 3}
    assert _number_only_fields(parse_position_content, base, names) == POSITION_NUMBER_FIELDS
