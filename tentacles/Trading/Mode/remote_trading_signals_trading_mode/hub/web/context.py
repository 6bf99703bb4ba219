"""What every page handler shares: the web front's settings, who is visiting, rendering and refusals."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp_jinja2
from aiohttp import web

from ..state import STATE_KEY, HubState
from ..store import Strategy
from .sealing import TokenSealer
from .tables import StrategyDetails, WebSession
from .throttle import LoginThrottle

SignupMode = Literal["open", "invite", "closed"]
SIGNUP_MODES: tuple[SignupMode, ...] = ("open", "invite", "closed")
COOKIE_NAME = "hub_session"
# A visitor who is not logged in gets no session row: the login and signup forms' CSRF token is a random
# value in its own cookie, compared with the form's copy (double submit). Nothing is written to the store
# for an anonymous page view, so a flood of them never queues fsyncs on the thread the publishers use.
CSRF_COOKIE_NAME = "hub_csrf"
SESSION_TTL_S = 14 * 24 * 3600
OPERATOR_SESSION_TTL_S = 12 * 3600  # the admin token's powers: a shorter session
ANONYMOUS_CSRF_TTL_S = 24 * 3600
MAX_FORM_BYTES = 64 * 1024


@dataclass
class WebConfig:
    signup: SignupMode
    secure_cookies: bool
    sealer: TokenSealer
    throttle: LoginThrottle = field(default_factory=LoginThrottle)

    def cookie_name(self, base: str) -> str:
        # __Host- (https only): the browser refuses the cookie unless Secure, Path=/ and no Domain, so a
        # sibling subdomain cannot plant one (which would defeat the double-submit CSRF check).
        return f"__Host-{base}" if self.secure_cookies else base


WEB_KEY = web.AppKey("web_config", WebConfig)


@dataclass
class Viewer:
    """The visitor of one request: anonymous, an account, or the operator (admin token holder)."""

    session: WebSession | None = None
    session_hash: str | None = None
    anonymous_csrf: str | None = None  # from the CSRF cookie, when there is no session

    @property
    def account_id(self) -> str | None:
        return self.session.account_id if self.session else None

    @property
    def username(self) -> str | None:
        return self.session.username if self.session else None

    @property
    def operator(self) -> bool:
        return bool(self.session and self.session.operator)

    @property
    def signed_in(self) -> bool:
        return self.account_id is not None or self.operator

    @property
    def csrf(self) -> str:
        if self.session is not None:
            return self.session.csrf
        return self.anonymous_csrf or ""


@dataclass
class RequestWeb:
    """What a page request carries between the middleware and its handler."""

    viewer: Viewer = field(default_factory=lambda: Viewer())
    set_cookie: tuple[str, float] | None = None
    set_csrf_cookie: str | None = None
    clear_cookie: bool = False


# web.RequestKey exists from aiohttp 3.12 on (plain string keys warn there); older versions take the string.
_RequestKey: Any = getattr(web, "RequestKey", None)
REQUEST_KEY: Any = _RequestKey("octobot_signals_web", RequestWeb) if _RequestKey else "octobot_signals_web"


def request_web(request: web.Request) -> RequestWeb:
    current = request.get(REQUEST_KEY)
    if current is None:
        current = request[REQUEST_KEY] = RequestWeb()
    return current


class PageError(Exception):
    """A refusal shown as a page: status, a title and a message that says what to do."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def hub(request: web.Request) -> HubState:
    return request.app[STATE_KEY]


def config(request: web.Request) -> WebConfig:
    return request.app[WEB_KEY]


def viewer(request: web.Request) -> Viewer:
    return request_web(request).viewer


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


async def start_session(request: web.Request, account_id: str | None, operator: bool) -> Viewer:
    """A fresh session id (and CSRF token) for an account or the operator; the previous one is deleted first.

    Called on login: a session id planted before login (session fixation) never becomes an account's.
    """
    state = hub(request)
    old = viewer(request)
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = time.time()
    ttl = OPERATOR_SESSION_TTL_S if operator else SESSION_TTL_S
    id_hash = session_hash(session_id)

    def write(db: Any) -> None:
        if old.session_hash:
            db.delete_web_session(old.session_hash)
        db.create_web_session(id_hash, account_id, operator, csrf, now, now + ttl)

    await state.store.run(write)
    username = None
    if account_id:
        account = await state.store.run(lambda db: db.account_by_id(account_id))
        username = account.username if account else None
    new = Viewer(WebSession(account_id, username, operator, csrf, now + ttl), id_hash)
    request_web(request).viewer = new
    request_web(request).set_cookie = (session_id, ttl)
    return new


def ensure_csrf(request: web.Request) -> Viewer:
    """A CSRF token for the forms of this page: the session's, or an anonymous visitor's cookie (made now)."""
    current = viewer(request)
    if current.csrf:
        return current
    token = secrets.token_urlsafe(32)
    current.anonymous_csrf = token
    request_web(request).set_csrf_cookie = token
    return current


async def end_session(request: web.Request) -> None:
    current = viewer(request)
    if current.session_hash:
        await hub(request).store.run(lambda db: db.delete_web_session(current.session_hash))
    request_web(request).viewer = Viewer()
    request_web(request).clear_cookie = True


async def checked_form(request: web.Request) -> dict[str, str]:
    """The posted form, once its CSRF token matched the session's (constant-time compare)."""
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise PageError(413, "Form too large", f"A form may carry at most {MAX_FORM_BYTES // 1024} KiB.")
    posted = await request.post()
    form = {key: value for key, value in posted.items() if isinstance(value, str)}
    sent = form.get("csrf", "")
    current = viewer(request)
    if not sent:
        raise PageError(403, "Form refused", "This form arrived without its security token (CSRF). "
                        "Reload the page and submit it again.")
    if not current.csrf or not hmac.compare_digest(sent.encode(), current.csrf.encode()):
        raise PageError(403, "Form refused", "This form's security token (CSRF) does not match your session: "
                        "it may come from another site or an expired page. Reload the page and submit it again.")
    return form


def require_account(request: web.Request, why: str) -> Viewer:
    current = viewer(request)
    if current.account_id is None:
        raise PageError(401, "Please log in", f"Log in to {why}.")
    return current


def require_operator(request: web.Request) -> Viewer:
    current = viewer(request)
    if not current.operator:
        raise PageError(403, "Operator only", "This page is for the hub's operator: log in at /operator/login "
                        "with the admin token.")
    return current


def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    current = viewer(request)
    base = {"viewer": current, "csrf": current.csrf, "signup_mode": config(request).signup,
            "hub_url": hub(request).hub_url}
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


def may_view(current: Viewer, strategy: Strategy, details: StrategyDetails, invited: set[str],
             subscribed: set[str]) -> bool:
    """Public strategies: everyone (archived ones only their people); private: owner, invited, subscribers."""
    if current.operator or (current.account_id and details.owner_id == current.account_id):
        return True
    if strategy.id in subscribed:
        return True
    if details.archived:
        return False
    return strategy.visibility == "public" or strategy.id in invited


async def visitor_links(request: web.Request) -> tuple[set[str], set[str]]:
    """(strategy ids the visitor was invited to, strategy ids the visitor subscribes to)."""
    account_id = viewer(request).account_id
    if account_id is None:
        return set(), set()

    def read(db: Any) -> tuple[set[str], set[str]]:
        return db.invited_strategy_ids(account_id), {s.strategy_id for s in db.list_subscriptions(account_id)}

    return await hub(request).store.run(read)


def redirect(location: str) -> web.Response:
    """303 See Other as a plain response (so the session cookie set on the way out travels with it)."""
    return web.Response(status=303, headers={"Location": location})
