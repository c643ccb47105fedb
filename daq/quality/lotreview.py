"""A lot's progress and decision, computed from what the journal holds for it.

Pure: given the lot, its spec and its points, it counts the sample units inspected and the
nonconforming units per defect class, looks up the acceptance-sampling plan of each class
(ISO 2859-1, daq/quality/sampling.py) and compares; it counts the measured features that failed
the written spec, the drift alarms raised against the golden sample, and the readings that are
suspect (instrument past calibration, or taken between a good and a failed reference check).

Decision rules, written down so nobody has to guess:

- reject when any defect class reaches its reject number, or when any measured feature fails
  the written spec (destructive tests are small samples with acceptance number 0);
- otherwise accept; drift alarms and suspect readings do not reject a lot that meets the spec,
  but they are part of the evidence and stop a pre-production lot from locking the process.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from daq.lots import Lot
from daq.model import Limits, Point
from daq.quality.capability import capability_of
from daq.quality.sampling import (
    SamplingPlan,
    code_letter,
    plan,
    progress_text,
    variables_decision,
    variables_plan,
)
from daq.quality.sampling_tables import SAMPLE_SIZE, SAMPLE_SIZE_REDUCED
from daq.skuspec import DefectClass, SkuSpec

__all__ = ["NOT_PRODUCT", "CapabilityFigure", "ClassResult", "LotReview", "review_lot"]

CLASSES: tuple[DefectClass, ...] = ("critical", "major", "minor")


@dataclass(frozen=True, slots=True)
class ClassResult:
    defect_class: DefectClass
    aql: float
    plan: SamplingPlan
    nonconforming: int

    @property
    def decided(self) -> str | None:
        if self.nonconforming >= self.plan.reject:
            return "reject"
        return None


@dataclass(frozen=True, slots=True)
class CapabilityFigure:
    """A capability index of one feature in a lot, with its 95 % confidence interval."""

    name: str  # Cpk, Cpl or Cpu
    value: float
    lower: float
    upper: float
    n: int
    mean: float

    def text(self) -> str:
        return (
            f"{self.name} {self.value:.2f} (95 % CI {self.lower:.2f}–{self.upper:.2f}),"
            f" n {self.n}, mean {self.mean:.4g}"
        )


@dataclass(frozen=True, slots=True)
class LotReview:
    lot: Lot
    units_inspected: int
    classes: tuple[ClassResult, ...]
    verdicts: dict[str, Counter[str]]
    failures: tuple[str, ...]
    drift_alarms: int
    suspect: int
    findings: tuple[str, ...] = field(default=())
    capability: dict[str, CapabilityFigure] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    variables_rejected: tuple[str, ...] = ()

    @property
    def sample_size(self) -> int:
        return max((c.plan.sample_size for c in self.classes), default=0)

    @property
    def decision(self) -> str:
        if any(c.decided == "reject" for c in self.classes) or self.failures:
            return "reject"
        if self.variables_rejected:
            return "reject"
        return "accept"

    @property
    def complete(self) -> bool:
        """Every class's sample has been inspected."""
        return self.units_inspected >= self.sample_size

    def status_lines(self) -> list[str]:
        """The lot's progress in plain words, one line per topic."""
        head = (
            f"lot {self.lot.lot} of {self.lot.sku} (PO {self.lot.po}, {self.lot.phase},"
            f" {self.lot.size} pieces, spec rev {self.lot.spec_rev or '-'})"
        )
        lines = [head]
        for c in self.classes:
            state = "" if c.plan.state == "normal" else f" ({c.plan.state} inspection)"
            lines.append(
                f"  {c.defect_class:<8} AQL {c.aql:g}{state}: "
                + progress_text(c.plan, min(self.units_inspected, c.plan.sample_size),
                                c.nonconforming)
            )  # fmt: skip
        for feature, counts in sorted(self.verdicts.items()):
            parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            lines.append(f"  {feature}: {parts}")
        for feature, figure in sorted(self.capability.items()):
            lines.append(f"  {feature}: {figure.text()}")
        for feature, text in sorted(self.variables.items()):
            lines.append(f"  {feature} by variables: {text}")
        if self.failures:
            lines.append(f"  failed the spec: {'; '.join(self.failures)}")
        if self.findings:
            lines.append(f"  findings: {'; '.join(self.findings)}")
        if self.drift_alarms:
            lines.append(f"  {self.drift_alarms} drift alarm(s) against the golden sample")
        if self.suspect:
            lines.append(f"  {self.suspect} reading(s) suspect (calibration)")
        return lines

    def evidence(self) -> dict[str, Any]:
        return {
            "units_inspected": self.units_inspected,
            "classes": {
                c.defect_class: {
                    "aql": c.aql,
                    "code_letter": c.plan.code_letter,
                    "sample_size": c.plan.sample_size,
                    "accept": c.plan.accept,
                    "reject": c.plan.reject,
                    "nonconforming": c.nonconforming,
                }
                for c in self.classes
            },
            "verdicts": {f: dict(c) for f, c in self.verdicts.items()},
            "failures": list(self.failures),
            "findings": list(self.findings),
            "drift_alarms": self.drift_alarms,
            "suspect": self.suspect,
            "capability": {k: v.text() for k, v in self.capability.items()},
            "variables": dict(self.variables),
        }


def class_plan(lot_size: int, aql: float, level: str, state: str) -> SamplingPlan:
    """The plan of one defect class.

    AQL 0 ("no defect of this class is accepted", common for critical defects) is not a column
    of the ISO 2859-1 tables: it samples the code letter's own sample size with acceptance
    number 0, the usual practice.
    """
    if aql > 0:
        return plan(lot_size, aql, level=level, state=state)  # type: ignore[arg-type]
    letter = code_letter(lot_size, level)
    n = (SAMPLE_SIZE_REDUCED if state == "reduced" else SAMPLE_SIZE)[letter]
    base = plan(lot_size, 0.010, level=level, state=state)  # type: ignore[arg-type]
    full = n >= lot_size
    return replace(
        base,
        aql=0.0,
        initial_code_letter=letter,
        code_letter=letter,
        table_sample_size=n,
        sample_size=lot_size if full else n,
        accept=0,
        reject=1,
        full_inspection=full,
    )


#: Series in a lot's context that do not describe its product: health and bookkeeping, and the
#: test chamber's own conditions (judged for exposure validity by daq/runs.py, not as parts).
NOT_PRODUCT = frozenset(
    {"daq_health", "lot_decision", "lot_progress", "exposure", "capability", "baseline", "chamber"}
)


def review_lot(
    lot: Lot,
    spec: SkuSpec,
    points: Sequence[Point],
    *,
    state_of: Callable[[DefectClass], str] = lambda _c: "normal",
    suspect: Callable[[Point], bool] = lambda _p: False,
) -> LotReview:
    """Review a lot from its points (daq/journal.py ``lot_points``)."""
    units: dict[int, set[DefectClass]] = defaultdict(set)
    verdicts: dict[str, Counter[str]] = defaultdict(Counter)
    failures: list[str] = []
    findings: list[str] = []
    drift = 0
    n_suspect = 0
    values: dict[str, list[float]] = defaultdict(list)
    limits: dict[str, Limits] = {}
    for p in points:
        if p.measurement == "event":
            drift += p.tags.get("kind") == "drift_alarm"
            continue
        if p.measurement in NOT_PRODUCT:
            continue
        status = str(p.fields.get("status", "none"))
        if p.measurement == "inspection" and p.tags.get("feature") == "visual":
            unit = int(p.fields.get("sample_unit", 0))
            units.setdefault(unit, set())
            for cls in CLASSES:
                if int(p.fields.get(cls, 0)):
                    units[unit].add(cls)
            continue
        if suspect(p) and status in ("pass", "marginal"):
            status = "suspect"
        if status == "suspect":
            n_suspect += 1
        key = f"{p.measurement}.{p.tags.get('feature', '')}"
        verdicts[key][status] += 1
        value = p.fields.get("value")
        if isinstance(value, float) and status != "suspect":
            low, high = p.fields.get("low"), p.fields.get("high")
            limits[key] = Limits(
                low if isinstance(low, float) else None, high if isinstance(high, float) else None
            )
            values[key].append(value)
        if status == "fail":
            reason = p.fields.get("reason")
            value = p.fields.get("value")
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            text = f"{key} = {shown} {p.fields.get('unit', '')}".rstrip()
            if p.measurement == "inspection":
                findings.append(str(reason or text))
            failures.append(text + (f" ({reason})" if reason else ""))
    cap = {
        k: _capability(values[k], limits[k]) for k in values if len(values[k]) >= MIN_CAPABILITY_N
    }
    classes = tuple(
        ClassResult(
            cls,
            spec.defects.aql(cls),
            class_plan(lot.size, spec.defects.aql(cls), spec.defects.level, state_of(cls)),
            sum(1 for found in units.values() if cls in found),
        )
        for cls in CLASSES
    )
    var_text: dict[str, str] = {}
    var_rejected: list[str] = []
    aql = spec.defects.thickness_variables_aql
    if aql is not None:
        for key, vals in values.items():
            low = limits[key].low
            if key.startswith("thickness.") and low is not None:
                text, rejected = _variables(lot.size, aql, vals, low)
                var_text[key] = text
                if rejected:
                    var_rejected.append(key)
    return LotReview(
        lot, len(units), classes, dict(verdicts), tuple(failures), drift, n_suspect,
        tuple(findings), {k: v for k, v in cap.items() if v is not None}, var_text,
        tuple(var_rejected),
    )  # fmt: skip


def _variables(lot_size: int, aql: float, values: list[float], lsl: float) -> tuple[str, bool]:
    """The Z1.9 s-method on a thickness feature: (text, rejected)."""
    try:
        vp = variables_plan(lot_size, aql)
    except ValueError as exc:
        return f"not judged: {exc}", False
    if len(values) < vp.sample_size:
        return (
            f"{len(values)} of {vp.sample_size} readings (code letter {vp.code_letter},"
            f" k {vp.k:g})",
            False,
        )
    result = variables_decision(values[: vp.sample_size], lsl, vp.k)
    verdict = "accepted" if result.accepted else "REJECTED"
    return (
        f"{verdict}: Q_L {result.q_l:.2f} {'≥' if result.accepted else '<'} k {vp.k:g}"
        f" (n {vp.sample_size}, mean {result.mean:.4g}, s {result.s:.3g})",
        not result.accepted,
    )


#: Fewer values than this give a capability index too uncertain to print.
MIN_CAPABILITY_N = 5


def _capability(values: list[float], limits: Limits) -> CapabilityFigure | None:
    """Cpk (Cpl/Cpu for a one-sided limit) with its 95 % interval, or None."""
    if limits.low is None and limits.high is None:
        return None
    try:
        c = capability_of(values, limits)
    except ValueError:
        return None
    name = (
        "Cpk"
        if limits.low is not None and limits.high is not None
        else ("Cpl" if limits.low is not None else "Cpu")
    )
    est = c.cpk
    if est is None:
        return None
    return CapabilityFigure(name, est.value, est.lower, est.upper, len(values), c.mean)
