"""A lot's QC report: gathered from the journal and the lot store, rendered as HTML and PDF.

Two steps, kept apart so the second is pure:

1. :func:`gather` reads what the bench recorded about one lot (its points in the journal, the
   lot store's baselines and reference checks, the SKU's golden-sample lots, the salt-spray runs
   holding its specimens) into a :class:`LotReport`. The lot's decision figures are the
   :class:`LotReview` that ``daq lot status`` and ``daq lot close`` compute (the caller passes
   it in), so the report can never disagree with them; the per-feature statistics are taken
   over exactly the values that review judged (suspect readings left out, by the review's own
   predicate, ``daq.lotcli.suspect_predicate``), and the capability index is the review's.
2. :func:`render_html` writes one self-contained HTML file (CSS inline, figures as inline SVG,
   each ``<svg>`` with an id, no external file or network access); :func:`render_pdf` writes
   the same content as a PDF (text pages, then pages of figures) with matplotlib's
   ``PdfPages``.

Figures (matplotlib, Agg backend, no pyplot state):

- per feature, this lot's values against the golden sample's (every golden-sample lot of the
  SKU in the journal) on shared bins, with the spec limits and the golden mean;
- per feature, an individuals chart (value against order) with the spec limits and the golden
  baseline's centre line and control limits, mean ± 3σ (the individuals chart from a known σ:
  Montgomery, *Introduction to Statistical Quality Control*, ch. 6; docs/schema.md
  ``baseline``), one marker per ``drift_alarm`` event on the first reading of its instrument at
  or after the alarm;
- per force feature (pull and retention tests), the distribution beside the failure modes
  entered with ``daq enter failure-mode`` for that test;
- per salt-spray run holding a specimen of the lot, the zone temperature over the run (at most
  :data:`MAX_CHART_POINTS` points, the lowest and highest per interval), the band in force,
  excursions shaded (from the run's exposure account, daq/runs.py ``RunAccount``, and the
  daemon's ``chamber_excursion`` events), the specimens' load and unload, and the run's valid
  hours as ``daq chamber status`` counts them (ASTM B117 / ISO 9227: exposure counts only
  while the zone is in its band; docs/decisions/0006-salt-spray-runs.md).

The calibration table gives each instrument used in the lot its ``calibration_due`` from the
bench config (``overdue`` once past, on the report's date), its last reference check
(``daq enter reference-check``) and its suspect readings in the lot.
"""

from __future__ import annotations

import html
import io
import math
import re
import statistics
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from daq.config import Config
from daq.journal import Journal
from daq.lotcli import suspect_predicate
from daq.lots import Baseline, CalibrationCheck, Lot, LotStore
from daq.model import Limits, Point
from daq.quality.capability import Estimate, capability_of
from daq.quality.lotreview import (
    MIN_CAPABILITY_N,
    NOT_PRODUCT,
    CapabilityFigure,
    ClassResult,
    LotReview,
)
from daq.runs import Run, RunAccount, RunStore, Specimen, SpecimenCheck, cabinets, max_gap_s
from daq.skuspec import SpecFile

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ChamberRun",
    "CorrosionEntry",
    "DriftAlarm",
    "FailureMode",
    "FeatureReading",
    "FeatureReport",
    "Finding",
    "GoldenSample",
    "InstrumentUse",
    "LotReport",
    "SpecimenReport",
    "SuspectReading",
    "calibration_status",
    "decision_notes",
    "decision_reasons",
    "downsample",
    "figure_id",
    "gather",
    "render_html",
    "render_pdf",
]

#: Measurements that are not measured features with a value to chart: what the lot review
#: leaves out (daq/quality/lotreview.py ``NOT_PRODUCT``), events and attribute entries.
NOT_FEATURES = NOT_PRODUCT | {"event", "inspection", "failure_mode"}


#: At most this many points of a chamber's zone temperature are drawn (min and max per bucket).
MAX_CHART_POINTS = 2000


@dataclass(frozen=True, slots=True)
class FeatureReading:
    order: int  # 1-based, in journal order within the feature
    time_ns: int
    value: float
    status: str
    instrument: str
    judged: bool  # counted in the statistics (False when suspect, as in the lot review)
    alarms: tuple[str, ...] = ()  # drift-alarm rules marked at this reading


@dataclass(frozen=True, slots=True)
class GoldenSample:
    """One feature's values in the SKU's golden-sample lot(s), read from the journal.

    The same rule as the lot's own figures: float values only, suspect readings (instrument past
    its calibration due date, or between a good and a failed reference check) left out.
    """

    lots: tuple[str, ...]
    values: tuple[float, ...]
    left_out: int  # suspect golden readings not counted

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) >= 2 else None


@dataclass(frozen=True, slots=True)
class FeatureReport:
    """One measured feature of the lot."""

    key: str  # measurement.feature
    unit: str
    readings: tuple[FeatureReading, ...]
    low: float | None
    high: float | None
    counts: dict[str, int]
    capability: CapabilityFigure | None  # the lot review's index (Cpk, Cpl or Cpu)
    cpl: Estimate | None
    cpu: Estimate | None
    baseline: Baseline | None
    baseline_note: str | None
    variables: str | None
    golden: GoldenSample | None = None
    #: failure modes entered for this test (``daq enter failure-mode``), force features only
    failure_modes: dict[str, int] = field(default_factory=dict)

    @property
    def measurement(self) -> str:
        return self.key.partition(".")[0]

    @property
    def feature(self) -> str:
        return self.key.partition(".")[2]

    @property
    def values(self) -> list[float]:
        """The values the lot review judged, in order."""
        return [r.value for r in self.readings if r.judged]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) >= 2 else None

    @property
    def minimum(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def maximum(self) -> float | None:
        return max(self.values) if self.values else None

    @property
    def shift_sigma(self) -> float | None:
        """The lot mean's distance from the golden-sample mean, in baseline σ."""
        mean, b = self.mean, self.baseline
        if mean is None or b is None or b.sigma <= 0:
            return None
        return (mean - b.mean) / b.sigma

    @property
    def golden_shift(self) -> float | None:
        """The lot mean's distance from the golden sample's mean, in the golden sample's sd."""
        mean, g = self.mean, self.golden
        if mean is None or g is None or g.mean is None or not g.sd:
            return None
        return (mean - g.mean) / g.sd

    @property
    def alarm_marks(self) -> int:
        return sum(len(r.alarms) for r in self.readings)


@dataclass(frozen=True, slots=True)
class DriftAlarm:
    time_ns: int
    feature: str
    instrument: str
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class Finding:
    time_ns: int
    feature: str
    sample_unit: str
    observed: str
    specified: str
    status: str
    reason: str
    entered_by: str


@dataclass(frozen=True, slots=True)
class FailureMode:
    time_ns: int
    test: str
    mode: str
    sample_unit: str
    entered_by: str


@dataclass(frozen=True, slots=True)
class SpecimenReport:
    run: str
    cabinet: str
    standard: str
    specimen: str
    loaded_ns: int
    unloaded_ns: int | None
    valid_hours: float | None
    hours_note: str
    checks: tuple[SpecimenCheck, ...]


@dataclass(frozen=True, slots=True)
class CorrosionEntry:
    """A corrosion rating in the lot's journal points (``daq enter corrosion``, chamber checks)."""

    time_ns: int
    rating: float
    hours: float | None
    status: str
    specimen: str


@dataclass(frozen=True, slots=True)
class ChamberRun:
    """A salt-spray run holding a specimen of the lot: its zone temperature over the run."""

    run: Run
    zone: str  # instrument
    channel: str
    end_ns: int  # the run's stop, or the report's time for a going run
    times_ns: tuple[int, ...]  # downsampled to at most MAX_CHART_POINTS
    values: tuple[float, ...]
    lows: tuple[float | None, ...]
    highs: tuple[float | None, ...]
    readings: int  # zone readings in the run, before downsampling
    out_of_band: int  # of those, readings outside their band
    excursions: tuple[tuple[int, int | None], ...]  # (start, end or None while going)
    specimens: tuple[Specimen, ...]  # this lot's
    valid_hours: float | None  # RunAccount's, as ``daq chamber status`` prints it
    note: str


@dataclass(frozen=True, slots=True)
class InstrumentUse:
    name: str
    readings: int
    calibration_due: date | None
    checks: tuple[CalibrationCheck, ...]
    suspect: int = 0  # this lot's suspect readings of the instrument
    status: str = "-"  # calibration_status()

    @property
    def last_check(self) -> CalibrationCheck | None:
        return self.checks[-1] if self.checks else None

    @property
    def overdue(self) -> bool:
        return self.status == "overdue"


@dataclass(frozen=True, slots=True)
class SuspectReading:
    time_ns: int
    key: str
    instrument: str
    value: str
    why: str


@dataclass(frozen=True, slots=True)
class LotReport:
    """Everything the report shows about one lot, gathered once."""

    lot: Lot
    review: LotReview
    bench: str
    spec_title: str
    spec_sha256: str
    pin_problem: str | None
    features: tuple[FeatureReport, ...]
    alarms: tuple[DriftAlarm, ...]
    findings: tuple[Finding, ...]
    failure_modes: tuple[FailureMode, ...]
    specimens: tuple[SpecimenReport, ...]
    corrosion: tuple[CorrosionEntry, ...]
    instruments: tuple[InstrumentUse, ...]
    suspects: tuple[SuspectReading, ...]
    first_ns: int | None
    last_ns: int | None
    journal_path: Path
    points: int
    generated_ns: int
    version: str
    reasons: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())
    chambers: tuple[ChamberRun, ...] = field(default=())

    @property
    def failure_mode_counts(self) -> dict[str, Counter[str]]:
        """Failure modes entered, counted per test."""
        return _count_modes(self.failure_modes)

    @property
    def decision(self) -> str:
        """The recorded decision of a closed lot, else ``open``."""
        return self.lot.decision if self.lot.closed_ns is not None and self.lot.decision else "open"

    @property
    def closed_by(self) -> str | None:
        who = (self.lot.evidence or {}).get("closed_by")
        return str(who) if who else None

    @property
    def ncr_number(self) -> str:
        return f"NCR-{self.lot.sku}-{self.lot.lot}"


def _count_modes(modes: Iterable[FailureMode]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for m in modes:
        out.setdefault(m.test, Counter())[m.mode] += 1
    return out


# -- gathering --------------------------------------------------------------------------------


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _is_suspect(p: Point, status: str, in_range: Callable[[Point], bool]) -> bool:
    """The lot review's rule (daq/quality/lotreview.py ``review_lot``): a reading judged
    ``suspect`` (past calibration due), or a pass/marginal reading in a suspect range."""
    return status == "suspect" or (in_range(p) and status in ("pass", "marginal"))


def gather(
    lot: Lot,
    review: LotReview,
    *,
    config: Config,
    journal: Journal,
    store: LotStore,
    runs: RunStore,
    spec: SpecFile,
    now_ns: int,
) -> LotReport:
    """Read one lot's record into a :class:`LotReport`; ``review`` is ``lotcli._review``'s."""
    points = journal.lot_points(lot.sku, lot.lot)
    in_range = suspect_predicate(config, store)  # the predicate the review was given

    alarms = tuple(
        DriftAlarm(p.time_ns, p.tags.get("feature", ""), p.tags.get("instrument", ""),
                   p.tags.get("rule", ""), _text(p.fields.get("message")))
        for p in points
        if p.measurement == "event" and p.tags.get("kind") == "drift_alarm"
    )  # fmt: skip

    readings: dict[str, list[FeatureReading]] = {}
    units: dict[str, str] = {}
    limits: dict[str, Limits] = {}
    suspects: list[SuspectReading] = []
    used: dict[str, int] = {}
    findings: list[Finding] = []
    failure_modes: list[FailureMode] = []
    corrosion: list[CorrosionEntry] = []
    for p in points:
        if p.measurement == "event" or p.measurement in NOT_PRODUCT:  # as the review does
            continue
        instrument = p.tags.get("instrument", "")
        used[instrument] = used.get(instrument, 0) + 1
        feature = p.tags.get("feature", "")
        key = f"{p.measurement}.{feature}"
        status = str(p.fields.get("status", "none"))
        if p.measurement == "inspection":
            if feature != "visual":
                findings.append(
                    Finding(p.time_ns, feature, _text(p.fields.get("sample_unit")),
                            _text(p.fields.get("observed")), _text(p.fields.get("specified")),
                            status, _text(p.fields.get("reason")),
                            _text(p.fields.get("entered_by")))
                )  # fmt: skip
            continue
        if p.measurement == "failure_mode":
            failure_modes.append(
                FailureMode(p.time_ns, feature, _text(p.fields.get("mode")),
                            _text(p.fields.get("sample_unit")), _text(p.fields.get("entered_by")))
            )  # fmt: skip
            continue
        value = p.fields.get("value")
        suspect = _is_suspect(p, status, in_range)
        if suspect:
            why = (
                (_text(p.fields.get("reason")) or "instrument past its calibration due date")
                if status == "suspect"
                else "taken between the last good and a failed reference check"
            )
            number = num(float(value)) if isinstance(value, float | int) else _text(value)
            shown = f"{number} {_text(p.fields.get('unit'))}".strip()
            suspects.append(SuspectReading(p.time_ns, key, instrument, shown, why))
        if p.measurement == "corrosion" and isinstance(value, float | int):
            hours = p.fields.get("hours")
            corrosion.append(
                CorrosionEntry(p.time_ns, float(value),
                               float(hours) if isinstance(hours, float | int) else None,
                               status, _text(p.fields.get("specimen")))
            )  # fmt: skip
        if not isinstance(value, float):  # the review's rule: only float values are judged
            continue
        mine = readings.setdefault(key, [])
        mine.append(
            FeatureReading(len(mine) + 1, p.time_ns, value, "suspect" if suspect else status,
                           instrument, not suspect)
        )  # fmt: skip
        units[key] = _text(p.fields.get("unit"))
        if not suspect:
            low, high = p.fields.get("low"), p.fields.get("high")
            limits[key] = Limits(
                low if isinstance(low, float) else None, high if isinstance(high, float) else None
            )

    keys = sorted(k for k in readings if k.split(".", 1)[0] not in NOT_FEATURES)
    golden = _golden(journal, store, lot, keys, in_range)
    modes = _count_modes(failure_modes)
    baselines = store.baselines(lot.sku)
    end_ns = lot.closed_ns if lot.closed_ns is not None else now_ns
    features = []
    for key in keys:
        measurement, _, feature = key.partition(".")
        rs = mark_alarms(readings[key], [a for a in alarms if a.feature == feature])
        lim = limits.get(key, Limits())
        base, note = _baseline_for(baselines, measurement, feature, rs, lot=lot, end_ns=end_ns)
        cpl, cpu = _sides([r.value for r in rs if r.judged], lim)
        features.append(
            FeatureReport(
                key, units.get(key, ""), tuple(rs), lim.low, lim.high,
                dict(review.verdicts.get(key, {})), review.capability.get(key), cpl, cpu,
                base, note, review.variables.get(key), golden.get(key),
                dict(modes.get(feature, {})) if measurement == "force" else {},
            )
        )  # fmt: skip

    instruments_cfg = {i.name: i for i in config.instrument}
    today = datetime.fromtimestamp(now_ns / 1e9, tz=UTC).date()
    suspect_of = Counter(s.instrument for s in suspects)
    instruments = []
    for name, count in sorted(used.items()):
        if name == "operator":  # a person's entries (visual, ratings), not an instrument
            continue
        due = instruments_cfg[name].calibration_due if name in instruments_cfg else None
        checks = tuple(store.calibration_checks(name))
        instruments.append(
            InstrumentUse(name, count, due, checks, suspect_of.get(name, 0),
                          calibration_status(due, today, configured=name in instruments_cfg,
                                             checks=checks))
        )  # fmt: skip
    times = [p.time_ns for p in points if p.measurement not in ("lot_progress", "lot_decision")]
    return LotReport(
        lot=lot,
        review=review,
        bench=config.bench.id,
        spec_title=spec.spec.title,
        spec_sha256=spec.sha256,
        pin_problem=store.check_revision(lot.sku, spec.spec.revision, spec.sha256),
        features=tuple(features),
        alarms=alarms,
        findings=tuple(findings),
        failure_modes=tuple(failure_modes),
        specimens=tuple(_specimens(config, journal, runs, lot, now_ns)),
        corrosion=tuple(corrosion),
        instruments=tuple(instruments),
        suspects=tuple(suspects),
        first_ns=min(times, default=None),
        last_ns=max(times, default=None),
        journal_path=journal.path,
        points=len(points),
        generated_ns=now_ns,
        version=_version(),
        reasons=tuple(decision_reasons(review)),
        notes=tuple(decision_notes(review)),
        chambers=tuple(_chambers(config, journal, runs, lot, now_ns)),
    )


def mark_alarms(
    readings: Sequence[FeatureReading], alarms: Sequence[DriftAlarm]
) -> list[FeatureReading]:
    """Each drift alarm marked on the first reading (journal order) of its instrument at or
    after its time: daq/driftwatch.py stamps an alarm with the time of the reading that raised
    it, so that is the reading marked. An alarm with no such reading is not marked."""
    marks: dict[int, list[str]] = {}
    for a in alarms:
        first = next(
            (i for i, r in enumerate(readings)
             if r.instrument == a.instrument and r.time_ns >= a.time_ns),
            None,
        )  # fmt: skip
        if first is not None:
            marks.setdefault(first, []).append(a.rule)
    return [replace(r, alarms=tuple(marks.get(i, ()))) for i, r in enumerate(readings)]


def calibration_status(
    due: date | None,
    today: date,
    *,
    configured: bool = True,
    checks: Sequence[CalibrationCheck] = (),
) -> str:
    """An instrument's calibration state in words: ``overdue`` past its ``calibration_due``
    (the bench config), else the days left; the last reference check's outcome is added."""
    if not configured:
        state = "not in the bench config"
    elif due is None:
        state = "no calibration due date in the bench config"
    elif due < today:
        state = "overdue"
    else:
        state = f"due in {(due - today).days} day(s)"
    if checks and not checks[-1].ok:
        state += "; last reference check FAILED"
    return state


def _golden(
    journal: Journal,
    store: LotStore,
    lot: Lot,
    keys: Sequence[str],
    in_range: Callable[[Point], bool],
) -> dict[str, GoldenSample]:
    """The SKU's golden-sample values of these features (every golden-sample lot of the SKU but
    this one), by the same rule as the lot's own values."""
    lots = [x.lot for x in store.lots(lot.sku) if x.phase == "golden-sample" and x.lot != lot.lot]
    wanted = set(keys)
    values: dict[str, list[float]] = {}
    left_out: Counter[str] = Counter()
    seen: dict[str, list[str]] = {}
    for golden_lot in lots:
        for p in journal.lot_points(lot.sku, golden_lot):
            key = f"{p.measurement}.{p.tags.get('feature', '')}"
            value = p.fields.get("value")
            if key not in wanted or not isinstance(value, float):
                continue
            if _is_suspect(p, str(p.fields.get("status", "none")), in_range):
                left_out[key] += 1
                continue
            values.setdefault(key, []).append(value)
            if golden_lot not in seen.setdefault(key, []):
                seen[key].append(golden_lot)
    return {k: GoldenSample(tuple(seen[k]), tuple(v), left_out[k]) for k, v in values.items() if v}


def downsample(
    n: int, limit: int = MAX_CHART_POINTS, key: Callable[[int], float] | None = None
) -> list[int]:
    """Indices (ascending) of at most ``limit`` of ``n`` points in time order: all when they fit,
    else per equal-count bucket the lowest and the highest by ``key`` (so a short excursion
    stays visible)."""
    if n <= limit:
        return list(range(n))
    if key is None or limit < 4:
        step = n / limit
        return sorted({min(n - 1, int(i * step)) for i in range(limit)})
    buckets = (limit - 2) // 2
    out: set[int] = {0, n - 1}  # the whole time span stays drawn
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if lo >= hi:
            continue
        span = range(lo, hi)
        out.add(min(span, key=key))
        out.add(max(span, key=key))
    return sorted(out)


def _chambers(
    config: Config, journal: Journal, runs: RunStore, lot: Lot, now_ns: int
) -> list[ChamberRun]:
    """The salt-spray runs holding a specimen of this lot, with their zone temperature."""
    cabs = cabinets(config)
    out = []
    for run in runs.runs():
        mine = tuple(s for s in runs.specimens(run.run) if s.sku == lot.sku and s.lot == lot.lot)
        if not mine:
            continue
        end = run.stopped_ns if run.stopped_ns is not None else now_ns
        cab = cabs.get(run.cabinet)
        if cab is None:
            out.append(
                ChamberRun(run, "", "", end, (), (), (), (), 0, 0, (), mine, run.valid_hours,
                           f"cabinet '{run.cabinet}' is not in the bench config: its zone"
                           " instrument is unknown")
            )  # fmt: skip
            continue
        # The same account as ``daq chamber status`` (daq/chambercli.py ``_Bench.account``).
        acc = RunAccount.of(run, cab, max_gap_s(config, cab))
        acc.update(journal)
        zone = _zone_points(journal, run, cab.zone, cab.zone_channel, end)
        spans: list[tuple[int, int | None]] = [(e.start_ns, e.end_ns) for e in acc.excursions]
        if acc.exposure.state.open is not None:
            spans.append((acc.exposure.state.open.start_ns, None))
        spans += [
            s for s in _excursion_events(journal, run, cab.zone, end)
            if not any(_overlap(s, t) for t in spans)
        ]  # fmt: skip
        lows = [_float(p.fields.get("low")) for p in zone]
        highs = [_float(p.fields.get("high")) for p in zone]
        values = [float(p.fields["value"]) for p in zone]  # _zone_points keeps numbers only
        out_band = sum(
            1 for v, lo, hi in zip(values, lows, highs, strict=True)
            if (lo is not None and v < lo) or (hi is not None and v > hi)
        )  # fmt: skip
        keep = downsample(len(zone), key=lambda i: values[i])
        note = "run stopped" if run.stopped_ns is not None else "run going: hours so far"
        out.append(
            ChamberRun(run, cab.zone, cab.zone_channel, end,
                       tuple(zone[i].time_ns for i in keep), tuple(values[i] for i in keep),
                       tuple(lows[i] for i in keep), tuple(highs[i] for i in keep),
                       len(zone), out_band, tuple(sorted(spans, key=lambda s: s[0])), mine,
                       acc.valid_s / 3600.0, note)
        )  # fmt: skip
    return out


def _float(x: object) -> float | None:
    return float(x) if isinstance(x, float | int) and not isinstance(x, bool) else None


def _overlap(a: tuple[int, int | None], b: tuple[int, int | None]) -> bool:
    inf = 1 << 62
    return a[0] <= (b[1] if b[1] is not None else inf) and b[0] <= (
        a[1] if a[1] is not None else inf
    )


def _zone_points(
    journal: Journal, run: Run, zone: str, channel: str, end_ns: int, *, batch: int = 20_000
) -> list[Point]:
    """The zone instrument's readings of its channel from the run's start to ``end_ns``."""
    out: list[Point] = []
    after = 0
    while True:
        rows = journal.instrument_points(
            "chamber", [zone], after_id=after, since_ns=run.started_ns, limit=batch
        )
        for _, p in rows:
            if (
                p.tags.get("feature") == channel
                and p.time_ns <= end_ns
                and _float(p.fields.get("value")) is not None
            ):
                out.append(p)
        if len(rows) < batch:
            break
        after = rows[-1][0]
    out.sort(key=lambda p: p.time_ns)
    return out


def _excursion_events(
    journal: Journal, run: Run, zone: str, end_ns: int
) -> list[tuple[int, int | None]]:
    """The daemon's ``chamber_excursion`` events of the zone within the run (docs/schema.md)."""
    spans: list[tuple[int, int | None]] = []
    for _, p in journal.instrument_points("event", [zone], since_ns=run.started_ns):
        if p.tags.get("kind") != "chamber_excursion" or p.time_ns > end_ns:
            continue
        start, stop = p.fields.get("start_ns"), p.fields.get("end_ns")
        if isinstance(start, int) and not isinstance(start, bool):
            spans.append((start, stop if isinstance(stop, int) else p.time_ns))
    return spans


def _version() -> str:
    try:
        return metadata.version("hallmark")
    except metadata.PackageNotFoundError:
        return "unknown"


def _sides(values: list[float], lim: Limits) -> tuple[Estimate | None, Estimate | None]:
    """Cpl and Cpu over the values the review judged (the same inputs as its Cpk)."""
    if len(values) < MIN_CAPABILITY_N or (lim.low is None and lim.high is None):
        return None, None
    try:
        c = capability_of(values, lim)
    except ValueError:
        return None, None
    return c.cpl, c.cpu


def _baseline_for(
    baselines: Sequence[Baseline],
    measurement: str,
    feature: str,
    readings: Sequence[FeatureReading],
    *,
    lot: Lot,
    end_ns: int,
) -> tuple[Baseline | None, str | None]:
    """The golden-sample baseline of this feature on the instrument(s) the lot used."""
    instruments = {r.instrument for r in readings}
    mine = [
        b for b in baselines
        if b.measurement == measurement and b.feature == feature and b.instrument in instruments
    ]  # fmt: skip
    if not mine:
        return None, None
    b = mine[0]
    notes = []
    if len(mine) > 1:
        notes.append("other instruments' baselines: " + ", ".join(
            f"{o.instrument} v{o.version}" for o in mine[1:]))  # fmt: skip
    if b.created_ns > end_ns and b.lot != lot.lot:
        notes.append(f"version {b.version} was fixed after this lot (from lot {b.lot})")
    return b, "; ".join(notes) or None


def _specimens(
    config: Config, journal: Journal, runs: RunStore, lot: Lot, now_ns: int
) -> list[SpecimenReport]:
    """This SKU and lot's specimens in salt-spray runs, with their valid hours (daq/runs.py)."""
    cabs = cabinets(config)
    out = []
    for run in runs.runs():
        mine = [s for s in runs.specimens(run.run) if s.sku == lot.sku and s.lot == lot.lot]
        if not mine:
            continue
        checks = runs.checks(run.run)
        run_valid_s: float | None = None
        note = ""
        if run.stopped_ns is not None and run.valid_hours is not None:
            run_valid_s = run.valid_hours * 3600.0
        elif run.cabinet in cabs:
            acc = RunAccount.of(run, cabs[run.cabinet], max_gap_s(config, cabs[run.cabinet]))
            acc.update(journal, until_ns=now_ns)
            run_valid_s = acc.valid_s
            note = "run going: hours so far"
        else:
            note = f"cabinet '{run.cabinet}' is not in the bench config: hours unknown"
        for s in mine:
            hours: float | None
            if s.valid_s_at_unload is not None:
                hours, why = s.valid_hours(0.0), "unloaded"
            elif run_valid_s is not None:
                hours, why = s.valid_hours(run_valid_s), note or "run stopped"
            else:
                hours, why = None, note
            out.append(
                SpecimenReport(run.run, run.cabinet, run.standard, s.specimen, s.loaded_ns,
                               s.unloaded_ns, hours, why,
                               tuple(c for c in checks if c.specimen == s.specimen))
            )  # fmt: skip
    return out


def decision_reasons(review: LotReview) -> list[str]:
    """Why the review decides as it does, in words (daq/quality/lotreview.py's rules); the
    failure texts are the review's own, as ``daq lot status`` prints them."""
    out = []
    for c in review.classes:
        if c.decided == "reject":
            out.append(
                f"{c.defect_class} defects: {c.nonconforming} nonconforming unit(s) found,"
                f" the plan rejects at {c.plan.reject} (AQL {c.aql:g}, code letter"
                f" {c.plan.code_letter}, sample {c.plan.sample_size})"
            )
    out.extend(f"failed the written spec: {f}" for f in review.failures)
    out.extend(f"{k} by variables: {review.variables[k]}" for k in review.variables_rejected)
    if not out:
        out.append(
            "every defect class is within its acceptance number and no measured feature"
            " failed the written spec"
        )
    return out


def decision_notes(review: LotReview) -> list[str]:
    """What else the decision rests on: an incomplete sample, drift alarms, suspect readings."""
    out = []
    if not review.complete:
        out.append(
            f"only {review.units_inspected} of {review.sample_size} sample units were inspected"
        )
    if review.drift_alarms:
        out.append(
            f"{review.drift_alarms} drift alarm(s) against the golden sample (they do not reject"
            " a lot that meets the spec, but are part of the evidence)"
        )
    if review.suspect:
        out.append(f"{review.suspect} reading(s) suspect for calibration, left out of the figures")
    return out


# -- formatting -------------------------------------------------------------------------------


def when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def num(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}g}"


def _est(e: Estimate | None) -> str:
    return "-" if e is None else f"{e.value:.2f} ({e.lower:.2f}–{e.upper:.2f})"


def _cap(f: FeatureReport, name: str) -> Estimate | None:
    c = f.capability
    if name == "Cpk":
        return None if c is None or c.name != "Cpk" else Estimate(c.value, c.lower, c.upper)
    if c is not None and c.name == name:
        return Estimate(c.value, c.lower, c.upper)
    return f.cpl if name == "Cpl" else f.cpu


def _counts(f: FeatureReport, status: str) -> int:
    return int(f.counts.get(status, 0))


def _limit_text(f: FeatureReport) -> str:
    lo, hi = f.low, f.high
    if lo is not None and hi is not None:
        return f"{num(lo)} – {num(hi)} {f.unit}"
    if lo is not None:
        return f"≥ {num(lo)} {f.unit}"
    if hi is not None:
        return f"≤ {num(hi)} {f.unit}"
    return "none in force"


def _inspected(review: LotReview, c: ClassResult) -> int:
    return min(review.units_inspected, c.plan.sample_size)


# -- figures ----------------------------------------------------------------------------------


def _pyplot_free_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    # A bare Figure renders with the Agg-based canvases; no pyplot state, no GUI backend.
    return Figure(figsize=(width, height), layout="constrained")


_LOT = "#33506e"
_GOLDEN = "#c9a227"
_SPEC = "#b22222"
_BASE = "#2e7d32"
_ALARM = "#d32f2f"


def _axes(ax: object) -> Axes:
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"a matplotlib Axes is needed, not {type(ax).__name__}")
    return ax


def _gids(artists: object, name: str) -> None:
    """Name a plot's bars in the SVG (``<name>-0``, ``<name>-1`` ...), so they can be found."""
    from matplotlib.artist import Artist

    items = [artists] if isinstance(artists, Artist) else artists
    for k, a in enumerate(items if isinstance(items, Iterable) else ()):
        if isinstance(a, Artist):
            a.set_gid(f"{name}-{k}")


def _spec_lines(ax: Axes, f: FeatureReport, *, vertical: bool) -> None:
    for x, name in ((f.low, "LSL"), (f.high, "USL")):
        if x is not None:
            line = ax.axvline if vertical else ax.axhline
            line(x, color=_SPEC, linestyle="--", linewidth=1.2, label=f"{name} {num(x)}")


def _draw_histogram(ax_: object, f: FeatureReport) -> None:
    """This lot's values and the golden sample's on shared bins, spec lines, golden mean."""
    ax = _axes(ax_)
    values = f.values
    golden = list(f.golden.values) if f.golden is not None else []
    both = values + golden
    if both:
        lo, hi = min(both), max(both)
        count = max(1, min(20, math.ceil(math.sqrt(len(both))) + 1))
        edges = [lo + (hi - lo) * i / count for i in range(count + 1)] if hi > lo else count
        sets = [(golden, _GOLDEN, "golden-values"), (values, "#7a9cc6", "lot-values")]
        sets = [x for x in sets if x[0]]
        labels = {
            "golden-values": f"golden sample (n {len(golden)}; lot"
            f" {', '.join(f.golden.lots) if f.golden else '-'})",
            "lot-values": f"this lot (n {len(values)})",
        }
        # side by side in each bin, so neither hides the other
        _, _, bars = ax.hist(
            [x[0] for x in sets], bins=edges, color=[x[1] for x in sets], edgecolor=_LOT,
            linewidth=0.5, label=[labels[x[2]] for x in sets],
        )  # fmt: skip
        # one BarContainer per data set, or a bare BarContainer (a tuple) for a single set
        groups: list[object] = list(bars) if isinstance(bars, list) else [bars]
        for (_, _, name), group in zip(sets, groups, strict=True):
            _gids(group, name)
    else:
        ax.text(0.5, 0.5, "no judged values", ha="center", va="center", transform=ax.transAxes)
    _spec_lines(ax, f, vertical=True)
    g_mean = f.golden.mean if f.golden is not None else None
    if g_mean is None and f.baseline is not None:
        g_mean = f.baseline.mean
    if g_mean is not None:
        ax.axvline(g_mean, color=_BASE, linewidth=1.5, label=f"golden mean {num(g_mean)}")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{f.key}: golden sample against this lot", fontsize=9)
    ax.set_xlabel(f.unit or "value", fontsize=8)
    ax.set_ylabel("count", fontsize=8)
    ax.tick_params(labelsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _centre(f: FeatureReport) -> tuple[float, float, str] | None:
    """The control chart's centre line and σ: the frozen baseline, else the golden sample."""
    b = f.baseline
    if b is not None and b.sigma > 0:
        return b.mean, b.sigma, f"golden baseline v{b.version}"
    g = f.golden
    if g is not None and g.mean is not None and g.sd:
        return g.mean, g.sd, "golden sample"
    return None


def _draw_chart(ax_: object, f: FeatureReport) -> None:
    """Individuals chart: golden centre line ± 3σ, spec lines, one marker per drift alarm."""
    from matplotlib.ticker import MaxNLocator

    ax = _axes(ax_)
    judged = [r for r in f.readings if r.judged]
    other = [r for r in f.readings if not r.judged]
    ax.plot([r.order for r in f.readings], [r.value for r in f.readings], color="#9aa7b4",
            linewidth=0.8)  # fmt: skip
    ax.plot([r.order for r in judged], [r.value for r in judged], "o", color=_LOT,
            markersize=4, label="reading")  # fmt: skip
    if other:
        ax.plot([r.order for r in other], [r.value for r in other], "o", markerfacecolor="none",
                color="#888888", markersize=5, label="suspect (not judged)")  # fmt: skip
    _spec_lines(ax, f, vertical=False)
    centre = _centre(f)
    if centre is not None:
        mean, sigma, what = centre
        ax.axhline(mean, color=_BASE, linewidth=1.2, label=f"centre: {what}")
        for y in (mean - 3 * sigma, mean + 3 * sigma):
            ax.axhline(y, color=_BASE, linestyle=":", linewidth=1.2)
        ax.plot([], [], color=_BASE, linestyle=":", label="baseline mean ± 3σ")
    k = 0
    for r in f.readings:
        for j, rule in enumerate(r.alarms):
            # one artist per alarm, its own id in the SVG: two alarms on one reading are two marks
            ax.plot([r.order], [r.value], "X", color=_ALARM, markersize=9,
                    gid=f"drift-alarm-{k}", label="drift alarm" if k == 0 else None)  # fmt: skip
            ax.annotate(rule, (r.order, r.value), textcoords="offset points",
                        xytext=(4, 6 + 8 * j), fontsize=6,
                        color=_ALARM)  # fmt: skip
            k += 1
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{f.key}: individuals chart", fontsize=9)
    ax.set_xlabel("reading in order", fontsize=8)
    ax.set_ylabel(f.unit or "value", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _draw_failure_modes(ax_: object, f: FeatureReport) -> None:
    """How the pull or retention tests of this feature ended (``daq enter failure-mode``)."""
    ax = _axes(ax_)
    modes = sorted(f.failure_modes.items(), key=lambda kv: (-kv[1], kv[0]))
    if modes:
        bars = ax.barh([m for m, _ in modes], [n for _, n in modes], color="#8c6bb1")
        _gids(bars, "failure-mode")
        ax.invert_yaxis()
        for i, (_, n) in enumerate(modes):
            ax.annotate(str(n), (n, i), textcoords="offset points", xytext=(3, -3), fontsize=7)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.text(0.5, 0.5, "no failure mode entered", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)  # fmt: skip
        ax.set_yticks([])
    ax.set_title(f"{f.feature}: failure modes", fontsize=9)
    ax.set_xlabel("tests", fontsize=8)
    ax.tick_params(labelsize=7)


def _draw_force_values(ax_: object, f: FeatureReport) -> None:
    ax = _axes(ax_)
    if f.values:
        bins = max(1, min(15, math.ceil(math.sqrt(len(f.values))) + 1))
        ax.hist(f.values, bins=bins, color="#7a9cc6", edgecolor=_LOT)
    else:
        ax.text(0.5, 0.5, "no judged values", ha="center", va="center", transform=ax.transAxes)
    _spec_lines(ax, f, vertical=True)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{f.key}: distribution (n {f.n})", fontsize=9)
    ax.set_xlabel(f.unit or "value", fontsize=8)
    ax.set_ylabel("count", fontsize=8)
    ax.tick_params(labelsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)


def _hours(c: ChamberRun, ns: int) -> float:
    return (ns - c.run.started_ns) / 3.6e12


def _draw_chamber(ax_: object, c: ChamberRun) -> None:
    """The zone temperature over the run: band, excursions shaded, specimens' load/unload."""
    ax = _axes(ax_)
    x = [_hours(c, t) for t in c.times_ns]
    if x:
        if any(v is not None for v in c.lows) and any(v is not None for v in c.highs):
            lows = [math.nan if v is None else v for v in c.lows]
            highs = [math.nan if v is None else v for v in c.highs]
            ax.fill_between(x, lows, highs, step="post", color="#a5d6a7", alpha=0.45,
                            label="band (limits in force)", gid="band")  # fmt: skip
        ax.plot(x, list(c.values), color=_LOT, linewidth=0.8, label=f"{c.zone} {c.channel}")
    else:
        ax.text(0.5, 0.5, "no zone reading in the run", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    for k, (start, end) in enumerate(c.excursions):
        ax.axvspan(_hours(c, start), _hours(c, end if end is not None else c.end_ns),
                   color=_ALARM, alpha=0.2, gid=f"excursion-{k}",
                   label="excursion" if k == 0 else None)  # fmt: skip
    for s in c.specimens:
        ax.axvline(_hours(c, s.loaded_ns), color="#1565c0", linestyle="-.", linewidth=1.0,
                   gid=f"load-{s.specimen}")  # fmt: skip
        ax.annotate(f"{s.specimen} in", (_hours(c, s.loaded_ns), 1.0),
                    xycoords=("data", "axes fraction"), fontsize=6, color="#1565c0",
                    xytext=(2, -8), textcoords="offset points")  # fmt: skip
        if s.unloaded_ns is not None:
            ax.axvline(_hours(c, s.unloaded_ns), color="#1565c0", linestyle=":",
                       linewidth=1.0, gid=f"unload-{s.specimen}")  # fmt: skip
            ax.annotate(f"{s.specimen} out", (_hours(c, s.unloaded_ns), 1.0),
                        xycoords=("data", "axes fraction"), fontsize=6, color="#1565c0",
                        xytext=(2, -16), textcoords="offset points")  # fmt: skip
    hours = "-" if c.valid_hours is None else f"{c.valid_hours:.2f}"
    ax.set_title(f"run {c.run.run} in {c.run.cabinet} ({c.run.standard}): {hours} valid h",
                 fontsize=9)  # fmt: skip
    ax.set_xlabel("hours since the run started", fontsize=8)
    ax.set_ylabel("°C" if c.channel.endswith("temperature") else "value", fontsize=8)
    ax.tick_params(labelsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))


_SVG_HEAD = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_SVG_ID = re.compile(r'\bid="([^"]+)"')


def _prefix_ids(svg: str, prefix: str) -> str:
    """Make the SVG's element ids unique within the HTML page (several SVGs share one page)."""
    ids = set(_SVG_ID.findall(svg))
    if not ids:
        return svg
    names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    svg = re.sub(rf'\bid="({names})"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    return re.sub(rf"#({names})(?=[\")])", lambda m: f"#{prefix}-{m.group(1)}", svg)


def figure_id(kind: str, name: str) -> str:
    """The id of a figure's ``<svg>`` element: ``fig-<kind>-<name>`` with only [A-Za-z0-9_-]."""
    return f"fig-{kind}-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _svg(fig: Figure, fid: str) -> str:
    """The figure as inline SVG text whose root ``<svg>`` has the id ``fid``."""
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": fid}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = _SVG_METADATA.sub("", _SVG_HEAD.sub("", buf.getvalue(), count=1), count=1)
    text = _prefix_ids(text.strip(), fid)
    return re.sub(r"\A<svg\b", f'<svg id="{fid}"', text, count=1)


def figure_svgs(f: FeatureReport) -> dict[str, str]:
    """A feature's figures as inline SVG text, by kind: ``hist`` (golden against this lot),
    ``chart`` (individuals chart) and, for a force feature, ``force`` (distribution beside the
    failure modes)."""
    hist = _pyplot_free_figure(6.0, 2.8)
    _draw_histogram(hist.add_subplot(), f)
    chart = _pyplot_free_figure(6.0, 2.8)
    _draw_chart(chart.add_subplot(), f)
    out = {
        "hist": _svg(hist, figure_id("hist", f.key)),
        "chart": _svg(chart, figure_id("chart", f.key)),
    }
    if f.measurement == "force":
        force = _pyplot_free_figure(7.5, 2.6)
        left, right = force.subplots(1, 2, width_ratios=[3, 2])
        _draw_force_values(left, f)
        _draw_failure_modes(right, f)
        out["force"] = _svg(force, figure_id("force", f.key))
    return out


def chamber_svg(c: ChamberRun) -> str:
    fig = _pyplot_free_figure(7.5, 2.8)
    _draw_chamber(fig.add_subplot(), c)
    return _svg(fig, figure_id("chamber", c.run.run))


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #1b1f24; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em;
  border-bottom: 1px solid #c8ced6; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #c8ced6; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #eef1f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.accept { color: #1b5e20; font-weight: bold; } .reject { color: #b71c1c; font-weight: bold; }
.open { color: #8a6d00; font-weight: bold; } .note { color: #555; font-size: 0.9em; }
figure { display: inline-block; margin: 0.5em; } figure svg { max-width: 100%; height: auto; }
.block { border: 2px solid #33506e; padding: 0.8em 1.2em; margin-top: 1em; }
.sign { margin-top: 2em; } .sign span { display: inline-block; min-width: 16em;
  border-bottom: 1px solid #000; margin-right: 2em; }
footer { margin-top: 2em; font-size: 0.8em; color: #555; border-top: 1px solid #c8ced6; }
@media print { figure { page-break-inside: avoid; } }
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _table(head: Sequence[str], rows: Iterable[str], cls: str) -> str:
    """A table of already-built ``<tr>`` rows."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    return (
        f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _row(cells: Iterable[str], **attrs: str) -> str:
    a = "".join(f' data-{k.replace("_", "-")}="{_e(v)}"' for k, v in attrs.items())
    return f"<tr{a}>{''.join(cells)}</tr>"


def _td(col: str, text: object) -> str:
    return f'<td data-col="{col}">{_e(text)}</td>'


def _cell(col: str, shown: str, value: object = None) -> str:
    data = "" if value is None else f' data-value="{_e(repr(value))}"'
    return f'<td class="num" data-col="{col}"{data}>{_e(shown)}</td>'


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}">\n<h2>{_e(title)}</h2>\n{body}\n</section>\n'


def _none(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def render_html(report: LotReport) -> str:
    """The report as one self-contained HTML document."""
    r, lot = report, report.lot
    title = f"Lot {lot.lot} of {lot.sku} — QC report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        _header(r, title),
        _section("decision", "Decision and reasons", _decision(r)),
        _section("sampling", "Acceptance sampling (ISO 2859-1)", _sampling(r)),
        _section("features", "Measured features", _features(r)),
        _section("golden", "Golden sample against this lot", _golden_table(r)),
        _section("figures", "Figures", _figures(r)),
        _section("drift", "Drift alarms against the golden sample", _drift(r)),
        _section("findings", "Findings (inspection)", _findings(r)),
        _section("failure-modes", "Failure modes", _failure_modes(r)),
        _section("corrosion", "Corrosion (salt spray)", _corrosion(r)),
        _section("calibration", "Calibration", _calibration(r)),
        _disposition(r),
        _footer(r),
        "</body></html>\n",
    ]
    return "\n".join(parts)


def _header(r: LotReport, title: str) -> str:
    lot = r.lot
    state = r.decision
    decided = (
        f'<span class="{_e(state)}" data-decision="{_e(state)}">{_e(state.upper())}</span>'
        if state != "open"
        else f'<span class="open" data-decision="open">open</span> (so far:'
        f" {_e(r.review.decision)})"
    )
    closed = "-"
    if lot.closed_ns is not None:
        closed = when(lot.closed_ns) + (
            f" by {r.closed_by}" if r.closed_by else " (who closed it is not recorded)"
        )
    pin = (
        "matches the pin recorded when the revision was first used"
        if r.pin_problem is None
        else r.pin_problem
    )
    rows = [
        ("SKU", f"{lot.sku} — {r.spec_title}"),
        ("Spec revision", f"{lot.spec_rev or '-'} (sha256 {r.spec_sha256}; {pin})"),
        ("PO", lot.po),
        ("Lot", lot.lot),
        ("Phase", lot.phase),
        ("Lot size", f"{lot.size} pieces"),
        ("Supplier", lot.supplier or "-"),
        ("Bench", r.bench),
        ("Started", when(lot.started_ns)),
        ("Measured", f"{when(r.first_ns)} to {when(r.last_ns)}"),
        ("Closed", closed),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    body += f"<tr><th>Decision</th><td>{decided}</td></tr>"
    return (
        f'<header id="header">\n<h1>{_e(title)}</h1>\n'
        f'<table class="header">{body}</table>\n</header>\n'
    )


def _decision(r: LotReport) -> str:
    lot = r.lot
    intro = ""
    if lot.closed_ns is None:
        intro = _none(f"The lot is open; the review so far says {r.review.decision}.")
    elif lot.decision != r.review.decision:
        intro = _none(
            f"Recorded decision {lot.decision}; the journal as it is now would give"
            f" {r.review.decision} (entries were added after the lot was closed)."
        )
    items = "".join(f"<li>{_e(x)}</li>" for x in r.reasons)
    notes = "".join(f"<li>{_e(x)}</li>" for x in r.notes)
    return f'{intro}<ul class="reasons">{items}</ul>' + (
        f'<p>Also on record:</p><ul class="notes">{notes}</ul>' if notes else ""
    )


def _sampling(r: LotReport) -> str:
    review = r.review
    rows = []
    for c in review.classes:
        inspected = _inspected(review, c)
        rows.append(_row([
            _td("class", c.defect_class),
            _cell("aql", f"{c.aql:g}", c.aql),
            _td("code", c.plan.code_letter),
            _cell("n", str(c.plan.sample_size), c.plan.sample_size),
            _cell("inspected", str(inspected), inspected),
            _cell("ac", str(c.plan.accept), c.plan.accept),
            _cell("re", str(c.plan.reject), c.plan.reject),
            _cell("found", str(c.nonconforming), c.nonconforming),
            _td("state", c.plan.state),
            _td("result", "REJECT" if c.decided == "reject" else "within acceptance"),
        ], defect_class=c.defect_class))  # fmt: skip
    head = _none(
        f"{review.units_inspected} sample unit(s) inspected; the largest sample is"
        f" {review.sample_size}. Each defect class has its own plan and switching state."
    )
    table = _table(
        ["class", "AQL", "code letter", "n", "inspected", "Ac", "Re", "found", "state", "result"],
        rows,
        "sampling",
    )
    variables = ""
    if review.variables:
        variables = (
            "<p>By variables (ANSI/ASQ Z1.9, s-method):</p><ul>"
            + "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in sorted(review.variables.items()))
            + "</ul>"
        )
    return head + table + variables


def _features(r: LotReport) -> str:
    if not r.features:
        return _none("No measured feature has a value in this lot.")
    rows = []
    for f in r.features:
        b = f.baseline
        cpk, cpl, cpu = _cap(f, "Cpk"), _cap(f, "Cpl"), _cap(f, "Cpu")
        rows.append(_row([
            _td("feature", f.key),
            _cell("n", str(f.n), f.n),
            _cell("mean", num(f.mean), f.mean),
            _cell("sd", num(f.sd, 3), f.sd),
            _cell("min", num(f.minimum), f.minimum),
            _cell("max", num(f.maximum), f.maximum),
            _td("limits", _limit_text(f)),
            _cell("pass", str(_counts(f, "pass")), _counts(f, "pass")),
            _cell("marginal", str(_counts(f, "marginal")), _counts(f, "marginal")),
            _cell("fail", str(_counts(f, "fail")), _counts(f, "fail")),
            _cell("suspect", str(_counts(f, "suspect")), _counts(f, "suspect")),
            _cell("cpk", _est(cpk), None if cpk is None else cpk.value),
            _cell("cpl", _est(cpl), None if cpl is None else cpl.value),
            _cell("cpu", _est(cpu), None if cpu is None else cpu.value),
            _cell("baseline_mean", num(b.mean) if b else "-", b.mean if b else None),
            _cell("baseline_sigma", num(b.sigma, 3) if b else "-", b.sigma if b else None),
            _td("baseline_version", f"v{b.version} ({b.instrument}, lot {b.lot})" if b else "-"),
            _cell("shift_sigma", num(f.shift_sigma, 3), f.shift_sigma),
        ], feature=f.key))  # fmt: skip
    table = _table(
        ["feature", "n", "mean", "sd", "min", "max", "limits", "pass", "marginal", "fail",
         "suspect", "Cpk (95 % CI)", "Cpl (95 % CI)", "Cpu (95 % CI)", "golden mean",
         "golden σ", "baseline", "shift (σ)"],
        rows, "features",
    )  # fmt: skip
    notes = [
        f"<li>{_e(f.key)}: {_e(f.baseline_note)}</li>" for f in r.features if f.baseline_note
    ] + [f"<li>{_e(f.key)} by variables: {_e(f.variables)}</li>" for f in r.features
         if f.variables]  # fmt: skip
    explain = _none(
        "n, mean, sd, min and max are over the values the lot review judged (suspect readings"
        " left out); the counts are the review's verdicts. Capability indices need at least 5"
        " values and a limit; the interval is Bissell's 95 % interval. The shift is"
        " (lot mean − golden mean) / golden σ."
    )
    return table + explain + (f"<ul>{''.join(notes)}</ul>" if notes else "")


def _figures(r: LotReport) -> str:
    if not r.features:
        return _none("No figures: no measured feature has a value in this lot.")
    out = []
    for f in r.features:
        svgs = figure_svgs(f)
        golden = (
            f"against the golden sample (lot {', '.join(f.golden.lots)}, n {f.golden.n}),"
            " spec limits and the golden mean"
            if f.golden is not None
            else "(no golden-sample value of this feature), spec limits"
            + (" and the golden baseline's mean" if f.baseline is not None else "")
        )
        centre = _centre(f)
        limits = (
            f"centre line {centre[2]} (mean {num(centre[0])}, σ {num(centre[1], 3)}) ± 3σ"
            if centre is not None
            else "no golden baseline, so no control limits"
        )
        mine = [a for a in r.alarms if a.feature == f.feature]
        marked = (
            f"{f.alarm_marks} drift alarm(s) marked on the first reading at or after each"
            if mine or f.alarm_marks
            else "no drift alarm"
        )
        if len(mine) > f.alarm_marks:
            marked += f" ({len(mine) - f.alarm_marks} with no reading after it)"
        block = [
            f'<div class="feature-figures" data-feature="{_e(f.key)}"><h3>{_e(f.key)}</h3>',
            f'<figure class="histogram">{svgs["hist"]}<figcaption>{_e(f.key)}: this lot (n'
            f" {f.n}) {_e(golden)}</figcaption></figure>",
            f'<figure class="chart" data-alarms="{f.alarm_marks}">{svgs["chart"]}<figcaption>'
            f"Individuals chart of {_e(f.key)}: spec limits, {_e(limits)}; {_e(marked)}"
            "</figcaption></figure>",
        ]
        if "force" in svgs:
            told = sum(f.failure_modes.values())
            block.append(
                f'<figure class="force">{svgs["force"]}<figcaption>{_e(f.key)}: distribution'
                f" of the {f.n} judged value(s) beside the {told} failure mode(s) entered for"
                f" {_e(f.feature)}</figcaption></figure>"
            )
        out.append("".join(block) + "</div>")
    return "\n".join(out)


def _golden_table(r: LotReport) -> str:
    if not r.features:
        return _none("No measured feature has a value in this lot.")
    rows = []
    for f in r.features:
        g = f.golden
        rows.append(_row([
            _td("feature", f.key),
            _td("golden_lots", ", ".join(g.lots) if g else "-"),
            _cell("golden_n", str(g.n) if g else "0", g.n if g else 0),
            _cell("golden_mean", num(g.mean) if g else "-", g.mean if g else None),
            _cell("golden_sd", num(g.sd, 3) if g else "-", g.sd if g else None),
            _cell("lot_n", str(f.n), f.n),
            _cell("lot_mean", num(f.mean), f.mean),
            _cell("lot_sd", num(f.sd, 3), f.sd),
            _cell("shift", num(f.golden_shift, 3), f.golden_shift),
            _td("unit", f.unit or "-"),
        ], feature=f.key))  # fmt: skip
    table = _table(
        ["feature", "golden lot(s)", "golden n", "golden mean", "golden sd", "lot n",
         "lot mean", "lot sd", "mean shift (golden σ)", "unit"],
        rows, "golden",
    )  # fmt: skip
    left = [f"{f.key}: {f.golden.left_out}" for f in r.features if f.golden and f.golden.left_out]
    return table + _none(
        "Golden values are every reading of the feature in the SKU's golden-sample lot(s) in the"
        " journal, by the lot's own rule (suspect readings left out"
        + (f": {'; '.join(left)} left out" if left else "")
        + "). The shift is (lot mean − golden mean) / golden sd; the drift alarms use the"
        " baseline frozen when the golden lot closed (per instrument, in the features table)."
    )


def _drift(r: LotReport) -> str:
    if not r.alarms:
        return _none("No drift alarm was raised for this lot.")
    rows = [
        _row([_td("time", when(a.time_ns)), _td("feature", a.feature),
              _td("instrument", a.instrument), _td("rule", a.rule), _td("message", a.message)])
        for a in r.alarms
    ]  # fmt: skip
    return _table(["time", "feature", "instrument", "rule", "message"], rows, "drift")


def _findings(r: LotReport) -> str:
    if not r.findings:
        return _none("No setting-method or hardware finding was entered for this lot.")
    rows = [
        _row([_td("time", when(f.time_ns)), _td("feature", f.feature),
              _td("unit", f.sample_unit or "-"), _td("observed", f.observed or "-"),
              _td("specified", f.specified or "-"), _td("status", f.status),
              _td("reason", f.reason or "-"), _td("by", f.entered_by or "-")])
        for f in r.findings
    ]  # fmt: skip
    return _table(
        ["time", "check", "sample unit", "observed", "specified", "status", "reason", "by"],
        rows, "findings",
    )  # fmt: skip


def _failure_modes(r: LotReport) -> str:
    if not r.failure_modes:
        return _none("No failure mode was entered for this lot.")
    counts = []
    for test, modes in sorted(r.failure_mode_counts.items()):
        crow = [
            _row([_td("test", test), _td("mode", mode), _cell("count", str(n), n)], mode=mode)
            for mode, n in sorted(modes.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        counts.append(
            f'<div class="failure-mode-counts" data-test="{_e(test)}">'
            + _table(["test", "mode", "count"], crow, "mode-counts")
            + "</div>"
        )
    rows = [
        _row([_td("time", when(m.time_ns)), _td("test", m.test), _td("mode", m.mode),
              _td("unit", m.sample_unit or "-"), _td("by", m.entered_by or "-")])
        for m in r.failure_modes
    ]  # fmt: skip
    return "".join(counts) + _table(
        ["time", "test", "mode", "sample unit", "by"], rows, "failure-modes"
    )


def _ratings(checks: Sequence[SpecimenCheck]) -> str:
    return "; ".join(f"{c.rating:g} at {c.valid_hours:.1f} h" for c in checks) or "no check yet"


def _corrosion(r: LotReport) -> str:
    out = []
    if r.specimens:
        rows = [
            _row([_td("run", s.run), _td("cabinet", f"{s.cabinet} ({s.standard})"),
                  _td("specimen", s.specimen), _td("loaded", when(s.loaded_ns)),
                  _td("unloaded", when(s.unloaded_ns)),
                  _cell("valid_hours", num(s.valid_hours), s.valid_hours),
                  _td("note", s.hours_note or "-"), _td("ratings", _ratings(s.checks))],
                 specimen=s.specimen)
            for s in r.specimens
        ]  # fmt: skip
        out.append(_table(
            ["run", "cabinet", "specimen", "loaded", "unloaded", "valid h", "hours", "ratings"],
            rows, "specimens",
        ))  # fmt: skip
    else:
        out.append(_none("No specimen of this lot is in a salt-spray run."))
    for c in r.chambers:
        out.append(_chamber_figure(c))
    if r.corrosion:
        rows = [
            _row([_td("time", when(c.time_ns)), _cell("rating", f"{c.rating:g}", c.rating),
                  _cell("hours", num(c.hours), c.hours), _td("specimen", c.specimen or "-"),
                  _td("status", c.status)])
            for c in r.corrosion
        ]  # fmt: skip
        out.append("<p>Corrosion ratings recorded for the lot:</p>")
        out.append(_table(["time", "rating", "hours", "specimen", "status"], rows, "ratings"))
    return "\n".join(out)


def _check_text(c: CalibrationCheck | None) -> str:
    if c is None:
        return "none recorded"
    return f"{when(c.at_ns)}: {'passed' if c.ok else 'FAILED'} ({c.detail})"


def _chamber_figure(c: ChamberRun) -> str:
    hours = "-" if c.valid_hours is None else f"{c.valid_hours:.2f}"
    data = "" if c.valid_hours is None else f' data-valid-hours="{c.valid_hours!r}"'
    specimens = ", ".join(s.specimen for s in c.specimens)
    if not c.zone:
        return _none(f"Run {c.run.run} ({specimens}): {c.note}.")
    shown = (
        f"{len(c.times_ns)} of {c.readings} readings drawn (lowest and highest per interval)"
        if len(c.times_ns) < c.readings
        else f"{c.readings} readings"
    )
    caption = (
        f"Run {c.run.run} in {c.run.cabinet} ({c.run.standard}), {when(c.run.started_ns)} to"
        f" {when(c.run.stopped_ns) if c.run.stopped_ns is not None else 'now (going)'}: zone"
        f" {c.zone} {c.channel}, {shown}; {c.out_of_band} outside the band;"
        f" {len(c.excursions)} excursion(s) shaded; specimens of this lot: {specimens}."
        f" Valid exposure of the run: {hours} h ({c.note}), as 'daq chamber status' counts it."
    )
    return (
        f'<figure class="chamber" data-run="{_e(c.run.run)}"{data}'
        f' data-excursions="{len(c.excursions)}">{chamber_svg(c)}'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _calibration(r: LotReport) -> str:
    rows = []
    for i in r.instruments:
        checks = "; ".join(_check_text(c) for c in i.checks) or "none recorded"
        due = i.calibration_due.isoformat() if i.calibration_due else "-"
        cls = "reject" if i.overdue or "FAILED" in i.status else ""
        rows.append(_row([
            _td("instrument", i.name),
            _cell("readings", str(i.readings), i.readings),
            _td("due", due),
            f'<td data-col="status" class="{cls}">{_e(i.status)}</td>',
            _td("last_check", _check_text(i.last_check)),
            _cell("suspect", str(i.suspect), i.suspect),
            _td("checks", checks),
        ], instrument=i.name))  # fmt: skip
    out = [
        _table(
            ["instrument", "readings", "calibration due", "status", "last reference check",
             "suspect readings", "reference checks"],
            rows, "instruments",
        ),
        _none(
            f"Status as of {when(r.generated_ns)[:10]}: 'overdue' when the bench config's"
            " calibration_due has passed. Readings taken after that date are judged suspect."
        ),
    ]  # fmt: skip
    if r.suspects:
        srows = [
            _row([_td("time", when(s.time_ns)), _td("feature", s.key),
                  _td("instrument", s.instrument), _td("value", s.value), _td("why", s.why)])
            for s in r.suspects
        ]  # fmt: skip
        out.append(f"<p>{len(r.suspects)} suspect reading(s):</p>")
        out.append(_table(["time", "feature", "instrument", "value", "why"], srows, "suspects"))
    else:
        out.append(_none("No reading of this lot is suspect."))
    return "\n".join(out)


def _signature(*labels: str) -> str:
    return '<p class="sign">' + "".join(f"{_e(x)}: <span></span>" for x in labels) + "</p>"


def _disposition(r: LotReport) -> str:
    lot = r.lot
    if r.decision == "accept":
        body = (
            f"<p>We certify that lot <b>{_e(lot.lot)}</b> of <b>{_e(lot.sku)}</b>"
            f" ({_e(r.spec_title)}), purchase order {_e(lot.po)}, {lot.size} pieces"
            f"{' from ' + _e(lot.supplier) if lot.supplier else ''}, was inspected and tested"
            f" on bench {_e(r.bench)} and conforms to specification {_e(lot.sku)} revision"
            f" {_e(lot.spec_rev or '-')} (sha256 {_e(r.spec_sha256)}): acceptance sampling"
            " per ISO 2859-1 found every defect class within its acceptance number, and no"
            f" measured feature failed the written spec. Decision recorded {when(lot.closed_ns)}"
            f"{' by ' + _e(r.closed_by) if r.closed_by else ''}."
            "</p>" + _signature("Signed (QC lead)", "Name", "Date")
        )
        return _section("coc", "Certificate of Conformance", f'<div class="block">{body}</div>')
    if r.decision == "reject":
        failed = "".join(f"<li>{_e(x)}</li>" for x in r.reasons)
        options = "".join(
            f"<li>[ ] {_e(x)}</li>"
            for x in ("Return to supplier", "Sort 100 % and re-inspect", "Rework and re-inspect",
                      "Scrap", "Use as is (concession; customer approval attached)")
        )  # fmt: skip
        body = (
            f'<p>NCR number: <b data-ncr="{_e(r.ncr_number)}">{_e(r.ncr_number)}</b></p>'
            f"<p>Lot {_e(lot.lot)} of {_e(lot.sku)}, PO {_e(lot.po)}, {lot.size} pieces"
            f"{', supplier ' + _e(lot.supplier) if lot.supplier else ''}; specification"
            f" revision {_e(lot.spec_rev or '-')}; rejected {when(lot.closed_ns)}"
            f"{' by ' + _e(r.closed_by) if r.closed_by else ''}.</p>"
            f"<p>What failed:</p><ul>{failed}</ul><p>Disposition:</p><ul>{options}</ul>"
            + _signature("Disposition by", "Date")
            + _signature("Supplier acknowledged by", "Date")
        )
        return _section("ncr", "Nonconformance Report", f'<div class="block">{body}</div>')
    return _section(
        "open-lot",
        "Certificate",
        _none("The lot is still open: no Certificate of Conformance or Nonconformance Report"
              " until it is closed with 'daq lot close'."),
    )  # fmt: skip


def _footer(r: LotReport) -> str:
    return (
        f'<footer id="footer"><p>Hallmark {_e(r.version)} · journal {_e(r.journal_path)} ·'
        f" generated {when(r.generated_ns)} · built from"
        f' <span data-points="{r.points}">{r.points}</span> journal points of this lot</p>'
        "</footer>"
    )


# -- PDF --------------------------------------------------------------------------------------


def text_lines(r: LotReport) -> list[str]:
    """The report's tables and words as plain text lines (the PDF's text pages)."""
    lot, review = r.lot, r.review
    out = [
        f"Lot {lot.lot} of {lot.sku} - QC report",
        "",
        f"SKU: {lot.sku} - {r.spec_title}",
        f"Spec revision: {lot.spec_rev or '-'}  sha256 {r.spec_sha256}",
        f"  pin: {r.pin_problem or 'matches the pin recorded at first use'}",
        f"PO: {lot.po}   lot: {lot.lot}   phase: {lot.phase}   size: {lot.size}"
        f"   supplier: {lot.supplier or '-'}   bench: {r.bench}",
        f"Started: {when(lot.started_ns)}   measured {when(r.first_ns)} to {when(r.last_ns)}",
        f"Decision: {r.decision.upper()}"
        + (f" (closed {when(lot.closed_ns)}" + (f" by {r.closed_by})" if r.closed_by else ")")
           if lot.closed_ns is not None else f" (so far: {review.decision})"),
        "",
        "DECISION AND REASONS",
        *(f"  - {x}" for x in r.reasons),
        *(f"  - also: {x}" for x in r.notes),
        "",
        "ACCEPTANCE SAMPLING (ISO 2859-1)",
        f"  {'class':<9}{'AQL':>6} {'code':>4} {'n':>5} {'insp':>5} {'Ac':>3} {'Re':>3}"
        f" {'found':>5}  state",
    ]  # fmt: skip
    for c in review.classes:
        out.append(
            f"  {c.defect_class:<9}{c.aql:>6g} {c.plan.code_letter:>4} {c.plan.sample_size:>5}"
            f" {_inspected(review, c):>5} {c.plan.accept:>3} {c.plan.reject:>3}"
            f" {c.nonconforming:>5}  {c.plan.state}" + ("  REJECT" if c.decided == "reject" else "")
        )
    out += [f"  {k} by variables: {v}" for k, v in sorted(review.variables.items())]
    out += ["", "MEASURED FEATURES"]
    for f in r.features:
        b = f.baseline
        out += [
            f"  {f.key} [{f.unit}]: n {f.n}, mean {num(f.mean)}, sd {num(f.sd, 3)},"
            f" min {num(f.minimum)}, max {num(f.maximum)}, limits {_limit_text(f)}",
            f"    pass {_counts(f, 'pass')}, marginal {_counts(f, 'marginal')},"
            f" fail {_counts(f, 'fail')}, suspect {_counts(f, 'suspect')};"
            f" Cpk {_est(_cap(f, 'Cpk'))}, Cpl {_est(_cap(f, 'Cpl'))},"
            f" Cpu {_est(_cap(f, 'Cpu'))}",
            "    golden sample: "
            + (f"mean {num(b.mean)}, σ {num(b.sigma, 3)}, v{b.version} ({b.instrument});"
               f" shift {num(f.shift_sigma, 3)} σ" if b else "none")
            + (f" ({f.baseline_note})" if f.baseline_note else ""),
        ]  # fmt: skip
    if not r.features:
        out.append("  none")
    out += ["", "GOLDEN SAMPLE AGAINST THIS LOT"]
    for f in r.features:
        g = f.golden
        out.append(
            f"  {f.key}: golden "
            + (f"n {g.n}, mean {num(g.mean)}, sd {num(g.sd, 3)} (lot {', '.join(g.lots)})"
               if g else "none")
            + f"; this lot n {f.n}, mean {num(f.mean)}, sd {num(f.sd, 3)};"
            f" shift {num(f.golden_shift, 3)} golden σ"
        )  # fmt: skip
    out += ["", "DRIFT ALARMS"]
    out += [f"  {when(a.time_ns)} {a.feature} {a.rule}: {a.message}" for a in r.alarms] or [
        "  none"
    ]
    out += ["", "FINDINGS"]
    out += [
        f"  {when(f.time_ns)} {f.feature} unit {f.sample_unit or '-'}: {f.status}"
        f" (observed {f.observed or '-'}, specified {f.specified or '-'}) {f.reason}"
        for f in r.findings
    ] or ["  none"]
    out += ["", "FAILURE MODES"]
    out += [
        f"  {test}: " + ", ".join(f"{n} {mode}" for mode, n in sorted(modes.items()))
        for test, modes in sorted(r.failure_mode_counts.items())
    ]
    out += [
        f"  {when(m.time_ns)} {m.test}: {m.mode} (unit {m.sample_unit or '-'})"
        for m in r.failure_modes
    ] or ["  none"]
    out += ["", "CORROSION"]
    out += [
        f"  run {s.run} ({s.cabinet}, {s.standard}) specimen {s.specimen}:"
        f" {num(s.valid_hours)} valid h {s.hours_note}; ratings: {_ratings(s.checks)}"
        for s in r.specimens
    ] or ["  no specimen in a salt-spray run"]
    out += [
        f"  run {c.run.run}: {c.readings} zone readings, {c.out_of_band} outside the band,"
        f" {len(c.excursions)} excursion(s); run valid hours {num(c.valid_hours)} ({c.note})"
        for c in r.chambers
    ]
    out += [
        f"  rating {c.rating:g} at {num(c.hours)} h ({c.status}) {when(c.time_ns)}"
        for c in r.corrosion
    ]
    out += ["", "CALIBRATION"]
    for i in r.instruments:
        due = i.calibration_due.isoformat() if i.calibration_due else "-"
        out.append(
            f"  {i.name}: {i.readings} reading(s), {i.suspect} suspect, calibration due {due}"
            f" ({i.status})"
        )
        out += [
            f"    {when(c.at_ns)} {'passed' if c.ok else 'FAILED'}: {c.detail}" for c in i.checks
        ]
    out += [f"  suspect: {when(s.time_ns)} {s.key} {s.value} ({s.why})" for s in r.suspects]
    out += ["", *_disposition_lines(r), ""]
    out.append(
        f"Hallmark {r.version} - journal {r.journal_path} - generated {when(r.generated_ns)}"
        f" - built from {r.points} journal points of this lot"
    )
    return out


def _disposition_lines(r: LotReport) -> list[str]:
    lot = r.lot
    if r.decision == "accept":
        return [
            "CERTIFICATE OF CONFORMANCE",
            f"  We certify that lot {lot.lot} of {lot.sku}, PO {lot.po}, {lot.size} pieces,"
            f" conforms to specification {lot.sku} revision {lot.spec_rev or '-'}"
            f" (sha256 {r.spec_sha256}).",
            "",
            "  Signed (QC lead): ____________________  Name: ____________________"
            "  Date: ____________",
        ]
    if r.decision == "reject":
        return [
            f"NONCONFORMANCE REPORT {r.ncr_number}",
            *(f"  failed: {x}" for x in r.reasons),
            "  Disposition: [ ] return to supplier  [ ] sort 100 %  [ ] rework  [ ] scrap"
            "  [ ] use as is (concession)",
            "",
            "  Disposition by: ____________________  Date: ____________",
            "  Supplier acknowledged by: ____________________  Date: ____________",
        ]
    return ["The lot is still open: no certificate until it is closed."]


#: A4 portrait, in inches; lines of monospace text per page.
_PAGE = (8.27, 11.69)
_LINES_PER_PAGE = 78
_WRAP = 110


def render_pdf(r: LotReport, path: Path) -> None:
    """Write the report as a PDF: text pages, then one page of figures per feature."""
    from matplotlib.backends.backend_pdf import PdfPages

    lines: list[str] = []
    for line in text_lines(r):
        indent = len(line) - len(line.lstrip(" "))
        lines += textwrap.wrap(line, _WRAP, subsequent_indent=" " * (indent + 4)) or [""]
    pages = [lines[i : i + _LINES_PER_PAGE] for i in range(0, len(lines), _LINES_PER_PAGE)]
    info = {"Title": f"Lot {r.lot.lot} of {r.lot.sku} - QC report", "Creator": "Hallmark"}
    with PdfPages(path, metadata=info) as pdf:
        for number, page in enumerate(pages, 1):
            fig = _pyplot_free_figure(*_PAGE)
            fig.set_layout_engine("none")
            fig.text(0.06, 0.965, "\n".join(page), family="monospace", fontsize=7.2, va="top",
                     linespacing=1.25)  # fmt: skip
            fig.text(0.94, 0.02, f"page {number} of {len(pages)}", ha="right", fontsize=7)
            pdf.savefig(fig)
        for f in r.features:
            fig = _pyplot_free_figure(*_PAGE)
            if f.measurement == "force":
                grid = fig.add_gridspec(3, 5)
                _draw_histogram(fig.add_subplot(grid[0, :]), f)
                _draw_chart(fig.add_subplot(grid[1, :]), f)
                _draw_force_values(fig.add_subplot(grid[2, :3]), f)
                _draw_failure_modes(fig.add_subplot(grid[2, 3:]), f)
            else:
                top, bottom = fig.subplots(2, 1)
                _draw_histogram(top, f)
                _draw_chart(bottom, f)
            fig.suptitle(f"{f.key} - lot {r.lot.lot} of {r.lot.sku}", fontsize=10)
            pdf.savefig(fig)
        for c in r.chambers:
            if not c.zone:
                continue
            fig = _pyplot_free_figure(_PAGE[0], _PAGE[1] / 2.5)
            _draw_chamber(fig.add_subplot(), c)
            fig.suptitle(f"salt spray - lot {r.lot.lot} of {r.lot.sku}", fontsize=10)
            pdf.savefig(fig)
