"""A scripted list of prices for one market, stepped by a control call or on a timer."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass
class PricePath:
    prices: list[Decimal]
    interval: float | None = None  # seconds between timed steps; None: only stepped by /_control/step
    loop: bool = False
    index: int = 0  # the next price to apply

    def next_price(self) -> Decimal | None:
        if self.index >= len(self.prices):
            if not self.loop or not self.prices:
                return None
            self.index = 0
        price = self.prices[self.index]
        self.index += 1
        return price

    @property
    def remaining(self) -> int | None:
        return None if self.loop else len(self.prices) - self.index

    def to_json(self) -> dict[str, Any]:
        return {"prices": self.prices, "interval": self.interval, "loop": self.loop, "index": self.index,
                "remaining": self.remaining}
