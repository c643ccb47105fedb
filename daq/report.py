"""A lot's QC report: gathered from the journal and the lot store, rendered as HTML and PDF.

Two steps, kept apart so the second is pure:

1. :func:`gather` reads what the bench recorded about one lot (its points in the journal, the
   lot store's baselines and reference checks, the salt-spray runs' specimens) into a
   :class:`LotReport`. The lot's decision figures are the :class:`LotReview` that
   ``daq lot status`` and ``daq lot close`` compute (the caller passes it in), so the report
   can never disagree with them; the per-feature statistics are taken over exactly the values
   that review judged (suspect readings left out), and the capability index is the review's.
2. :func:`render_html` writes one self-contained HTML file (CSS inline, figures as inline SVG,
   no external file or network access); :func:`render_pdf` writes the same content as a PDF
   (text pages, then a page of figures per feature) with matplotlib's ``PdfPages``.

Figures (matplotlib, Agg backend): a histogram per feature with the spec limits and the
golden-sample mean, and an individuals chart (value against order) with the spec limits and the
baseline's control limits, mean ± 3σ (the individuals chart from a known σ: Montgomery,
*Introduction to Statistical Quality Control*, ch. 6; docs/schema.md ``baseline``), drift alarms
marked at the reading that raised them.
"""

from __future__ import annotations

import html
import io
import math
import re
import statistics
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from daq.config import Config
from daq.journal import Journal
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
from daq.runs import RunAccount, RunStore, SpecimenCheck, cabinets, max_gap_s
from daq.skuspec import SpecFile

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CorrosionEntry",
    "DriftAlarm",
    "FailureMode",
    "FeatureReading",
    "FeatureReport",
    "Finding",
    "InstrumentUse",
    "LotReport",
    "SpecimenReport",
    "SuspectReading",
    "decision_notes",
    "decision_reasons",
    "gather",
    "render_html",
    "render_pdf",
]

#: Measurements that are not measured features with a value to chart: what the lot review
#: leaves out (daq/quality/lotreview.py ``NOT_PRODUCT``), events and attribute entries.
NOT_FEATURES = NOT_PRODUCT | {"event", "inspection", "failure_mode"}


@dataclass(frozen=True, slots=True)
class FeatureReading:
    order: int  # 1-based, in journal order within the feature
    time_ns: int
    value: float
    status: str
    instrument: str
    judged: bool  # counted in the statistics (False when suspect, as in the lot review)
    alarms: tuple[str, ...] = ()  # drift-alarm rules raised at this reading


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
class InstrumentUse:
    name: str
    readings: int
    calibration_due: date | None
    checks: tuple[CalibrationCheck, ...]


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


# -- gathering --------------------------------------------------------------------------------


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _suspect_ranges(config: Config, store: LotStore) -> dict[str, list[tuple[int, int]]]:
    # The rule of daq/lotcli.py ``_review``: a reading of a configured instrument taken between
    # its last good and a failed reference check is suspect.
    return {i.name: store.suspect_ranges(i.name) for i in config.instrument}


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
    ranges = _suspect_ranges(config, store)

    def in_suspect_range(p: Point) -> bool:
        spans = ranges.get(p.tags.get("instrument", ""), [])
        return any(a <= p.time_ns <= b for a, b in spans)

    alarms = tuple(
        DriftAlarm(p.time_ns, p.tags.get("feature", ""), p.tags.get("instrument", ""),
                   p.tags.get("rule", ""), _text(p.fields.get("message")))
        for p in points
        if p.measurement == "event" and p.tags.get("kind") == "drift_alarm"
    )  # fmt: skip
    alarm_at: dict[tuple[str, str, int], list[str]] = {}
    for a in alarms:
        alarm_at.setdefault((a.feature, a.instrument, a.time_ns), []).append(a.rule)

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
        suspect = status == "suspect" or (in_suspect_range(p) and status in ("pass", "marginal"))
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
                           instrument, not suspect,
                           tuple(alarm_at.get((feature, instrument, p.time_ns), ())))
        )  # fmt: skip
        units[key] = _text(p.fields.get("unit"))
        if not suspect:
            low, high = p.fields.get("low"), p.fields.get("high")
            limits[key] = Limits(
                low if isinstance(low, float) else None, high if isinstance(high, float) else None
            )

    baselines = store.baselines(lot.sku)
    end_ns = lot.closed_ns if lot.closed_ns is not None else now_ns
    features = []
    for key in sorted(k for k in readings if k.split(".", 1)[0] not in NOT_FEATURES):
        measurement, _, feature = key.partition(".")
        rs = readings[key]
        lim = limits.get(key, Limits())
        base, note = _baseline_for(baselines, measurement, feature, rs, lot=lot, end_ns=end_ns)
        cpl, cpu = _sides([r.value for r in rs if r.judged], lim)
        features.append(
            FeatureReport(
                key, units.get(key, ""), tuple(rs), lim.low, lim.high,
                dict(review.verdicts.get(key, {})), review.capability.get(key), cpl, cpu,
                base, note, review.variables.get(key),
            )
        )  # fmt: skip

    instruments_cfg = {i.name: i for i in config.instrument}
    instruments = tuple(
        InstrumentUse(
            name, count,
            instruments_cfg[name].calibration_due if name in instruments_cfg else None,
            tuple(store.calibration_checks(name)),
        )
        for name, count in sorted(used.items())
        if name != "operator"  # a person's entries (visual, ratings), not an instrument
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
        instruments=instruments,
        suspects=tuple(suspects),
        first_ns=min(times, default=None),
        last_ns=max(times, default=None),
        journal_path=journal.path,
        points=len(points),
        generated_ns=now_ns,
        version=_version(),
        reasons=tuple(decision_reasons(review)),
        notes=tuple(decision_notes(review)),
    )


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


def _draw_histogram(ax: object, f: FeatureReport) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    values = f.values
    if values:
        bins = max(1, min(15, math.ceil(math.sqrt(len(values))) + 1))
        ax.hist(values, bins=bins, color="#7a9cc6", edgecolor="#33506e")
    else:
        ax.text(0.5, 0.5, "no judged values", ha="center", va="center", transform=ax.transAxes)
    for x, name in ((f.low, "LSL"), (f.high, "USL")):
        if x is not None:
            ax.axvline(x, color="#b22222", linestyle="--", linewidth=1.2, label=f"{name} {num(x)}")
    if f.baseline is not None:
        ax.axvline(f.baseline.mean, color="#2e7d32", linewidth=1.5,
                   label=f"golden mean {num(f.baseline.mean)}")  # fmt: skip
    ax.set_title(f"{f.key}: histogram (n {f.n})", fontsize=9)
    ax.set_xlabel(f.unit or "value", fontsize=8)
    ax.set_ylabel("count", fontsize=8)
    ax.tick_params(labelsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _draw_chart(ax: object, f: FeatureReport) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    judged = [r for r in f.readings if r.judged]
    other = [r for r in f.readings if not r.judged]
    ax.plot([r.order for r in f.readings], [r.value for r in f.readings], color="#9aa7b4",
            linewidth=0.8)  # fmt: skip
    ax.plot([r.order for r in judged], [r.value for r in judged], "o", color="#33506e",
            markersize=4, label="reading")  # fmt: skip
    if other:
        ax.plot([r.order for r in other], [r.value for r in other], "o", markerfacecolor="none",
                color="#888888", markersize=5, label="suspect (not judged)")  # fmt: skip
    for y, name in ((f.low, "LSL"), (f.high, "USL")):
        if y is not None:
            ax.axhline(y, color="#b22222", linestyle="--", linewidth=1.2, label=f"{name} {num(y)}")
    b = f.baseline
    if b is not None:
        ax.axhline(b.mean, color="#2e7d32", linewidth=1.2, label=f"golden mean v{b.version}")
        for y in (b.mean - 3 * b.sigma, b.mean + 3 * b.sigma):
            ax.axhline(y, color="#2e7d32", linestyle=":", linewidth=1.2)
        ax.plot([], [], color="#2e7d32", linestyle=":", label="baseline mean ± 3σ")
    alarmed = [r for r in f.readings if r.alarms]
    if alarmed:
        ax.plot([r.order for r in alarmed], [r.value for r in alarmed], "X", color="#d32f2f",
                markersize=9, label="drift alarm")  # fmt: skip
        for r in alarmed:
            ax.annotate(", ".join(r.alarms), (r.order, r.value), textcoords="offset points",
                        xytext=(4, 6), fontsize=6, color="#d32f2f")  # fmt: skip
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{f.key}: individuals chart", fontsize=9)
    ax.set_xlabel("reading in order", fontsize=8)
    ax.set_ylabel(f.unit or "value", fontsize=8)
    ax.tick_params(labelsize=7)
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


def _svg(fig: Figure, salt: str) -> str:
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = _SVG_METADATA.sub("", _SVG_HEAD.sub("", buf.getvalue(), count=1), count=1)
    return _prefix_ids(text.strip(), re.sub(r"[^A-Za-z0-9_-]", "_", salt))


def figure_svgs(f: FeatureReport) -> tuple[str, str]:
    """(histogram, individuals chart) of a feature as inline SVG text."""
    hist = _pyplot_free_figure(6.0, 2.8)
    _draw_histogram(hist.add_subplot(), f)
    chart = _pyplot_free_figure(6.0, 2.8)
    _draw_chart(chart.add_subplot(), f)
    return _svg(hist, f"{f.key}-hist"), _svg(chart, f"{f.key}-chart")


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
        hist, chart = figure_svgs(f)
        out.append(
            f'<div class="feature-figures" data-feature="{_e(f.key)}"><h3>{_e(f.key)}</h3>'
            f'<figure class="histogram">{hist}<figcaption>Histogram of {_e(f.key)} with the'
            " spec limits and the golden-sample mean</figcaption></figure>"
            f'<figure class="chart">{chart}<figcaption>Individuals chart of {_e(f.key)}:'
            " spec limits, baseline mean ± 3σ, drift alarms marked</figcaption></figure></div>"
        )
    return "\n".join(out)


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
    rows = [
        _row([_td("time", when(m.time_ns)), _td("test", m.test), _td("mode", m.mode),
              _td("unit", m.sample_unit or "-"), _td("by", m.entered_by or "-")])
        for m in r.failure_modes
    ]  # fmt: skip
    return _table(["time", "test", "mode", "sample unit", "by"], rows, "failure-modes")


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


def _calibration(r: LotReport) -> str:
    rows = []
    for i in r.instruments:
        checks = (
            "; ".join(
                f"{when(c.at_ns)}: {'passed' if c.ok else 'FAILED'} ({c.detail})" for c in i.checks
            )
            or "none recorded"
        )
        due = i.calibration_due.isoformat() if i.calibration_due else "-"
        rows.append(_row([_td("instrument", i.name), _cell("readings", str(i.readings),
                          i.readings), _td("due", due), _td("checks", checks)],
                         instrument=i.name))  # fmt: skip
    out = [_table(["instrument", "readings", "calibration due", "reference checks"], rows,
                  "instruments")]  # fmt: skip
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
            f" measured feature failed the written spec. Decision recorded {when(lot.closed_ns)}."
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
            f" revision {_e(lot.spec_rev or '-')}; rejected {when(lot.closed_ns)}.</p>"
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
        f"  rating {c.rating:g} at {num(c.hours)} h ({c.status}) {when(c.time_ns)}"
        for c in r.corrosion
    ]
    out += ["", "CALIBRATION"]
    for i in r.instruments:
        due = i.calibration_due.isoformat() if i.calibration_due else "-"
        out.append(f"  {i.name}: {i.readings} reading(s), calibration due {due}")
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
            top, bottom = fig.subplots(2, 1)
            _draw_histogram(top, f)
            _draw_chart(bottom, f)
            fig.suptitle(f"{f.key} - lot {r.lot.lot} of {r.lot.sku}", fontsize=10)
            pdf.savefig(fig)
