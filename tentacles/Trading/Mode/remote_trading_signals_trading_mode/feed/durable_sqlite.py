"""One way to open the small local SQLite stores (outbox, follower progress, order map) durably."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def resolve(path: str | os.PathLike[str], default_file_name: str) -> Path:
    """`path` may be a folder (the store gets its default file name in it) or a file; parents are created."""
    target = Path(path)
    if target.is_dir():
        target = target / default_file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """WAL + synchronous=FULL: a commit that returned survives a crash or power loss.

    Autocommit mode (transactions are explicit); usable from the store's single worker thread.
    """
    connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.executescript(schema)
    except sqlite3.DatabaseError:
        connection.close()
        raise
    return connection
