"""What the hub's HTTP handlers share: the JSON API (api.py), its management endpoints (api_manage.py),
`/cable`'s refusals before the upgrade (ws.py), the MQTT and performance endpoints and the web front.

The error type and its JSON shape, the request's hub state and principal, and the strategy body's
checks live here so that each of those modules imports this one and none imports another's handlers.
"""
from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from ..core import protocol
from ..core.profile_zip import ProfileError, build_profile_zip
from .auth import Principal, bearer_token
from .limits import seconds_text
from .state import STATE_KEY, HubState
from .store import Strategy

MAX_BODY_BYTES = 64 * 1024
MAX_PAIRS = 200


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _state(request: web.Request) -> HubState:
    return request.app[STATE_KEY]


async def _principal(request: web.Request) -> Principal:
    limits = _state(request).limits
    address = request.remote or "unknown"
    blocked = limits.auth_retry_after(address)
    if blocked is not None:  # token guessing: the same budget as /cable's
        raise ApiError(429, "too_many_failed_auths",
                       f"too many failed authentications from this address: retry in {seconds_text(blocked)}")
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "unauthorized", "missing Authorization: Bearer token")
    principal = await _state(request).auth.authenticate(token)
    if principal is None:
        limits.record_failed_auth(address)
        raise ApiError(401, "unauthorized", "unknown token")
    return principal


async def _admin(request: web.Request) -> Principal:
    principal = await _principal(request)
    if principal.kind != "admin":
        raise ApiError(403, "forbidden", "admin token required")
    return principal


def unknown_strategy(strategy_id: str) -> ApiError:
    """The one answer for an id nobody has AND for a strategy the caller may not see (byte for byte)."""
    return ApiError(404, "not_found", f"unknown strategy {strategy_id}")


def _strategy(request: web.Request) -> Strategy:
    strategy_id = request.match_info["id"]
    strategy = _state(request).strategies.get(strategy_id)
    if strategy is None:
        raise unknown_strategy(strategy_id)
    return strategy


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise ApiError(400, "bad_json", "body is not valid JSON") from err
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "body must be a JSON object")
    return body


def _text_field(body: dict[str, Any], name: str, max_len: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise ApiError(400, "bad_request", f"{name} must be a non-empty string of at most {max_len} chars")
    return value


def parse_strategy_body(body: dict[str, Any], stream_id: str) -> Strategy:
    try:
        strategy_id = protocol.validate_strategy_id(body.get("id"), "id")
    except protocol.ProtocolError as err:
        raise ApiError(400, "bad_request", err.message) from err
    name = _text_field(body, "name", 200)
    visibility = body.get("visibility", "public")
    if visibility not in ("public", "private"):
        raise ApiError(400, "bad_request", 'visibility must be "public" or "private"')
    pairs = body.get("pairs")
    if (
        not isinstance(pairs, list)
        or not pairs
        or len(pairs) > MAX_PAIRS
        or not all(isinstance(p, str) and 0 < len(p) <= 64 and p.strip() == p for p in pairs)
    ):
        raise ApiError(400, "bad_request", f"pairs must be a list of 1-{MAX_PAIRS} symbol strings like \"BTC/USDT\"")
    exchange_type = body.get("exchange_type", "spot")
    if exchange_type not in ("spot", "future"):
        raise ApiError(400, "bad_request", 'exchange_type must be "spot" or "future"')
    exchange = _text_field(body, "exchange", 64)
    public_key = body.get("public_key")
    if public_key is not None:
        try:
            protocol.validate_public_key(public_key)
        except protocol.ProtocolError as err:
            raise ApiError(400, "bad_request", err.message) from err
    unknown = set(body) - {"id", "name", "visibility", "pairs", "exchange_type", "exchange", "public_key"}
    if unknown:
        raise ApiError(400, "bad_request", f"unknown fields: {sorted(unknown)}")
    strategy = Strategy(strategy_id, name, visibility, tuple(pairs), exchange_type, exchange, public_key, stream_id)
    # Refuse now what could not become a profile later (symbol shapes, exchange name, futures pairs).
    try:
        build_profile_zip(profile_spec(strategy), "http://127.0.0.1:8765", "validation-only",
                          profile_name=profile_name(strategy))
    except ProfileError as err:
        raise ApiError(400, "bad_request", str(err)) from err
    return strategy


def profile_spec(strategy: Strategy) -> dict[str, Any]:
    return {
        "id": strategy.id,
        "name": strategy.name,
        "pairs": list(strategy.pairs),
        "exchange_type": strategy.exchange_type,
        "exchange": strategy.exchange,
        "public_key": strategy.public_key,
    }


def profile_name(strategy: Strategy) -> str:
    # OctoBot profile names take a restricted alphabet; the display name may not.
    cleaned = re.sub(r"[^A-Za-z0-9 _.-]+", " ", f"Copy {strategy.name}")
    return " ".join(cleaned.split())[:100] or f"Copy {strategy.id}"
