"""Managing a strategy after its creation: update, archive, rotate the publish secret.

The operations are plain functions on HubState, shared by the JSON API below (admin token, for
automation) and the web front (the strategy's author). Added endpoints, PROTOCOL.md unchanged:

- `PATCH /api/strategies/{id}` `{name?, description?, pairs?, public_key?}` (public_key null clears it)
- `POST /api/strategies/{id}/archive`: no more publishing (the secret is replaced), hidden from the pages
- `POST /api/strategies/{id}/publish-secret`: a new secret, returned once; the old one stops working
  at once and live publisher connections with it are closed
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ..core import protocol
from .api_common import ApiError, _admin, _json_body, _state, _strategy, parse_strategy_body
from .auth import hash_secret, new_secret
from .state import HubState
from .store import Strategy

logger = logging.getLogger("octobot_signals.hub.manage")

MAX_DESCRIPTION_CHARS = 4000
UPDATABLE = ("name", "description", "pairs", "public_key")


def dead_secret_hash() -> str:
    """The hash of a secret nobody is told: what replaces a revoked publish secret."""
    return hash_secret(new_secret("revoked"))


def close_publishers(state: HubState, strategy_ids: Iterable[str], reason: str) -> None:
    wanted = set(strategy_ids)
    for connection in list(state.connections):
        principal = connection.principal
        if principal.kind == "publisher" and principal.strategy_id in wanted:
            connection.close_soon(protocol.CLOSE_POLICY_VIOLATION, reason)


def close_followers(state: HubState, token_ids: Iterable[str], reason: str) -> None:
    wanted = set(token_ids)
    for connection in list(state.connections):
        follower = connection.principal.follower
        if follower is not None and follower.token_id in wanted:
            connection.close_soon(protocol.CLOSE_POLICY_VIOLATION, reason)


def check_description(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION_CHARS:
        raise ApiError(400, "bad_request", f"description must be a string of at most {MAX_DESCRIPTION_CHARS} chars")
    return value.strip()


async def update_strategy(state: HubState, strategy: Strategy, changes: dict[str, Any]) -> Strategy:
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise ApiError(400, "bad_request", f"only {', '.join(UPDATABLE)} can change; not {sorted(unknown)}")
    description = check_description(changes["description"]) if "description" in changes else None
    body = {"id": strategy.id, "name": strategy.name, "visibility": strategy.visibility,
            "pairs": list(strategy.pairs), "exchange_type": strategy.exchange_type,
            "exchange": strategy.exchange, "public_key": strategy.public_key}
    body.update({k: v for k, v in changes.items() if k != "description"})
    if body.get("public_key") == "":
        body["public_key"] = None
    # same rules as at creation; the archived flag is not editable and stays as it was
    updated = dataclasses.replace(parse_strategy_body(body, strategy.stream_id), archived=strategy.archived)

    def write(db: Any) -> None:
        current = db.strategy_details(strategy.id)
        db.update_strategy(strategy.id, updated.name, current.description if description is None else description,
                           list(updated.pairs), updated.public_key)

    await state.store.run(write)
    state.strategies[strategy.id] = updated
    logger.info("strategy %s updated", strategy.id)
    return updated


async def archive_strategy(state: HubState, strategy: Strategy) -> bool:
    archived = await state.store.run(lambda db: db.archive_strategy(strategy.id, dead_secret_hash()))
    current = state.strategies.get(strategy.id, strategy)
    # in memory at once: may_follow reads it (other replicas reload it from the store on the control notice)
    state.strategies[strategy.id] = dataclasses.replace(current, archived=True)
    if archived:
        close_publishers(state, [strategy.id], "strategy archived")
        logger.info("strategy %s archived", strategy.id)
    return archived


async def rotate_publish_secret(state: HubState, strategy: Strategy) -> str:
    details = await state.store.run(lambda db: db.strategy_details(strategy.id))
    if details.archived:
        raise ApiError(409, "archived", f"strategy {strategy.id} is archived: it publishes nothing more")
    secret = new_secret("ps")
    await state.store.run(lambda db: db.set_publish_secret_hash(strategy.id, hash_secret(secret)))
    close_publishers(state, [strategy.id], "publish secret rotated")
    logger.info("strategy %s: publish secret rotated", strategy.id)
    return secret


async def strategy_dict(state: HubState, strategy: Strategy) -> dict[str, Any]:
    details = await state.store.run(lambda db: db.strategy_details(strategy.id))
    return {**strategy.public_dict(), "description": details.description, "archived": details.archived}


# ----------------------------------------------------------------------------- handlers (admin token)


async def patch_strategy(request: web.Request) -> web.Response:
    await _admin(request)
    state = _state(request)
    updated = await update_strategy(state, _strategy(request), await _json_body(request))
    return web.json_response(await strategy_dict(state, updated))


async def post_archive(request: web.Request) -> web.Response:
    await _admin(request)
    state = _state(request)
    strategy = _strategy(request)
    await archive_strategy(state, strategy)
    return web.json_response(await strategy_dict(state, strategy))


async def post_rotate(request: web.Request) -> web.Response:
    await _admin(request)
    strategy = _strategy(request)
    secret = await rotate_publish_secret(_state(request), strategy)
    return web.json_response({"id": strategy.id, "publish_secret": secret})


def add_manage_routes(app: web.Application) -> None:
    app.router.add_patch("/api/strategies/{id}", patch_strategy)
    app.router.add_post("/api/strategies/{id}/archive", post_archive)
    app.router.add_post("/api/strategies/{id}/publish-secret", post_rotate)
