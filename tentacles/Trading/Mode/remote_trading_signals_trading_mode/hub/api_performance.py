"""`GET /api/strategies/{id}/performance`: a strategy's track record as JSON (docs/PERFORMANCE.md).

Who: a public strategy, anyone (no token needed); a private one, those who may follow it (its members, its
publish secret, the admin token). Anyone else gets the very 404 an unknown id gets. A token that is sent
must be valid (401 otherwise, counted like any failed authentication).

Amounts (the portfolio's value, deposits and withdrawals) are the author's business: only the strategy's
publish secret and the admin token see them; everyone else gets the relative figures and the index curve.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.decimal_util import plain
from .api_common import _principal, _state, unknown_strategy
from .auth import bearer_token
from .performance_service import StrategyRecord, performance_service
from .store import Strategy
from .track_record import WINDOWS_DAYS, figure

METHOD = ("time-weighted: each period between two snapshots grows by (value - net deposits since the previous "
          "snapshot) / previous value, and the periods are chained, so deposits and withdrawals are not profit "
          "or loss; max drawdown is the largest fall of that chained index from a previous peak")


async def strategy_performance(request: web.Request) -> web.Response:
    state = _state(request)
    principal = await _principal(request) if bearer_token(request) is not None else None
    strategy_id = request.match_info["id"]
    strategy = state.strategies.get(strategy_id)
    if strategy is None:
        raise unknown_strategy(strategy_id)
    if strategy.visibility != "public" and (principal is None or not state.may_follow(principal, strategy)):
        raise unknown_strategy(strategy_id)  # byte for byte the unknown id's answer
    entry = await performance_service(request.app).record(state, strategy.id)
    stats = await state.store.run(lambda db: db.strategy_stats(strategy.id))
    amounts = principal is not None and (principal.kind == "admin" or (
        principal.kind == "publisher" and principal.strategy_id == strategy.id))
    return web.json_response(performance_json(strategy, entry, stats.followers, amounts=amounts))


def performance_json(strategy: Strategy, entry: StrategyRecord, copiers: int, *, amounts: bool) -> dict[str, Any]:
    """amounts: include the portfolio's value and flows (the author and the admin only)."""
    record, head = entry.record, entry.head
    win_rate = record.win_rate
    return {
        "strategy": strategy.id,
        "currency": head.currency if head else None,
        "reported_by": "the publishing bot",
        "signed": entry.signed,  # "all" | "partly" | "none": snapshots the hub verified with the strategy's key
        "points": record.points,
        "first_report": record.first_t,
        "last_report": record.last_t,
        "history_s": record.history_s,
        "method": METHOD,
        "amounts": "shown" if amounts else "hidden",
        "figures": {
            **{f"roi_{days}d": figure(record.roi[days]) for days in WINDOWS_DAYS},
            "roi_all": figure(record.roi_all),
            "max_drawdown": figure(record.max_drawdown),
            "trades": record.trades,
            "wins": record.wins,
            "win_rate": figure(win_rate),
            "fills": record.fills,
            "copiers": copiers,
            **({"net_flow": None if record.empty else plain(record.net_flow),
                "last_equity": None if record.last_equity is None else plain(record.last_equity)} if amounts else {}),
        },
        # flow: net deposits (+) / withdrawals (-) reported since the previous point (summed where thinned)
        "series": [{"t": point.t, "fills": point.fills, "index": figure(level),
                    **({"equity": plain(point.equity), "flow": plain(point.reported_flow)} if amounts else {})}
                   for point, (_, level) in zip(record.series, record.index, strict=True)],
    }


def add_performance_routes(app: web.Application) -> None:
    app.router.add_get("/api/strategies/{id}/performance", strategy_performance)
