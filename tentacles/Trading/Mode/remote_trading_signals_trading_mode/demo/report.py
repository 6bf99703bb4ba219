"""The demo's summary: the --json contract of issue 4 and the human table."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..core.decimal_util import plain
from ..follower.outcome import Result
from .follower_bot import FollowerBot
from .orders_view import OrderTracker, order_contents
from .stats import percentile, rounded


def _text(value: Any) -> str | None:
    """Amounts as decimal strings (the feed may carry floats: go through str, never float math)."""
    if value is None:
        return None
    return plain(Decimal(str(value)))


def portfolio_json(portfolio: Mapping[str, Mapping[str, Decimal]]) -> dict[str, dict[str, str]]:
    return {asset: {"total": plain(v["total"]), "available": plain(v["available"])} for asset, v in portfolio.items()}


def leader_orders(journal: Sequence[Mapping[str, Any]], tracker: OrderTracker) -> list[dict[str, Any]]:
    """Every order the leader published a create for, in publish order, with its current state."""
    orders: dict[str, dict[str, Any]] = {}
    for message in journal:
        for content in order_contents(message.get("s") or {}):
            order_id = content.get("order_id")
            if content.get("action") != "create" or not isinstance(order_id, str) or order_id in orders:
                continue
            price = content.get("limit_price") or content.get("stop_price") or content.get("current")
            orders[order_id] = {
                "order_id": order_id,
                "side": content.get("side"),
                "type": content.get("type"),
                "quantity": tracker.quantity(order_id) or _text(content.get("quantity")),
                "price": tracker.price(order_id) or _text(price),
                "status": tracker.status(order_id),
            }
    return list(orders.values())


def follower_json(bot: FollowerBot, strategy_id: str) -> dict[str, Any]:
    copies: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    for outcome in bot.outcomes:
        leader_id = outcome.order_id
        if outcome.result in (Result.SKIPPED, Result.REJECTED):
            reason = outcome.reason or outcome.result.value
            if outcome.action and outcome.action != "create":
                reason = f"{outcome.action}: {reason}"
            skipped.append({"leader_order_id": leader_id, "reason": reason})
            continue
        if outcome.result not in (Result.CREATED, Result.EDITED) or not outcome.orders or leader_id is None:
            continue
        local = outcome.orders[0]
        local_id = str(local["id"])
        copy = copies.setdefault(leader_id, {"leader_order_id": leader_id})
        copy.update({
            "local_order_id": local_id,
            "side": local.get("side"),
            "type": local.get("type"),
            "quantity": bot.tracker.quantity(local_id) or local.get("quantity"),
            "leader_quantity": outcome.leader_quantity or copy.get("leader_quantity"),
            "price": bot.tracker.price(local_id) or local.get("price"),
            "status": bot.tracker.status(local_id) or local.get("status"),
        })
    return {
        "name": bot.name,
        "sizing": bot.sizing,
        "portfolio_start": portfolio_json(bot.portfolio_start),
        "last_applied_q": bot.last_applied_q(strategy_id),
        "duplicates": bot.duplicates,
        "copies": list(copies.values()),
        "skipped": skipped,
    }


def latency_json(bots: Sequence[FollowerBot]) -> dict[str, float | None]:
    samples = [ms for bot in bots for ms in bot.latencies_ms]
    return {"p50": rounded(percentile(samples, 50)), "p99": rounded(percentile(samples, 99))}


def summary_table(summary: Mapping[str, Any]) -> list[str]:
    """Leader orders down, one column per follower: quantity and status of each copy (or why not)."""
    followers = summary["followers"]
    header = ["leader order", "leader qty @ price", *[f"{f['name']} ({f['sizing']})" for f in followers]]
    rows: list[list[str]] = []
    for order in summary["leader"]["orders"]:
        row = [f"{order['type']} {order['order_id'][:8]}",
               f"{order['quantity']} @ {order['price']} {order['status']}"]
        for follower in followers:
            copy = next((c for c in follower["copies"] if c["leader_order_id"] == order["order_id"]), None)
            if copy is not None:
                row.append(f"{copy['quantity']} @ {copy['price']} {copy['status']}")
            else:
                reasons = [s["reason"] for s in follower["skipped"] if s["leader_order_id"] == order["order_id"]]
                row.append("skipped: " + (reasons[0] if reasons else "no outcome"))
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines.append("")
    for follower in followers:
        lines.append(f"{follower['name']}: last applied q={follower['last_applied_q']} "
                     f"(hub last q={summary['hub']['last_q']}), duplicates={follower['duplicates']}, "
                     f"{len(follower['copies'])} copies, {len(follower['skipped'])} skipped")
    latency = summary["latency_ms"]
    lines.append(f"publish -> follower order placed: p50 {latency['p50']} ms, p99 {latency['p99']} ms")
    return lines
