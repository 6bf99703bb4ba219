"""The untrusted-input boundary: hostile inputs are refused with the field named; valid ones parse exactly."""
from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from octobot_signals.core import signal_schema as schema
from octobot_trading.enums import TraderOrderType, TradingSignalOrdersAttrs

STRATEGY = "grid-btc_1"
MB = "x" * (1024 * 1024)


def stock_order_content(order_id: str = "leader-1", **changes: object) -> dict:
    """An order content shaped exactly like octobot_trading.signals.util.create_order_signal_content output."""
    content = {
        "action": "create",
        "strategy": "DailyTradingMode",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "exchange_type": "spot",
        "side": "buy",
        "trigger_above": False,
        "type": "buy_limit",
        "quantity": 0.01,
        "target_amount": "5.3%",
        "target_position": None,
        "updated_target_amount": None,
        "updated_target_position": None,
        "limit_price": 19500.5,
        "updated_limit_price": 0.0,
        "stop_price": 0.0,
        "updated_stop_price": 0.0,
        "current": 20000.0,
        "updated_current_price": 0.0,
        "reduce_only": False,
        "post_only": False,
        "group_id": None,
        "group_type": None,
        "active_swap_strategy_type": None,
        "active_swap_strategy_timeout": None,
        "active_swap_strategy_trigger_config": None,
        "tag": None,
        "associated_order_ids": None,
        "update_with_triggering_order_fees": False,
        "order_id": order_id,
        "trailing_profile_type": None,
        "trailing_profile": None,
        "is_active": True,
        "active_trigger_price": None,
        "active_trigger_above": None,
        "cancel_policy_type": None,
        "cancel_policy_kwargs": None,
        "bundled_with": None,
        "chained_to": None,
        "additional_orders": [],
    }
    content.update(changes)
    return content


def message(*contents: dict, topic: str = "orders") -> dict:
    signals = [{"topic": topic, "content": c, "dependencies": None} for c in contents]
    return {
        "u": "9b2c4f1e-0000-4000-8000-000000000001", "i": "stream-1", "t": "t", "v": "1.0.0",
        "d": 1764000000.123, "q": 42, "g": None,
        "s": {"identifier": STRATEGY, "version": "1.0.0", "signals": signals},
    }


def two_signal_message() -> dict:
    """Hostile mutations hit signals[0]; signals[1] is valid and must survive."""
    return message(stock_order_content("leader-1"), stock_order_content("leader-2"))


CTX = schema.ValidationContext(
    symbols=frozenset({"BTC/USDT", "ETH/USDT"}), exchange_type=schema.ExchangeType.SPOT, strategy_id=STRATEGY,
)


def test_stock_content_has_every_protocol_key() -> None:
    expected = {attr.value for attr in TradingSignalOrdersAttrs} | {"action"}
    assert set(stock_order_content()) == expected


# ---- hostile table ---------------------------------------------------------------------
def set_content(**changes: object) -> Callable[[dict], object]:
    def mutate(msg: dict) -> dict:
        msg["s"]["signals"][0]["content"].update(changes)
        return msg
    return mutate


def drop_content(key: str) -> Callable[[dict], object]:
    def mutate(msg: dict) -> dict:
        del msg["s"]["signals"][0]["content"][key]
        return msg
    return mutate


def set_envelope(key: str, value: object) -> Callable[[dict], object]:
    def mutate(msg: dict) -> dict:
        msg[key] = value
        return msg
    return mutate


def set_bundle(key: str, value: object) -> Callable[[dict], object]:
    def mutate(msg: dict) -> dict:
        msg["s"][key] = value
        return msg
    return mutate


def set_signal(key: str, value: object) -> Callable[[dict], object]:
    def mutate(msg: dict) -> dict:
        msg["s"]["signals"][0][key] = value
        return msg
    return mutate


def replace_with(value: object) -> Callable[[dict], object]:
    return lambda msg: value


def nested(levels: int) -> Callable[[dict], object]:
    def mutate(msg: dict) -> dict:
        node = msg["s"]["signals"][0]["content"]
        for level in range(levels):
            child = stock_order_content(f"child-{level}", type="stop_loss", side="sell", chained_to="x")
            node["additional_orders"] = [child]
            node = child
        return msg
    return mutate


def too_many_signals(msg: dict) -> dict:
    msg["s"]["signals"] = [msg["s"]["signals"][1]] * 101
    return msg


def position_leverage(value: object) -> Callable[[dict], object]:
    def mutate(msg: dict) -> dict:
        msg["s"]["signals"][0] = {"topic": "positions", "dependencies": None, "content": {
            "action": "edit", "strategy": "x", "exchange": "binance", "exchange_type": "spot",
            "symbol": "BTC/USDT", "side": "long", "leverage": value}}
        return msg
    return mutate


C = "s.signals[0].content"
DEEP_PATH = C + ".additional_orders[0]" * 5 + ".additional_orders"

# (case id, mutation, expected field path, the error is per-signal (next signal still applied))
HOSTILE: list[tuple[str, Callable[[dict], object], str, bool]] = [
    ("message is a list", replace_with([1, 2]), "message", False),
    ("message is garbage text", replace_with("}{not json"), "message", False),
    ("message is null", replace_with(None), "message", False),
    ("u missing", set_envelope("u", None), "u", False),
    ("u is a number", set_envelope("u", 12), "u", False),
    ("u is 1 MB", set_envelope("u", MB), "u", False),
    ("t is not trading", set_envelope("t", "cfg"), "t", False),
    ("version 2.0.0", set_envelope("v", "2.0.0"), "v", False),
    ("version 0.9", set_envelope("v", "0.9"), "v", False),
    ("version abc", set_envelope("v", "abc"), "v", False),
    ("version as number", set_envelope("v", 1.0), "v", False),
    ("d is NaN", set_envelope("d", float("nan")), "d", False),
    ("d is negative", set_envelope("d", -1), "d", False),
    ("d is a string", set_envelope("d", "1764000000"), "d", False),
    ("q is zero", set_envelope("q", 0), "q", False),
    ("q is a bool", set_envelope("q", True), "q", False),
    ("q is a string", set_envelope("q", "5"), "q", False),
    ("g is a number", set_envelope("g", 5), "g", False),
    ("s is a string", set_envelope("s", "{}"), "s", False),
    ("bundle version 2.0.0", set_bundle("version", "2.0.0"), "s.version", False),
    ("identifier path traversal", set_bundle("identifier", "../etc"), "s.identifier", False),
    ("identifier of another strategy", set_bundle("identifier", "other"), "s.identifier", False),
    ("identifier 1 MB", set_bundle("identifier", MB), "s.identifier", False),
    ("signals empty", set_bundle("signals", []), "s.signals", False),
    ("signals not a list", set_bundle("signals", {"a": 1}), "s.signals", False),
    ("too many signals", too_many_signals, "s.signals", False),
    ("signal is garbage", lambda m: (m["s"]["signals"].__setitem__(0, "garbage"), m)[1], "s.signals[0]", True),
    ("unknown topic", set_signal("topic", "portfolio"), "s.signals[0].topic", True),
    ("content missing", set_signal("content", None), C, True),
    ("bad dependencies", set_signal("dependencies", {"dependency": "x"}), "s.signals[0].dependencies.dependency", True),
    ("unknown action", set_content(action="explode"), f"{C}.action", True),
    ("share 0%", set_content(target_amount="0%"), f"{C}.target_amount", True),
    ("share 150%", set_content(target_amount="150%"), f"{C}.target_amount", True),
    ("share -5%", set_content(target_amount="-5%"), f"{C}.target_amount", True),
    ("share 1e999%", set_content(target_amount="1e999%"), f"{C}.target_amount", True),
    ("share as a number", set_content(target_amount=5), f"{C}.target_amount", True),
    ("share garbage", set_content(target_amount="5%%"), f"{C}.target_amount", True),
    ("raw quantity in updated_target_amount", set_content(action="edit", updated_target_amount=0.5),
     f"{C}.updated_target_amount", True),
    ("limit price NaN", set_content(limit_price=float("nan")), f"{C}.limit_price", True),
    ("limit price inf", set_content(limit_price=float("inf")), f"{C}.limit_price", True),
    ("limit price 1e999 text", set_content(limit_price="1e999"), f"{C}.limit_price", True),
    ("limit price negative", set_content(limit_price=-5), f"{C}.limit_price", True),
    ("limit price absurd", set_content(limit_price=1e16), f"{C}.limit_price", True),
    ("limit price not plain text", set_content(limit_price="12abc"), f"{C}.limit_price", True),
    ("limit price 40 digits", set_content(limit_price="1" * 40), f"{C}.limit_price", True),
    ("stop price as a list", set_content(stop_price=[1]), f"{C}.stop_price", True),
    ("quantity is a bool", set_content(quantity=True), f"{C}.quantity", True),
    ("unknown order type", set_content(type="moon_order"), f"{C}.type", True),
    ("order type 'unknown'", set_content(type="unknown"), f"{C}.type", True),
    ("buy_market sold", set_content(type="buy_market", side="sell"), f"{C}.type", True),
    ("side up", set_content(side="up"), f"{C}.side", True),
    ("create without side", set_content(side=None), f"{C}.side", True),
    ("create without size", set_content(target_amount=None, quantity=0.0), f"{C}.target_amount", True),
    ("limit order without price", set_content(limit_price=0.0), f"{C}.limit_price", True),
    ("order id missing", drop_content("order_id"), f"{C}.order_id", True),
    ("order id empty", set_content(order_id=""), f"{C}.order_id", True),
    ("order id 1 MB", set_content(order_id=MB), f"{C}.order_id", True),
    ("order id a number", set_content(order_id=7), f"{C}.order_id", True),
    ("wrong exchange type", set_content(exchange_type="future"), f"{C}.exchange_type", True),
    ("unknown exchange type", set_content(exchange_type="margin"), f"{C}.exchange_type", True),
    ("unknown symbol", set_content(symbol="DOGE/USDT"), f"{C}.symbol", True),
    ("symbol garbage", set_content(symbol="BTCUSDT"), f"{C}.symbol", True),
    ("symbol 1 MB", set_content(symbol=MB), f"{C}.symbol", True),
    ("tag 1 MB", set_content(tag=MB), f"{C}.tag", True),
    ("reduce_only as text", set_content(reduce_only="yes"), f"{C}.reduce_only", True),
    ("trailing profile a list", set_content(trailing_profile=[1]), f"{C}.trailing_profile", True),
    ("associated ids of ints", set_content(associated_order_ids=[1]), f"{C}.associated_order_ids[0]", True),
    ("group type injection", set_content(group_type="os.system('x')"), f"{C}.group_type", True),
    ("additional orders not a list", set_content(additional_orders="x"), f"{C}.additional_orders", True),
    ("nesting 6 levels", nested(6), DEEP_PATH, True),
    ("edit changing nothing", set_content(action="edit"), f"{C}.updated_target_amount", True),
    ("add_to_group without group", set_content(action="add_to_group", group_type="OneCancelsTheOtherOrderGroup"),
     f"{C}.group_id", True),
    ("leverage zero", position_leverage(0), f"{C}.leverage", True),
    ("leverage 500", position_leverage(500), f"{C}.leverage", True),
    ("leverage text", position_leverage("ten"), f"{C}.leverage", True),
]


@pytest.mark.parametrize(("mutate", "field", "per_signal"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_input_is_refused_naming_the_field(
    mutate: Callable[[dict], object], field: str, per_signal: bool,
) -> None:
    raw = mutate(two_signal_message())
    if per_signal:
        parsed = schema.parse_feed_message(raw, CTX)
        rejected, survivor = parsed.bundle.signals
        assert isinstance(rejected, schema.RejectedSignal)
        error = rejected.error
        # the next valid signal of the same bundle is still usable
        assert isinstance(survivor, schema.ParsedSignal)
        assert survivor.content.order_id == "leader-2"
    else:
        with pytest.raises(schema.SignalValidationError) as caught:
            schema.parse_feed_message(raw, CTX)
        error = caught.value
    assert error.field == field, str(error)
    assert str(error) == f"{field}: {error.reason}"
    assert error.reason and len(str(error)) < 400  # readable one-liner, never echoes a 1 MB value


def test_the_table_is_big_enough() -> None:
    assert len(HOSTILE) >= 30


def test_rejected_signal_keeps_best_effort_id_and_action() -> None:
    raw = set_content(target_amount="150%")(two_signal_message())
    rejected = schema.parse_feed_message(raw, CTX).bundle.signals[0]
    assert isinstance(rejected, schema.RejectedSignal)
    assert (rejected.index, rejected.order_id, rejected.action) == (0, "leader-1", "create")
    assert schema.best_effort_order_id({"order_id": MB}) is None
    assert schema.best_effort_order_id("x") is None


# ---- valid inputs --------------------------------------------------------------------------
def test_stock_bundle_with_floats_parses_to_decimals() -> None:
    stop = stock_order_content("leader-sl", type="stop_loss", side="sell", limit_price=18000.0, quantity=0.01,
                               target_amount="100.0%", chained_to="leader-1", group_id="g1",
                               group_type="OneCancelsTheOtherOrderGroup",
                               active_swap_strategy_type="StopFirstActiveOrderSwapStrategy",
                               active_swap_strategy_timeout=60.0)
    raw = message(stock_order_content("leader-1", additional_orders=[stop]))
    raw["g"] = "c2lnbmF0dXJl"
    parsed = schema.parse_feed_message(raw, CTX)
    assert (parsed.u, parsed.i, parsed.t, parsed.v, parsed.q, parsed.g) == (
        raw["u"], "stream-1", "t", "1.0.0", 42, "c2lnbmF0dXJl")
    assert parsed.d == Decimal("1764000000.123")
    assert parsed.raw_s == raw["s"]
    signal = parsed.bundle.signals[0]
    assert isinstance(signal, schema.ParsedSignal)
    order = signal.content
    assert isinstance(order, schema.OrderSignal)
    assert order.action is schema.OrderAction.CREATE
    assert order.side is schema.Side.BUY
    assert order.order_type is TraderOrderType.BUY_LIMIT
    assert order.exchange_type is schema.ExchangeType.SPOT
    assert order.quantity == Decimal("0.01")
    assert order.limit_price == Decimal("19500.5")
    assert order.current == Decimal("20000.0")
    # 0.0 means "not set"
    assert order.stop_price is None and order.updated_limit_price is None and order.updated_current_price is None
    assert order.target_amount == schema.Share(Decimal("5.3"), False)
    assert str(order.target_amount) == "5.3%"
    assert order.is_active and not order.reduce_only and order.associated_order_ids == ()
    child = order.additional_orders[0]
    assert child.order_type is TraderOrderType.STOP_LOSS and child.chained_to == "leader-1"
    assert child.active_swap_strategy_timeout == Decimal("60.0")
    assert order.all_order_ids() == ("leader-1", "leader-sl")


def test_decimal_strings_and_available_shares() -> None:
    content = stock_order_content(quantity="0.01000000", limit_price="19500.50", current="20000",
                                  target_amount="12.5a%", type="sell_limit", side="sell",
                                  some_future_key={"ignored": True})
    order = schema.parse_order_content(content, CTX)
    assert order.quantity == Decimal("0.01000000")
    assert order.limit_price == Decimal("19500.50")
    assert order.target_amount == schema.Share(Decimal("12.5"), True)
    assert str(order.target_amount) == "12.5a%"


def test_tiny_float_share_from_str_of_float() -> None:
    # octobot-trading formats shares with f"{float(percent)}%": tiny ones come out in exponent form
    assert schema.Share.parse("f", f"{float('0.00001')}%").percent == Decimal("0.00001")
    assert schema.Share.parse("f", "100%").percent == Decimal(100)


def test_edit_cancel_add_to_group_and_position() -> None:
    edit = schema.parse_order_content({"action": "edit", "order_id": "o1", "symbol": "BTC/USDT",
                                       "exchange_type": "spot", "updated_target_amount": "12.5%",
                                       "updated_limit_price": 0.0}, CTX)
    assert edit.updated_target_amount == schema.Share(Decimal("12.5"), False) and edit.updated_limit_price is None
    price_edit = schema.parse_order_content({"action": "edit", "order_id": "o1", "symbol": "BTC/USDT",
                                             "exchange_type": "spot", "updated_limit_price": 21000}, CTX)
    assert price_edit.updated_limit_price == Decimal(21000)
    cancel = schema.parse_order_content({"action": "cancel", "order_id": "o1", "symbol": "BTC/USDT",
                                         "exchange_type": "spot"}, CTX)
    assert cancel.action is schema.OrderAction.CANCEL and cancel.side is None and cancel.order_type is None
    group = schema.parse_order_content({"action": "add_to_group", "order_id": "o1", "symbol": "BTC/USDT",
                                        "exchange_type": "spot", "group_id": "g",
                                        "group_type": "BalancedTakeProfitAndStopOrderGroup"}, CTX)
    assert group.group_id == "g"
    futures = schema.ValidationContext(exchange_type=schema.ExchangeType.FUTURE)
    position = schema.parse_position_content({"action": "edit", "symbol": "BTC/USDT:USDT", "exchange_type": "future",
                                              "side": "long", "leverage": 10.0}, futures)
    assert position.side == "long" and position.leverage == Decimal("10.0")
    # futures may size by target_position alone
    by_position = schema.parse_order_content(stock_order_content(
        symbol="BTC/USDT:USDT", exchange_type="future", target_amount=None, quantity=None,
        target_position=-2.5), futures)
    assert by_position.target_position == Decimal("-2.5")


def test_five_levels_of_nesting_are_accepted() -> None:
    parsed = schema.parse_feed_message(nested(5)(two_signal_message()), CTX)
    assert all(isinstance(s, schema.ParsedSignal) for s in parsed.bundle.signals)


@pytest.mark.parametrize("version", ["1.0.0", "1.9", "1.2.3", "1"])
def test_accepted_versions(version: str) -> None:
    raw = two_signal_message()
    raw["v"] = version
    assert schema.parse_feed_message(raw).v == version


def test_feed_message_survives_a_json_round_trip() -> None:
    raw = json.loads(json.dumps(two_signal_message()))
    assert len(schema.parse_feed_message(raw, CTX).bundle.signals) == 2


# ---- dependency order ------------------------------------------------------------------------
def _bundle(*items: tuple[dict, list[dict] | None], topic: str = "orders") -> schema.SignalBundle:
    signals = []
    for content, deps in items:
        kind = "positions" if "leverage" in content else topic
        signals.append({"topic": kind, "content": content, "dependencies": None if deps is None else {"dependency": deps}})
    return schema.parse_bundle({"identifier": STRATEGY, "version": "1.0.0", "signals": signals})


def _order_ids(ordered: list) -> list[int]:
    return [s.index for s in ordered]


def test_dependency_order_moves_dependents_after_their_dependencies() -> None:
    cancel = {"action": "cancel", "order_id": "C", "symbol": "BTC/USDT", "exchange_type": "spot"}
    bundle = _bundle(
        (stock_order_content("B", chained_to="A", type="sell_limit", side="sell"), [{"order_id": "A"}]),
        (stock_order_content("A"), None),
        (cancel, None),
    )
    assert bundle.signals[0].depends_on_order_ids == ("A",)
    assert _order_ids(schema.dependency_order(bundle)) == [1, 0, 2]


def test_dependency_order_keeps_order_on_cycles_and_outside_dependencies() -> None:
    bundle = _bundle(
        (stock_order_content("A"), [{"order_id": "B"}]),
        (stock_order_content("B"), [{"order_id": "A"}]),
        (stock_order_content("C"), [{"order_id": "not-in-bundle"}]),
    )
    assert _order_ids(schema.dependency_order(bundle)) == [0, 1, 2]


def test_dependency_order_on_positions_and_rejected_signals() -> None:
    position = {"action": "edit", "symbol": "BTC/USDT", "exchange_type": "spot", "side": None, "leverage": 3}
    bundle = _bundle(
        (stock_order_content("A"), [{"position_symbol": "BTC/USDT"}]),
        (stock_order_content("bad", target_amount="0%"), None),
        (position, None),
    )
    assert isinstance(bundle.signals[1], schema.RejectedSignal)
    assert bundle.signals[0].depends_on_symbols == ("BTC/USDT",)
    assert _order_ids(schema.dependency_order(bundle)) == [1, 2, 0]


def test_dependency_on_a_nested_order_waits_for_its_parent_signal() -> None:
    parent = stock_order_content("A", additional_orders=[stock_order_content("A-sl", type="stop_loss", side="sell")])
    edit = {"action": "edit", "order_id": "A-sl", "symbol": "BTC/USDT", "exchange_type": "spot",
            "updated_stop_price": 17000}
    bundle = _bundle((edit, [{"order_id": "A-sl"}]), (copy.deepcopy(parent), None))
    assert _order_ids(schema.dependency_order(bundle)) == [1, 0]


def test_remembered_numbers_keep_every_check() -> None:
    from octobot_signals.core.decimal_util import DecimalInputError, to_decimal

    for _ in range(2):  # the second round answers from the cache of accepted numbers
        assert to_decimal("-1.5", allow_negative=True) == Decimal("-1.5")
        with pytest.raises(DecimalInputError, match="negative"):
            to_decimal("-1.5")  # accepted above only because negatives were allowed there
        with pytest.raises(DecimalInputError):
            to_decimal("nan")
        with pytest.raises(DecimalInputError):
            to_decimal(True)  # a bool is an int to Python, never a number here
        assert str(to_decimal(0.1)) == "0.1" and str(to_decimal("0.10")) == "0.10"
        assert to_decimal(1) == to_decimal("1") == to_decimal(1.0) == Decimal(1)


def test_dependency_order_keeps_bundle_order_when_nothing_depends() -> None:
    bundle = _bundle((stock_order_content("A"), None), (stock_order_content("B"), None), (stock_order_content("C"), None))
    assert _order_ids(schema.dependency_order(bundle)) == [0, 1, 2]


def test_parsed_objects_are_the_frozen_dataclasses_their_init_would_build() -> None:
    """The parser builds its frozen objects without their __init__ (one object.__setattr__ per field): each has
    every field, equals what __init__ builds from the same values, and is as frozen."""
    stop = stock_order_content("leader-1-sl", type="stop_loss", side="sell", chained_to="leader-1", tag="sl",
                               associated_order_ids=["x"], trailing_profile={"steps": [1, 2]})
    parsed = schema.parse_feed_message(message(stock_order_content(additional_orders=[stop])), CTX)
    signal = parsed.bundle.signals[0]
    assert isinstance(signal, schema.ParsedSignal)
    content = signal.content
    assert isinstance(content, schema.OrderSignal)
    for obj in (parsed, signal, content, content.additional_orders[0]):
        fields = [field.name for field in dataclasses.fields(obj)]
        assert sorted(vars(obj)) == sorted(fields)
        rebuilt = type(obj)(**{name: getattr(obj, name) for name in fields})
        assert rebuilt == obj and repr(rebuilt) == repr(obj)
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.__setattr__(fields[0], None)
    assert content.additional_orders[0].tag == "sl" and content.additional_orders[0].associated_order_ids == ("x",)


def test_remembered_texts_keep_every_check() -> None:
    other = schema.ValidationContext(symbols=CTX.symbols, exchange_type=CTX.exchange_type, strategy_id="someone-else")
    for _ in range(2):  # the second round answers the pattern checks from the texts accepted in the first
        parsed = schema.parse_feed_message(message(stock_order_content()), CTX)
        assert parsed.bundle.identifier == STRATEGY and parsed.bundle.signals[0].content.symbol == "BTC/USDT"
        with pytest.raises(schema.SignalValidationError, match="this bot follows 'someone-else'"):
            schema.parse_feed_message(message(stock_order_content()), other)
        rejected = schema.parse_feed_message(message(stock_order_content(symbol="LTC/USDT")), CTX).bundle.signals[0]
        assert isinstance(rejected, schema.RejectedSignal) and "unknown symbol LTC/USDT" in str(rejected.error)
        bad = schema.parse_feed_message(message(stock_order_content(symbol="BTC/USDT ")), CTX).bundle.signals[0]
        assert isinstance(bad, schema.RejectedSignal) and bad.error.field.endswith(".symbol")
