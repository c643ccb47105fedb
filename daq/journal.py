"""The journal: a local SQLite file (WAL) that every accepted measurement is committed to first.

A reading counts as accepted only once its transaction has committed. With no database
configured the journal is the store (``daq tail`` and ``daq export`` read it); with one, it is
the outbox: each sink keeps a cursor (the last row id it has safely written) and forwarded rows
are those at or below every sink's cursor. Rows the database rejected for their content are
copied to ``quarantine`` with the server's message, so they are listed, never silently lost.

Row ids only grow (AUTOINCREMENT), so a sink's cursor stays right after retention deletes rows.
Rows are append-only; the only deletion is retention, which removes rows older than the
configured age that every sink has already taken.

Layout (schema version 1):

    points(id INTEGER PRIMARY KEY AUTOINCREMENT, time_ns, measurement, tags JSON, fields JSON,
           line)   -- the point in line protocol, encoded once on the way in; NULL when it
                   -- cannot be written (no finite field), so the forwarder quarantines it
    cursors(sink TEXT PRIMARY KEY, last_id)
    quarantine(id, sink, row_id, line, message, at_ns)
    meta(key, value)

One connection is shared behind a lock, so the journal may be used from the runtime's worker
threads; SQLite's WAL lets other processes (``daq tail``) read while the daemon writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from daq.errors import HallmarkError
from daq.lineprotocol import encode_with_json
from daq.model import Point
from daq.sqlitefile import connect

__all__ = ["Journal", "JournalError", "QuarantinedRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,
    fields TEXT NOT NULL,
    line TEXT
);
CREATE INDEX IF NOT EXISTS points_time ON points(time_ns);
CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    sink TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    line TEXT NOT NULL,
    message TEXT NOT NULL,
    at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1');
"""


class JournalError(HallmarkError):
    """The journal cannot be opened or written (disk full, read-only, corrupt file)."""


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    sink: str
    row_id: int
    line: str
    message: str
    at_ns: int


#: json.dumps(obj, ensure_ascii=False, separators=(",", ":")), without rebuilding the encoder
#: for every call (json.dumps builds one per call when given options).
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: Tag sets already encoded, by their items: a bench has few series.
_TAGS_JSON: dict[tuple[tuple[str, str], ...], str] = {}


def _tags_json(tags: dict[str, str]) -> str:
    key = tuple(tags.items())
    text = _TAGS_JSON.get(key)
    if text is None:
        text = _json(tags)
        if len(_TAGS_JSON) >= 8192:
            _TAGS_JSON.clear()
        _TAGS_JSON[key] = text
    return text


def _decode(row: tuple[int, int, str, str, str]) -> tuple[int, Point]:
    rid, time_ns, measurement, tags, fields = row
    return rid, Point(measurement, json.loads(tags), json.loads(fields), time_ns)


class Journal:
    """The durable local journal. Use as a context manager or call ``close()``."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Literal["full", "normal"] = "full",
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            if readonly:
                if not self.path.exists():
                    raise JournalError(f"no journal at {self.path}")
                uri = f"file:{self.path}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                self._db = connect(self.path, _SCHEMA, synchronous=synchronous.upper())
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]

    def append(self, points: Sequence[Point]) -> int:
        """Commit points in one transaction; returns the last row id. Raises JournalError.

        When this returns, the points are accepted: they survive a crash of the daemon (and,
        with ``synchronous = full``, a power loss).
        """
        rows = []
        for p in points:
            line, fields = encode_with_json(p)
            rows.append((p.time_ns, p.measurement, _tags_json(p.tags), fields, line))
        with self._lock:
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT INTO points(time_ns, measurement, tags, fields, line)"
                        " VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
                    last = self._db.execute("SELECT max(id) FROM points").fetchone()[0]
            except sqlite3.Error as exc:
                raise JournalError(
                    f"cannot write to the journal {self.path}: {exc}"
                    " (is the disk full or the file read-only?)"
                ) from exc
        return int(last or 0)

    def cursor(self, sink: str) -> int:
        """The last row id this sink has safely written (0 when it has written nothing)."""
        with self._lock:
            row = self._db.execute("SELECT last_id FROM cursors WHERE sink = ?", (sink,)).fetchone()
        return int(row[0]) if row else 0

    def pending_lines(self, sink: str, limit: int) -> list[tuple[int, str | None]]:
        """Up to ``limit`` rows this sink has not written yet, as (id, line protocol)."""
        return self.lines_after(self.cursor(sink), limit)

    def lines_after(self, after_id: int, limit: int) -> list[tuple[int, str | None]]:
        """Up to ``limit`` rows after row ``after_id``, as (id, line protocol): the forwarder
        reads the next batch with it while the current one is on its way to the database."""
        with self._lock:
            rows: list[tuple[int, str | None]] = self._db.execute(
                "SELECT id, line FROM points WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return rows

    def ack(self, sink: str, last_id: int) -> None:
        """Record that the sink has written every row up to ``last_id``."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO cursors(sink, last_id) VALUES (?, ?)"
                " ON CONFLICT(sink) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
                (sink, last_id),
            )

    def quarantine(self, sink: str, rows: Sequence[tuple[int, str]], message: str) -> None:
        """Keep rows the sink rejected, with the server's message, for a person to look at."""
        now = time.time_ns()
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO quarantine(sink, row_id, line, message, at_ns) VALUES (?, ?, ?, ?, ?)",
                [(sink, rid, line, message, now) for rid, line in rows],
            )

    def quarantined(self, sink: str | None = None) -> list[QuarantinedRow]:
        """Rows the database rejected, oldest first."""
        sql = "SELECT sink, row_id, line, message, at_ns FROM quarantine"
        args: tuple[str, ...] = ()
        if sink is not None:
            sql += " WHERE sink = ?"
            args = (sink,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [QuarantinedRow(*r) for r in rows]

    def backlog(self, sink: str) -> int:
        """How many rows this sink has still to write."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM points"
                " WHERE id > coalesce((SELECT last_id FROM cursors WHERE sink = ?), 0)",
                (sink,),
            ).fetchone()
        return int(row[0])

    def count(self, measurement: str | None = None) -> int:
        """Rows in the journal (of one measurement, when given)."""
        with self._lock:
            if measurement is None:
                row = self._db.execute("SELECT count(*) FROM points").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM points WHERE measurement = ?", (measurement,)
                ).fetchone()
        return int(row[0])

    def latest(self, n: int, measurement: str | None = None) -> list[Point]:
        """The ``n`` newest rows, oldest first."""
        sql = "SELECT id, time_ns, measurement, tags, fields FROM points"
        args: tuple[object, ...] = (n,)
        if measurement is not None:
            sql += " WHERE measurement = ?"
            args = (measurement, n)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", args).fetchall()
        return [_decode(r)[1] for r in reversed(rows)]

    def lot_points(self, sku: str, lot: str, measurement: str | None = None) -> list[Point]:
        """Every point tagged with this SKU and lot (of one measurement, if given), oldest first."""
        sql = (
            "SELECT id, time_ns, measurement, tags, fields FROM points"
            " WHERE json_extract(tags, '$.sku') = ? AND json_extract(tags, '$.lot') = ?"
        )
        args: tuple[str, ...] = (sku, lot)
        if measurement is not None:
            sql += " AND measurement = ?"
            args = (sku, lot, measurement)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [_decode(r)[1] for r in rows]

    def instrument_points(
        self,
        measurement: str,
        instruments: Sequence[str],
        *,
        after_id: int = 0,
        since_ns: int = 0,
        limit: int = 50_000,
    ) -> list[tuple[int, Point]]:
        """(row id, point) of these instruments' ``measurement`` rows with an id above
        ``after_id`` and a time at or after ``since_ns``, in id order, at most ``limit``."""
        sql = (
            "SELECT id, time_ns, measurement, tags, fields FROM points"
            " WHERE id > ? AND measurement = ? AND time_ns >= ?"
            " AND json_extract(tags, '$.instrument') IN (SELECT value FROM json_each(?))"
            " ORDER BY id LIMIT ?"
        )
        names = json.dumps(list(instruments))
        with self._lock:
            rows = self._db.execute(sql, (after_id, measurement, since_ns, names, limit)).fetchall()
        return [_decode(r) for r in rows]

    def iter_points(self, chunk: int = 5000) -> Iterator[Point]:
        """Every row, oldest first, read in chunks."""
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, time_ns, measurement, tags, fields FROM points"
                    " WHERE id > ? ORDER BY id LIMIT ?",
                    (last, chunk),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _decode(row)[1]
            last = rows[-1][0]

    def prune(self, older_than_ns: int, sinks: Sequence[str]) -> int:
        """Delete rows older than ``older_than_ns`` that every named sink has written.

        With no sinks (the journal is the store) age alone decides. Returns rows deleted.
        """
        with self._lock, self._db:
            bound = None
            if sinks:
                marks = ",".join("?" for _ in sinks)
                row = self._db.execute(
                    f"SELECT count(*), min(last_id) FROM cursors WHERE sink IN ({marks})",  # noqa: S608
                    tuple(sinks),
                ).fetchone()
                bound = int(row[1]) if row[0] == len(sinks) else 0
            if bound is None:
                cur = self._db.execute("DELETE FROM points WHERE time_ns < ?", (older_than_ns,))
            else:
                cur = self._db.execute(
                    "DELETE FROM points WHERE time_ns < ? AND id <= ?", (older_than_ns, bound)
                )
        return cur.rowcount
