"""normalize_bundle on bundle dicts built by octobot-trading's own TradingSignalBundleBuilder.

Orders are plain attribute holders carrying exactly the fields create_order_signal_content
reads, so the dicts under test are the ones a real publisher would emit (raw Decimal edits,
0.0 for untouched prices, edits merged into pending creates).
"""
from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import octobot_trading.personal_data  # noqa: F401  (import order: avoids octobot_trading.signals' import cycle)
import pytest
from octobot_signals.core import protocol
from octobot_signals.core.decimal_util import plain
from octobot_signals.core.signal_schema import OrderSignal, ParsedSignal, RejectedSignal, parse_bundle
from octobot_signals.feed.signal_normalizer import NormalizationError, normalize_bundle, raw_quantity
from octobot_trading.enums import TradeOrderSide, TraderOrderType
from octobot_trading.signals.trading_signal_bundle_builder import TradingSignalBundleBuilder

STRATEGY = "grid-btc"


def _exchange_manager() -> SimpleNamespace:
    return SimpleNamespace(
        exchange_name="binance", is_spot_only=True, is_future=False, is_margin=False, is_option=False
    )


def _order(order_id: str, order_type: TraderOrderType, side: TradeOrderSide, quantity: str, price: str,
           stop: str = "0", last: str = "20000") -> SimpleNamespace:
    return SimpleNamespace(
        symbol="BTC/USDT", order_type=order_type, side=side, trigger_above=False,
        origin_quantity=Decimal(quantity), origin_price=Decimal(price), origin_stop_price=Decimal(stop),
        created_last_price=Decimal(last), reduce_only=False, order_group=None, tag=None,
        associated_entry_ids=None, update_with_triggering_order_fees=False, order_id=order_id,
        trailing_profile=None, is_active=True, active_trigger=None, cancel_policy=None,
        triggered_by=None, has_been_bundled=False,
    )


def _builder() -> TradingSignalBundleBuilder:
    return TradingSignalBundleBuilder(STRATEGY, "GridTradingMode")


class ShareBook:
    """share_of for a leader holding 2 BTC: spot sell share = quantity / 2."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, content: dict[str, Any]) -> str | None:
        self.requests.append(content)
        quantity = content["quantity"]
        assert isinstance(quantity, Decimal)
        return f"{plain(quantity / Decimal(2) * 100)}%"


def _parsed(bundle: dict, index: int = 0) -> OrderSignal:
    """The follower's own validation boundary must accept what we publish."""
    signal = parse_bundle(bundle).signals[index]
    assert isinstance(signal, ParsedSignal), signal
    assert isinstance(signal.content, OrderSignal)
    return signal.content


def _orders(bundle: dict) -> list[dict]:
    return [signal["content"] for signal in bundle["signals"]]


def test_plain_create_is_json_safe_and_untouched() -> None:
    builder = _builder()
    order = _order("o1", TraderOrderType.SELL_LIMIT, TradeOrderSide.SELL, "0.5", "21000")
    builder.add_created_order(order, _exchange_manager(), target_amount="25.0%")
    raw = builder.build().to_dict()
    shares = ShareBook()
    out = normalize_bundle(raw, shares)
    content = _orders(out)[0]
    assert content["target_amount"] == "25.0%"
    assert content["limit_price"] == 21000.0 and content["quantity"] == 0.5
    assert content["updated_limit_price"] is None and content["updated_current_price"] is None
    assert shares.requests == []  # nothing to convert
    json.dumps(out, allow_nan=False)  # strict JSON now
    protocol.validate_bundle_shape(out)
    assert raw["signals"][0]["content"]["updated_limit_price"] == 0.0  # input not mutated


def test_edit_raw_quantity_becomes_share_and_zero_prices_null() -> None:
    builder = _builder()
    order = _order("o1", TraderOrderType.SELL_LIMIT, TradeOrderSide.SELL, "0.3", "21000")
    builder.add_edited_order(order, _exchange_manager(), updated_target_amount=Decimal("0.3"))
    raw = builder.build().to_dict()
    with pytest.raises(TypeError):
        json.dumps(raw)  # the defect: a Decimal in updated_target_amount
    assert raw_quantity(raw["signals"][0]["content"]["updated_target_amount"]) == Decimal("0.3")
    out = normalize_bundle(raw, ShareBook())
    content = _orders(out)[0]
    assert content["action"] == "edit"
    assert content["updated_target_amount"] == "15%"
    assert content["target_amount"] == "15%"
    for key in ("updated_limit_price", "updated_stop_price", "updated_current_price"):
        assert content[key] is None
    assert str(_parsed(out).updated_target_amount) == "15%"


def test_price_only_edit_keeps_null_amount() -> None:
    builder = _builder()
    order = _order("o1", TraderOrderType.BUY_LIMIT, TradeOrderSide.BUY, "0.1", "19000")
    builder.add_edited_order(order, _exchange_manager(), updated_limit_price=Decimal("18500.5"))
    out = normalize_bundle(builder.build().to_dict(), ShareBook())
    content = _orders(out)[0]
    assert content["updated_target_amount"] is None and content["target_amount"] is None
    assert content["updated_limit_price"] == 18500.5
    assert content["updated_stop_price"] is None
    assert _parsed(out).updated_limit_price == Decimal("18500.5")


def test_edit_merged_into_create_restores_share_quantity_and_prices() -> None:
    builder = _builder()
    em = _exchange_manager()
    order = _order("o1", TraderOrderType.SELL_LIMIT, TradeOrderSide.SELL, "0.5", "21000")
    builder.add_created_order(order, em, target_amount="25.0%")
    order.origin_quantity = Decimal("0.8")
    builder.add_edited_order(order, em, updated_target_amount=Decimal("0.8"))
    raw = builder.build().to_dict()
    merged = raw["signals"][0]["content"]
    assert merged["action"] == "create" and merged["target_amount"] == Decimal("0.8")
    assert merged["limit_price"] == 0.0  # the builder zeroed the untouched price
    prices = {"o1": {"limit_price": Decimal("21000"), "stop_price": None, "current": Decimal("20000")}}
    out = normalize_bundle(raw, ShareBook(), prices_of=lambda c: prices.get(c["order_id"]))
    content = _orders(out)[0]
    assert content["target_amount"] == "40%"
    assert content["quantity"] == "0.8"
    assert content["updated_target_amount"] is None
    assert content["limit_price"] == "21000" and content["current"] == "20000"
    assert content["stop_price"] is None
    assert _parsed(out).limit_price == Decimal("21000")


def test_price_edit_merged_into_create_recomputes_share_from_quantity() -> None:
    builder = _builder()
    em = _exchange_manager()
    order = _order("o1", TraderOrderType.SELL_LIMIT, TradeOrderSide.SELL, "0.5", "21000")
    builder.add_created_order(order, em, target_amount="25.0%")
    builder.add_edited_order(order, em, updated_limit_price=Decimal("21500"))
    raw = builder.build().to_dict()
    assert raw["signals"][0]["content"]["target_amount"] is None
    warnings: list[str] = []
    out = normalize_bundle(raw, ShareBook(), warnings=warnings)  # no prices_of: current is lost
    content = _orders(out)[0]
    assert content["target_amount"] == "25%"
    assert content["limit_price"] == 21500.0
    assert content["current"] is None and content["stop_price"] is None
    assert warnings == []  # limit price survived: nothing to warn about


def test_nested_additional_orders_are_normalized() -> None:
    builder = _builder()
    em = _exchange_manager()
    entry = _order("entry", TraderOrderType.BUY_MARKET, TradeOrderSide.BUY, "0.2", "20000")
    stop = _order("sl", TraderOrderType.STOP_LOSS, TradeOrderSide.SELL, "0.2", "19000", stop="19000")
    stop.triggered_by = entry
    builder.add_created_order(entry, em, target_amount="10%")
    builder.add_created_order(stop, em, target_amount="10%")
    stop.origin_quantity = Decimal("0.1")
    builder.add_edited_order(stop, em, updated_target_amount=Decimal("0.1"))
    raw = builder.build().to_dict()
    assert len(raw["signals"]) == 1  # chained order packed into additional_orders
    warnings: list[str] = []
    lost = normalize_bundle(raw, ShareBook(), warnings=warnings)
    assert lost["signals"][0]["content"]["additional_orders"][0]["limit_price"] is None
    assert any("additional_orders[0].limit_price" in w for w in warnings)
    stop_prices = {"limit_price": Decimal("19000"), "stop_price": Decimal("19000"), "current": Decimal("20000")}
    out = normalize_bundle(raw, ShareBook(), prices_of=lambda c: stop_prices if c["order_id"] == "sl" else None)
    child = _orders(out)[0]["additional_orders"][0]
    assert child["order_id"] == "sl"
    assert child["target_amount"] == "5%" and child["quantity"] == "0.1"
    assert child["chained_to"] == "entry"
    assert _parsed(out).additional_orders[0].limit_price == Decimal("19000")


def test_cancel_and_leverage_signals_pass_through() -> None:
    builder = _builder()
    em = SimpleNamespace(exchange_name="binanceusdm", is_spot_only=False, is_future=True,
                         is_margin=False, is_option=False)
    order = _order("o9", TraderOrderType.BUY_LIMIT, TradeOrderSide.BUY, "1", "100")
    builder.add_cancelled_order(order, em)
    builder.add_leverage_update("BTC/USDT", None, Decimal("5"), em)
    out = normalize_bundle(builder.build().to_dict(), ShareBook())
    assert [s["topic"] for s in out["signals"]] == ["orders", "positions"]
    assert out["signals"][1]["content"]["leverage"] == 5.0
    assert not any(isinstance(r, RejectedSignal) for r in parse_bundle(out).signals)


def test_unknown_share_nulls_the_amount_with_a_warning() -> None:
    builder = _builder()
    order = _order("o1", TraderOrderType.SELL_LIMIT, TradeOrderSide.SELL, "0.3", "21000")
    builder.add_edited_order(order, _exchange_manager(), updated_target_amount=Decimal("0.3"),
                             updated_limit_price=Decimal("20500"))
    warnings: list[str] = []
    out = normalize_bundle(builder.build().to_dict(), lambda content: None, warnings=warnings)
    content = _orders(out)[0]
    assert content["updated_target_amount"] is None and content["updated_limit_price"] == 20500.0
    assert len(warnings) == 1 and "updated_target_amount" in warnings[0]


def test_decimals_nan_and_bad_types() -> None:
    bundle = {"identifier": STRATEGY, "version": "1.0.0", "signals": [
        {"topic": "positions", "content": {"action": "edit", "leverage": Decimal("3.50"),
                                           "side": None, "symbol": "BTC/USDT"}, "dependencies": None},
        {"topic": "orders", "content": {"action": "cancel", "order_id": "x", "current": float("nan"),
                                        "associated_order_ids": ("a", "b")}, "dependencies": None},
    ]}
    warnings: list[str] = []
    out = normalize_bundle(bundle, ShareBook(), warnings=warnings)
    assert out["signals"][0]["content"]["leverage"] == "3.5"
    assert out["signals"][1]["content"]["current"] is None
    assert out["signals"][1]["content"]["associated_order_ids"] == ["a", "b"]
    assert warnings and "current" in warnings[0]
    with pytest.raises(NormalizationError) as err:
        normalize_bundle({**bundle, "signals": [{"topic": "orders", "content": {"x": object()}}]}, ShareBook())
    assert err.value.field == "bundle.signals[0].content.x"
    with pytest.raises(NormalizationError):
        normalize_bundle({"identifier": STRATEGY, "signals": "nope"}, ShareBook())
