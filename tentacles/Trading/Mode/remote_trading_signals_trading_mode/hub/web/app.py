"""Wiring of the web front into the hub's aiohttp app: templates, static files, routes, the page middleware."""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ..state import STATE_KEY
from . import pages_account, pages_author, pages_follower, pages_operator, pages_public
from .context import (
    ANONYMOUS_CSRF_TTL_S,
    COOKIE_NAME,
    CSRF_COOKIE_NAME,
    WEB_KEY,
    PageError,
    SignupMode,
    Viewer,
    WebConfig,
    render,
    request_web,
    session_hash,
)
from .sealing import TokenSealer

logger = logging.getLogger("octobot_signals.hub.web")

HERE = Path(__file__).resolve().parent
# Paths of the machine interfaces: their answers stay JSON, exactly as before the web front.
NOT_PAGES = ("/api/", "/p/", "/cable")
# Scripts and styles only from the hub itself; inline SVG needs no exception.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _load_viewer(request: web.Request, config: WebConfig) -> None:
    cookie = request.cookies.get(config.cookie_name(COOKIE_NAME))
    if cookie and len(cookie) <= 128:
        id_hash = session_hash(cookie)
        now = time.time()
        session = await request.app[STATE_KEY].store.run(lambda db: db.get_web_session(id_hash, now))
        if session is not None:
            request_web(request).viewer = Viewer(session, id_hash)
            return
    anonymous = request.cookies.get(config.cookie_name(CSRF_COOKIE_NAME))
    if anonymous and 32 <= len(anonymous) <= 128:
        request_web(request).viewer = Viewer(anonymous_csrf=anonymous)


@web.middleware
async def page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(NOT_PAGES):
        return await handler(request)
    if request.path.startswith("/static/"):
        response = await handler(request)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response
    config = request.app[WEB_KEY]
    await _load_viewer(request, config)
    try:
        response = await handler(request)
    except PageError as err:
        if "application/json" in request.headers.get("Accept", ""):  # the copy button's request
            return web.json_response({"error": "refused", "message": err.message}, status=err.status)
        response = render(request, "message.html", {"title": err.title, "message": err.message, "status": err.status},
                          status=err.status)
    except web.HTTPException as err:
        # Unknown paths stay JSON errors for API clients (as before the pages); a browser gets a page.
        if err.status < 400 or "text/html" not in request.headers.get("Accept", ""):
            raise
        message = {404: "There is no page at this address.",
                   405: "This page does not take this kind of request."}.get(err.status, err.reason)
        response = render(request, "message.html", {"title": err.reason, "message": message, "status": err.status},
                          status=err.status)
    carried = request_web(request)
    cookie_flags = {"path": "/", "httponly": True, "samesite": "Lax", "secure": config.secure_cookies}
    if carried.set_cookie is not None:
        session_id, ttl = carried.set_cookie
        response.set_cookie(config.cookie_name(COOKIE_NAME), session_id, max_age=int(ttl), **cookie_flags)
    elif carried.clear_cookie:
        response.del_cookie(config.cookie_name(COOKIE_NAME), **cookie_flags)
    if carried.set_csrf_cookie is not None:
        response.set_cookie(config.cookie_name(CSRF_COOKIE_NAME), carried.set_csrf_cookie,
                            max_age=ANONYMOUS_CSRF_TTL_S, **cookie_flags)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if carried.viewer.csrf:
        # Pages holding a CSRF token (and secrets shown once) are never cached.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def setup_web(app: web.Application, data_dir: Path, signup: SignupMode, secure_cookies: bool) -> None:
    """Mount the pages on the hub's app (before it starts). page_middleware must be in app.middlewares."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),  # every template, always
    )
    app[WEB_KEY] = WebConfig(signup=signup, secure_cookies=secure_cookies, sealer=TokenSealer.from_data_dir(data_dir))
    r = app.router
    r.add_get("/", pages_public.index)
    r.add_get("/login", pages_account.login_form)
    r.add_post("/login", pages_account.login)
    r.add_get("/logout", pages_account.logout_form)
    r.add_post("/logout", pages_account.logout)
    r.add_get("/signup", pages_account.signup_form)
    r.add_post("/signup", pages_account.signup)
    r.add_get("/me", pages_account.me)
    r.add_get("/strategies/new", pages_author.new_form)  # before /strategies/{id}: "new" is a valid id shape
    r.add_post("/strategies/new", pages_author.create)
    r.add_get("/strategies/{id}", pages_public.strategy_page)
    r.add_get("/strategies/{id}/edit", pages_author.edit_form)
    r.add_post("/strategies/{id}/edit", pages_author.edit)
    r.add_post("/strategies/{id}/rotate", pages_author.rotate)
    r.add_post("/strategies/{id}/archive", pages_author.archive)
    r.add_post("/strategies/{id}/invite", pages_author.invite)
    r.add_post("/strategies/{id}/subscribe", pages_follower.subscribe)
    r.add_post("/strategies/{id}/unsubscribe", pages_follower.unsubscribe)
    r.add_post("/strategies/{id}/profile-link", pages_follower.profile_link)
    r.add_get("/strategies/{id}/profile.zip", pages_follower.download_profile)
    r.add_get("/operator/login", pages_operator.login_form)
    r.add_post("/operator/login", pages_operator.login)
    r.add_get("/operator", pages_operator.dashboard)
    r.add_post("/operator/invitations", pages_operator.create_invitation)
    r.add_post("/operator/disable", pages_operator.disable_user)
    r.add_static("/static/", HERE / "static", name="static")
