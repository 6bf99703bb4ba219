"""Pages anyone may read: the strategies list `/` and a strategy page `/strategies/{id}`."""
from __future__ import annotations

import base64
import datetime
import hashlib
import time
from typing import Any

from aiohttp import web

from ..performance_service import performance_service
from ..store import Strategy
from .chart import DAY_S, signals_per_day_svg
from .context import PageError, hub, may_view, render, viewer, visitor_links
from .strategy_ranking import MIN_DAYS, SORTS, keep, parse_query, rank
from .tables import StrategyDetails
from .track_record_view import row_figures, track_view

LATEST_SIGNALS = 25
CHART_DAYS = 30


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def key_fingerprint(public_key: str | None) -> str | None:
    """A short, comparable fingerprint of the publisher's Ed25519 key (sha256 of the raw key, 16 bytes)."""
    if not public_key:
        return None
    try:
        raw = base64.b64decode(public_key, validate=True)
    except ValueError:
        raw = public_key.encode()
    digest = hashlib.sha256(raw).hexdigest()[:32]
    return ":".join(digest[i:i + 4] for i in range(0, len(digest), 4))


def _text(value: Any, limit: int = 40) -> str:
    return "" if value is None else str(value)[:limit]


def signal_rows(entries: list[tuple[int, Any, dict[str, Any], float]]) -> list[dict[str, Any]]:
    """One row per order/position signal of the newest journal messages (the journal is untrusted text)."""
    rows = []
    for q, d, bundle, received_at in entries:
        signals = bundle.get("signals") if isinstance(bundle, dict) else None
        for signal in signals if isinstance(signals, list) else []:
            content = signal.get("content") if isinstance(signal, dict) else None
            if not isinstance(content, dict):
                continue
            size = content.get("target_amount") or content.get("updated_target_amount") or content.get("leverage")
            rows.append({
                "q": q,
                "time": when(d if isinstance(d, int | float) else received_at),
                "topic": _text(signal.get("topic"), 16),
                "action": _text(content.get("action"), 20),
                "symbol": _text(content.get("symbol"), 40),
                "side": _text(content.get("side"), 10),
                "type": _text(content.get("type"), 30),
                "size": _text(size, 20),
            })
    return rows


async def index(request: web.Request) -> web.Response:
    state = hub(request)
    current = viewer(request)
    query = parse_query(request)
    invited, subscribed = await visitor_links(request)

    def read(db: Any) -> tuple[dict[str, StrategyDetails], dict[str, Any], dict[str, str], dict[str, float]]:
        owners = {a.account_id: a.username for a in db.list_accounts()}
        return db.load_strategy_details(), db.all_strategy_stats(), owners, db.strategy_created_at()

    details, stats, owners, created = await state.store.run(read)
    records = await performance_service(request.app).records(state)
    cards = []
    for strategy in state.strategies.values():
        info = details.get(strategy.id, StrategyDetails(None, "", False))
        if info.archived or not may_view(current, strategy, info, invited, subscribed):
            continue
        record = records.get(strategy.id)
        if not keep(query, record):
            continue
        cards.append({"strategy": strategy, "details": info, "stats": stats.get(strategy.id),
                      "owner": owners.get(info.owner_id or "", "the operator"),
                      "subscribed": strategy.id in subscribed,
                      "last": when(stats[strategy.id].last_at) if strategy.id in stats else "never",
                      "record": record, "copiers": stats[strategy.id].followers if strategy.id in stats else 0,
                      "created_at": created.get(strategy.id, 0.0), "figures": row_figures(record)})
    return render(request, "index.html", {"cards": rank(cards, query), "query": query, "sorts": SORTS,
                                          "min_days_choices": MIN_DAYS})


def strategy_not_found() -> PageError:
    """The one refusal for an id nobody has AND for a strategy the visitor may not see: the same status and
    page, so a private strategy's existence is never told to those who may not see it."""
    return PageError(404, "No such strategy", "There is no strategy with this id on this hub that you may see. "
                     "A private strategy is visible only once its author invited you.")


def find_strategy(request: web.Request) -> Strategy:
    strategy = hub(request).strategies.get(request.match_info["id"])
    if strategy is None:
        raise strategy_not_found()
    return strategy


async def may_view_strategy(request: web.Request, strategy: Strategy, details: StrategyDetails) -> bool:
    invited, subscribed = await visitor_links(request)
    return may_view(viewer(request), strategy, details, invited, subscribed)


async def strategy_context(request: web.Request, strategy: Strategy) -> dict[str, Any]:
    """Everything the strategy page shows; refuses (404) a strategy the visitor may not see."""
    state = hub(request)
    current = viewer(request)
    invited, subscribed = await visitor_links(request)
    today = int(time.time() // DAY_S)
    account_id = current.account_id

    def read(db: Any) -> dict[str, Any]:
        details = db.strategy_details(strategy.id)
        owner = db.account_by_id(details.owner_id) if details.owner_id else None
        return {
            "details": details,
            "owner": owner.username if owner else "the operator",
            "stats": db.strategy_stats(strategy.id),
            "counts": db.daily_signal_counts(strategy.id, today - CHART_DAYS + 1, CHART_DAYS),
            "latest": db.latest_journal(strategy.id, LATEST_SIGNALS),
            "subscription": db.get_subscription(account_id, strategy.id) if account_id else None,
            "invitees": db.strategy_invitees(strategy.id) if details.owner_id == account_id else [],
        }

    data = await state.store.run(read)
    details: StrategyDetails = data["details"]
    if not may_view(current, strategy, details, invited, subscribed):
        raise strategy_not_found()  # 404 rather than 403, and the very page an unknown id gets
    is_owner = account_id is not None and details.owner_id == account_id
    return {
        **data,
        "strategy": strategy,
        "is_owner": is_owner,
        "may_subscribe": (account_id is not None and not details.archived
                          and (strategy.visibility == "public" or strategy.id in invited or is_owner)),
        "fingerprint": key_fingerprint(strategy.public_key),
        "chart": signals_per_day_svg(data["counts"], today, CHART_DAYS),
        "rows": signal_rows(data["latest"]),
        "first_at": when(data["stats"].first_at),
        "last_at": when(data["stats"].last_at),
        "track": track_view(await performance_service(request.app).record(state, strategy.id),
                            data["stats"].followers, time.time(), key_fingerprint(strategy.public_key)),
    }


async def render_strategy(request: web.Request, strategy: Strategy, status: int = 200, **extra: Any) -> web.Response:
    context = await strategy_context(request, strategy)
    return render(request, "strategy.html", {**context, **extra}, status=status)


async def strategy_page(request: web.Request) -> web.Response:
    return await render_strategy(request, find_strategy(request))
