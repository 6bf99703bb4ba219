"""What the follower did with one order content: the unit of the replay report and of the logs."""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any


class Result(str, enum.Enum):
    CREATED = "created"
    EDITED = "edited"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    REJECTED = "rejected"


@dataclass
class Outcome:
    u: str | None
    q: int | None
    order_id: str | None  # the leader's order id
    action: str | None
    result: Result
    reason: str | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)
    symbol: str | None = None
    leader_quantity: str | None = None
    at: float = field(default_factory=time.time)  # wall clock when decided (for an order: when placed)

    @property
    def applied(self) -> bool:
        return self.result in (Result.CREATED, Result.EDITED, Result.CANCELLED)

    def to_json(self) -> dict[str, Any]:
        return {
            "u": self.u,
            "q": self.q,
            "order_id": self.order_id,
            "action": self.action,
            "result": self.result.value,
            "reason": self.reason,
            "orders": self.orders,
        }

    def log_line(self) -> str:
        where = f"q={self.q} " if self.q is not None else ""
        what = f"{self.action or '?'} {self.order_id or '?'}"
        reason = f": {self.reason}" if self.reason else ""
        placed = ", ".join(f"{o['side']} {o['quantity']} {o['symbol']} @ {o['price']}" for o in self.orders)
        return f"{where}{what} -> {self.result.value}{reason}{' [' + placed + ']' if placed else ''}"
