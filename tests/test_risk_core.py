"""The pure risk core (core/risk.py) and its settings: exposure cap, open copies, drawdown latch and reset,
pair filter, quote mapping; every refusal names its setting."""
from __future__ import annotations

from decimal import Decimal

import pytest
from octobot_signals.core import risk, sizing
from octobot_signals.core import settings as settings_module
from octobot_signals.core import signal_schema as schema

D = Decimal
NO_LIMITS = sizing.MarketLimits()
HOLDINGS = sizing.Holdings(base_total=D(0), base_available=D(0), quote_total=D(1000), quote_available=D(1000))


def settings(**values: object) -> settings_module.FollowerSettings:
    return settings_module.settings_from_config(values)


def signal(side: str = "buy", share: str = "20%", **extra: object) -> schema.OrderSignal:
    content = {"action": "create", "order_id": "L1", "symbol": "BTC/USDT", "exchange_type": "spot", "side": side,
               "type": f"{side}_limit", "target_amount": share, "quantity": 0.01, "current": 20000.0,
               "limit_price": 20000.0}
    content.update(extra)
    return schema.parse_order_content(content)


def size(sig: schema.OrderSignal, view: risk.RiskView | None, **values: object):
    return sizing.size_entry(sig, HOLDINGS, D(20000), NO_LIMITS, settings(**values), schema.ExchangeType.SPOT,
                             risk=view)


def test_exposure_caps_entries_to_what_is_left_and_never_exits():
    view = risk.RiskView(portfolio_value=D(1000), exposure=D(250), open_copies=0)
    plan = size(signal(), view, max_exposure_percent=30)  # 200 wanted, 300 - 250 = 50 left
    assert isinstance(plan, sizing.OrderPlan) and plan.quantity == D("0.0025")
    assert "reduced by max_exposure_percent 30% (25% already exposed)" in plan.notes[0]
    assert size(signal(), view, max_exposure_percent=25).reason == \
        "max_exposure_percent: 25% of my portfolio already exposed (max 25%)"
    holdings_exit = size(signal("sell", "50%"), risk.RiskView(D(1000), D(1000), 99), max_exposure_percent=1,
                         max_open_copies=1)
    assert isinstance(holdings_exit, sizing.Skip) and "nothing to trade" in holdings_exit.reason  # no BTC: funds
    assert size(signal(), None, max_exposure_percent=1).quantity == D("0.01")  # edits pass no view: unchecked


def test_open_copies_limit():
    assert size(signal(), risk.RiskView(D(1000), D(0), 3), max_open_copies=3).reason == \
        "max_open_copies: 3 copied entry orders open (max 3)"
    assert size(signal(), risk.RiskView(D(1000), D(0), 2), max_open_copies=3).quantity == D("0.01")
    assert size(signal(), risk.RiskView(D(1000), D(0), 50)).quantity == D("0.01")  # 0 = no limit


def test_drawdown_latches_and_resets_with_the_counter():
    s = settings(drawdown_stop_percent=10)
    state, message = risk.update_drawdown(risk.DrawdownState(), D(1000), s)
    assert state == risk.DrawdownState(D(1000), None, 0) and message is None
    state, _ = risk.update_drawdown(state, D(1200), s)  # new peak
    state, message = risk.update_drawdown(state, D(1081), s)  # 9.9 % down: still copying
    assert state.stopped_at is None and risk.drawdown_skip(state, s) is None
    state, message = risk.update_drawdown(state, D(1079), s)
    assert state.stopped_at == D(1079) and message.startswith("drawdown stop: my portfolio (1079)")
    state, message = risk.update_drawdown(state, D(5000), s)  # a bounce does not lift it
    assert state.stopped_at == D(1079) and message is None
    assert risk.drawdown_skip(state, s).reason.startswith("drawdown stop: my portfolio fell 10.08333333% below")
    assert risk.drawdown_skip(state, settings(drawdown_stop_percent=0)) is None  # turned off: no refusal
    state, message = risk.update_drawdown(state, D(900), settings(drawdown_stop_percent=10, drawdown_reset=1))
    assert state == risk.DrawdownState(D(900), None, 1) and message.startswith("drawdown stop reset")


def test_pair_filter_and_quote_mapping():
    only = settings(pair_filter="BTC/USDT,eth/usdt")
    assert risk.pair_filter_skip("BTC/USDT", "BTC/USDC", only) is None  # the leader's name matches
    assert risk.pair_filter_skip("SOL/USDT", "SOL/USDT", only).reason == \
        "pair_filter: SOL/USDT is not followed (follow only BTC/USDT, ETH/USDT)"
    but = settings(pair_filter="BTC/USDC", pair_filter_mode="follow_all_but")
    assert risk.pair_filter_skip("BTC/USDT", "BTC/USDC", but).reason.startswith("pair_filter: BTC/USDC is excluded")
    assert risk.pair_filter_skip("X/Y", "X/Y", settings()) is None
    mapping = settings(quote_mapping="usdt=USDC, BUSD = USDC").quote_mapping
    assert mapping == (("USDT", "USDC"), ("BUSD", "USDC"))
    assert risk.map_symbol("BTC/USDT", mapping) == "BTC/USDC"
    assert risk.map_symbol("BTC/USDT:USDT", mapping) == "BTC/USDC:USDC"
    assert risk.map_symbol("USDT/EUR", mapping) == "USDT/EUR"  # only quotes and settlements are renamed


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("max_exposure_percent", "-1", "must not be negative"),
    ("max_exposure_percent", "1001", "must be in [0, 1000]"),
    ("max_open_copies", "1.5", "expected a whole number"),
    ("max_open_copies", "100001", "must be in [0, 100000]"),
    ("drawdown_stop_percent", "100", "must be below 100"),
    ("drawdown_stop_percent", "NaN", ""),
    ("drawdown_reset", "-2", "must not be negative"),
    ("pair_filter", "BTC-USDT", "expected pairs like BTC/USDT"),
    ("pair_filter", ["BTC/USDT", 3], "expected a list of texts"),
    ("pair_filter_mode", "only", "expected one of follow_only, follow_all_but"),
    ("quote_mapping", "USDT", "expected LEADER=MINE"),
    ("quote_mapping", "USDT=USDT", "maps a currency to itself"),
    ("quote_mapping", "USDT=USDC,USDT=BUSD", "USDT is mapped twice"),
    ("quote_mapping", "USDT=USDC,USDC=BUSD", "both mapped and a mapping target"),
])
def test_invalid_risk_settings_name_the_key(key: str, value: object, reason: str):
    with pytest.raises(settings_module.SettingsError) as err:
        settings_module.settings_from_config({key: value})
    assert err.value.key == key and reason in err.value.reason


def test_risk_settings_accept_lists_and_defaults_are_off():
    parsed = settings_module.settings_from_config({"pair_filter": ["btc/usdt", "BTC/USDT"], "quote_mapping": ""})
    assert parsed.pair_filter == ("BTC/USDT",) and parsed.quote_mapping == ()
    d = settings_module.FollowerSettings()
    assert (d.max_exposure_percent, d.max_open_copies, d.drawdown_stop_percent, d.pair_filter) == (0, 0, 0, ())
