"""The operator's pages: log in with the admin token, invitations, users, disable a user."""
from __future__ import annotations

import logging
import math
import secrets
import time
from typing import Any

from aiohttp import web

from ..api_manage import close_followers, close_publishers, dead_secret_hash
from ..auth import hash_secret
from .context import (
    checked_form,
    config,
    ensure_csrf,
    hub,
    redirect,
    render,
    require_operator,
    start_session,
)
from .pages_public import when
from .throttle import Refusal

logger = logging.getLogger("octobot_signals.hub.web")

INVITATION_TTL_S = 7 * 24 * 3600


async def login_form(request: web.Request) -> web.Response:
    ensure_csrf(request)
    return render(request, "operator_login.html", {})


async def login(request: web.Request) -> web.Response:
    form = await checked_form(request)
    token = form.get("admin_token", "")[:512]
    throttle = config(request).throttle
    address = request.remote or "unknown"
    # No account key: the admin token has 256 bits, so only the guessing address's own limit applies and
    # nobody can lock the operator out from elsewhere.
    attempt = throttle.begin(None, address)
    if isinstance(attempt, Refusal):
        minutes = max(1, math.ceil(attempt.retry_after_s / 60))
        response = render(request, "operator_login.html",
                          {"error": f"Too many failed attempts from your address: try again in {minutes} minute"
                                    f"{'s' if minutes != 1 else ''}."}, status=429)
        response.headers["Retry-After"] = str(math.ceil(attempt.retry_after_s))
        return response
    principal = await hub(request).auth.authenticate(token) if token else None
    if principal is None or principal.kind != "admin":
        return render(request, "operator_login.html", {"error": "This is not the hub's admin token."}, status=401)
    throttle.succeeded(attempt)
    await start_session(request, None, True)
    return redirect("/operator")


async def dashboard(request: web.Request, **extra: Any) -> web.Response:
    require_operator(request)

    def read(db: Any) -> tuple[list[Any], list[Any]]:
        return db.list_invitations(), db.list_accounts()

    invitations, accounts = await hub(request).store.run(read)
    return render(request, "operator.html", {"invitations": invitations, "accounts": accounts, "when": when,
                                             "now": time.time(), **extra})


async def create_invitation(request: web.Request) -> web.Response:
    form = await checked_form(request)
    require_operator(request)
    code = f"inv_{secrets.token_urlsafe(18)}"
    note = form.get("note", "").strip()[:200]
    now = time.time()
    invitation_id = f"inv_{secrets.token_hex(6)}"
    await hub(request).store.run(lambda db: db.create_invitation(
        invitation_id, hash_secret(code), note, now, now + INVITATION_TTL_S))
    logger.info("invitation %s created", invitation_id)
    return await dashboard(request, new_code=code)


async def disable_user(request: web.Request) -> web.Response:
    form = await checked_form(request)
    require_operator(request)
    account_id = form.get("account_id", "")
    state = hub(request)

    def write(db: Any) -> tuple[list[str], list[str]] | None:
        owned = db.owned_strategy_ids(account_id)
        return db.disable_account(account_id, {s: dead_secret_hash() for s in owned})

    result = await state.store.run(write)
    if result is None:
        return await dashboard(request, error="Unknown or already disabled account.")
    token_ids, owned = result
    close_followers(state, token_ids, "account disabled")
    close_publishers(state, owned, "account disabled")
    logger.info("account %s disabled (%d tokens revoked, %d strategies stopped)", account_id, len(token_ids), len(owned))
    return await dashboard(request, notice="Account disabled: its sessions, tokens, links and connections are gone.")


