"""Accounts: `/signup`, `/login`, `/logout` and `/me` (my subscriptions and my strategies)."""
from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
from typing import Any

from aiohttp import web

from ..auth import hash_secret
from .context import (
    checked_form,
    config,
    end_session,
    ensure_csrf,
    hub,
    redirect,
    render,
    require_account,
    start_session,
)
from .pages_public import when
from .passwords import hash_password, needs_rehash, password_problem, verify_password
from .tables import DuplicateAccount, InvitationRefused
from .throttle import Refusal

logger = logging.getLogger("octobot_signals.hub.web")

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")


def _address(request: web.Request) -> str:
    # The TCP peer. Behind a reverse proxy every visitor shares the proxy's address: the per-address
    # limit then protects the hub as a whole and the per-account limit still protects each account.
    return request.remote or "unknown"


async def signup_form(request: web.Request) -> web.Response:
    ensure_csrf(request)
    return render(request, "signup.html", {"form": {}})


async def signup(request: web.Request) -> web.Response:
    form = await checked_form(request)
    mode = config(request).signup
    username = form.get("username", "").strip()
    password = form.get("password", "")
    code = form.get("invitation", "").strip()

    def refuse(message: str, status: int = 400) -> web.Response:
        return render(request, "signup.html", {"form": {"username": username}, "error": message}, status=status)

    if mode == "closed":
        return refuse("Sign-ups are closed on this hub: ask its operator for an account.", 403)
    if not USERNAME.fullmatch(username):
        return refuse("The username must be 3 to 32 letters, digits, dots, dashes or underscores.")
    problem = password_problem(password)
    if problem:
        return refuse(problem)
    if password != form.get("password2", ""):
        return refuse("The two passwords differ.")
    if mode == "invite" and not code:
        return refuse("This hub signs people up by invitation: enter the invitation code you received.", 403)
    invitation_hash = hash_secret(code) if code and len(code) <= 200 else None
    if code and invitation_hash is None:
        return refuse("This invitation code is not valid.", 403)
    password_hash = await hash_password(password)
    account_id = f"acc_{secrets.token_hex(8)}"
    try:
        await hub(request).store.run(lambda db: db.create_account(
            account_id, username, password_hash, invitation_hash if mode == "invite" or code else None, time.time()))
    except DuplicateAccount:
        return refuse("This username is taken: choose another one.", 409)
    except InvitationRefused as err:
        return refuse(f"{str(err).capitalize()}.", 403)
    logger.info("account %s created", account_id)
    await start_session(request, account_id, False)
    return redirect("/me")


async def login_form(request: web.Request) -> web.Response:
    ensure_csrf(request)
    return render(request, "login.html", {"form": {}})


async def login(request: web.Request) -> web.Response:
    form = await checked_form(request)
    username = form.get("username", "").strip()[:64]
    password = form.get("password", "")[:512]
    throttle = config(request).throttle
    address = _address(request)

    def refuse(message: str, status: int) -> web.Response:
        return render(request, "login.html", {"form": {"username": username}, "error": message}, status=status)

    attempt = throttle.begin(username, address)  # reserved before the (async) password check: no race
    if isinstance(attempt, Refusal):
        minutes = max(1, math.ceil(attempt.retry_after_s / 60))
        what = "this account" if attempt.kind == "account" else "your address"
        response = refuse(f"Too many failed logins for {what}: try again in {minutes} minute"
                          f"{'s' if minutes != 1 else ''}.", 429)
        response.headers["Retry-After"] = str(math.ceil(attempt.retry_after_s))
        return response
    if attempt.delay_s:
        await asyncio.sleep(attempt.delay_s)  # this account is being guessed at from elsewhere: slow down
    account = await hub(request).store.run(lambda db: db.account_by_username(username)) if username else None
    ok = await verify_password(account.password_hash if account else None, password)
    if not ok or account is None:
        return refuse("Wrong username or password.", 401)  # the reserved attempt stays counted
    if account.disabled:
        return refuse("This account was disabled by the hub's operator.", 403)
    throttle.succeeded(attempt)
    if needs_rehash(account.password_hash):
        new_hash = await hash_password(password)
        await hub(request).store.run(lambda db: db.set_password_hash(account.account_id, new_hash))
    await start_session(request, account.account_id, False)  # a new session id: never the pre-login one
    target = form.get("next", "")
    # Only a local path: an open redirect would let a phishing link borrow the hub's name.
    return redirect(target if re.fullmatch(r"/[A-Za-z0-9_/-]*", target) and not target.startswith("//")
                           else "/me")


async def logout_form(request: web.Request) -> web.Response:
    ensure_csrf(request)
    return render(request, "logout.html", {})


async def logout(request: web.Request) -> web.Response:
    await checked_form(request)
    await end_session(request)
    return redirect("/")


async def me(request: web.Request) -> web.Response:
    current = require_account(request, "see your subscriptions and strategies")
    account_id = current.account_id
    state = hub(request)

    def read(db: Any) -> tuple[list[Any], list[str], dict[str, Any]]:
        return db.list_subscriptions(account_id), db.owned_strategy_ids(account_id), db.all_strategy_stats()

    subscriptions, owned, stats = await state.store.run(read)
    subs = [{"sub": s, "strategy": state.strategies.get(s.strategy_id)} for s in subscriptions]
    mine = [{"strategy": state.strategies[i], "stats": stats.get(i)} for i in owned if i in state.strategies]
    return render(request, "me.html", {"subs": subs, "mine": mine, "when": when})
