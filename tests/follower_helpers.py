"""Small assertions shared by the tests that drive the real mode on the simulated exchange."""
from __future__ import annotations

from typing import Any


def only(outcomes: list[Any]) -> Any:
    """The one outcome a single-signal message gave."""
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


def my_order(f: Any) -> Any:
    """The one open order on the follower's simulated exchange."""
    orders = f.sim.open_orders()
    assert len(orders) == 1, orders
    return orders[0]
