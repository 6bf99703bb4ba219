"""Leader order id -> my order id, persisted next to the bot's data so a restart finds my copies.

Also remembers the last message ids (`u`) applied, so a message seen twice (replay after a
reconnect, a restart mid-bundle) never yields a second copy.
"""
from __future__ import annotations

import asyncio
import collections
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_MAX_REMEMBERED_MESSAGES = 5000
_MAX_REMEMBERED_CLOSED = 5000
_FORMAT_VERSION = 1


@dataclass
class OrderLink:
    local_order_id: str
    symbol: str
    leader_quantity: str  # decimal string: what the leader sized this order at
    local_quantity: str   # decimal string: what I placed
    closed: bool = False  # cancelled / gone: kept so the same leader order is never copied again


@dataclass
class OrderMap:
    """In-memory map with an optional JSON file behind it (written atomically)."""

    path: Path | None = None
    links: dict[str, OrderLink] = field(default_factory=dict)
    applied_messages: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)
    load_warning: str | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @classmethod
    def load(cls, path: Path | None) -> OrderMap:
        order_map = cls(path=path)
        if path is None or not path.exists():
            return order_map
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            for leader_id, link in raw.get("links", {}).items():
                order_map.links[str(leader_id)] = OrderLink(
                    str(link["local_order_id"]), str(link["symbol"]), str(link["leader_quantity"]),
                    str(link["local_quantity"]), bool(link.get("closed", False)),
                )
            for message_id in raw.get("applied_messages", []):
                order_map.applied_messages[str(message_id)] = None
        except (OSError, ValueError, TypeError) as err:
            # a corrupt map must not stop the bot: keep the file aside and start empty
            aside = path.with_suffix(path.suffix + ".corrupt")
            os.replace(path, aside)
            order_map = cls(path=path)
            order_map.load_warning = f"order map {path} unreadable ({err}); moved to {aside}, starting empty"
        return order_map

    def local_id(self, leader_order_id: str) -> str | None:
        link = self.links.get(leader_order_id)
        return link.local_order_id if link else None

    def link(self, leader_order_id: str, link: OrderLink) -> None:
        self.links[leader_order_id] = link

    def close(self, leader_order_id: str) -> None:
        link = self.links.get(leader_order_id)
        if link is not None:
            link.closed = True
        closed = [leader_id for leader_id, old in self.links.items() if old.closed]
        for leader_id in closed[: max(0, len(closed) - _MAX_REMEMBERED_CLOSED)]:
            del self.links[leader_id]  # oldest first: dicts keep insertion order

    def was_applied(self, message_id: str) -> bool:
        return message_id in self.applied_messages

    def mark_applied(self, message_id: str) -> None:
        self.applied_messages[message_id] = None
        while len(self.applied_messages) > _MAX_REMEMBERED_MESSAGES:
            self.applied_messages.popitem(last=False)

    def _snapshot(self) -> str:
        return json.dumps({
            "version": _FORMAT_VERSION,
            "links": {leader_id: vars(link) for leader_id, link in self.links.items()},
            "applied_messages": list(self.applied_messages),
        })

    async def save(self) -> None:
        """Write the map durably off the event loop."""
        if self.path is None:
            return
        snapshot = self._snapshot()
        async with self._lock:
            await asyncio.to_thread(_atomic_write, self.path, snapshot)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
