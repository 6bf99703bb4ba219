"""The performance snapshots' durable outbox: the signals' Outbox (same file format, WAL + synchronous=FULL,
same `u` kept across retries) in a file of its own, holding snapshots instead of signal bundles.

Its own file and its own sender (performance_publisher.py): a snapshot never waits in the signals' queue, nor a
signal behind a snapshot, and the signals' outbox and its readers stay exactly as they are.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from ..core.performance import parse_snapshot
from ..core.protocol import ProtocolError, validate_message_id, validate_strategy_id
from .outbox import Outbox

FILE_NAME = "performance_outbox.sqlite"


class PerformanceOutbox(Outbox):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        # a folder gets our own file name, never the signals' default one
        super().__init__(target / FILE_NAME if target.is_dir() or not target.suffix else target)

    def enqueue(self, strategy_id: str, bundle: dict[str, Any], u: str | None = None, d: float | None = None) -> str:
        """Store a snapshot (in `bundle`, the Outbox's column) durably and return its message id."""
        validate_strategy_id(strategy_id)
        try:
            snapshot = parse_snapshot(bundle, "snapshot")
        except ProtocolError as err:
            raise ValueError(str(err)) from err
        if snapshot.strategy_id != strategy_id:
            raise ValueError(f"snapshot.identifier is {snapshot.strategy_id!r}, not {strategy_id!r}")
        message_id = uuid.uuid4().hex if u is None else validate_message_id(u)
        timestamp = time.time() if d is None else float(d)
        text = json.dumps(bundle, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        with self._lock:
            self._conn.execute(
                "INSERT INTO outbox (u, strategy_id, bundle, d, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(u) DO NOTHING",
                (message_id, strategy_id, text, timestamp, time.time()),
            )
        return message_id
