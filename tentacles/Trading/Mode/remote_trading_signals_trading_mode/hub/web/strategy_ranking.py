"""The strategies list's order and filters: `/?sort=roi30|mdd|copiers|newest|name&min_days=0|7|30|90&signed=1`.

Strategies without the figure a sort uses (no 30 days of history, no report) come last, by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from ..performance_service import StrategyRecord
from .context import PageError

SORTS = {
    "roi30": "30-day ROI",
    "mdd": "smallest max drawdown",
    "copiers": "most copiers",
    "newest": "newest",
    "name": "name",
}
MIN_DAYS = (0, 7, 30, 90)


@dataclass(frozen=True)
class ListQuery:
    sort: str = "name"
    min_days: int = 0
    signed_only: bool = False


def parse_query(request: web.Request) -> ListQuery:
    """The list's query parameters; a bad one is a 400 page naming the parameter."""
    query = request.query
    sort = query.get("sort", "name")
    if sort not in SORTS:
        raise PageError(400, "Unknown order", f"sort must be one of {', '.join(SORTS)}, not {sort[:40]!r}.")
    raw_days = query.get("min_days", "0")
    if raw_days not in {str(d) for d in MIN_DAYS}:
        raise PageError(400, "Unknown filter", f"min_days must be one of {', '.join(map(str, MIN_DAYS))}.")
    signed = query.get("signed", "")
    if signed not in ("", "0", "1"):
        raise PageError(400, "Unknown filter", "signed must be 1 (only signed track records) or empty.")
    return ListQuery(sort, int(raw_days), signed == "1")


def keep(query: ListQuery, entry: StrategyRecord | None) -> bool:
    if query.min_days and (entry is None or entry.record.history_s < query.min_days * 86400):
        return False
    return not query.signed_only or (entry is not None and entry.signed == "all")


def rank(cards: list[dict[str, Any]], query: ListQuery) -> list[dict[str, Any]]:
    """Cards carry "strategy", "record" (StrategyRecord | None), "copiers" and "created_at"."""
    def name(card: dict[str, Any]) -> str:
        return str(card["strategy"].name.lower())

    def metric(card: dict[str, Any]) -> Decimal | float | None:
        record = card["record"].record if card["record"] is not None else None
        if query.sort == "roi30":
            return None if record is None or record.roi[30] is None else -record.roi[30]
        if query.sort == "mdd":
            return None if record is None else record.max_drawdown
        if query.sort == "copiers":
            return -card["copiers"]
        if query.sort == "newest":
            return -card["created_at"]
        return None

    if query.sort == "name":
        return sorted(cards, key=name)
    # present values first (ascending), then the rest; ties by name
    return sorted(cards, key=lambda c: (metric(c) is None, metric(c) or 0, name(c)))
