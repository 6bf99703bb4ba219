"""What each text user input accepts, as JSON schema for OctoBot's web UI form.

octobot-commons' display translator gives every TEXT input `minLength: 1` unless the input says
otherwise, so an optional text would make the mode's configuration page refuse to save. Each
schema here mirrors core.settings (which still validates every value the mode reads): the web UI
refuses a bad value before it reaches the config file. Patterns are ECMAScript-compatible.
"""
from __future__ import annotations

from typing import Any

from .settings import MAX_LIST_CHARS, MAX_PATH_CHARS, MAX_TOKEN_CHARS, MAX_URL_CHARS

_PAIR = "[A-Za-z0-9._-]{1,32}/[A-Za-z0-9._-]{1,32}(:[A-Za-z0-9._-]{1,32})?"
_CURRENCY = "[A-Za-z0-9._-]{1,32}"

TEXT_SCHEMAS: dict[str, dict[str, Any]] = {
    # empty = follow nothing yet
    "trading_strategy": {"minLength": 0, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]*$"},
    # empty = no hub (backtest a journal); http(s)://host[:port], no credentials, path or query
    "hub_url": {"minLength": 0, "maxLength": MAX_URL_CHARS, "pattern": r"^(https?://[^\s/?#@]+/?)?$"},
    # a password field: the page never shows the value back
    "follower_token": {"minLength": 0, "maxLength": MAX_TOKEN_CHARS, "pattern": "^[!-~]*$", "format": "password"},
    # empty = signatures not required; else 32 bytes in base64
    "public_key": {"minLength": 0, "maxLength": 44, "pattern": "^([A-Za-z0-9+/]{43}=)?$"},
    "journal_path": {"minLength": 0, "maxLength": MAX_PATH_CHARS},
    # empty = every pair; else pairs separated by commas
    "pair_filter": {"minLength": 0, "maxLength": MAX_LIST_CHARS,
                    "pattern": rf"^\s*({_PAIR}\s*(,\s*{_PAIR}\s*)*)?$"},
    # empty = no mapping; else LEADER=MINE pairs separated by commas
    "quote_mapping": {"minLength": 0, "maxLength": MAX_LIST_CHARS,
                      "pattern": rf"^\s*({_CURRENCY}\s*=\s*{_CURRENCY}\s*(,\s*{_CURRENCY}\s*=\s*{_CURRENCY}\s*)*)?$"},
}


def text_schema(key: str) -> dict[str, Any]:
    """A copy: OctoBot keeps (and may amend) the dict it is given."""
    return dict(TEXT_SCHEMAS[key])
