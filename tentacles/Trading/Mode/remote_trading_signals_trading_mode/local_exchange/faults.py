"""Failure injection: rules that make the next requests fail, chosen by path and method.

A rule applies to the next `count` matching requests and/or for `seconds`; modes:
- `status`: answer `status` (default 503) with an nginx-like text body, or `{"message": ...}` when
  `json` is true (ccxt: text 503 -> ExchangeNotAvailable, JSON 5xx -> NetworkError);
- `hang`: hold the request `hang_seconds` (default 60, past any client timeout) or until the
  rules are cleared / released, then drop the connection without an answer;
- `drop`: close the connection at once without an answer.
With `after: true` the request is first handled for real (an order IS created, a cancel IS
done) and only then is its answer lost (hang, drop) or replaced (status): the "lost response"
case where a client times out on a POST /v2/order that the exchange did accept.
Mind that aiohttp (ccxt's HTTP client) resends an idempotent request (GET, DELETE) once when a
kept-alive connection closes unanswered: one dropped GET goes unseen by ccxt and uses the rule
twice if its count allows; a POST is never resent.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

MODES = ("status", "hang", "drop")


@dataclass
class FaultRule:
    id: int
    mode: str = "status"
    status: int = 503
    json: bool = False
    message: str = "Service Unavailable"
    count: int | None = None  # matches left; None: until `until`
    until: float | None = None
    methods: list[str] | None = None
    paths: list[str] | None = None  # exact paths, or a prefix ending with "*"; without the query
    after: bool = False
    hang_seconds: float = 60.0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
        if not self.paths:
            return True
        return any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in self.paths)

    def alive(self, now: float) -> bool:
        return (self.count is None or self.count > 0) and (self.until is None or now < self.until)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "mode": self.mode, "status": self.status, "json": self.json, "count": self.count,
            "until": self.until, "methods": self.methods, "paths": self.paths, "after": self.after,
            "hang_seconds": self.hang_seconds, "hits": self.hits,
        }


class Faults:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._release: asyncio.Event | None = None

    def add(self, raw: dict[str, Any]) -> FaultRule:
        mode = raw.get("mode", "status")
        if mode not in MODES:
            raise bad_request(f"mode must be one of {MODES}")
        count = raw.get("count")
        seconds = raw.get("seconds")
        if count is None and seconds is None:
            count = 1
        rule = FaultRule(
            id=next(self._ids), mode=mode, status=int(raw.get("status", 503)), json=bool(raw.get("json", False)),
            message=str(raw.get("message", "Service Unavailable")),
            count=None if count is None else int(count),
            until=None if seconds is None else time.time() + float(seconds),
            methods=[m.upper() for m in raw["methods"]] if raw.get("methods") else None,
            paths=list(raw["paths"]) if raw.get("paths") else None,
            after=bool(raw.get("after", False)), hang_seconds=float(raw.get("hang_seconds", 60.0)),
        )
        self.rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first live rule for this request, counted as used."""
        now = time.time()
        self.rules = [r for r in self.rules if r.alive(now)]
        for rule in self.rules:
            if rule.matches(method, path):
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                return rule
        return None

    def clear(self, rule_id: int | None = None) -> None:
        if rule_id is None:
            self.rules.clear()
        else:
            self.rules = [r for r in self.rules if r.id != rule_id]
        self.release()

    def release(self) -> None:
        """End every hang now (their connections are dropped, still without an answer)."""
        if self._release is not None:
            self._release.set()
        self._release = None

    async def hang(self, seconds: float) -> None:
        if self._release is None:
            self._release = asyncio.Event()
        try:
            await asyncio.wait_for(self._release.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def active(self) -> list[FaultRule]:
        now = time.time()
        return [r for r in self.rules if r.alive(now)]
