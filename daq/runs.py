"""Salt-spray runs and the specimens in them, kept in the journal file, and their exposure.

A *run* is one continuous operation of a cabinet (ASTM B117 / ISO 9227 NSS). Specimens are
loaded into a run with the SKU and lot they stand for, inspected at checks (the operator's
corrosion rating) and unloaded. Tables, next to the lots in the bench's SQLite file:

    chamber_runs(run, cabinet, standard, target_hours, started_ns, stopped_ns, valid_hours)
    run_specimens(run, specimen, sku, lot, loaded_ns, valid_s_at_load,
                  unloaded_ns, valid_s_at_unload)
    specimen_checks(id, run, specimen, at_ns, rating, valid_hours, entered_by, note)

A run's valid exposure is never stored as a running total that could disagree with the
record: :class:`RunAccount` replays the cabinet's journal rows (zone and saturator temperature,
the operator's pH and collection-rate entries) from the run's start through
:class:`daq.quality.exposure.CabinetExposure`, incrementally, so the daemon and the CLI compute
the same figure. A specimen's hours are the run's valid hours since it was loaded (until it was
unloaded).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from daq.config import CabinetConfig, Config
from daq.errors import HallmarkError
from daq.journal import Journal
from daq.model import FieldValue, Point
from daq.quality.exposure import MANUAL_FEATURES, CabinetExposure, Excursion
from daq.sqlitefile import connect

__all__ = [
    "Run",
    "RunAccount",
    "RunError",
    "RunStore",
    "Specimen",
    "SpecimenCheck",
    "cabinets",
    "exposure_points",
    "max_gap_s",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chamber_runs (
    run TEXT PRIMARY KEY, cabinet TEXT NOT NULL, standard TEXT NOT NULL, target_hours REAL,
    started_ns INTEGER NOT NULL, stopped_ns INTEGER, valid_hours REAL
);
CREATE TABLE IF NOT EXISTS run_specimens (
    run TEXT NOT NULL, specimen TEXT NOT NULL, sku TEXT NOT NULL, lot TEXT NOT NULL,
    loaded_ns INTEGER NOT NULL, valid_s_at_load REAL NOT NULL,
    unloaded_ns INTEGER, valid_s_at_unload REAL,
    PRIMARY KEY (run, specimen)
);
CREATE TABLE IF NOT EXISTS specimen_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT NOT NULL, specimen TEXT NOT NULL,
    at_ns INTEGER NOT NULL, rating REAL NOT NULL, valid_hours REAL NOT NULL,
    entered_by TEXT NOT NULL, note TEXT
);
"""


class RunError(HallmarkError):
    """A run operation cannot be done (unknown run or cabinet, a run already going)."""


@dataclass(frozen=True, slots=True)
class Run:
    run: str
    cabinet: str
    standard: str
    target_hours: float | None
    started_ns: int
    stopped_ns: int | None
    valid_hours: float | None

    @property
    def active(self) -> bool:
        return self.stopped_ns is None


@dataclass(frozen=True, slots=True)
class Specimen:
    run: str
    specimen: str
    sku: str
    lot: str
    loaded_ns: int
    valid_s_at_load: float
    unloaded_ns: int | None
    valid_s_at_unload: float | None

    def valid_hours(self, run_valid_s: float) -> float:
        """Hours of valid exposure this specimen received, given the run's valid seconds now."""
        end = self.valid_s_at_unload if self.valid_s_at_unload is not None else run_valid_s
        return max(0.0, end - self.valid_s_at_load) / 3600.0


@dataclass(frozen=True, slots=True)
class SpecimenCheck:
    run: str
    specimen: str
    at_ns: int
    rating: float
    valid_hours: float
    entered_by: str
    note: str | None


def cabinets(config: Config) -> dict[str, CabinetConfig]:
    """The bench's cabinets: the configured ``[[cabinet]]`` tables or, when there are none, one
    per instrument with temperature limits (its own exposure zone, no saturator)."""
    if config.cabinet:
        return {c.name: c for c in config.cabinet}
    return {
        i.name: CabinetConfig(name=i.name, zone=i.name)
        for i in config.instrument
        if "temperature" in i.limits
    }


def max_gap_s(config: Config, cabinet: CabinetConfig) -> float:
    """How far apart two zone readings may be and still account the time between them."""
    if cabinet.max_gap_s is not None:
        return cabinet.max_gap_s
    zone = next((i for i in config.instrument if i.name == cabinet.zone), None)
    interval = zone.poll_interval if zone is not None and zone.poll_interval else 1.0
    return 3.0 * interval


class RunStore:
    """Runs and specimens in the bench's journal file. Safe to use beside a running daemon."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = connect(self.path, _SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise RunError(f"cannot open the run records in {self.path}: {exc}") from exc

    def __enter__(self) -> RunStore:
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

    def get(self, run: str) -> Run | None:
        row = self._db.execute(
            "SELECT run, cabinet, standard, target_hours, started_ns, stopped_ns, valid_hours"
            " FROM chamber_runs WHERE run = ?",
            (run,),
        ).fetchone()
        return Run(*row) if row else None

    def runs(self, *, active_only: bool = False) -> list[Run]:
        sql = (
            "SELECT run, cabinet, standard, target_hours, started_ns, stopped_ns, valid_hours"
            " FROM chamber_runs"
        )
        if active_only:
            sql += " WHERE stopped_ns IS NULL"
        return [Run(*r) for r in self._db.execute(sql + " ORDER BY started_ns")]

    def start(
        self, run: str, cabinet: str, standard: str, target_hours: float | None, now_ns: int
    ) -> Run:
        if self.get(run) is not None:
            raise RunError(f"run '{run}' already exists; give the new run another name")
        going = [r for r in self.runs(active_only=True) if r.cabinet == cabinet]
        if going:
            raise RunError(
                f"cabinet '{cabinet}' is already running '{going[0].run}';"
                f" stop it first with 'daq chamber stop --run {going[0].run}'"
            )
        with self._db:
            self._db.execute(
                "INSERT INTO chamber_runs (run, cabinet, standard, target_hours, started_ns)"
                " VALUES (?, ?, ?, ?, ?)",
                (run, cabinet, standard, target_hours, now_ns),
            )
        found = self.get(run)
        assert found is not None
        return found

    def stop(self, run: str, now_ns: int, valid_hours: float) -> Run:
        r = self.active(run)
        with self._db:
            self._db.execute(
                "UPDATE chamber_runs SET stopped_ns = ?, valid_hours = ? WHERE run = ?",
                (now_ns, valid_hours, r.run),
            )
        found = self.get(run)
        assert found is not None
        return found

    def active(self, run: str) -> Run:
        r = self.get(run)
        if r is None:
            known = ", ".join(x.run for x in self.runs(active_only=True)) or "none"
            raise RunError(f"no run called '{run}' (running: {known})")
        if not r.active:
            raise RunError(f"run '{run}' was stopped; it takes no more specimens or checks")
        return r

    def specimens(self, run: str) -> list[Specimen]:
        return [
            Specimen(*row)
            for row in self._db.execute(
                "SELECT run, specimen, sku, lot, loaded_ns, valid_s_at_load, unloaded_ns,"
                " valid_s_at_unload FROM run_specimens WHERE run = ? ORDER BY loaded_ns, specimen",
                (run,),
            )
        ]

    def specimen(self, run: str, specimen: str) -> Specimen:
        found = [s for s in self.specimens(run) if s.specimen == specimen]
        if not found:
            known = ", ".join(s.specimen for s in self.specimens(run)) or "none"
            raise RunError(f"run '{run}' has no specimen '{specimen}' (loaded: {known})")
        return found[0]

    def load(
        self, run: str, specimen: str, sku: str, lot: str, *, now_ns: int, valid_s: float
    ) -> Specimen:
        self.active(run)
        if any(s.specimen == specimen for s in self.specimens(run)):
            raise RunError(f"specimen '{specimen}' is already in run '{run}'")
        with self._db:
            self._db.execute(
                "INSERT INTO run_specimens (run, specimen, sku, lot, loaded_ns, valid_s_at_load)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run, specimen, sku, lot, now_ns, valid_s),
            )
        return self.specimen(run, specimen)

    def unload(self, run: str, specimen: str, now_ns: int, valid_s: float) -> Specimen:
        s = self.specimen(run, specimen)
        if s.unloaded_ns is not None:
            raise RunError(f"specimen '{specimen}' was already unloaded from run '{run}'")
        with self._db:
            self._db.execute(
                "UPDATE run_specimens SET unloaded_ns = ?, valid_s_at_unload = ?"
                " WHERE run = ? AND specimen = ?",
                (now_ns, valid_s, run, specimen),
            )
        return self.specimen(run, specimen)

    def add_check(self, check: SpecimenCheck) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO specimen_checks"
                " (run, specimen, at_ns, rating, valid_hours, entered_by, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (check.run, check.specimen, check.at_ns, check.rating, check.valid_hours,
                 check.entered_by, check.note),
            )  # fmt: skip

    def checks(self, run: str) -> list[SpecimenCheck]:
        return [
            SpecimenCheck(*row)
            for row in self._db.execute(
                "SELECT run, specimen, at_ns, rating, valid_hours, entered_by, note"
                " FROM specimen_checks WHERE run = ? ORDER BY id",
                (run,),
            )
        ]


def _ok(point: Point) -> bool:
    """In limits: a non-negative margin, or a pass/marginal/none verdict when there is none."""
    margin = point.fields.get("margin")
    if isinstance(margin, (int, float)) and not isinstance(margin, bool):
        return margin >= 0.0
    return point.fields.get("status") in ("pass", "marginal", "none")


@dataclass
class RunAccount:
    """The exposure of one run, brought up to date from the journal on demand."""

    run: Run
    cabinet: CabinetConfig
    exposure: CabinetExposure
    last_id: int = 0
    unjudged_zone: int = 0
    excursions: list[Excursion] = field(default_factory=list)

    @classmethod
    def of(cls, run: Run, cabinet: CabinetConfig, gap_s: float) -> RunAccount:
        return cls(run, cabinet, CabinetExposure(max_gap_s=gap_s))

    @property
    def instruments(self) -> list[str]:
        c = self.cabinet
        return sorted({c.zone, c.manual_instrument, *([c.saturator] if c.saturator else [])})

    def update(self, journal: Journal, *, until_ns: int | None = None, batch: int = 20_000) -> int:
        """Account the rows added since the last update; returns how many were read."""
        read = 0
        while True:
            rows = journal.instrument_points(
                "chamber",
                self.instruments,
                after_id=self.last_id,
                since_ns=self.run.started_ns,
                limit=batch,
            )
            if not rows:
                return read
            read += len(rows)
            self.last_id = rows[-1][0]
            end = until_ns if until_ns is not None else self.run.stopped_ns
            points = sorted((p for _, p in rows), key=lambda p: p.time_ns)
            for point in points:
                if end is None or point.time_ns <= end:
                    self.feed(point)
            if len(rows) < batch:
                return read

    def feed(self, point: Point) -> None:
        """Account one journal point of the cabinet's instruments (in time order)."""
        c = self.cabinet
        instrument = point.tags.get("instrument")
        feature = point.tags.get("feature")
        if instrument == c.zone and feature == c.zone_channel:
            value, margin = point.fields.get("value"), point.fields.get("margin")
            if not isinstance(margin, (int, float)) or not isinstance(value, (int, float)):
                self.unjudged_zone += 1  # no limits: cannot say whether it was in band
                return
            _, ended = self.exposure.zone(point.time_ns, float(value), float(margin))
            if ended is not None:
                self.excursions.append(ended)
        elif c.saturator and instrument == c.saturator and feature == c.saturator_channel:
            self.exposure.saturator(_ok(point))
        elif instrument == c.manual_instrument and feature in MANUAL_FEATURES:
            self.exposure.manual(feature, point.time_ns, _ok(point))

    @property
    def valid_s(self) -> float:
        return self.exposure.state.valid_s

    def problems(self, now_ns: int | None = None) -> list[str]:
        """What a lab tech should know about this run's validity, in words."""
        now = now_ns if now_ns is not None else time.time_ns()
        out = []
        if self.unjudged_zone:
            out.append(
                f"{self.unjudged_zone} zone reading(s) of {self.cabinet.zone} had no limits:"
                " give the instrument [instrument.limits.temperature]"
            )
        if self.exposure.state.open is not None:
            e = self.exposure.state.open
            out.append(f"excursion going on since {_ago(now, e.start_ns)} (worst {e.worst:.2f})")
        if self.run.active:
            out.extend(self.exposure.missing_entries(now))
        return out


def _ago(now_ns: int, then_ns: int) -> str:
    minutes = max(0.0, (now_ns - then_ns) / 6e10)
    return f"{minutes:.0f} min ago" if minutes < 120 else f"{minutes / 60:.1f} h ago"


def exposure_points(
    bench_id: str, acc: RunAccount, specimens: list[Specimen], now_ns: int
) -> list[Point]:
    """``exposure`` points for a run and each of its specimens (docs/schema.md)."""
    run = acc.run
    base = {"bench": bench_id, "instrument": acc.cabinet.zone, "cabinet": run.cabinet,
            "run": run.run}  # fmt: skip
    lost = acc.exposure.lost_s or {}
    fields: dict[str, FieldValue] = {
        "valid_hours": acc.valid_s / 3600.0,
        "excursions": acc.exposure.state.excursions,
        "in_tolerance": bool(acc.exposure.state.last_ok),
        "active": run.active,
        **{f"lost_hours_{k.replace(' ', '_').lower()}": v / 3600.0 for k, v in lost.items()},
    }
    if run.target_hours is not None:
        fields["target_hours"] = run.target_hours
    points = [Point("exposure", base, fields, now_ns)]
    for s in specimens:
        tags = {**base, "specimen": s.specimen, "sku": s.sku, "lot": s.lot}
        points.append(
            Point(
                "exposure",
                tags,
                {"valid_hours": s.valid_hours(acc.valid_s), "loaded": s.unloaded_ns is None},
                now_ns,
            )
        )
    return points
