"""Drift against a frozen golden-sample baseline: CUSUM, EWMA and run rules on individuals.

INSTRUMENTS_AND_STANDARDS.md §5 recommends, per SKU and characteristic, a **one-sided** CUSUM or
EWMA on thickness, pull force and wear index next to a Shewhart individuals chart, against a
baseline (μ₀, σ₀) frozen from the approved golden sample and first-article lots, versioned, and
reset after a confirmed corrective action. This module is that, as pure pieces:

- ``Baseline`` / ``baseline_from``: the frozen, versioned (μ₀, σ₀) of one feature;
  ``z_shift``: how far a value or a lot mean sits from it, in σ₀.
- ``Cusum`` (tabular CUSUM, Page 1954; Montgomery, *Introduction to SQC*, §9.1): standardised
  increments, for the lower side C⁻ᵢ = max(0, C⁻ᵢ₋₁ + (μ₀ − xᵢ)/σ₀ − k), signal when C⁻ᵢ > h.
  Defaults k = 0.5, h = 5 (§5's table): designed for a 1σ shift; ARL₀ ≈ 465 for the two-sided
  scheme, so ≈ 930 for the one side run here (Brook-Evans Markov chain: 931).
- ``Ewma`` (Roberts 1959; Lucas & Saccucci 1990, *Technometrics* 32(1)): Zᵢ = Zᵢ₋₁ + λ(xᵢ −
  Zᵢ₋₁), Z₀ = μ₀, with the exact time-varying limit from start-up μ₀ ∓ Lσ₀√(λ/(2−λ)·[1 −
  (1−λ)²ⁱ]). Defaults λ = 0.10, L = 2.814, Lucas & Saccucci's **two-sided** design for ARL₀ =
  500. Kept as is for the one-sided chart: one-sided EWMA designs in the literature (e.g.
  Knoth's ``spc`` package, reflecting the statistic at μ₀) calibrate their own critical value,
  but with L = 2.814 and no reflection the one-sided ARL₀ is about twice the two-sided one
  (≈ 1000), which matches the one-sided CUSUM's ≈ 930 and stays within ISO 7870-6's 100–1000.
  ``benchmarks/drift_detection.py`` measures it.
- ``step(state, x) -> (state, signal | None)``: immutable state, one value at a time. A chart
  *signals when its statistic crosses its limit* and not again while it stays beyond: a lasting
  shift raises one signal, not one per point. The statistic itself is never reset by a signal.
- ``DriftMonitor``: one feature stream, combining the charts and the chosen run rules
  (``daq.quality.spc``) on individuals against the baseline; ``observe(value, time_ns)``
  returns ``DriftAlarm`` objects carrying the evidence (indices, times, values of the points
  involved), the baseline and the current statistic: enough to write an ``event`` point.

**Reset.** Call ``DriftMonitor.reset()`` only after a *confirmed corrective action* (re-plated
bath, resurfaced abrasion wheel, recalibrated gauge), not merely because an alarm fired: the
CUSUM restarts at 0, the EWMA at μ₀ with its start-up limits, the run-rule history and the alarm
latches are forgotten. Pass a new ``Baseline`` when the action re-established one (new golden
sample ⇒ new version). Point indices keep counting across a reset, so evidence stays unique.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, overload

from daq.model import FieldValue
from daq.quality.spc import LONGEST_RULE, RULES, Direction, RuleId, check_rules, constants

__all__ = [
    "Baseline",
    "ChartSignal",
    "Cusum",
    "CusumState",
    "DriftAlarm",
    "DriftMonitor",
    "DriftSettings",
    "Ewma",
    "EwmaState",
    "MonitorSide",
    "Side",
    "baseline_from",
    "step",
    "z_shift",
]

#: Which way a one-sided chart looks: ``lower`` catches a falling mean (thickness, pull force),
#: ``upper`` a rising one (wear index).
Side = Literal["lower", "upper"]
MonitorSide = Literal["lower", "upper", "both"]


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be positive and finite, got {value}")


def _side(side: str) -> None:
    if side not in ("lower", "upper"):
        raise ValueError(f"side must be 'lower' or 'upper', got {side!r}")


# --- baseline -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Baseline:
    """The frozen reference of one feature: mean and σ from the golden sample, versioned.

    ``feature`` names the stream (e.g. ``thickness/layer_Au`` for one SKU); ``n`` is the number
    of values it rests on; ``created_ns`` is UTC nanoseconds.
    """

    feature: str
    n: int
    mean: float
    sigma: float
    version: str
    created_ns: int

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"a baseline needs at least 2 values, got n = {self.n}")
        if not math.isfinite(self.mean):
            raise ValueError(f"baseline mean must be finite, got {self.mean}")
        _positive("baseline sigma", self.sigma)


def baseline_from(
    values: Sequence[float],
    *,
    feature: str,
    version: str,
    created_ns: int,
    method: Literal["stdev", "moving-range"] = "stdev",
) -> Baseline:
    """Freeze a baseline from golden-sample / first-article values.

    ``method`` chooses σ₀: ``stdev``, the sample standard deviation (n − 1), between parts when
    each value is one part; ``moving-range``, MR̄/d₂(2) of the values in production order, the
    short-term σ of an individuals chart. Raises ``ValueError`` for fewer than 2 values, a
    non-finite value, or no variation at all.
    """
    xs = [float(v) for v in values]
    if len(xs) < 2:
        raise ValueError(f"a baseline needs at least 2 values, got {len(xs)}")
    if not all(math.isfinite(v) for v in xs):
        raise ValueError("baseline values contain a value that is not finite")
    n = len(xs)
    mean = sum(xs) / n
    if method == "stdev":
        sigma = math.sqrt(sum((v - mean) ** 2 for v in xs) / (n - 1))
    elif method == "moving-range":
        sigma = sum(abs(b - a) for a, b in itertools.pairwise(xs)) / (n - 1) / constants(2).d2
    else:
        raise ValueError(f"method must be 'stdev' or 'moving-range', got {method!r}")
    if sigma == 0.0:
        raise ValueError("baseline values show no variation: σ = 0")
    return Baseline(feature, n, mean, sigma, version, created_ns)


def z_shift(value_or_mean: float, baseline: Baseline) -> float:
    """Shift of a value (or a lot mean) from the baseline mean, in baseline σ: (x − μ₀)/σ₀.

    For a mean of m values this is the shift size δ, not a test statistic (that is δ·√m).
    """
    return (value_or_mean - baseline.mean) / baseline.sigma


# --- CUSUM and EWMA -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartSignal:
    """A CUSUM or EWMA crossed its limit at point ``index`` (0-based, since the chart started).

    ``since`` is the first point of the current excursion: for the CUSUM the point after it
    was last 0 (the classical change-point estimate), for the EWMA the point from which Z has
    stayed on the alarm side of μ₀. ``statistic`` and ``limit`` are in σ₀ units for the CUSUM
    (C and h) and in the feature's unit for the EWMA (Z and its control limit).
    """

    chart: Literal["cusum", "ewma"]
    side: Side
    index: int
    since: int
    statistic: float
    limit: float

    @property
    def rule(self) -> str:
        """The alarm's rule name: ``cusum-lower``, ``ewma-upper``..."""
        return f"{self.chart}-{self.side}"


@dataclass(frozen=True, slots=True)
class Cusum:
    """Design of a one-sided tabular CUSUM: target ``mean``, ``sigma``, k and h in σ units."""

    mean: float
    sigma: float
    k: float = 0.5
    h: float = 5.0
    side: Side = "lower"

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean):
            raise ValueError(f"CUSUM mean must be finite, got {self.mean}")
        _positive("CUSUM sigma", self.sigma)
        if not (math.isfinite(self.k) and self.k >= 0.0):
            raise ValueError(f"CUSUM k must be >= 0, got {self.k}")
        _positive("CUSUM h", self.h)
        _side(self.side)

    def start(self) -> CusumState:
        """The state before the first point: C = 0."""
        return CusumState(self)


@dataclass(frozen=True, slots=True)
class CusumState:
    """A CUSUM after ``count`` points: statistic C (σ units, ≥ 0) and the excursion start."""

    chart: Cusum
    statistic: float = 0.0
    count: int = 0
    since: int | None = None
    signalling: bool = False


@dataclass(frozen=True, slots=True)
class Ewma:
    """Design of a one-sided EWMA chart: target ``mean``, ``sigma``, smoothing λ, width L."""

    mean: float
    sigma: float
    lam: float = 0.10
    L: float = 2.814
    side: Side = "lower"

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean):
            raise ValueError(f"EWMA mean must be finite, got {self.mean}")
        _positive("EWMA sigma", self.sigma)
        if not (math.isfinite(self.lam) and 0.0 < self.lam <= 1.0):
            raise ValueError(f"EWMA lambda must lie in (0, 1], got {self.lam}")
        _positive("EWMA L", self.L)
        _side(self.side)

    def sigma_at(self, i: int) -> float:
        """σ of Zᵢ after i ≥ 1 points: σ₀√(λ/(2−λ)·[1 − (1−λ)²ⁱ])."""
        if i < 1:
            raise ValueError(f"the EWMA has a limit from the first point on, got i = {i}")
        lam = self.lam
        return self.sigma * math.sqrt(lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** (2 * i)))

    def limit(self, i: int) -> float:
        """The exact control limit after i ≥ 1 points (below μ₀ for ``lower``)."""
        width = self.L * self.sigma_at(i)
        return self.mean - width if self.side == "lower" else self.mean + width

    def asymptotic_limit(self) -> float:
        """The limit the time-varying one widens to: μ₀ ∓ Lσ₀√(λ/(2−λ))."""
        width = self.L * self.sigma * math.sqrt(self.lam / (2.0 - self.lam))
        return self.mean - width if self.side == "lower" else self.mean + width

    def start(self) -> EwmaState:
        """The state before the first point: Z₀ = μ₀."""
        return EwmaState(self, self.mean)


@dataclass(frozen=True, slots=True)
class EwmaState:
    """An EWMA after ``count`` points: statistic Z (feature unit) and the excursion start."""

    chart: Ewma
    statistic: float
    count: int = 0
    since: int | None = None
    signalling: bool = False


def _cusum_step(state: CusumState, x: float) -> tuple[CusumState, ChartSignal | None]:
    c = state.chart
    index = state.count
    deviation = (c.mean - x) if c.side == "lower" else (x - c.mean)
    value = max(0.0, state.statistic + deviation / c.sigma - c.k)
    # The excursion starts at the first point that lifts C off 0 and ends when C is 0 again.
    since = (state.since if state.since is not None else index) if value > 0.0 else None
    beyond = value > c.h
    signal = None
    if beyond and not state.signalling and since is not None:  # beyond h implies since is set
        signal = ChartSignal("cusum", c.side, index, since, value, c.h)
    return CusumState(c, value, index + 1, since, beyond), signal


def _ewma_step(state: EwmaState, x: float) -> tuple[EwmaState, ChartSignal | None]:
    e = state.chart
    index = state.count
    # Z + λ(x − Z) rather than λx + (1 − λ)Z: exact for a constant sequence at Z.
    z = state.statistic + e.lam * (x - state.statistic)
    limit = e.limit(index + 1)
    on_side = z < e.mean if e.side == "lower" else z > e.mean
    since = (state.since if state.since is not None else index) if on_side else None
    beyond = z < limit if e.side == "lower" else z > limit
    signal = None
    if beyond and not state.signalling and since is not None:  # beyond implies since is set
        signal = ChartSignal("ewma", e.side, index, since, z, limit)
    return EwmaState(e, z, index + 1, since, beyond), signal


@overload
def step(state: CusumState, x: float) -> tuple[CusumState, ChartSignal | None]: ...
@overload
def step(state: EwmaState, x: float) -> tuple[EwmaState, ChartSignal | None]: ...
def step(
    state: CusumState | EwmaState, x: float
) -> tuple[CusumState | EwmaState, ChartSignal | None]:
    """Feed one value; return the new state and a signal if the chart just crossed its limit.

    Raises ``ValueError`` for a value that is not finite (NaN would poison the statistic).
    """
    if not math.isfinite(x):
        raise ValueError(f"a chart takes finite values only, got {x}")
    if isinstance(state, CusumState):
        return _cusum_step(state, x)
    return _ewma_step(state, x)


# --- the monitor ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """What a ``DriftMonitor`` runs. Defaults: lower CUSUM + lower EWMA + WE rule 1.

    ``rules`` are run on individuals against (μ₀, σ₀); by default only rule 1 (a point beyond
    3σ₀), because each extra rule adds false alarms: WE 1–4 on both sides false-alarm every
    ≈ 92 points in control, in ≈ 40 % of stable 50-part lots, against ≈ 394 points and ≈ 10 %
    for these defaults (``benchmarks/drift_detection.py``). For a one-sided
    ``side``, directional violations on the other side are ignored; undirected ones
    (stratification, alternation, mixture) are kept. ``history`` bounds the points kept for
    evidence: a longer CUSUM/EWMA excursion is shown by its last ``history`` points.
    """

    side: MonitorSide = "lower"
    cusum: bool = True
    cusum_k: float = 0.5
    cusum_h: float = 5.0
    ewma: bool = True
    ewma_lambda: float = 0.10
    ewma_L: float = 2.814
    rules: tuple[RuleId, ...] = ("WE1",)
    history: int = 500

    def __post_init__(self) -> None:
        if self.side not in ("lower", "upper", "both"):
            raise ValueError(f"side must be 'lower', 'upper' or 'both', got {self.side!r}")
        unknown = [r for r in self.rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown run rules {unknown}; known: {', '.join(RULES)}")
        if self.history < LONGEST_RULE:
            raise ValueError(f"history must keep at least {LONGEST_RULE} points")
        # Validate the chart designs now rather than at the first point.
        Cusum(0.0, 1.0, self.cusum_k, self.cusum_h)
        Ewma(0.0, 1.0, self.ewma_lambda, self.ewma_L)


@dataclass(frozen=True, slots=True)
class DriftAlarm:
    """One drift alarm with its evidence, ready to become an ``event`` point (``fields()``).

    ``rule``: ``cusum-lower``, ``ewma-upper``, or a run rule id (``WE1``, ``N2``...).
    ``index``/``time_ns``: the point that raised it. ``indices``/``times_ns``/``values``: the
    points involved. ``statistic``: C (σ₀ units) for a CUSUM, Z for an EWMA, the z-shift of the
    current point for a run rule; ``limit``: h, the EWMA limit, or ``None`` for a run rule.
    """

    feature: str
    rule: str
    description: str
    index: int
    time_ns: int
    direction: Direction | None
    indices: tuple[int, ...]
    times_ns: tuple[int, ...]
    values: tuple[float, ...]
    statistic: float
    limit: float | None
    baseline_mean: float
    baseline_sigma: float
    baseline_version: str

    def fields(self) -> dict[str, FieldValue]:
        """Fields of an ``event`` point: ``message`` and ``severity`` first, then evidence."""
        out: dict[str, FieldValue] = {
            "message": self.description,
            "severity": "warning",
            "feature": self.feature,
            "rule": self.rule,
            "index": self.index,
            "statistic": self.statistic,
            "baseline_mean": self.baseline_mean,
            "baseline_sigma": self.baseline_sigma,
            "baseline_version": self.baseline_version,
            "evidence_indices": ",".join(str(i) for i in self.indices),
            "evidence_times_ns": ",".join(str(t) for t in self.times_ns),
            "evidence_values": ",".join(repr(v) for v in self.values),
        }
        if self.limit is not None:
            out["limit"] = self.limit
        if self.direction is not None:
            out["direction"] = self.direction
        return out


@dataclass(slots=True)
class _Point:
    index: int
    time_ns: int
    value: float


@dataclass(slots=True)
class _Stream:
    """Everything a reset forgets."""

    offset: int
    cusums: list[CusumState]
    ewmas: list[EwmaState]
    recent: deque[_Point] = field(default_factory=lambda: deque(maxlen=LONGEST_RULE))
    active: set[RuleId] = field(default_factory=set)


class DriftMonitor:
    """Drift detection for one feature stream against a frozen baseline.

    Not thread-safe: feed one stream from one task. Example::

        monitor = DriftMonitor(baseline)  # lower CUSUM + lower EWMA + WE rule 1
        for alarm in monitor.observe(2.71, time_ns):
            write_event(alarm.fields())
        ...
        monitor.reset()  # after the bath was re-plated and a check lot passed
    """

    def __init__(self, baseline: Baseline, settings: DriftSettings | None = None) -> None:
        self._settings = settings or DriftSettings()
        self._baseline = baseline
        self._count = 0
        self._history: deque[_Point] = deque(maxlen=self._settings.history)
        self._stream = self._fresh(0)

    @property
    def baseline(self) -> Baseline:
        """The baseline in force."""
        return self._baseline

    @property
    def settings(self) -> DriftSettings:
        """The settings the monitor runs with."""
        return self._settings

    @property
    def count(self) -> int:
        """Points observed since the monitor was made (not reset by ``reset``)."""
        return self._count

    @property
    def charts(self) -> tuple[CusumState | EwmaState, ...]:
        """The current CUSUM and EWMA states, lower side first."""
        return (*self._stream.cusums, *self._stream.ewmas)

    def statistics(self) -> dict[str, float]:
        """Current chart statistics for a dashboard: ``cusum_lower``, ``ewma``, ``ewma_lcl``…"""
        out: dict[str, float] = {}
        for c in self._stream.cusums:
            out[f"cusum_{c.chart.side}"] = c.statistic
        for e in self._stream.ewmas:
            out["ewma"] = e.statistic
            i = max(e.count, 1)
            out["ewma_lcl" if e.chart.side == "lower" else "ewma_ucl"] = e.chart.limit(i)
        return out

    def _sides(self) -> tuple[Side, ...]:
        side = self._settings.side
        return ("lower", "upper") if side == "both" else (side,)

    def _fresh(self, offset: int) -> _Stream:
        s, b = self._settings, self._baseline
        cusums = [
            Cusum(b.mean, b.sigma, s.cusum_k, s.cusum_h, side).start()
            for side in self._sides()
            if s.cusum
        ]
        ewmas = [
            Ewma(b.mean, b.sigma, s.ewma_lambda, s.ewma_L, side).start()
            for side in self._sides()
            if s.ewma
        ]
        return _Stream(offset, cusums, ewmas)

    def reset(self, baseline: Baseline | None = None) -> None:
        """Start the charts afresh after a confirmed corrective action (see the module doc).

        With ``baseline``, the new baseline (same feature, usually a new version) is used from
        now on. Point indices keep counting.
        """
        if baseline is not None:
            if baseline.feature != self._baseline.feature:
                raise ValueError(
                    f"this monitor watches {self._baseline.feature!r}, not {baseline.feature!r}"
                )
            self._baseline = baseline
        self._stream = self._fresh(self._count)

    def observe(self, value: float, time_ns: int) -> list[DriftAlarm]:
        """Feed one individual value; return the alarms it raised (usually none).

        Raises ``ValueError`` for a value that is not finite, and leaves the state unchanged.
        """
        if not math.isfinite(value):
            raise ValueError(f"drift monitor {self._baseline.feature!r}: value {value} not finite")
        point = _Point(self._count, time_ns, float(value))
        self._count += 1
        self._history.append(point)
        stream = self._stream
        stream.recent.append(point)
        alarms: list[DriftAlarm] = []
        for i, cusum in enumerate(stream.cusums):
            stream.cusums[i], signal = step(cusum, point.value)
            if signal is not None:
                alarms.append(self._chart_alarm(signal, point))
        for i, ewma in enumerate(stream.ewmas):
            stream.ewmas[i], signal = step(ewma, point.value)
            if signal is not None:
                alarms.append(self._chart_alarm(signal, point))
        alarms.extend(self._rule_alarms(point))
        return alarms

    def _evidence(self, first: int, last: int) -> list[_Point]:
        return [p for p in self._history if first <= p.index <= last]

    def _alarm(
        self,
        *,
        rule: str,
        description: str,
        point: _Point,
        direction: Direction | None,
        evidence: Sequence[_Point],
        statistic: float,
        limit: float | None,
    ) -> DriftAlarm:
        b = self._baseline
        return DriftAlarm(
            feature=b.feature,
            rule=rule,
            description=description,
            index=point.index,
            time_ns=point.time_ns,
            direction=direction,
            indices=tuple(p.index for p in evidence),
            times_ns=tuple(p.time_ns for p in evidence),
            values=tuple(p.value for p in evidence),
            statistic=statistic,
            limit=limit,
            baseline_mean=b.mean,
            baseline_sigma=b.sigma,
            baseline_version=b.version,
        )

    def _chart_alarm(self, signal: ChartSignal, point: _Point) -> DriftAlarm:
        b, s = self._baseline, self._settings
        first = self._stream.offset + signal.since
        n = point.index - first + 1
        if signal.chart == "cusum":
            words = (
                f"{signal.side} CUSUM (k = {s.cusum_k:g}σ, h = {s.cusum_h:g}σ) reached "
                f"{signal.statistic:.2f}σ, beyond h, accumulated over the last {n} points"
            )
        else:
            below = "below" if signal.side == "lower" else "above"
            words = (
                f"{signal.side} EWMA (λ = {s.ewma_lambda:g}, L = {s.ewma_L:g}) at "
                f"{signal.statistic:.6g} is {below} its control limit {signal.limit:.6g}; "
                f"{below} the baseline mean for the last {n} points"
            )
        words += f" (baseline {b.mean:.6g} ± {b.sigma:.3g}, version {b.version})"
        return self._alarm(
            rule=signal.rule,
            description=f"{b.feature}: {words}",
            point=point,
            direction="down" if signal.side == "lower" else "up",
            evidence=self._evidence(first, point.index),
            statistic=signal.statistic,
            limit=signal.limit,
        )

    def _rule_alarms(self, point: _Point) -> list[DriftAlarm]:
        stream, b, s = self._stream, self._baseline, self._settings
        if not s.rules:
            return []
        recent = list(stream.recent)
        found = check_rules([p.value for p in recent], b.mean, b.sigma, s.rules, last_only=True)
        wanted: dict[MonitorSide, Direction | None] = {"lower": "down", "upper": "up"}
        keep = wanted.get(s.side)
        active: set[RuleId] = set()
        alarms: list[DriftAlarm] = []
        for v in found:
            if keep is not None and v.direction is not None and v.direction != keep:
                continue
            active.add(v.rule)
            if v.rule in stream.active:
                continue  # the same pattern still holds: raised already
            alarms.append(
                self._alarm(
                    rule=v.rule,
                    description=(
                        f"{b.feature}: {v.description} "
                        f"(baseline {b.mean:.6g} ± {b.sigma:.3g}, version {b.version})"
                    ),
                    point=point,
                    direction=v.direction,
                    evidence=[recent[i] for i in v.indices],
                    statistic=z_shift(point.value, b),
                    limit=None,
                )
            )
        stream.active = active
        return alarms
