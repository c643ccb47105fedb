"""Drift detection: false alarms and detection delay of each detector, over seeded simulated lots.

Individuals from N(μ₀, σ₀), standardised (μ₀ = 0, σ₀ = 1: every detector here is invariant
under an affine change of units). Detectors:

  Shewhart I 3σ          a point beyond 3σ (WE rule 1)
  CUSUM k=0.5 h=4 / h=5  tabular CUSUM
  EWMA λ=0.10 L=2.814    exact time-varying limits from start-up
  EWMA λ=0.20 L=3.0      idem
  WE rules 1–4           Western Electric 1–4 on individuals
  Hallmark default       DriftMonitor's defaults: CUSUM h=5 + EWMA λ=0.10 + WE1, lower side

Each runs **one-sided (lower)**, as ``DriftMonitor`` runs it for a minimum thickness or pull
force, and **two-sided**, as §5's ARL table (INSTRUMENTS_AND_STANDARDS.md) is stated. For the
WE rules, "lower" counts only violations below the centre line.

Figures:
  ARL₀       mean run length to the first (false) alarm in control; 1/ARL₀ = alarms per point
  CED        conditional expected delay: the shift (−0.5σ, −1σ, −1.5σ) starts at point τ = 100;
             runs that alarmed before τ are left out (their share is printed); the delay counts
             the shifted points up to and including the alarm point
  ARL₁       zero-state ARL with a −1σ shift from the first point, as §5's last column
  theory     Markov-chain ARL (Brook & Evans 1972, 400 states) for CUSUM and for EWMA with
             *asymptotic* limits (Lucas & Saccucci 1990); exact for Shewhart; WE 1–4 two-sided
             from Champ & Woodall (1987, Technometrics 29(4)): 91.75

Simulation is vectorised over runs with numpy; before it, the vectorised detectors are checked
point for point against the library (``daq.quality.drift.step``, ``daq.quality.spc.check_rules``)
on 200 seeded runs. The lot scenario at the end runs the library's ``DriftMonitor`` itself.

Run: .venv/bin/python benchmarks/drift_detection.py [--runs 2000] [--lots 1000] [--seed 20260101]
"""

from __future__ import annotations

import argparse
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy import stats

from daq.quality.drift import Baseline, Cusum, DriftMonitor, DriftSettings, Ewma, step
from daq.quality.spc import check_rules

TAU = 100
SHIFTS = (-0.5, -1.0, -1.5)
CAP = 40_000  # run-length cap (points); a censored run counts as CAP and is reported
BLOCK = 256


# --- vectorised detectors (state over runs) -------------------------------------------------


class Detector(ABC):
    name = ""

    @abstractmethod
    def start(self, runs: int) -> None: ...

    @abstractmethod
    def update(self, x: np.ndarray) -> np.ndarray:
        """Feed one point per run; return which runs alarm now."""

    @abstractmethod
    def keep(self, mask: np.ndarray) -> None:
        """Drop the runs that are finished."""


class Shewhart(Detector):
    def __init__(self, two_sided: bool) -> None:
        self.two = two_sided
        self.name = "Shewhart I 3σ"

    def start(self, runs: int) -> None:
        pass

    def update(self, x: np.ndarray) -> np.ndarray:
        return (np.abs(x) > 3.0) if self.two else (x < -3.0)

    def keep(self, mask: np.ndarray) -> None:
        pass


class VCusum(Detector):
    def __init__(self, k: float, h: float, two_sided: bool) -> None:
        self.k, self.h, self.two = k, h, two_sided
        self.name = f"CUSUM k={k:g} h={h:g}"

    def start(self, runs: int) -> None:
        self.low = np.zeros(runs)
        self.high = np.zeros(runs)

    def update(self, x: np.ndarray) -> np.ndarray:
        # same arithmetic as drift._cusum_step with μ₀ = 0, σ₀ = 1
        self.low = np.maximum(0.0, self.low + (0.0 - x) / 1.0 - self.k)
        alarm = self.low > self.h
        if self.two:
            self.high = np.maximum(0.0, self.high + (x - 0.0) / 1.0 - self.k)
            alarm |= self.high > self.h
        return alarm

    def keep(self, mask: np.ndarray) -> None:
        self.low, self.high = self.low[mask], self.high[mask]


class VEwma(Detector):
    def __init__(self, lam: float, L: float, two_sided: bool) -> None:
        self.lam, self.L, self.two = lam, L, two_sided
        self.name = f"EWMA λ={lam:.2f} L={L:g}"
        # the library's own limits, so both compare against the very same numbers
        chart = Ewma(0.0, 1.0, lam, L)
        self.limits = np.array([chart.limit(i) for i in range(1, CAP + 2)])

    def start(self, runs: int) -> None:
        self.z = np.zeros(runs)
        self.i = 0

    def update(self, x: np.ndarray) -> np.ndarray:
        self.z = self.z + self.lam * (x - self.z)
        lcl = self.limits[self.i]
        self.i += 1
        return (np.abs(self.z) > -lcl) if self.two else (self.z < lcl)

    def keep(self, mask: np.ndarray) -> None:
        self.z = self.z[mask]


class WesternElectric(Detector):
    def __init__(self, two_sided: bool) -> None:
        self.two = two_sided
        self.name = "WE rules 1–4"

    def start(self, runs: int) -> None:
        self.buf = np.full((runs, 8), np.nan)  # last 8 points, newest in column 7

    def _side(self, s: np.ndarray) -> np.ndarray:
        last = s[:, 7]
        r1 = last > 3.0
        r2 = (last > 2.0) & ((s[:, 5:] > 2.0).sum(axis=1) >= 2)
        r3 = (last > 1.0) & ((s[:, 3:] > 1.0).sum(axis=1) >= 4)
        r4 = (s > 0.0).all(axis=1)
        return r1 | r2 | r3 | r4

    def update(self, x: np.ndarray) -> np.ndarray:
        self.buf = np.roll(self.buf, -1, axis=1)
        self.buf[:, 7] = x
        alarm = self._side(-self.buf)
        if self.two:
            alarm |= self._side(self.buf)
        return alarm

    def keep(self, mask: np.ndarray) -> None:
        self.buf = self.buf[mask]


class Combined(Detector):
    def __init__(self, parts: list[Detector], name: str) -> None:
        self.parts, self.name = parts, name

    def start(self, runs: int) -> None:
        for p in self.parts:
            p.start(runs)

    def update(self, x: np.ndarray) -> np.ndarray:
        alarm = np.zeros(x.shape, dtype=bool)
        for p in self.parts:
            alarm |= p.update(x)
        return alarm

    def keep(self, mask: np.ndarray) -> None:
        for p in self.parts:
            p.keep(mask)


def detectors(two_sided: bool) -> list[Detector]:
    out: list[Detector] = [
        Shewhart(two_sided),
        VCusum(0.5, 4.0, two_sided),
        VCusum(0.5, 5.0, two_sided),
        VEwma(0.10, 2.814, two_sided),
        VEwma(0.20, 3.0, two_sided),
        WesternElectric(two_sided),
    ]
    if not two_sided:
        parts = [VCusum(0.5, 5.0, False), VEwma(0.10, 2.814, False), Shewhart(False)]
        out.append(Combined(parts, "Hallmark default (CUSUM h5 + EWMA .1 + WE1)"))
    return out


def run_lengths(
    det: Detector, runs: int, rng: np.random.Generator, shift: float = 0.0, tau: int = 0
) -> np.ndarray:
    """1-based index of each run's first alarm (CAP when censored)."""
    rl = np.full(runs, CAP, dtype=np.int64)
    ids = np.arange(runs)
    det.start(runs)
    t = 0
    while ids.size and t < CAP:
        noise = rng.standard_normal((ids.size, BLOCK))
        col = 0
        while col < BLOCK and ids.size and t < CAP:
            x = noise[:, col] + (shift if t >= tau else 0.0)
            alarm = det.update(x)
            if alarm.any():
                rl[ids[alarm]] = t + 1
                live = ~alarm
                ids, noise = ids[live], noise[live]
                det.keep(live)
            col += 1
            t += 1
    return rl


# --- the check against the library ----------------------------------------------------------


def library_run_length(kind: str, params: tuple[float, float], xs: np.ndarray, two: bool) -> int:
    """First alarm (1-based) of the library's detector on xs, or CAP."""
    values = [float(v) for v in xs]
    if kind in ("cusum", "ewma"):
        sides = ("lower", "upper") if two else ("lower",)
        if kind == "cusum":
            states: list = [Cusum(0.0, 1.0, params[0], params[1], s).start() for s in sides]
        else:
            states = [Ewma(0.0, 1.0, params[0], params[1], s).start() for s in sides]
        for t, v in enumerate(values):
            fired = False
            for j, s in enumerate(states):
                states[j], signal = step(s, v)
                fired |= signal is not None
            if fired:
                return t + 1
        return CAP
    rules = ["WE1"] if kind == "shewhart" else ["WE1", "WE2", "WE3", "WE4"]
    for v in check_rules(values, 0.0, 1.0, rules):
        if two or v.direction == "down":
            return v.index + 1
    return CAP


def check_against_library(seed: int) -> str:
    rng = np.random.default_rng(seed)
    runs, length = 200, 1500
    cases: list[tuple[Detector, str, tuple[float, float]]] = []
    for two in (False, True):
        for det in detectors(two):
            if isinstance(det, Shewhart):
                cases.append((det, "shewhart", (0.0, 0.0)))
            elif isinstance(det, VCusum):
                cases.append((det, "cusum", (det.k, det.h)))
            elif isinstance(det, VEwma):
                cases.append((det, "ewma", (det.lam, det.L)))
            elif isinstance(det, WesternElectric):
                cases.append((det, "we", (0.0, 0.0)))
    compared = 0
    for det, kind, params in cases:
        two = bool(getattr(det, "two", False))
        shift = -0.5 if kind in ("shewhart", "we") else 0.0  # keep WE/Shewhart runs interesting
        xs = rng.standard_normal((runs, length)) + shift
        det.start(runs)
        vec = np.full(runs, CAP)
        for t in range(length):
            alarm = det.update(xs[:, t]) & (vec == CAP)
            vec[alarm] = t + 1
        for r in range(runs):
            stop = length if vec[r] == CAP else int(vec[r])
            lib = library_run_length(kind, params, xs[r, :stop], two)
            if lib != vec[r]:
                raise SystemExit(
                    f"MISMATCH {det.name} two={two} run {r}: numpy {vec[r]}, lib {lib}"
                )
            compared += 1
    return (
        f"{compared} run lengths identical (numpy replica vs daq.quality, {len(cases)} detectors)"
    )


# --- theory ---------------------------------------------------------------------------------


def cusum_arl(k: float, h: float, delta: float, m: int = 400) -> float:
    """One-sided CUSUM ARL for a mean shift ``delta`` toward the monitored side (Brook-Evans)."""
    w = 2.0 * h / (2 * m - 1)
    centres = np.arange(m) * w
    upper = (np.arange(m) + 0.5) * w
    # next = c_i + X − k with X ~ N(delta, 1)
    cdf = stats.norm.cdf(upper[None, :] - centres[:, None] + k - delta)
    trans = np.diff(np.concatenate([np.zeros((m, 1)), cdf], axis=1), axis=1)
    arl = np.linalg.solve(np.eye(m) - trans, np.ones(m))
    return float(arl[0])


def ewma_arl(lam: float, L: float, delta: float, two_sided: bool, m: int = 401) -> float:
    """EWMA ARL with asymptotic limits (Brook-Evans Markov chain as in Lucas & Saccucci)."""
    c = L * math.sqrt(lam / (2.0 - lam))
    top = c if two_sided else c + 8.0 * math.sqrt(lam / (2.0 - lam))
    edges = np.linspace(-c, top, m + 1)
    mids = (edges[:-1] + edges[1:]) / 2
    # Z' = (1 − λ)Z + λX: P(Z' ≤ e) = Φ((e − (1 − λ)z)/λ − delta)
    cdf = stats.norm.cdf((edges[None, :] - (1 - lam) * mids[:, None]) / lam - delta)
    trans = np.diff(cdf, axis=1)
    if not two_sided:  # the truncated top: Z this high never comes back to alarm in practice
        trans[:, -1] += 1.0 - cdf[:, -1]
    arl = np.linalg.solve(np.eye(m) - trans, np.ones(m))
    return float(np.interp(0.0, mids, arl))


def ewma_one_sided_L(lam: float, target: float) -> float:
    lo, hi = 1.5, 4.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if ewma_arl(lam, mid, 0.0, False) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def theory(det: Detector, two: bool, delta: float) -> float | None:
    """delta > 0 means a shift toward the monitored (lower) side."""
    if isinstance(det, Shewhart):
        p = stats.norm.cdf(-3.0 + delta) + (stats.norm.sf(3.0 + delta) if two else 0.0)
        return float(1.0 / p)
    if isinstance(det, VCusum):
        low = cusum_arl(det.k, det.h, delta)
        if not two:
            return low
        return 1.0 / (1.0 / low + 1.0 / cusum_arl(det.k, det.h, -delta))  # ≈, Siegmund
    if isinstance(det, VEwma):
        return ewma_arl(det.lam, det.L, -delta, two)  # the chain's X ~ N(shift, 1): lower = −
    if isinstance(det, WesternElectric) and two and delta == 0.0:
        return 91.75
    return None


# --- report ---------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    arl0: float
    se0: float
    censored: int
    arl1: float
    ced: dict[float, tuple[float, float]]  # shift -> (mean delay, share alarmed before τ)


def simulate(det: Detector, runs: int, rng: np.random.Generator, with_ced: bool) -> Row:
    rl0 = run_lengths(det, runs, rng)
    arl1 = float(run_lengths(det, runs, rng, shift=-1.0, tau=0).mean())
    ced: dict[float, tuple[float, float]] = {}
    if with_ced:
        for shift in SHIFTS:
            rl = run_lengths(det, runs, rng, shift=shift, tau=TAU)
            after = rl > TAU
            ced[shift] = (float((rl[after] - TAU).mean()), float(1.0 - after.mean()))
    return Row(
        det.name,
        float(rl0.mean()),
        float(rl0.std(ddof=1) / math.sqrt(runs)),
        int((rl0 >= CAP).sum()),
        arl1,
        ced,
    )


SECTION5 = {  # §5's table, two-sided: ARL₀, ARL at a 1σ shift
    "Shewhart I 3σ": (370.4, 43.9),
    "CUSUM k=0.5 h=4": (168.0, 8.4),
    "CUSUM k=0.5 h=5": (465.0, 10.3),
    "EWMA λ=0.10 L=2.814": (500.0, 8.1),
    "EWMA λ=0.20 L=3": (556.0, 9.8),
}


NOTES = """
Which figures compare with §5: its table is for two-sided schemes (CUSUM ARL₀ 168 and 465 are
two-sided; a one-sided CUSUM runs about twice as long in control, 335 and 931), so the
two-sided table is the comparison. ARL₁ is zero-state (shift from the first point). The EWMA
rows use the exact time-varying limits, which catch a shift present from the start sooner than
the asymptotic limits Lucas & Saccucci's ARLs (the theory column) assume: §5's 8.1 for λ=0.10 is
the time-varying figure, 10.3 the asymptotic one; the design ARL₀ of 500 is for asymptotic
limits (start-up limits add a few early false alarms).
FA<τ: share of runs that false-alarmed before the −1σ shift at τ = 100 (left out of CED)."""


def fmt(v: float | None, width: int = 7, digits: int = 1) -> str:
    return " " * (width - 1) + "–" if v is None else f"{v:{width}.{digits}f}"


def lots(count: int, seed: int) -> None:
    gold = Baseline("thickness/layer_Au", 30, 3.0, 0.15, "golden-1", 0)
    configs = {
        "default (CUSUM+EWMA+WE1, lower)": DriftSettings(),
        "WE rules 1–4 only, both sides": DriftSettings(
            side="both", cusum=False, ewma=False, rules=("WE1", "WE2", "WE3", "WE4")
        ),
    }
    print(f"\nLots of 50 parts, golden baseline 3.00 ± 0.15 µm, LSL 2.50 µm, {count} lots each")
    print("(same part-to-part noise for both bulk means; DriftMonitor from daq.quality.drift)")
    head = (
        f"{'monitor':34} {'bulk mean':>9} {'flagged':>8} {'median 1st':>10} "
        f"{'first by':>28} {'part<LSL':>9} {'median 1st':>9}"
    )
    print(head)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((count, 50)) * 0.15
    for label, cfg in configs.items():
        for mean in (3.0, 2.8):
            values = mean + noise
            first: list[int] = []
            by: dict[str, int] = {}
            for row in values:
                monitor = DriftMonitor(gold, cfg)
                for i, v in enumerate(row):
                    alarms = monitor.observe(float(v), i)
                    if alarms:
                        first.append(i + 1)
                        by[alarms[0].rule] = by.get(alarms[0].rule, 0) + 1
                        break
            failing = values < 2.5
            below = float(failing.any(axis=1).mean())
            first_fail = [int(np.argmax(r)) + 1 for r in failing if r.any()]
            fail_median = f"{np.median(first_fail):9.0f}" if first_fail else " " * 8 + "–"
            top = ", ".join(f"{k} {v}" for k, v in sorted(by.items(), key=lambda kv: -kv[1])[:2])
            median = f"{np.median(first):10.0f}" if first else " " * 9 + "–"
            print(
                f"{label:34} {mean:9.2f} {len(first) / count:8.1%} {median} "
                f"{top:>28} {below:9.1%} {fail_median}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--lots", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args()
    began = time.perf_counter()
    print("Check:", check_against_library(args.seed))
    rng = np.random.default_rng(args.seed + 1)

    print(f"\nOne-sided (lower), as DriftMonitor runs it — {args.runs} runs per figure")
    print(
        f"{'detector':44} {'ARL₀':>7} {'±SE':>5} {'theory':>7} {'FA/1000':>7} "
        + " ".join(f"{f'CED {s:+.1f}σ':>10}" for s in SHIFTS)
        + f" {'FA<τ':>5} {'ARL₁':>7} {'theory':>7}"
    )
    for det in detectors(False):
        row = simulate(det, args.runs, rng, with_ced=True)
        cens = f" ({row.censored} censored)" if row.censored else ""
        print(
            f"{row.name:44} {row.arl0:7.1f} {row.se0:5.1f} {fmt(theory(det, False, 0.0))} "
            f"{1000 / row.arl0:7.2f} "
            + " ".join(f"{row.ced[s][0]:10.1f}" for s in SHIFTS)
            + f" {row.ced[-1.0][1]:5.1%} {row.arl1:7.1f} {fmt(theory(det, False, 1.0))}{cens}"
        )

    print(f"\nTwo-sided, against §5's table — {args.runs} runs per figure")
    print(
        f"{'detector':24} {'ARL₀ sim':>9} {'±SE':>5} {'theory':>7} {'§5':>6} "
        f"{'ARL₁ sim':>9} {'theory':>7} {'§5':>6}"
    )
    for det in detectors(True):
        row = simulate(det, args.runs, rng, with_ced=False)
        pub = SECTION5.get(det.name)
        print(
            f"{row.name:24} {row.arl0:9.1f} {row.se0:5.1f} {fmt(theory(det, True, 0.0))} "
            f"{fmt(pub[0] if pub else None, 6)} {row.arl1:9.1f} "
            f"{fmt(theory(det, True, 1.0))} {fmt(pub[1] if pub else None, 6)}"
        )
    L500 = ewma_one_sided_L(0.10, 500.0)
    print(
        f"\nOne-sided EWMA λ=0.10 with L=2.814 (asymptotic limits): ARL₀ "
        f"{ewma_arl(0.10, 2.814, 0.0, False):.0f}; L for a one-sided ARL₀ of 500: {L500:.3f} "
        f"(ARL₁ at −1σ then {ewma_arl(0.10, L500, -1.0, False):.1f})"
    )
    print(NOTES)
    lots(args.lots, args.seed + 2)
    print(f"\n{time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
