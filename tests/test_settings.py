"""Follower settings from untrusted config values: defaults, coercion, bounds, secrets."""
from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from octobot_signals.core import settings as s

TOKEN = "fol_9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def test_defaults() -> None:
    parsed = s.settings_from_config({})
    assert parsed == s.FollowerSettings()
    assert parsed.max_volume == Decimal(100)
    assert parsed.sizing is s.SizingMode.PORTFOLIO_PERCENT
    assert parsed.leader_quantity_ratio == Decimal(1)
    assert parsed.max_signal_age_seconds == 300
    assert parsed.max_price_deviation_percent == Decimal(5)
    assert not parsed.round_to_minimal_size_if_necessary
    assert s.KEYS == (
        "trading_strategy", "max_volume", "round_to_minimal_size_if_necessary", "sizing", "leader_quantity_ratio",
        "fixed_quote_amount", "max_signal_age_seconds", "max_price_deviation_percent", "hub_url",
        "follower_token", "public_key", "journal_path", "max_exposure_percent", "max_open_copies",
        "drawdown_stop_percent", "drawdown_reset", "pair_filter", "pair_filter_mode", "quote_mapping",
    )


def test_null_values_take_defaults_and_unknown_keys_are_ignored() -> None:
    parsed = s.settings_from_config({key: None for key in s.KEYS} | {"emit_trading_signals": True, "x": [1]})
    assert parsed == s.FollowerSettings()


def test_web_ui_values_are_coerced() -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    parsed = s.settings_from_config({
        "trading_strategy": " grid-btc_1 ",
        "max_volume": "12.5",
        "round_to_minimal_size_if_necessary": "TRUE",
        "sizing": "leader_quantity_ratio",
        "leader_quantity_ratio": 0.1,
        "fixed_quote_amount": 25,
        "max_signal_age_seconds": "60",
        "max_price_deviation_percent": 2.5,
        "hub_url": "https://hub.example.org:8443/",
        "follower_token": TOKEN,
        "public_key": key,
        "journal_path": "/tmp/journal.jsonl",
    })
    assert parsed.trading_strategy == "grid-btc_1"
    assert parsed.max_volume == Decimal("12.5")
    assert parsed.round_to_minimal_size_if_necessary is True
    assert parsed.sizing is s.SizingMode.LEADER_QUANTITY_RATIO
    assert parsed.leader_quantity_ratio == Decimal("0.1")  # through str(): no binary float noise
    assert parsed.fixed_quote_amount == Decimal(25)
    assert parsed.max_signal_age_seconds == 60
    assert parsed.max_price_deviation_percent == Decimal("2.5")
    assert parsed.hub_url == "https://hub.example.org:8443"
    assert parsed.follower_token == TOKEN
    assert parsed.public_key == key
    assert s.settings_from_config({"round_to_minimal_size_if_necessary": "false",
                                   "max_signal_age_seconds": 60.0}).max_signal_age_seconds == 60


@pytest.mark.parametrize(("config", "key"), [
    ({"trading_strategy": "../etc/passwd"}, "trading_strategy"),
    ({"trading_strategy": "x" * 65}, "trading_strategy"),
    ({"trading_strategy": 5}, "trading_strategy"),
    ({"max_volume": 0}, "max_volume"),
    ({"max_volume": "100.01"}, "max_volume"),
    ({"max_volume": "-1"}, "max_volume"),
    ({"max_volume": "NaN"}, "max_volume"),
    ({"max_volume": True}, "max_volume"),
    ({"round_to_minimal_size_if_necessary": "yes"}, "round_to_minimal_size_if_necessary"),
    ({"round_to_minimal_size_if_necessary": 1}, "round_to_minimal_size_if_necessary"),
    ({"sizing": "martingale"}, "sizing"),
    ({"leader_quantity_ratio": 0}, "leader_quantity_ratio"),
    ({"leader_quantity_ratio": 1001}, "leader_quantity_ratio"),
    ({"fixed_quote_amount": -5}, "fixed_quote_amount"),
    ({"sizing": "fixed_quote_amount"}, "fixed_quote_amount"),
    ({"sizing": "fixed_quote_amount", "fixed_quote_amount": "0"}, "fixed_quote_amount"),
    ({"max_signal_age_seconds": -1}, "max_signal_age_seconds"),
    ({"max_signal_age_seconds": 7 * 24 * 3600 + 1}, "max_signal_age_seconds"),
    ({"max_signal_age_seconds": 1.5}, "max_signal_age_seconds"),
    ({"max_signal_age_seconds": "soon"}, "max_signal_age_seconds"),
    ({"max_price_deviation_percent": 101}, "max_price_deviation_percent"),
    ({"max_price_deviation_percent": -0.5}, "max_price_deviation_percent"),
    ({"hub_url": "ftp://hub.example.org"}, "hub_url"),
    ({"hub_url": "https://hub.example.org/api?token=x"}, "hub_url"),
    ({"hub_url": "https://hub.example.org/path"}, "hub_url"),
    ({"hub_url": "https://:99999"}, "hub_url"),
    ({"hub_url": "http://host:notaport"}, "hub_url"),
    ({"hub_url": "hub.example.org"}, "hub_url"),
    ({"follower_token": "has space"}, "follower_token"),
    ({"follower_token": "x" * 513}, "follower_token"),
    ({"public_key": "not base64!"}, "public_key"),
    ({"public_key": base64.b64encode(b"short").decode()}, "public_key"),
    ({"journal_path": "a\x00b"}, "journal_path"),
])
def test_each_bound_is_refused_with_the_key_named(config: dict, key: str) -> None:
    with pytest.raises(s.SettingsError) as caught:
        s.settings_from_config(config)
    assert caught.value.key == key
    assert str(caught.value) == f"{key}: {caught.value.reason}"


def test_credentials_in_hub_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(s.SettingsError) as caught:
        s.settings_from_config({"hub_url": "https://alice:s3cr3t@hub.example.org"})
    assert caught.value.key == "hub_url"
    assert "s3cr3t" not in str(caught.value)


def test_token_is_never_in_repr() -> None:
    parsed = s.settings_from_config({"follower_token": TOKEN})
    assert TOKEN not in repr(parsed)
    assert TOKEN not in str(parsed)
    assert "follower_token" not in repr(parsed)


def test_bad_token_error_does_not_echo_it() -> None:
    secret = "secret token with spaces"
    with pytest.raises(s.SettingsError) as caught:
        s.settings_from_config({"follower_token": secret})
    assert secret not in str(caught.value)


def test_parse_set_option() -> None:
    assert s.parse_set_option("max_volume=50") == ("max_volume", "50")
    assert s.parse_set_option("hub_url=http://h:1/?a=b") == ("hub_url", "http://h:1/?a=b")  # split on the first '='
    assert s.settings_from_config(dict([s.parse_set_option("max_volume=50")])).max_volume == Decimal(50)
    with pytest.raises(s.SettingsError) as caught:
        s.parse_set_option("max_volum=50")
    assert caught.value.key == "max_volum"
    with pytest.raises(s.SettingsError) as caught:
        s.parse_set_option("follower_token")  # no '=': refused without echoing the text
    assert caught.value.key == "--set" and "follower_token" not in caught.value.reason
    with pytest.raises(s.SettingsError):
        s.parse_set_option("=5")
