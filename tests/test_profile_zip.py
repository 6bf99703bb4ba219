"""Profile zips and packaged profiles (core/profile_zip.py).

Schema checks use OctoBot 2.1.1's own `octobot/config/profile_schema.json`, read from the real bot's
venv (.ci/octobot_venv.sh); those are skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from octobot_real import support
from octobot_signals.core import mode_config, profile_zip, settings
from octobot_signals.core.profile_zip import ProfileError, build_package_profile_dir, build_profile_zip

MODE = "RemoteTradingSignalsTradingMode"
MODE_CONFIG = Path(profile_zip.__file__).resolve().parents[1] / "config" / f"{MODE}.json"
HUB = "http://127.0.0.1:8765"
TOKEN = "ft_" + "S3cr3t" * 6
SPOT = {"id": "alpha-1", "name": "Alpha", "pairs": ["BTC/USDT", "ETH/USDT", "ETH/BTC"], "exchange_type": "spot",
        "exchange": "binance"}
FUTURES = {"id": "perp_2", "name": "Perp", "pairs": ["BTC/USDT:USDT", "ETH/USDT:USDT"], "exchange_type": "future",
           "exchange": "bybit", "public_key": "A" * 43 + "="}


def members(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: json.loads(archive.read(name)) for name in archive.namelist()}


@pytest.fixture(scope="module")
def octobot_schema() -> dict[str, Any]:
    if support.skip_requested():
        pytest.skip("OCTOBOT_SIGNALS_SKIP_REAL=1: OctoBot 2.1.1's profile schema is not available")
    return json.loads(support.profile_schema_of(support.octobot_venv()).read_text())


def test_members_sit_at_the_archive_root() -> None:
    assert sorted(members(build_profile_zip(SPOT, HUB, TOKEN))) == [
        "profile.json", f"specific_config/{MODE}.json", "tentacles_config.json"]


def test_spot_profile_content() -> None:
    profile = members(build_profile_zip(SPOT, HUB, TOKEN))["profile.json"]
    config = profile["config"]
    assert config["exchanges"] == {"binance": {"enabled": True, "exchange-type": "spot"}}
    # pairs exactly as the publisher sends them, grouped by base asset as OctoBot does
    assert config["crypto-currencies"] == {"BTC": {"enabled": True, "pairs": ["BTC/USDT"]},
                                           "ETH": {"enabled": True, "pairs": ["ETH/USDT", "ETH/BTC"]}}
    assert config["trading"]["reference-market"] == "USDT"  # the quote of the first pair
    assert config["trader"]["enabled"] is False
    simulator = config["trader-simulator"]
    assert simulator["enabled"] is True and simulator["starting-portfolio"] == {"USDT": 1000}
    assert simulator["fees"] == {"maker": 0.1, "taker": 0.1}
    assert profile["profile"]["name"] == "Copy Alpha" and profile["profile"]["id"] == "octobot-signals-alpha-1"


def test_futures_profile_sets_exchange_type_under_the_exchange() -> None:
    files = members(build_profile_zip(FUTURES, HUB, TOKEN, profile_name="Perp copy"))
    config = files["profile.json"]["config"]
    assert config["exchanges"] == {"bybit": {"enabled": True, "exchange-type": "future"}}
    assert config["crypto-currencies"]["BTC"]["pairs"] == ["BTC/USDT:USDT"]
    assert config["trading"]["reference-market"] == "USDT"
    assert files["profile.json"]["profile"]["name"] == "Perp copy"
    assert files[f"specific_config/{MODE}.json"]["public_key"] == FUTURES["public_key"]


def test_only_the_copy_trading_mode_is_active() -> None:
    activation = members(build_profile_zip(SPOT, HUB, TOKEN))["tentacles_config.json"]["tentacle_activation"]
    # what a standard bot runs stays on (anything not listed is off), the web interface first
    assert activation["Services"]["WebInterface"] is True
    assert [name for name, active in activation["Trading"].items() if active and name.endswith("TradingMode")] == [MODE]
    assert "DailyTradingMode" in activation["Trading"]  # stock modes are written as off, not left to defaults


def test_every_mode_setting_is_written_explicitly() -> None:
    specific = members(build_profile_zip(SPOT, HUB + "/", TOKEN))[f"specific_config/{MODE}.json"]
    # the same keys as the mode's own default config and as the settings the mode reads
    assert set(specific) == set(json.loads(MODE_CONFIG.read_text()))
    assert set(settings.KEYS) == set(mode_config.DEFAULT_SETTINGS) <= set(specific)
    assert specific == {**mode_config.mode_config(), "trading_strategy": "alpha-1", "hub_url": HUB,
                        "follower_token": TOKEN}
    assert specific["required_strategies"] == []  # OctoBot's mode config page reads it
    assert specific["round_to_minimal_size_if_necessary"] is False  # a real false, not a missing key
    parsed = settings.settings_from_config(specific)  # exactly what the mode will read
    assert (parsed.trading_strategy, parsed.hub_url, parsed.follower_token) == ("alpha-1", HUB, TOKEN)
    assert parsed.max_volume == Decimal(100) and parsed.max_signal_age_seconds == 300
    assert parsed.max_price_deviation_percent == Decimal(5) and parsed.sizing is settings.SizingMode.PORTFOLIO_PERCENT


def test_defaults_match_the_mode_config_file() -> None:
    assert json.loads(MODE_CONFIG.read_text()) == mode_config.mode_config()


def test_same_input_same_bytes() -> None:
    assert build_profile_zip(SPOT, HUB, TOKEN) == build_profile_zip(dict(SPOT), HUB, TOKEN)


@pytest.mark.parametrize(("strategy", "hub", "token", "field"), [
    ({**SPOT, "id": "bad id!"}, HUB, TOKEN, "id"),
    ({**SPOT, "id": "x" * 65}, HUB, TOKEN, "id"),
    ({k: v for k, v in SPOT.items() if k != "id"}, HUB, TOKEN, "id"),
    ({**SPOT, "pairs": []}, HUB, TOKEN, "pairs"),
    ({**SPOT, "pairs": "BTC/USDT"}, HUB, TOKEN, "pairs"),
    ({**SPOT, "pairs": ["BTCUSDT"]}, HUB, TOKEN, "pairs"),
    ({**SPOT, "pairs": ["BTC/USDT", "BTC/USDT"]}, HUB, TOKEN, "pairs"),
    ({**SPOT, "pairs": [42]}, HUB, TOKEN, "pairs"),
    ({**SPOT, "pairs": ["BTC/US DT"]}, HUB, TOKEN, "pairs"),
    ({**FUTURES, "pairs": ["BTC/USDT"]}, HUB, TOKEN, "pairs"),
    ({**SPOT, "exchange_type": "margin"}, HUB, TOKEN, "exchange_type"),
    ({**SPOT, "exchange": "Bin ance"}, HUB, TOKEN, "exchange"),
    ({**SPOT, "exchange": ""}, HUB, TOKEN, "exchange"),
    ({**SPOT, "name": ""}, HUB, TOKEN, "name"),
    ({**SPOT, "public_key": "not base64"}, HUB, TOKEN, "public_key"),
    (SPOT, "", TOKEN, "hub_url"),
    (SPOT, "ftp://hub", TOKEN, "hub_url"),
    (SPOT, "http://user:pw@hub", TOKEN, "hub_url"),
    (SPOT, HUB + "/path", TOKEN, "hub_url"),
    (SPOT, HUB, "", "follower_token"),
    (SPOT, HUB, "has space " + TOKEN, "follower_token"),
    ("not a dict", HUB, TOKEN, "strategy"),
])
def test_unusable_input_is_refused_naming_the_field(strategy: Any, hub: str, token: str, field: str) -> None:
    with pytest.raises(ProfileError) as error:
        build_profile_zip(strategy, hub, token)
    assert str(error.value).startswith(f"{field}:"), str(error.value)
    assert TOKEN not in str(error.value)  # the token never appears in an error


def test_profile_name_is_checked() -> None:
    with pytest.raises(ProfileError, match="^profile_name:"):
        build_profile_zip(SPOT, HUB, TOKEN, profile_name="bad/name")
    for unsafe in ("../../etc", "..", " ", ""):  # OctoBot names the profile folder after it
        with pytest.raises(ProfileError, match="^profile_name:"):
            profile_zip.build_profile_files(SPOT, settings={}, profile_name=unsafe, profile_id="x", description="")


@pytest.mark.parametrize(("name", "expected"), [
    ("Alpha/../Beta", "Copy Alpha .. Beta"), ("Émile's bot", "Copy mile s bot"), ("///", "Copy alpha-1")])
def test_default_profile_name_is_made_safe(name: str, expected: str) -> None:
    profile = members(build_profile_zip({**SPOT, "name": name}, HUB, TOKEN))["profile.json"]
    assert profile["profile"]["name"] == expected


def test_packaged_profiles_carry_no_token(tmp_path: Path) -> None:
    copy_trading = build_package_profile_dir(tmp_path / "packaged")
    default = build_package_profile_dir(tmp_path / "default", name="default")
    for folder, expected_id in ((copy_trading, "octobot_signals_copy_trading"), (default, "default")):
        profile = json.loads((folder / "profile.json").read_text())
        specific = json.loads((folder / "specific_config" / f"{MODE}.json").read_text())
        assert profile["profile"]["id"] == expected_id  # OctoBot selects profiles by id
        assert specific == mode_config.mode_config()  # following nothing until configured
        assert specific["follower_token"] == "" and specific["hub_url"] == ""
        assert profile["config"]["trader"]["enabled"] is False


def test_packaged_profile_follows_the_given_market(tmp_path: Path) -> None:
    folder = build_package_profile_dir(tmp_path / "p", strategy={**FUTURES, "public_key": None},
                                       starting_portfolio={"USDT": Decimal("2500.5")})
    config = json.loads((folder / "profile.json").read_text())["config"]
    assert config["exchanges"] == {"bybit": {"enabled": True, "exchange-type": "future"}}
    assert config["trader-simulator"]["starting-portfolio"] == {"USDT": 2500.5}


@pytest.mark.parametrize("portfolio", [{}, {"USDT": "-1"}, {"USDT": "nan"}, {"US DT": 1}, {"USDT": "abc"}])
def test_bad_starting_portfolio_is_refused(tmp_path: Path, portfolio: dict[str, Any]) -> None:
    with pytest.raises(ProfileError, match="^starting_portfolio"):
        build_package_profile_dir(tmp_path / "p", starting_portfolio=portfolio)


@pytest.mark.parametrize("strategy", [SPOT, FUTURES, {**SPOT, "pairs": ["SOL/USDC"]}])
def test_hub_zips_validate_against_octobot_schema(octobot_schema: dict[str, Any], strategy: dict[str, Any]) -> None:
    profile = members(build_profile_zip(strategy, HUB, TOKEN))["profile.json"]
    jsonschema.validate(profile, octobot_schema)


def test_packaged_profiles_validate_against_octobot_schema(octobot_schema: dict[str, Any], tmp_path: Path) -> None:
    for name in (profile_zip.PACKAGED_PROFILE_NAME, "default"):
        folder = build_package_profile_dir(tmp_path / name, name=name)
        jsonschema.validate(json.loads((folder / "profile.json").read_text()), octobot_schema)


def test_schema_check_is_not_vacuous(octobot_schema: dict[str, Any]) -> None:
    """The schema used above really refuses what OctoBot refuses (extra exchange keys, missing fees)."""
    profile = members(build_profile_zip(SPOT, HUB, TOKEN))["profile.json"]
    profile["config"]["exchanges"]["binance"]["api-key"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(profile, octobot_schema)
    profile = members(build_profile_zip(SPOT, HUB, TOKEN))["profile.json"]
    del profile["config"]["trader-simulator"]["fees"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(profile, octobot_schema)
