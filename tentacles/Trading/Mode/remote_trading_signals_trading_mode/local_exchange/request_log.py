"""Every HollaEx request the exchange saw, in arrival order, for tests to assert on.

An entry is recorded when the request arrives (status None while it is being answered or
while a fault holds it) and completed when it ends: `status` is what the client got (None when
the connection was dropped or the request hung), `fault` names the injected failure if any and
`handled_status` what the exchange itself answered for a "lost response" fault. Bodies are the
request's JSON text: clients never send their API secret, and headers are not kept.
"""
from __future__ import annotations

import itertools
import time
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class LoggedRequest:
    id: int
    t: float
    method: str
    path: str  # with the query string, as sent
    body: str
    status: int | None = None
    fault: str | None = None
    handled_status: int | None = None
    account: str | None = None
    duration: float | None = None

    def finish(self, status: int | None, fault: str | None = None, handled_status: int | None = None) -> None:
        self.status = status
        self.fault = fault or self.fault
        self.handled_status = handled_status
        self.duration = time.time() - self.t


# the entry of the request being handled (set by the server's middleware, read by the handlers)
CURRENT: ContextVar[LoggedRequest | None] = ContextVar("local_exchange_request", default=None)


class RequestLog:
    def __init__(self, limit: int = 100_000) -> None:
        self.entries: list[LoggedRequest] = []
        self.limit = limit
        self._ids = itertools.count(1)

    def open(self, method: str, path: str, body: str) -> LoggedRequest:
        entry = LoggedRequest(id=next(self._ids), t=time.time(), method=method, path=path, body=body)
        self.entries.append(entry)
        if len(self.entries) > self.limit:
            del self.entries[: len(self.entries) - self.limit]
        return entry

    def select(self, since: float | None = None, since_id: int | None = None, method: str | None = None,
               path: str | None = None) -> list[LoggedRequest]:
        """Entries after `since` (unix time) / `since_id`; `path` matches the path without its query."""
        out = []
        for entry in self.entries:
            if since is not None and entry.t <= since:
                continue
            if since_id is not None and entry.id <= since_id:
                continue
            if method is not None and entry.method != method.upper():
                continue
            if path is not None and entry.path.split("?")[0] != path:
                continue
            out.append(entry)
        return out

    def to_json(self, entries: list[LoggedRequest]) -> list[dict[str, Any]]:
        return [asdict(e) for e in entries]

    def clear(self) -> None:
        self.entries.clear()
