"""HTTP endpoints of the hub (PROTOCOL.md, "HTTP API"). Errors: {"error": code, "message": text}."""
from __future__ import annotations

import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..core import protocol
from ..core.profile_zip import build_profile_zip
from .api_common import (
    MAX_BODY_BYTES,
    ApiError,
    _admin,
    _json_body,
    _principal,
    _state,
    _strategy,
    json_error,
    parse_strategy_body,
    profile_name,
    profile_spec,
    unknown_strategy,
)
from .api_manage import add_manage_routes
from .auth import Principal, hash_secret, new_capability, new_secret
from .store import Capability, DuplicateStrategy, SqliteStore, Strategy

logger = logging.getLogger("octobot_signals.hub.api")

PROFILE_LINK_TTL_S = 15 * 60
# set on a history page cut at the store's byte budget: more messages follow, ask again with after=<value>
NEXT_AFTER_HEADER = "X-Next-After"


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return json_error(err.status, err.code, err.message)
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
    except web.HTTPException as err:
        if err.status >= 400:
            return json_error(err.status, err.reason.lower().replace(" ", "_"), err.reason)
        raise
    except Exception as err:
        if _is_store_outage(err):  # the database went away (e.g. a PostgreSQL restart): clients retry
            logger.warning("store unavailable on %s %s: %s", request.method, request.path, type(err).__name__)
            return json_error(503, "store_unavailable", "the hub's database is unavailable: retry shortly")
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal", "internal error")


def _is_store_outage(err: Exception) -> bool:
    """A lost database link, without importing the PostgreSQL driver into a SQLite hub."""
    if isinstance(err, ConnectionError):  # includes the PostgreSQL store's StoreUnavailable
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(err, psycopg.OperationalError)


async def _follower_of(request: web.Request) -> tuple[Principal, Strategy]:
    principal = await _principal(request)
    strategy = _strategy(request)
    state = _state(request)
    if not state.may_see(principal, strategy):
        raise unknown_strategy(strategy.id)  # 404, not 403: a private id is not confirmed to exist
    if not state.may_follow(principal, strategy):
        if strategy.archived:
            raise ApiError(403, "forbidden", f"strategy {strategy.id} is archived: it takes no new followers")
        raise ApiError(403, "forbidden", f"this token may not follow {strategy.id}")
    return principal, strategy


# ----------------------------------------------------------------------------- handlers


async def info(request: web.Request) -> web.Response:
    return web.json_response(
        {"protocol_version": protocol.PROTOCOL_VERSION, "feed_version": protocol.FEED_VERSION, "ws_path": protocol.WS_PATH}
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def create_strategy(request: web.Request) -> web.Response:
    await _admin(request)
    body = await _json_body(request)
    state = _state(request)
    strategy = parse_strategy_body(body, stream_id=f"st_{secrets.token_hex(12)}")
    if strategy.id in state.strategies:
        raise ApiError(409, "duplicate", f"strategy {strategy.id} already exists")
    publish_secret = new_secret("ps")
    try:
        await state.store.run(lambda db: db.create_strategy(strategy, hash_secret(publish_secret)))
    except DuplicateStrategy as err:
        raise ApiError(409, "duplicate", f"strategy {strategy.id} already exists") from err
    state.strategies[strategy.id] = strategy
    logger.info("strategy %s created (%s)", strategy.id, strategy.visibility)
    return web.json_response({**strategy.public_dict(), "publish_secret": publish_secret})


async def list_strategies(request: web.Request) -> web.Response:
    principal = await _principal(request)
    state = _state(request)
    return web.json_response([s.public_dict() for s in state.followable(principal)])


async def create_follower(request: web.Request) -> web.Response:
    await _admin(request)
    strategy = _strategy(request)
    state = _state(request)
    # the store too, not only memory: another replica may have archived it a moment ago
    if strategy.archived or (await state.store.run(lambda db: db.strategy_details(strategy.id))).archived:
        raise ApiError(409, "archived", f"strategy {strategy.id} is archived: it takes no new followers")
    token = new_secret("ft")
    token_id = f"fol_{secrets.token_hex(8)}"
    await state.store.run(lambda db: db.create_follower_token(token_id, hash_secret(token), strategy.id))
    logger.info("follower token %s created for %s", token_id, strategy.id)
    return web.json_response({"token": token, "token_id": token_id, "strategy": strategy.id})


async def revoke_follower(request: web.Request) -> web.Response:
    """Added admin endpoint: revoke a follower token, its profile links and its live connections."""
    await _admin(request)
    token_id = request.match_info["token_id"]
    state = _state(request)
    revoked = await state.store.run(lambda db: db.revoke_follower(token_id))
    if not revoked:
        raise ApiError(404, "not_found", f"unknown or already revoked follower token {token_id}")
    for connection in list(state.connections):
        follower = connection.principal.follower
        if follower is not None and follower.token_id == token_id:
            connection.close_soon(protocol.CLOSE_POLICY_VIOLATION, "token revoked")
    logger.info("follower token %s revoked", token_id)
    return web.json_response({"revoked": token_id})


async def storefront_feed_id(request: web.Request) -> web.Response:
    # A strategy's publish secret may read its own stream id too: the publisher needs it.
    _, strategy = await _follower_of(request)
    # last_q (added, optional): a new follower starts after it ("from now") without paging the journal
    last_q = await _state(request).store.last_q(strategy.id)
    return web.json_response({"feed_id": strategy.stream_id, "last_q": last_q})


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 18 or not low <= int(raw) <= high:
        raise ApiError(400, "bad_request", f"{name} must be an integer in [{low}, {high}]")
    return int(raw)


async def signals_history(request: web.Request) -> web.StreamResponse:
    _, strategy = await _follower_of(request)
    after = _int_param(request, "after", 0, 0, protocol.MAX_SEQUENCE)
    limit = _int_param(request, "limit", protocol.DEFAULT_HISTORY_LIMIT, 1, protocol.MAX_HISTORY_LIMIT)
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "jsonl"):
        raise ApiError(400, "bad_request", 'format must be "json" or "jsonl"')
    # the page is read and serialized on the store's thread, within a byte budget: never megabytes on the loop
    page = await _state(request).store.run(
        lambda db: db.read_history_page(strategy.id, strategy.stream_id, after, limit, jsonl=fmt == "jsonl"))
    headers = {NEXT_AFTER_HEADER: str(page.last_q)} if page.cut_by_size else None
    content_type = "application/x-ndjson" if fmt == "jsonl" else "application/json"
    return web.Response(body=page.body, content_type=content_type, charset="utf-8", headers=headers)


async def create_profile_link(request: web.Request) -> web.Response:
    principal, strategy = await _follower_of(request)
    if principal.kind != "follower" or principal.follower is None or principal.token is None:
        raise ApiError(403, "forbidden", "profile links are personal: use a follower token")
    capability = new_capability()
    expires_at = time.time() + PROFILE_LINK_TTL_S
    record = Capability(principal.follower.token_id, strategy.id, principal.token, expires_at)
    await _state(request).store.run(lambda db: db.create_capability(hash_secret(capability), record))
    url = f"{_state(request).hub_url}/p/{capability}/{strategy.id}.zip"
    return web.json_response({"url": url, "expires_at": int(expires_at)})


async def download_profile(request: web.Request) -> web.Response:
    capability = request.match_info["cap"]
    strategy_id = request.match_info["id"]
    state = _state(request)
    if len(capability) > 128:
        raise ApiError(404, "not_found", "unknown or expired link")
    now = time.time()

    def lookup(db: SqliteStore) -> tuple[Capability | None, bool]:
        cap_hash = hash_secret(capability)
        record = db.get_capability(cap_hash, now)
        return record, record is None and db.capability_expired(cap_hash)

    record, expired = await state.store.run(lookup)
    if expired:
        raise ApiError(410, "expired", "this profile link expired (links last 15 minutes): get a new one")
    if record is None or record.strategy_id != strategy_id or strategy_id not in state.strategies:
        raise ApiError(404, "not_found", "unknown or expired link")
    strategy = state.strategies[strategy_id]
    # the link works while its token may follow: one taken before an archiving by a non-member does not
    principal = await state.auth.authenticate(record.token_plain)
    if principal is None or not state.may_follow(principal, strategy):
        raise ApiError(404, "not_found", "unknown or expired link")
    data = build_profile_zip(profile_spec(strategy), state.hub_url, record.token_plain,
                             profile_name=profile_name(strategy))
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{strategy_id}.zip"',
            "Cache-Control": "no-store",
        },
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/info", info)
    app.router.add_get("/api/health", health)
    app.router.add_post("/api/strategies", create_strategy)
    app.router.add_get("/api/strategies", list_strategies)
    app.router.add_post("/api/strategies/{id}/followers", create_follower)
    app.router.add_delete("/api/followers/{token_id}", revoke_follower)
    app.router.add_get("/api/v2/storefront/feeds/id/{id}", storefront_feed_id)
    app.router.add_get("/api/strategies/{id}/signals", signals_history)
    app.router.add_post("/api/strategies/{id}/profile-link", create_profile_link)
    app.router.add_get("/p/{cap}/{id}.zip", download_profile)
    add_manage_routes(app)  # update / archive / rotate (used by the web front too)
