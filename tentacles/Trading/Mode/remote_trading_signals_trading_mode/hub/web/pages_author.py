"""An author's pages: create a strategy, edit it, rotate its publish secret, archive it, invite followers."""
from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from aiohttp import web

from ..api_common import ApiError, parse_strategy_body
from ..api_manage import archive_strategy, check_description, rotate_publish_secret, update_strategy
from ..auth import hash_secret, new_secret
from ..store import DuplicateStrategy, Strategy
from .context import PageError, checked_form, hub, redirect, render, require_account
from .pages_public import find_strategy, may_view_strategy, render_strategy, strategy_not_found

logger = logging.getLogger("octobot_signals.hub.web")

FORM_FIELDS = ("id", "name", "description", "visibility", "exchange", "exchange_type", "pairs", "public_key")


def split_pairs(text: str) -> list[str]:
    return [pair for pair in re.split(r"[\s,]+", text) if pair]


def _body(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": form.get("id", "").strip(),
        "name": form.get("name", "").strip(),
        "visibility": form.get("visibility", "public"),
        "pairs": split_pairs(form.get("pairs", "")),
        "exchange_type": form.get("exchange_type", "spot"),
        "exchange": form.get("exchange", "").strip(),
    }
    if form.get("public_key", "").strip():
        body["public_key"] = form["public_key"].strip()
    return body


async def new_form(request: web.Request) -> web.Response:
    require_account(request, "create a strategy")
    return render(request, "strategy_form.html", {"form": {"visibility": "public", "exchange_type": "spot",
                                                           "exchange": "binance"}, "editing": None})


async def create(request: web.Request) -> web.Response:
    form = await checked_form(request)
    current = require_account(request, "create a strategy")
    state = hub(request)
    kept = {key: form.get(key, "") for key in FORM_FIELDS}

    def refuse(message: str, status: int = 400) -> web.Response:
        return render(request, "strategy_form.html", {"form": kept, "editing": None, "error": message}, status=status)

    try:
        description = check_description(form.get("description", ""))
        strategy = parse_strategy_body(_body(form), stream_id=f"st_{secrets.token_hex(12)}")
    except ApiError as err:
        return refuse(err.message)
    if strategy.id in state.strategies:
        return refuse(f"The id {strategy.id} is taken on this hub: choose another one.", 409)
    secret = new_secret("ps")
    owner = current.account_id or ""
    try:
        await state.store.run(lambda db: db.create_owned_strategy(strategy, hash_secret(secret), owner, description))
    except DuplicateStrategy:
        return refuse(f"The id {strategy.id} is taken on this hub: choose another one.", 409)
    state.strategies[strategy.id] = strategy
    logger.info("strategy %s created by %s (%s)", strategy.id, owner, strategy.visibility)
    # Rendered, not redirected: the secret is shown in this one response and stored nowhere in clear.
    return await render_strategy(request, strategy, new_secret=secret, notice="Strategy created.")


async def _owned(request: web.Request) -> Strategy:
    current = require_account(request, "manage your strategies")
    strategy = find_strategy(request)
    details = await hub(request).store.run(lambda db: db.strategy_details(strategy.id))
    if details.owner_id != current.account_id:
        if not await may_view_strategy(request, strategy, details):
            raise strategy_not_found()  # not 403: that would confirm a private id exists
        raise PageError(403, "Not your strategy", "Only this strategy's author may change it.")
    return strategy


async def edit_form(request: web.Request) -> web.Response:
    strategy = await _owned(request)
    details = await hub(request).store.run(lambda db: db.strategy_details(strategy.id))
    form = {"id": strategy.id, "name": strategy.name, "description": details.description,
            "visibility": strategy.visibility, "exchange": strategy.exchange, "exchange_type": strategy.exchange_type,
            "pairs": ", ".join(strategy.pairs), "public_key": strategy.public_key or ""}
    return render(request, "strategy_form.html", {"form": form, "editing": strategy})


async def edit(request: web.Request) -> web.Response:
    form = await checked_form(request)
    strategy = await _owned(request)
    changes = {"name": form.get("name", "").strip(), "description": form.get("description", ""),
               "pairs": split_pairs(form.get("pairs", "")), "public_key": form.get("public_key", "").strip() or None}
    try:
        await update_strategy(hub(request), strategy, changes)
    except ApiError as err:
        kept = {key: form.get(key, "") for key in FORM_FIELDS}
        kept.update(id=strategy.id, visibility=strategy.visibility, exchange=strategy.exchange,
                    exchange_type=strategy.exchange_type)
        return render(request, "strategy_form.html", {"form": kept, "editing": strategy, "error": err.message},
                      status=400)
    return redirect(f"/strategies/{strategy.id}")


async def rotate(request: web.Request) -> web.Response:
    await checked_form(request)
    strategy = await _owned(request)
    try:
        secret = await rotate_publish_secret(hub(request), strategy)
    except ApiError as err:
        raise PageError(err.status, "Cannot rotate", err.message) from err
    return await render_strategy(request, strategy, new_secret=secret,
                                 notice="New publish secret: the previous one no longer works.")


async def archive(request: web.Request) -> web.Response:
    form = await checked_form(request)
    strategy = await _owned(request)
    if form.get("confirm") != strategy.id:
        raise PageError(400, "Not archived", "Type the strategy id in the confirmation box to archive it.")
    await archive_strategy(hub(request), strategy)
    return redirect(f"/strategies/{strategy.id}")


async def invite(request: web.Request) -> web.Response:
    form = await checked_form(request)
    strategy = await _owned(request)
    username = form.get("username", "").strip()[:64]
    account = await hub(request).store.run(lambda db: db.account_by_username(username)) if username else None
    if account is None or account.disabled:
        return await render_strategy(request, strategy, status=404,
                                     invite_error=f"No account named {username or '(empty)'} on this hub.")
    await hub(request).store.run(lambda db: db.invite_to_strategy(strategy.id, account.account_id, time.time()))
    return await render_strategy(request, strategy, notice=f"{account.username} may now subscribe.")
