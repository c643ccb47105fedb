"""Shewhart control charts: constants, limits and run rules. Pure functions, no I/O.

**Constants are computed, not copied** (INSTRUMENTS_AND_STANDARDS.md §5: published tables contain
errors, e.g. D₃ for n = 7–10 printed with the B₃ values). For subgroups of n independent
N(0, 1) values with range W = X₍ₙ₎ − X₍₁₎ and standard deviation S:

- d₂(n) = E[W] = ∫ [1 − Φ(x)ⁿ − (1 − Φ(x))ⁿ] dx over the real line (Tippett 1925).
- d₃(n) = sd(W), with E[W²] = 2 ∬_{s<t} [1 − (1 − Φ(s))ⁿ − Φ(t)ⁿ + (Φ(t) − Φ(s))ⁿ] ds dt,
  the integrand being P(X₍₁₎ ≤ s, X₍ₙ₎ > t) (W = ∫ 1{X₍₁₎ ≤ u < X₍ₙ₎} du, squared).
- c₄(n) = E[S] = √(2/(n − 1)) · Γ(n/2) / Γ((n − 1)/2), closed form.
- From data (§5): A₂ = 3/(d₂√n); D₃,₄ = 1 ∓ 3d₃/d₂; A₃ = 3/(c₄√n);
  B₃,₄ = 1 ∓ 3√(1 − c₄²)/c₄. Lower constants are floored at 0.
- From a known σ (frozen baseline; Montgomery, *Introduction to Statistical Quality Control*,
  Appendix VI; ASTM E2587): A = 3/√n; D₁,₂ = d₂ ∓ 3d₃; B₅,₆ = c₄ ∓ 3√(1 − c₄²).

The integrals use ``scipy.integrate`` over ±12 (Φ(−12) ≈ 2·10⁻³³, far below double precision of
the results); each n is computed once and cached. Supported subgroup sizes: 2…25.

**Run rules** (§5 [V]): Western Electric rules 1–4 and the four supplementary ones
(``kylekap/WesternElectricSPC`` README), and Nelson's eight rules (Nelson 1984, *J. Quality
Technology* 16(4):237–239). Each is switched on by naming it; every extra rule raises the
false-alarm rate (WE 1–4 together on individuals: in-control ARL ≈ 92 points instead of 370).

Conventions, the same for every rule: a point is *beyond* kσ when |z| > k and *within* kσ when
|z| < k, z = (x − centre)/σ; a point exactly on the centre line is on neither side; ties break a
trend and an alternation. A rule is evaluated on the window that ends at each point, and for the
"m of n beyond" rules the last point must itself be one of the m, so the violation is reported
at the point that completed the pattern; at start-up those rules need no full window (the first
two points beyond 2σ are already 2 of 3). A violation carries the indices of the points that
make the pattern (its evidence).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from scipy import integrate, special

__all__ = [
    "LONGEST_RULE",
    "MAX_SUBGROUP",
    "NELSON",
    "RULES",
    "WESTERN_ELECTRIC",
    "WE_SUPPLEMENTARY",
    "ChartConstants",
    "ChartLimits",
    "ControlChart",
    "Direction",
    "RuleId",
    "Violation",
    "c4",
    "check_rules",
    "constants",
    "d2",
    "d3",
    "imr_limits",
    "imr_limits_from_baseline",
    "xbar_r_limits",
    "xbar_r_limits_from_baseline",
    "xbar_s_limits",
    "xbar_s_limits_from_baseline",
]

#: Largest subgroup size the constants are computed (and tested) for.
MAX_SUBGROUP = 25

#: Integration range in σ units for d₂ and d₃; the integrands vanish (< 1e-30) outside it.
_SPAN = 12.0
_EPS = 1e-12


def _cdf(x: float) -> float:
    return float(special.ndtr(x))


def _check_n(n: int) -> None:
    if not 2 <= n <= MAX_SUBGROUP:
        raise ValueError(f"subgroup size must be 2..{MAX_SUBGROUP}, got {n}")


@cache
def d2(n: int) -> float:
    """Mean of the range of n standard normal values, E[W] (numerical integration)."""
    _check_n(n)

    def integrand(x: float) -> float:
        return 1.0 - _cdf(x) ** n - _cdf(-x) ** n

    value, _ = integrate.quad(integrand, -_SPAN, _SPAN, epsabs=_EPS, epsrel=_EPS, limit=200)
    return value


@cache
def d3(n: int) -> float:
    """Standard deviation of the range of n standard normal values (double integral)."""
    _check_n(n)

    def integrand(w: float, s: float) -> float:
        # P(min ≤ s, max > s + w), integrated over s and the gap w = t − s ≥ 0.
        t = s + w
        low, high = _cdf(s), _cdf(t)
        return 1.0 - _cdf(-s) ** n - high**n + (high - low) ** n

    half, _ = integrate.dblquad(
        integrand, -_SPAN, _SPAN, 0.0, 2 * _SPAN, epsabs=1e-11, epsrel=1e-11
    )
    return math.sqrt(2.0 * half - d2(n) ** 2)


@cache
def c4(n: int) -> float:
    """Mean of the sample standard deviation of n standard normal values (closed form)."""
    _check_n(n)
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


@dataclass(frozen=True, slots=True)
class ChartConstants:
    """Control-chart constants for subgroups of ``n``, computed from normal theory.

    Limits from data: X̄ ± A₂R̄, R in [D₃R̄, D₄R̄]; X̄ ± A₃S̄, S in [B₃S̄, B₄S̄]; σ̂ = R̄/d₂ = S̄/c₄.
    Limits from a known σ: μ ± Aσ, R in [D₁σ, D₂σ] (centre d₂σ), S in [B₅σ, B₆σ] (centre c₄σ).
    """

    n: int
    d2: float
    d3: float
    c4: float
    A: float
    A2: float
    A3: float
    D1: float
    D2: float
    D3: float
    D4: float
    B3: float
    B4: float
    B5: float
    B6: float


@cache
def constants(n: int) -> ChartConstants:
    """All constants for subgroup size ``n`` (2..25), computed once and cached."""
    _check_n(n)
    r2, r3, s4 = d2(n), d3(n), c4(n)
    root_n = math.sqrt(n)
    s_spread = math.sqrt(1.0 - s4 * s4)
    return ChartConstants(
        n=n,
        d2=r2,
        d3=r3,
        c4=s4,
        A=3.0 / root_n,
        A2=3.0 / (r2 * root_n),
        A3=3.0 / (s4 * root_n),
        D1=max(0.0, r2 - 3.0 * r3),
        D2=r2 + 3.0 * r3,
        D3=max(0.0, 1.0 - 3.0 * r3 / r2),
        D4=1.0 + 3.0 * r3 / r2,
        B3=max(0.0, 1.0 - 3.0 * s_spread / s4),
        B4=1.0 + 3.0 * s_spread / s4,
        B5=max(0.0, s4 - 3.0 * s_spread),
        B6=s4 + 3.0 * s_spread,
    )


# --- chart limits ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartLimits:
    """One chart: centre line, control limits, and the σ of the plotted statistic.

    ``sigma`` is what the run rules need: σ/√n for an X̄ chart, σ for an individuals chart,
    d₃σ for a range chart, σ√(1 − c₄²) for an S chart.
    """

    centre: float
    lcl: float
    ucl: float
    sigma: float


ChartKind = Literal["xbar-r", "xbar-s", "i-mr"]


@dataclass(frozen=True, slots=True)
class ControlChart:
    """A location chart (X̄ or individuals) and its dispersion chart (R, S or moving range).

    ``sigma`` is the σ of individual values the limits rest on: estimated from the data
    (R̄/d₂, S̄/c₄, MR̄/d₂(2)) when ``source`` is ``data``, the frozen σ₀ when ``baseline``.
    """

    kind: ChartKind
    n: int
    location: ChartLimits
    dispersion: ChartLimits
    sigma: float
    source: Literal["data", "baseline"]


def _finite(values: Iterable[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} contain a value that is not finite")
    return out


def _subgroups(subgroups: Sequence[Sequence[float]]) -> tuple[int, list[list[float]]]:
    if not subgroups:
        raise ValueError("no subgroups given")
    groups = [_finite(g, "subgroups") for g in subgroups]
    sizes = {len(g) for g in groups}
    if len(sizes) != 1:
        raise ValueError(f"subgroups must all have the same size, got sizes {sorted(sizes)}")
    n = sizes.pop()
    _check_n(n)
    return n, groups


def _baseline(mean: float, sigma: float) -> None:
    if not math.isfinite(mean):
        raise ValueError(f"baseline mean must be finite, got {mean}")
    if not (math.isfinite(sigma) and sigma > 0.0):
        raise ValueError(f"baseline sigma must be positive and finite, got {sigma}")


def _no_spread(kind: str) -> ValueError:
    return ValueError(
        f"{kind}: every subgroup shows zero spread, so σ cannot be estimated "
        "(is the instrument's resolution too coarse?)"
    )


def xbar_r_limits(subgroups: Sequence[Sequence[float]]) -> ControlChart:
    """X̄-R chart limits from rational subgroups of equal size n (2..25).

    X̄ chart X̿ ± A₂R̄; R chart [D₃R̄, D₄R̄]; σ̂ = R̄/d₂.
    """
    n, groups = _subgroups(subgroups)
    c = constants(n)
    grand = sum(sum(g) / n for g in groups) / len(groups)
    rbar = sum(max(g) - min(g) for g in groups) / len(groups)
    if rbar <= 0.0:
        raise _no_spread("X̄-R")
    sigma = rbar / c.d2
    return ControlChart(
        kind="xbar-r",
        n=n,
        location=ChartLimits(grand, grand - c.A2 * rbar, grand + c.A2 * rbar, sigma / math.sqrt(n)),
        dispersion=ChartLimits(rbar, c.D3 * rbar, c.D4 * rbar, c.d3 * sigma),
        sigma=sigma,
        source="data",
    )


def _stdev(values: Sequence[float]) -> float:
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def xbar_s_limits(subgroups: Sequence[Sequence[float]]) -> ControlChart:
    """X̄-S chart limits from rational subgroups of equal size n (2..25).

    X̄ chart X̿ ± A₃S̄; S chart [B₃S̄, B₄S̄]; σ̂ = S̄/c₄.
    """
    n, groups = _subgroups(subgroups)
    c = constants(n)
    grand = sum(sum(g) / n for g in groups) / len(groups)
    sbar = sum(_stdev(g) for g in groups) / len(groups)
    if sbar <= 0.0:
        raise _no_spread("X̄-S")
    sigma = sbar / c.c4
    return ControlChart(
        kind="xbar-s",
        n=n,
        location=ChartLimits(grand, grand - c.A3 * sbar, grand + c.A3 * sbar, sigma / math.sqrt(n)),
        dispersion=ChartLimits(
            sbar, c.B3 * sbar, c.B4 * sbar, sigma * math.sqrt(1.0 - c.c4 * c.c4)
        ),
        sigma=sigma,
        source="data",
    )


def imr_limits(values: Sequence[float]) -> ControlChart:
    """Individuals and moving-range chart limits from a sequence of single values.

    σ̂ = MR̄/d₂(2) from the moving ranges of consecutive values; I chart x̄ ± 3σ̂
    (= x̄ ± 2.66·MR̄); MR chart [D₃(2)·MR̄ = 0, D₄(2)·MR̄].
    """
    xs = _finite(values, "values")
    if len(xs) < 2:
        raise ValueError(f"an individuals chart needs at least 2 values, got {len(xs)}")
    c = constants(2)
    mean = sum(xs) / len(xs)
    mrbar = sum(abs(b - a) for a, b in itertools.pairwise(xs)) / (len(xs) - 1)
    if mrbar <= 0.0:
        raise _no_spread("I-MR")
    sigma = mrbar / c.d2
    return ControlChart(
        kind="i-mr",
        n=1,
        location=ChartLimits(mean, mean - 3.0 * sigma, mean + 3.0 * sigma, sigma),
        dispersion=ChartLimits(mrbar, c.D3 * mrbar, c.D4 * mrbar, c.d3 * sigma),
        sigma=sigma,
        source="data",
    )


def xbar_r_limits_from_baseline(mean: float, sigma: float, n: int) -> ControlChart:
    """X̄-R limits from a frozen baseline (μ₀, σ₀): μ₀ ± Aσ₀; R in [D₁σ₀, D₂σ₀], centre d₂σ₀."""
    _baseline(mean, sigma)
    c = constants(n)
    return ControlChart(
        kind="xbar-r",
        n=n,
        location=ChartLimits(mean, mean - c.A * sigma, mean + c.A * sigma, sigma / math.sqrt(n)),
        dispersion=ChartLimits(c.d2 * sigma, c.D1 * sigma, c.D2 * sigma, c.d3 * sigma),
        sigma=sigma,
        source="baseline",
    )


def xbar_s_limits_from_baseline(mean: float, sigma: float, n: int) -> ControlChart:
    """X̄-S limits from a frozen baseline (μ₀, σ₀): μ₀ ± Aσ₀; S in [B₅σ₀, B₆σ₀], centre c₄σ₀."""
    _baseline(mean, sigma)
    c = constants(n)
    return ControlChart(
        kind="xbar-s",
        n=n,
        location=ChartLimits(mean, mean - c.A * sigma, mean + c.A * sigma, sigma / math.sqrt(n)),
        dispersion=ChartLimits(
            c.c4 * sigma, c.B5 * sigma, c.B6 * sigma, sigma * math.sqrt(1.0 - c.c4 * c.c4)
        ),
        sigma=sigma,
        source="baseline",
    )


def imr_limits_from_baseline(mean: float, sigma: float) -> ControlChart:
    """I-MR limits from a frozen baseline: μ₀ ± 3σ₀; MR in [0, D₂(2)σ₀], centre d₂(2)σ₀."""
    _baseline(mean, sigma)
    c = constants(2)
    return ControlChart(
        kind="i-mr",
        n=1,
        location=ChartLimits(mean, mean - 3.0 * sigma, mean + 3.0 * sigma, sigma),
        dispersion=ChartLimits(c.d2 * sigma, c.D1 * sigma, c.D2 * sigma, c.d3 * sigma),
        sigma=sigma,
        source="baseline",
    )


# --- run rules ------------------------------------------------------------------------------

RuleId = Literal[
    "WE1",
    "WE2",
    "WE3",
    "WE4",
    "WE5",
    "WE6",
    "WE7",
    "WE8",
    "N1",
    "N2",
    "N3",
    "N4",
    "N5",
    "N6",
    "N7",
    "N8",
]
#: ``up``: above the centre line or increasing; ``down``: below it or decreasing; ``None``: the
#: pattern has no direction (stratification, alternation, mixture).
Direction = Literal["up", "down"]

_Kind = Literal["beyond", "side", "trend", "alternate", "within", "mixture"]


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    kind: _Kind
    length: int
    count: int = 0
    k: float = 0.0


_TABLE: dict[RuleId, _Rule] = {
    "WE1": _Rule("Western Electric rule 1", "beyond", 1, 1, 3.0),
    "WE2": _Rule("Western Electric rule 2", "beyond", 3, 2, 2.0),
    "WE3": _Rule("Western Electric rule 3", "beyond", 5, 4, 1.0),
    "WE4": _Rule("Western Electric rule 4", "side", 8),
    "WE5": _Rule("Western Electric supplementary rule (trend)", "trend", 6),
    "WE6": _Rule("Western Electric supplementary rule (stratification)", "within", 15, k=1.0),
    "WE7": _Rule("Western Electric supplementary rule (alternation)", "alternate", 14),
    "WE8": _Rule("Western Electric supplementary rule (mixture)", "mixture", 8, k=1.0),
    "N1": _Rule("Nelson rule 1", "beyond", 1, 1, 3.0),
    "N2": _Rule("Nelson rule 2", "side", 9),
    "N3": _Rule("Nelson rule 3", "trend", 6),
    "N4": _Rule("Nelson rule 4", "alternate", 14),
    "N5": _Rule("Nelson rule 5", "beyond", 3, 2, 2.0),
    "N6": _Rule("Nelson rule 6", "beyond", 5, 4, 1.0),
    "N7": _Rule("Nelson rule 7", "within", 15, k=1.0),
    "N8": _Rule("Nelson rule 8", "mixture", 8, k=1.0),
}

#: Every rule id, in table order.
RULES: tuple[RuleId, ...] = tuple(_TABLE)
#: The four primary Western Electric rules.
WESTERN_ELECTRIC: tuple[RuleId, ...] = ("WE1", "WE2", "WE3", "WE4")
#: The supplementary Western Electric rules: trend, stratification, alternation, mixture.
WE_SUPPLEMENTARY: tuple[RuleId, ...] = ("WE5", "WE6", "WE7", "WE8")
#: Nelson's eight rules.
NELSON: tuple[RuleId, ...] = ("N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8")

#: The longest window any rule looks at (stratification: 15 points).
LONGEST_RULE = max(r.length for r in _TABLE.values())


@dataclass(frozen=True, slots=True)
class Violation:
    """A run rule that fired: at ``index`` (the point that completed the pattern).

    ``indices`` are the points that make the pattern, the evidence to show on the chart.
    """

    rule: RuleId
    description: str
    index: int
    indices: tuple[int, ...]
    direction: Direction | None


_SIDES: tuple[tuple[Direction, float], ...] = (("up", 1.0), ("down", -1.0))


def _sign(x: float) -> int:
    return (x > 0.0) - (x < 0.0)


def _where(direction: Direction) -> str:
    return "above" if direction == "up" else "below"


def _beyond(rule: _Rule, z: Sequence[float], i: int) -> tuple[tuple[int, ...], Direction] | None:
    # At start-up the window is shorter: m beyond of fewer than n points already are m of n.
    window = range(max(0, i - rule.length + 1), i + 1)
    for direction, sign in _SIDES:
        if sign * z[i] > rule.k:
            hits = tuple(j for j in window if sign * z[j] > rule.k)
            if len(hits) >= rule.count:
                return hits, direction
    return None


def _evaluate(
    rule: _Rule, z: Sequence[float], i: int
) -> tuple[tuple[int, ...], Direction | None, str] | None:
    """The rule on the window ending at ``i``: (evidence, direction, words) or None."""
    n = rule.length
    if rule.kind == "beyond":
        found = _beyond(rule, z, i)
        if found is None:
            return None
        hits, direction = found
        k = f"{rule.k:g}σ"
        if rule.length == 1:
            words = f"a point more than {k} {_where(direction)} the centre line"
        else:
            words = (
                f"{rule.count} of {rule.length} consecutive points more than {k} "
                f"{_where(direction)} the centre line"
            )
        return hits, direction, words
    if i < n - 1:
        return None
    window = tuple(range(i - n + 1, i + 1))
    if rule.kind == "side":
        for direction, sign in _SIDES:
            if all(sign * z[j] > 0.0 for j in window):
                return window, direction, f"{n} points in a row {_where(direction)} the centre line"
        return None
    if rule.kind == "trend":
        steps = [z[j] - z[j - 1] for j in window[1:]]
        if all(s > 0.0 for s in steps):
            return window, "up", f"{n} points in a row steadily increasing"
        if all(s < 0.0 for s in steps):
            return window, "down", f"{n} points in a row steadily decreasing"
        return None
    if rule.kind == "alternate":
        signs = [_sign(z[j] - z[j - 1]) for j in window[1:]]
        if all(a * b == -1 for a, b in itertools.pairwise(signs)):
            return window, None, f"{n} points in a row alternating up and down"
        return None
    if rule.kind == "within":
        if all(abs(z[j]) < rule.k for j in window):
            words = (
                f"{n} points in a row within {rule.k:g}σ of the centre line "
                "(less variation than the limits assume)"
            )
            return window, None, words
        return None
    # mixture: none within kσ, and points on both sides
    if all(abs(z[j]) > rule.k for j in window) and (
        any(z[j] > 0.0 for j in window) and any(z[j] < 0.0 for j in window)
    ):
        words = f"{n} points in a row more than {rule.k:g}σ from the centre line, on both sides"
        return window, None, words
    return None


def check_rules(
    points: Sequence[float],
    centre: float,
    sigma: float,
    rules: Iterable[RuleId] = WESTERN_ELECTRIC,
    *,
    last_only: bool = False,
) -> list[Violation]:
    """Run the chosen rules over ``points`` plotted against ``centre`` and ``sigma``.

    ``sigma`` is the σ of the plotted statistic (``ChartLimits.sigma``). Returns one
    violation per rule for each point at which the rule's pattern is complete (a long run
    is reported at every point that extends it), ordered by index, then by rule order.
    ``last_only`` evaluates only the window ending at the last point (streaming use).
    """
    if not (math.isfinite(centre) and math.isfinite(sigma) and sigma > 0.0):
        raise ValueError(f"centre must be finite and sigma positive, got {centre}, {sigma}")
    chosen: list[RuleId] = []
    for rid in rules:
        if rid not in _TABLE:
            raise ValueError(f"unknown run rule {rid!r}; known: {', '.join(RULES)}")
        if rid not in chosen:
            chosen.append(rid)
    chosen.sort(key=RULES.index)
    z = [(x - centre) / sigma for x in _finite(points, "points")]
    first = len(z) - 1 if last_only else 0
    found: list[Violation] = []
    for i in range(max(first, 0), len(z)):
        for rid in chosen:
            rule = _TABLE[rid]
            hit = _evaluate(rule, z, i)
            if hit is not None:
                evidence, direction, words = hit
                found.append(Violation(rid, f"{rule.name}: {words}", i, evidence, direction))
    return found
