"""A follower's actions on a strategy page: subscribe, unsubscribe, copy download url, download profile."""
from __future__ import annotations

import logging
import secrets
import time

from aiohttp import web

from ...core.profile_zip import build_profile_zip
from ..api import PROFILE_LINK_TTL_S
from ..api_common import profile_name, profile_spec
from ..api_manage import close_followers
from ..auth import hash_secret, new_capability, new_secret
from ..store import Capability, Strategy
from .context import PageError, checked_form, config, hub, redirect, require_account
from .pages_public import find_strategy, render_strategy, strategy_context
from .tables import Subscription

logger = logging.getLogger("octobot_signals.hub.web")


def wants_json(request: web.Request) -> bool:
    # The copy button's script asks for JSON; without JavaScript the same form renders the page.
    return "application/json" in request.headers.get("Accept", "")


async def subscribe(request: web.Request) -> web.Response:
    await checked_form(request)
    current = require_account(request, "subscribe to a strategy")
    strategy = find_strategy(request)
    context = await strategy_context(request, strategy)
    if context["details"].archived:
        raise PageError(409, "Strategy archived", "This strategy is archived: it takes no new subscriptions.")
    if not context["may_subscribe"]:
        raise PageError(403, "Invitation needed", "This strategy is private: its author must invite you first.")
    token = new_secret("ft")
    token_id = f"fol_{secrets.token_hex(8)}"
    sealed = config(request).sealer.seal(token, token_id)
    account_id = current.account_id or ""
    created = await hub(request).store.run(lambda db: db.create_subscription(
        account_id, strategy.id, token_id, hash_secret(token), sealed, time.time()))
    if created:
        logger.info("account %s subscribed to %s (token %s)", account_id, strategy.id, token_id)
    return redirect(f"/strategies/{strategy.id}")


async def unsubscribe(request: web.Request) -> web.Response:
    await checked_form(request)
    current = require_account(request, "unsubscribe")
    strategy = find_strategy(request)
    account_id = current.account_id or ""
    token_id = await hub(request).store.run(lambda db: db.delete_subscription(account_id, strategy.id))
    if token_id is None:
        await strategy_context(request, strategy)  # one the visitor may not see: "no such strategy", as if unknown
        raise PageError(404, "Not subscribed", "You do not subscribe to this strategy.")
    close_followers(hub(request), [token_id], "subscription ended")
    logger.info("account %s unsubscribed from %s (token %s revoked)", account_id, strategy.id, token_id)
    return redirect(f"/strategies/{strategy.id}")


async def _subscription_token(request: web.Request, strategy: Strategy) -> tuple[Subscription, str]:
    current = require_account(request, "get your profile")
    account_id = current.account_id or ""
    await strategy_context(request, strategy)  # refuses a strategy this account may no longer see
    subscription = await hub(request).store.run(lambda db: db.get_subscription(account_id, strategy.id))
    if subscription is None:
        raise PageError(403, "Subscribe first", "Subscribe to this strategy to get your personal profile.")
    return subscription, config(request).sealer.unseal(subscription.token_sealed, subscription.token_id)


async def profile_link(request: web.Request) -> web.Response:
    """The personal 15-minute download url (PROTOCOL.md profile links), for the copy button."""
    await checked_form(request)
    require_account(request, "get your profile")  # before the lookup: an anonymous visitor learns nothing of ids
    strategy = find_strategy(request)
    subscription, token = await _subscription_token(request, strategy)
    capability = new_capability()
    expires_at = time.time() + PROFILE_LINK_TTL_S
    record = Capability(subscription.token_id, strategy.id, token, expires_at)
    await hub(request).store.run(lambda db: db.create_capability(hash_secret(capability), record))
    url = f"{hub(request).hub_url}/p/{capability}/{strategy.id}.zip"
    if wants_json(request):
        return web.json_response({"url": url, "expires_at": int(expires_at)}, headers={"Cache-Control": "no-store"})
    response = await render_strategy(request, strategy, profile_url=url)
    response.headers["Cache-Control"] = "no-store"
    return response


async def download_profile(request: web.Request) -> web.Response:
    """The profile zip itself, for OctoBot's upload form (its import-from-URL is broken in 2.1.1)."""
    require_account(request, "get your profile")  # before the lookup, as above
    strategy = find_strategy(request)
    _, token = await _subscription_token(request, strategy)
    state = hub(request)
    data = build_profile_zip(profile_spec(strategy), state.hub_url, token, profile_name=profile_name(strategy))
    return web.Response(body=data, content_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{strategy.id}.zip"', "Cache-Control": "no-store"})


