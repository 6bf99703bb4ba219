"""The few hub HTTP calls the demo and the benchmark make (PROTOCOL.md "HTTP API").

Product code cannot import the test helpers, so this is our own small client. Every request
has a timeout; tokens travel only in the Authorization header.
"""
from __future__ import annotations

from typing import Any

import aiohttp

from ..core import protocol

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)


class HubRequestError(RuntimeError):
    def __init__(self, what: str, status: int, body: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:200]}")
        self.status = status


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _request(method: str, url: str, token: str, what: str, **kwargs: Any) -> Any:
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.request(method, url, headers=_auth(token), **kwargs) as resp:
            if resp.status != 200:
                raise HubRequestError(what, resp.status, await resp.text())
            return await resp.json()


async def create_strategy(
    base_url: str, admin_token: str, strategy_id: str, *, pairs: list[str], exchange_type: str = "spot",
    exchange: str = "binance", name: str | None = None, public_key: str | None = None,
) -> dict[str, Any]:
    """The created strategy, including its `publish_secret` (shown only this once)."""
    body = {"id": strategy_id, "name": name or strategy_id, "visibility": "public", "pairs": pairs,
            "exchange_type": exchange_type, "exchange": exchange}
    if public_key is not None:  # the hub then refuses unsigned signals and performance snapshots
        body["public_key"] = public_key
    return await _request("POST", f"{base_url}/api/strategies", admin_token, "create strategy", json=body)


async def create_follower_token(base_url: str, admin_token: str, strategy_id: str) -> str:
    body = await _request("POST", f"{base_url}/api/strategies/{strategy_id}/followers", admin_token,
                          "create follower token")
    return str(body["token"])


async def signals_after(base_url: str, token: str, strategy_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    return await _request("GET", f"{base_url}/api/strategies/{strategy_id}/signals", token, "signal history",
                          params={"after": str(after), "limit": str(limit)})


async def all_signals(base_url: str, token: str, strategy_id: str) -> list[dict[str, Any]]:
    """The whole journal of a strategy, in q order (paged)."""
    result: list[dict[str, Any]] = []
    while True:
        after = int(result[-1]["q"]) if result else 0
        batch = await signals_after(base_url, token, strategy_id, after, protocol.MAX_HISTORY_LIMIT)
        result.extend(batch)
        if len(batch) < protocol.MAX_HISTORY_LIMIT:
            return result


async def strategy_performance(base_url: str, strategy_id: str) -> dict[str, Any]:
    """GET /api/strategies/{id}/performance (a public strategy: no token needed)."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.get(f"{base_url}/api/strategies/{strategy_id}/performance") as resp:
            if resp.status != 200:
                raise HubRequestError("track record", resp.status, await resp.text())
            return await resp.json()


async def profile_link(base_url: str, token: str, strategy_id: str) -> str:
    """A follower's personal profile link (15 minutes, bound to its token): what OctoBot's importer downloads."""
    body = await _request("POST", f"{base_url}/api/strategies/{strategy_id}/profile-link", token, "profile link")
    return str(body["url"])


async def mqtt_username(base_url: str, token: str) -> str:
    """GET /api/mqtt: the MQTT username the hub issued for a follower token (a stock OctoBot's mqtt_uuid)."""
    body = await _request("GET", f"{base_url}/api/mqtt", token, "MQTT username")
    return str(body["username"])
