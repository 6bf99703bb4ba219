"""quote_mapping applied to a feed message: every pair it names, renamed to the pair I trade.

The leader publishes `BTC/USDT`; a follower whose exchange lists `BTC/USDC` (quote_mapping `USDT=USDC`)
must validate, size and place the signal as `BTC/USDC`, so the message is renamed before it is parsed.
The signature is still checked on the message as received (it covers the leader's names).
"""
from __future__ import annotations

from typing import Any

from ..core import risk

_SYMBOL_KEYS = frozenset({"symbol", "position_symbol"})


def map_message_symbols(raw: Any, mapping: tuple[tuple[str, str], ...]) -> Any:
    """A renamed copy of `raw` (the original is left as is); anything not a message comes back unchanged."""
    if not mapping or not isinstance(raw, dict) or not isinstance(raw.get("s"), dict):
        return raw
    root: list[Any] = [raw["s"]]
    # an explicit stack, not recursion: a hostile message nests as deep as the JSON parser allowed
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, dict):
            copy: Any = dict(item)
            for name, value in copy.items():
                if name in _SYMBOL_KEYS and isinstance(value, str):
                    copy[name] = risk.map_symbol(value, mapping)
                elif isinstance(value, (dict, list)):
                    stack.append((copy, name))
        else:
            copy = list(item)
            stack.extend((copy, index) for index, value in enumerate(copy) if isinstance(value, (dict, list)))
        container[key] = copy
    return {**raw, "s": root[0]}
