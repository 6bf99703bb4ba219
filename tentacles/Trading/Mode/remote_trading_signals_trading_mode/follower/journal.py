"""Strategy journals: JSON lines, one feed message per line, as the hub's history endpoint returns them."""
from __future__ import annotations

import decimal
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Decimal = decimal.Decimal
MAX_LINE_BYTES = 512 * 1024  # a frame is at most 256 KiB; leave room, refuse anything absurd


@dataclass(frozen=True)
class JournalLine:
    number: int
    raw: str
    d: Decimal | None  # publisher timestamp when readable, for the backtest clock


def read_lines(path: Path) -> Iterator[JournalLine]:
    """Yield every non-blank line; unreadable ones are yielded too, so the follower reports them."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            if len(text) > MAX_LINE_BYTES:
                text = text[:64]  # keeps the report short; it will be rejected as not JSON
            yield JournalLine(number, text, _timestamp(text))


def _timestamp(text: str) -> Decimal | None:
    try:
        value: Any = json.loads(text, parse_float=Decimal).get("d")
    except (ValueError, AttributeError):
        return None
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool) and Decimal(value).is_finite():
        return Decimal(value)
    return None


@dataclass
class JournalFeeder:
    """Hands journal lines to the mode when the backtest clock reaches their timestamp."""

    lines: list[JournalLine]
    logger: Any = field(default_factory=lambda: logging.getLogger("RemoteTradingSignalsJournal"))
    position: int = 0

    @classmethod
    def load(cls, path: Path, logger: Any) -> JournalFeeder:
        try:
            lines = list(read_lines(path))
        except OSError as err:
            logger.error(f"journal_path: cannot read {path}: {err}")
            lines = []
        logger.info(f"Loaded {len(lines)} journal lines from {path}")
        return cls(lines, logger)

    async def feed_until(self, now: Decimal, apply: Callable[[str], Awaitable[Any]]) -> int:
        applied = 0
        while self.position < len(self.lines):
            line = self.lines[self.position]
            if line.d is not None and line.d > now:
                break
            self.position += 1
            await apply(line.raw)
            applied += 1
        return applied
