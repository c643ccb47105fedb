"""Lots, golden-sample baselines, spec revisions and calibration state, kept in the journal file.

The journal's SQLite file is the bench's one durable state: next to the measurements it holds

    lots(id, sku, po, lot, phase, size, supplier, spec_rev, locked, started_ns, closed_ns,
         decision, evidence)
    spec_revisions(sku, revision, sha256, first_lot, first_used_ns)   -- immutable once used
    baselines(sku, measurement, feature, instrument, version, n, mean, sigma, lot, created_ns)
    sampling_state(stream, state)                                      -- switching rules
    calibration(instrument, at_ns, ok, detail)                         -- reference checks

At most one lot is open on a bench at a time: its context tags every measurement from the
moment it starts (the daemon re-reads it about once a second) until it is closed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from daq.errors import HallmarkError
from daq.model import LotContext, Phase
from daq.sqlitefile import connect

__all__ = ["Baseline", "CalibrationCheck", "Lot", "LotError", "LotStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL, po TEXT NOT NULL, lot TEXT NOT NULL, phase TEXT NOT NULL,
    size INTEGER NOT NULL, supplier TEXT, spec_rev TEXT, locked INTEGER NOT NULL,
    started_ns INTEGER NOT NULL, closed_ns INTEGER, decision TEXT, evidence TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS lots_key ON lots(sku, lot);
CREATE TABLE IF NOT EXISTS spec_revisions (
    sku TEXT NOT NULL, revision TEXT NOT NULL, sha256 TEXT NOT NULL,
    first_lot TEXT NOT NULL, first_used_ns INTEGER NOT NULL,
    PRIMARY KEY (sku, revision)
);
CREATE TABLE IF NOT EXISTS baselines (
    sku TEXT NOT NULL, measurement TEXT NOT NULL, feature TEXT NOT NULL,
    instrument TEXT NOT NULL, version INTEGER NOT NULL, n INTEGER NOT NULL,
    mean REAL NOT NULL, sigma REAL NOT NULL, lot TEXT NOT NULL, spec_rev TEXT,
    created_ns INTEGER NOT NULL,
    PRIMARY KEY (sku, measurement, feature, instrument, version)
);
CREATE TABLE IF NOT EXISTS sampling_state (stream TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calibration (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instrument TEXT NOT NULL, at_ns INTEGER NOT NULL,
    ok INTEGER NOT NULL, detail TEXT NOT NULL
);
"""


class LotError(HallmarkError):
    """A lot operation cannot be done (no open lot, a lot already open, a changed spec)."""


@dataclass(frozen=True, slots=True)
class Lot:
    id: int
    sku: str
    po: str
    lot: str
    phase: Phase
    size: int
    supplier: str | None
    spec_rev: str | None
    locked: bool
    started_ns: int
    closed_ns: int | None
    decision: str | None
    evidence: dict[str, Any] | None

    def context(self) -> LotContext:
        return LotContext(self.sku, self.po, self.lot, self.phase, self.spec_rev)


@dataclass(frozen=True, slots=True)
class Baseline:
    sku: str
    measurement: str
    feature: str
    instrument: str
    version: int
    n: int
    mean: float
    sigma: float
    lot: str
    spec_rev: str | None
    created_ns: int


@dataclass(frozen=True, slots=True)
class CalibrationCheck:
    instrument: str
    at_ns: int
    ok: bool
    detail: str


def _lot(row: tuple[Any, ...]) -> Lot:
    evidence = json.loads(row[12]) if row[12] else None
    return Lot(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]),
        row[9], row[10], row[11], evidence,
    )  # fmt: skip


_LOT_COLUMNS = (
    "id, sku, po, lot, phase, size, supplier, spec_rev, locked, started_ns, closed_ns,"
    " decision, evidence"
)


class LotStore:
    """Lot and baseline state in the bench's journal file. Safe to use beside a running daemon."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = connect(self.path, _SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise LotError(f"cannot open the lot records in {self.path}: {exc}") from exc

    def __enter__(self) -> LotStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # -- lots ----------------------------------------------------------------------------------

    def open_lot(self) -> Lot | None:
        """The lot in progress on this bench, if any."""
        row = self._db.execute(
            f"SELECT {_LOT_COLUMNS} FROM lots WHERE closed_ns IS NULL ORDER BY id DESC LIMIT 1"  # noqa: S608
        ).fetchone()
        return _lot(row) if row else None

    def get(self, sku: str, lot: str) -> Lot | None:
        row = self._db.execute(
            f"SELECT {_LOT_COLUMNS} FROM lots WHERE sku = ? AND lot = ?",  # noqa: S608
            (sku, lot),
        ).fetchone()
        return _lot(row) if row else None

    def lots(self, sku: str | None = None) -> list[Lot]:
        sql = f"SELECT {_LOT_COLUMNS} FROM lots"  # noqa: S608
        args: tuple[str, ...] = ()
        if sku is not None:
            sql += " WHERE sku = ?"
            args = (sku,)
        return [_lot(r) for r in self._db.execute(sql + " ORDER BY id", args).fetchall()]

    def start(
        self,
        *,
        sku: str,
        po: str,
        lot: str,
        phase: Phase,
        size: int,
        supplier: str | None,
        spec_rev: str | None,
        spec_sha256: str | None,
        locked: bool,
    ) -> Lot:
        """Open a lot. Raises LotError when one is open, or when the spec revision changed."""
        current = self.open_lot()
        if current is not None:
            raise LotError(
                f"lot {current.lot} ({current.sku}) is still open; close it first"
                " with 'daq lot close'"
            )
        if self.get(sku, lot) is not None:
            raise LotError(f"{sku} already has a lot called {lot}; lot ids are never reused")
        now = time.time_ns()
        with self._db:
            if spec_rev is not None and spec_sha256 is not None:
                self._pin_revision(sku, spec_rev, spec_sha256, lot, now)
            self._db.execute(
                "INSERT INTO lots(sku, po, lot, phase, size, supplier, spec_rev, locked,"
                " started_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sku, po, lot, phase, size, supplier, spec_rev, int(locked), now),
            )
        opened = self.open_lot()
        assert opened is not None
        return opened

    def _pin_revision(self, sku: str, rev: str, sha: str, lot: str, now: int) -> None:
        row = self._db.execute(
            "SELECT sha256, first_lot FROM spec_revisions WHERE sku = ? AND revision = ?",
            (sku, rev),
        ).fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO spec_revisions(sku, revision, sha256, first_lot, first_used_ns)"
                " VALUES (?, ?, ?, ?, ?)",
                (sku, rev, sha, lot, now),
            )
        elif row[0] != sha:
            raise LotError(
                f"the spec file of {sku} revision {rev} changed after lot {row[1]} was judged"
                f" under it; a revision is immutable: save the change as a new revision"
            )

    def check_revision(self, sku: str, rev: str, sha: str) -> str | None:
        """A problem text when a used revision's file changed since, else None."""
        row = self._db.execute(
            "SELECT sha256, first_lot FROM spec_revisions WHERE sku = ? AND revision = ?",
            (sku, rev),
        ).fetchone()
        if row is not None and row[0] != sha:
            return (
                f"the spec file of {sku} revision {rev} changed after lot {row[1]} was judged"
                " under it; save the change as a new revision"
            )
        return None

    def close_lot(self, decision: str, evidence: dict[str, Any]) -> Lot:
        """Close the open lot with its decision and evidence."""
        current = self.open_lot()
        if current is None:
            raise LotError("no lot is open")
        with self._db:
            self._db.execute(
                "UPDATE lots SET closed_ns = ?, decision = ?, evidence = ? WHERE id = ?",
                (time.time_ns(), decision, json.dumps(evidence, ensure_ascii=False), current.id),
            )
        closed = self.get(current.sku, current.lot)
        assert closed is not None
        return closed

    # -- baselines -----------------------------------------------------------------------------

    def add_baseline(
        self,
        *,
        sku: str,
        measurement: str,
        feature: str,
        instrument: str,
        n: int,
        mean: float,
        sigma: float,
        lot: str,
        spec_rev: str | None,
    ) -> Baseline:
        """Freeze a new baseline version for one SKU feature on one instrument."""
        with self._db:
            row = self._db.execute(
                "SELECT coalesce(max(version), 0) FROM baselines"
                " WHERE sku = ? AND measurement = ? AND feature = ? AND instrument = ?",
                (sku, measurement, feature, instrument),
            ).fetchone()
            version = int(row[0]) + 1
            now = time.time_ns()
            self._db.execute(
                "INSERT INTO baselines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sku, measurement, feature, instrument, version, n, mean, sigma, lot, spec_rev,
                 now),
            )  # fmt: skip
        return Baseline(
            sku, measurement, feature, instrument, version, n, mean, sigma, lot, spec_rev, now
        )

    def baselines(self, sku: str) -> list[Baseline]:
        """The latest baseline version of every feature of a SKU."""
        rows = self._db.execute(
            "SELECT * FROM baselines b WHERE sku = ? AND version = (SELECT max(version)"
            " FROM baselines WHERE sku = b.sku AND measurement = b.measurement"
            " AND feature = b.feature AND instrument = b.instrument) ORDER BY measurement, feature",
            (sku,),
        ).fetchall()
        return [Baseline(*r) for r in rows]

    # -- sampling switching state --------------------------------------------------------------

    def sampling_state(self, stream: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT state FROM sampling_state WHERE stream = ?", (stream,)
        ).fetchone()
        return dict(json.loads(row[0])) if row else None

    def set_sampling_state(self, stream: str, state: dict[str, Any]) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO sampling_state(stream, state) VALUES (?, ?)"
                " ON CONFLICT(stream) DO UPDATE SET state = excluded.state",
                (stream, json.dumps(state)),
            )

    # -- calibration ---------------------------------------------------------------------------

    def add_calibration_check(self, instrument: str, ok: bool, detail: str) -> CalibrationCheck:
        now = time.time_ns()
        with self._db:
            self._db.execute(
                "INSERT INTO calibration(instrument, at_ns, ok, detail) VALUES (?, ?, ?, ?)",
                (instrument, now, int(ok), detail),
            )
        return CalibrationCheck(instrument, now, ok, detail)

    def calibration_checks(self, instrument: str | None = None) -> list[CalibrationCheck]:
        sql = "SELECT instrument, at_ns, ok, detail FROM calibration"
        args: tuple[str, ...] = ()
        if instrument is not None:
            sql += " WHERE instrument = ?"
            args = (instrument,)
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [CalibrationCheck(r[0], r[1], bool(r[2]), r[3]) for r in rows]

    def suspect_ranges(self, instrument: str) -> list[tuple[int, int]]:
        """Time ranges whose readings are suspect: from the last good reference check (or the
        first reading) to each failed one."""
        ranges = []
        last_good = 0
        for check in self.calibration_checks(instrument):
            if check.ok:
                last_good = check.at_ns
            else:
                ranges.append((last_good, check.at_ns))
        return ranges
