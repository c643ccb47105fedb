"""Process capability indices with confidence intervals. Pure functions, no I/O.

Definitions (INSTRUMENTS_AND_STANDARDS.md §5; Montgomery, *Introduction to Statistical Quality
Control*, ch. 8):

- Cp = (USL − LSL)/(6σ), Cpl = (μ − LSL)/(3σ), Cpu = (USL − μ)/(3σ), Cpk = min(Cpl, Cpu),
  all with the *within* (short-term) σ — R̄/d₂, S̄/c₄ or MR̄/d₂(2), see ``daq.quality.spc``.
- Pp, Ppl, Ppu, Ppk: the same formulas with the *overall* (long-term) sample σ.
- One-sided limits: a minimum plating thickness has only an LSL, so only Cpl (Ppl) exists; Cp,
  Cpu (Pp, Ppu) are ``None``. ``cpk`` is then the one index there is (Cpk = Cpl), the
  Minitab/JMP convention: Cpk = min over the limits in force.

Confidence intervals, two-sided at ``confidence``:

- Cp, Pp: exact under normality, Ĉp·√(χ²_{α/2,ν}/ν) ≤ Cp ≤ Ĉp·√(χ²_{1−α/2,ν}/ν), with ν the
  degrees of freedom of σ̂ (n − 1 for a sample standard deviation; pass ``dof`` for σ from
  subgroups, e.g. ≈ 0.9·k·(n − 1) for R̄/d₂ of k subgroups of n).
- Cpk, Cpl, Cpu, and their P counterparts: Bissell's normal approximation, Ĉ ± z_{1−α/2}·
  √(1/(9n) + Ĉ²/(2(n − 1))) (A. F. Bissell, "How reliable is your capability index?",
  *Applied Statistics* 39(3):331–340, 1990; the form quoted by Montgomery, §8.3.5). The
  interval uses ``n`` (the number of values), whatever σ estimator was used.

Only an in-control process has a capability (§5); measurement variation (XRF repeatability)
inflates σ and so understates it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from daq.model import Limits
from daq.quality.spc import constants

__all__ = ["Capability", "Estimate", "capability", "capability_of"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its two-sided confidence interval."""

    value: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Capability:
    """Capability of one feature: the indices that exist for the limits and σ given.

    An index is ``None`` when it does not exist: Cp/Pp and the upper ones without a USL, the
    lower ones without an LSL, all C indices without ``sigma_within``, all P indices without
    ``sigma_overall``.
    """

    n: int
    mean: float
    lsl: float | None
    usl: float | None
    sigma_within: float | None
    sigma_overall: float | None
    confidence: float
    cp: Estimate | None
    cpl: Estimate | None
    cpu: Estimate | None
    cpk: Estimate | None
    pp: Estimate | None
    ppl: Estimate | None
    ppu: Estimate | None
    ppk: Estimate | None


def _chi_square_interval(value: float, dof: float, alpha: float) -> Estimate:
    lo = value * math.sqrt(float(stats.chi2.ppf(alpha / 2.0, dof)) / dof)
    hi = value * math.sqrt(float(stats.chi2.ppf(1.0 - alpha / 2.0, dof)) / dof)
    return Estimate(value, lo, hi)


def _bissell_interval(value: float, n: int, alpha: float) -> Estimate:
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    half = z * math.sqrt(1.0 / (9.0 * n) + value * value / (2.0 * (n - 1)))
    return Estimate(value, value - half, value + half)


def _indices(
    *,
    mean: float,
    sigma: float,
    lsl: float | None,
    usl: float | None,
    n: int,
    dof: float,
    alpha: float,
) -> tuple[Estimate | None, Estimate | None, Estimate | None, Estimate | None]:
    """(C, Cl, Cu, Ck) for one σ."""
    spread = None
    if lsl is not None and usl is not None:
        spread = _chi_square_interval((usl - lsl) / (6.0 * sigma), dof, alpha)
    low = None if lsl is None else _bissell_interval((mean - lsl) / (3.0 * sigma), n, alpha)
    high = None if usl is None else _bissell_interval((usl - mean) / (3.0 * sigma), n, alpha)
    sides = [e for e in (low, high) if e is not None]
    worst = min(sides, key=lambda e: e.value)
    return spread, low, high, worst


def _sigma(name: str, value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be positive and finite to compute capability, got {value}")
    return value


def capability(
    *,
    mean: float,
    n: int,
    limits: Limits,
    sigma_within: float | None = None,
    sigma_overall: float | None = None,
    confidence: float = 0.95,
    dof: float | None = None,
) -> Capability:
    """Capability indices and confidence intervals from summary statistics.

    ``limits.low``/``limits.high`` are the LSL/USL (guard bands are ignored: capability is
    about the specification itself). ``dof`` is the degrees of freedom of ``sigma_within``
    for the Cp interval (default n − 1); Pp always uses n − 1.

    Raises ``ValueError`` when nothing can be computed: n < 2, no limit in force, LSL ≥ USL,
    a σ that is zero, negative or not finite, neither σ given, or a non-finite mean.
    """
    if n < 2:
        raise ValueError(f"capability needs at least 2 values, got n = {n}")
    if not math.isfinite(mean):
        raise ValueError(f"mean must be finite, got {mean}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    lsl, usl = limits.low, limits.high
    if lsl is None and usl is None:
        raise ValueError("capability needs at least one specification limit (LSL or USL)")
    if any(v is not None and not math.isfinite(v) for v in (lsl, usl)):
        raise ValueError(f"specification limits must be finite, got LSL = {lsl}, USL = {usl}")
    if lsl is not None and usl is not None and not lsl < usl:
        raise ValueError(f"LSL must be below USL, got LSL = {lsl}, USL = {usl}")
    within = _sigma("sigma_within", sigma_within)
    overall = _sigma("sigma_overall", sigma_overall)
    if within is None and overall is None:
        raise ValueError("capability needs sigma_within (for Cp…) or sigma_overall (for Pp…)")
    within_dof = float(n - 1) if dof is None else dof
    if not within_dof > 0.0:
        raise ValueError(f"dof must be positive, got {dof}")
    alpha = 1.0 - confidence
    none: tuple[None, None, None, None] = (None, None, None, None)
    c = (
        none
        if within is None
        else _indices(mean=mean, sigma=within, lsl=lsl, usl=usl, n=n, dof=within_dof, alpha=alpha)
    )
    p = (
        none
        if overall is None
        else _indices(
            mean=mean, sigma=overall, lsl=lsl, usl=usl, n=n, dof=float(n - 1), alpha=alpha
        )
    )
    return Capability(
        n=n,
        mean=mean,
        lsl=lsl,
        usl=usl,
        sigma_within=within,
        sigma_overall=overall,
        confidence=confidence,
        cp=c[0],
        cpl=c[1],
        cpu=c[2],
        cpk=c[3],
        pp=p[0],
        ppl=p[1],
        ppu=p[2],
        ppk=p[3],
    )


def capability_of(
    values: Sequence[float],
    limits: Limits,
    *,
    sigma_within: float | None = None,
    confidence: float = 0.95,
) -> Capability:
    """Capability of individual values, in production order.

    σ_overall is the sample standard deviation; σ_within is ``sigma_within`` when given (e.g.
    R̄/d₂ from subgroups), otherwise the moving-range estimate MR̄/d₂(2) of the values.
    """
    xs = [float(v) for v in values]
    if len(xs) < 2:
        raise ValueError(f"capability needs at least 2 values, got {len(xs)}")
    if not all(math.isfinite(v) for v in xs):
        raise ValueError("values contain a value that is not finite")
    n = len(xs)
    mean = sum(xs) / n
    overall = math.sqrt(sum((v - mean) ** 2 for v in xs) / (n - 1))
    if overall == 0.0:
        raise ValueError("all values are equal: σ = 0, capability is not defined")
    if sigma_within is None:
        mrbar = sum(abs(b - a) for a, b in itertools.pairwise(xs)) / (n - 1)
        sigma_within = mrbar / constants(2).d2
    return capability(
        mean=mean,
        n=n,
        limits=limits,
        sigma_within=sigma_within,
        sigma_overall=overall,
        confidence=confidence,
    )
