"""HollaEx's HMAC API-key check.

A private request carries `api-key`, `api-expires` (unix seconds) and `api-signature` =
hex HMAC-SHA256, keyed by the secret, of method + path-with-query (exactly as sent) + expires
+ body (the raw JSON body of a POST; nothing for GET/DELETE). A missing, unknown or frozen key,
a bad signature and a past `api-expires` are all answered 403 with HollaEx's "Access Denied"
messages (ccxt reads a 403 as AuthenticationError and "API request is expired" as InvalidNonce).
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from . import errors
from .accounts import Account, Accounts
from .errors import ApiError


def signature(secret: str, method: str, path_with_query: str, expires: str, body: str = "") -> str:
    message = method.upper() + path_with_query + expires + body
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_headers(api_key: str, secret: str, method: str, path_with_query: str, body: str = "",
                   expires_in: int = 60) -> dict[str, str]:
    """Headers for a hand-made private request (tests that talk HTTP without ccxt)."""
    expires = str(int(time.time()) + expires_in)
    return {
        "api-key": api_key,
        "api-expires": expires,
        "api-signature": signature(secret, method, path_with_query, expires, body),
    }


def authenticate(accounts: Accounts, method: str, path_with_query: str, headers: Mapping[str, str],
                 body: str, now: float | None = None) -> Account:
    key = headers.get("api-key")
    if not key:
        raise ApiError(403, errors.API_KEY_NULL)
    given = headers.get("api-signature")
    if not given:
        raise ApiError(403, errors.API_SIGNATURE_NULL)
    expires = headers.get("api-expires", "")
    try:
        expired = int(expires) < (time.time() if now is None else now)
    except ValueError:
        expired = True
    if expired:
        raise ApiError(403, errors.API_REQUEST_EXPIRED)
    api_key = accounts.keys.get(key)
    if api_key is None:
        raise ApiError(403, errors.API_KEY_INVALID)
    if not api_key.active:
        raise ApiError(403, errors.API_KEY_INACTIVE)
    expected = signature(api_key.secret, method, path_with_query, expires, body)
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise ApiError(403, errors.API_SIGNATURE_INVALID)
    return accounts.get(api_key.account_id)
