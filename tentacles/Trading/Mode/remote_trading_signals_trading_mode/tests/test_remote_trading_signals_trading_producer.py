"""octobot-signals: the producer reads the mode's settings; an invalid one means following nothing."""
from __future__ import annotations

import pytest

from ..core import settings as settings_module


def test_settings_from_a_profile_config() -> None:
    settings = settings_module.settings_from_config({"trading_strategy": "alpha-1", "hub_url": "https://h.org/",
                                                     "required_strategies": []})
    assert (settings.trading_strategy, settings.hub_url) == ("alpha-1", "https://h.org")


def test_an_invalid_setting_is_refused_by_name() -> None:
    with pytest.raises(settings_module.SettingsError, match="^max_volume"):
        settings_module.settings_from_config({"max_volume": 250})
