"""Bearer-token authentication for the hub.

Every secret (admin token, publish secrets, follower tokens, capabilities) is a random
high-entropy string stored as its sha256; a presented token is hashed and the stored
hash compared with hmac.compare_digest. Tokens are read from the Authorization header
only, never from a URL, and never logged.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from .store import AsyncStore, FollowerToken, SqliteStore

MAX_TOKEN_CHARS = 512

PrincipalKind = Literal["admin", "follower", "publisher"]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret(prefix: str) -> str:
    # 32 random bytes (256 bits); the prefix only tells a human which kind it is.
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_capability() -> str:
    return secrets.token_urlsafe(24)  # 192 bits


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return token


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    follower: FollowerToken | None = None  # for kind == "follower"
    strategy_id: str | None = None  # for kind == "publisher": the only strategy it may publish on
    token: str | None = None  # the plaintext, kept in memory for this request only (profile links)

    @property
    def label(self) -> str:
        """Safe for logs: never the secret itself."""
        if self.kind == "follower" and self.follower is not None:
            return f"follower:{self.follower.token_id}"
        if self.kind == "publisher":
            return f"publisher:{self.strategy_id}"
        return self.kind


class Authenticator:
    def __init__(self, store: AsyncStore, admin_token_hash: str) -> None:
        self._store = store
        self._admin_hash = admin_token_hash

    async def authenticate(self, token: str | None) -> Principal | None:
        if token is None:
            return None
        token_hash = hash_secret(token)
        if hmac.compare_digest(token_hash, self._admin_hash):
            return Principal("admin")

        def lookup(db: SqliteStore) -> tuple[FollowerToken | None, str | None]:
            follower = db.follower_for_hash(token_hash)
            if follower is not None:
                return follower, None
            return None, db.strategy_for_publish_secret(token_hash)

        # The lookup is by hash in an index: the secret itself is never compared byte by byte.
        follower, strategy_id = await self._store.run(lookup)
        if follower is not None:
            return Principal("follower", follower=follower, token=token)
        if strategy_id is not None:
            return Principal("publisher", strategy_id=strategy_id)
        return None
