"""Opening the bench's SQLite file the one way: private, WAL, patient with other writers.

The journal and the lot store share one file, written by the daemon and by ``daq lot`` /
``daq enter`` in other processes. Every connection waits up to ``busy_timeout`` for another
writer instead of failing, uses WAL so readers never block the writer, and a file it creates is
readable by its owner only (0600, in a 0700 folder): it holds the lab's results.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

__all__ = ["connect"]


def connect(path: Path, schema: str, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open (creating if needed) the SQLite file and apply ``schema``. Raises sqlite3.Error
    or OSError; callers translate them into their own error with the path in words."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    db = sqlite3.connect(path, check_same_thread=False, timeout=10.0)
    try:
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(schema)
        db.commit()
    except sqlite3.Error:
        db.close()
        raise
    return db
