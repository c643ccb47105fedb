"""Simulator of a Mark-10 Series 5 force gauge (or TT01-style torque gauge) on a pty, in GCL2.

Instrument: Mark-10 Series 5 digital force gauge (M5-class), and by profile a TT01-style torque
gauge, on a test stand in a jewelry QC lab. It pairs with ``drivers/`` code written separately
from the same manuals; it does not import it. The client opens :attr:`Mark10Simulator.path`
(``/dev/pts/N``) with pyserial like the gauge's USB virtual COM port.

Sources (collected in Hallmark's domain notes, INSTRUMENTS_AND_STANDARDS.md):

- §1.1, Series 5 user's guide §9.8 "Command Set / Gauge Control Language 2 (GCL2)" and the
  Series 4 guide §9.1.3/9.1.4: commands end in CR or CR-LF, the LF is ignored; replies always
  end in CR-LF. ``?`` is answered ``<value><space><unit>`` (``-18.78 lbF`` tension, ``4.285 N``
  compression); "numeric only" drops the unit; decimals depend on capacity and resolution; the
  "+" is never sent. TT01 replies look like ``-18.78 lbFin`` / ``4.285 Nm``. The GCL2 list:
  ``?`` ``?C`` ``?PT`` ``?PC`` ``?ET`` ``?A``; units ``LB OZ KG G N MN KN`` (torque ``LBFT LBIN
  OZIN KGM KGMM GCM NM NCM NMM``); modes ``CUR PT PC`` (torque ``PCW PCCW``), ``CLR``, ``Z``;
  ``FLTCn``/``FLTPn`` (n = 0..10, 2^n samples); ``SPHn``/``SPLn``; ``FULL``/``NUM``;
  ``AOUTn`` (0 off; the 7i lists 1, 2, 5, 10, 25, 50, 125, 250 per second); ``IPOLn``/``OPOLn``;
  ``MIT``/``MITD``; ``RN RM RV RS``; ``AOFFn`` (0..30 min); ``SAVE``; ``LIST`` (example
  ``V1.00;LBF;CUR;FLTC8;FLTP1;AOUT00;AOFF5;FULL;MIT;POL;B0``, battery B0 full .. B3 minimum,
  other fields "using the same abbreviations as the commands to set them"); errors ``*10``
  illegal command, ``*11`` not applicable, ``*12`` invalid specifier, ``*22`` value too large.
- §6.1 (what a realistic simulator must emulate): tension negative by default; decimals fixed by
  a capacity/resolution profile; noise 0.02-0.1 % of full scale, quantised to the resolution;
  peaks latch until ``CLR``/``Z``; filter averaging adds lag; reply latency 5-50 ms [M]; AOUT
  rates can saturate a slow link; the failure modes reproduced as fault kinds below.
- §3.4 (16 CFR 1500.51-.53): a torque or tension test is a ramp within 5 s then a 10 s hold;
  §3.6: jump rings (opened or broken) and prongs (push-out force) have no public standard, so
  every strength here is a simulator parameter.

Wire formats emitted (``<CR><LF>`` after each line)::

    ?C     -> -80.3 N         (FULL; tension negative)   NUM -> -80.3
    LB, ?C -> -18.05 lbF      torque profile: ?C -> 1.98 lbFin, -0.226 Nm
    LIST   -> V1.00;N;CUR;FLTC8;FLTP1;AOUT00;AOFF5;FULL;MIT;POL;B0
    RN/RM/RV/RS -> Series 5 / M5-100 / 1.00 / 5100000   (serial = profile base + seed)
    errors -> *10  *11  *12  *22

Simulator choices (NOT manual facts; a driver must not depend on them without checking a real
gauge):

- Set commands that succeed (units, modes, ``CLR``, ``Z``, ``AOUTn``, ...) send nothing back
  (the manual mentions only error replies). ``[model] ack = "R"`` makes them answer ``R``.
- Profiles: ``M5-2`` 10 N × 0.001 N, ``M5-100`` 500 N × 0.1 N (default), ``M5-50``
  50 lbF × 0.01 lbF, ``TT01-12`` 12 lbFin × 0.01 lbFin. In other units the resolution is the
  smallest 1-2-5 step at least as coarse as the native one (500 N gauge: 0.05 lbF, 0.02 kgF,
  20 gF, 0.5 ozF, 0.0001 kN); the number of decimals follows the step. Each profile offers the
  units listed in :data:`PROFILES`; another unit command answers ``*11``, as does a torque
  command on a force gauge and a force command on a torque gauge.
- Unit tokens not printed in the manual: ``lbFft ozFin kgFm kgFmm gFcm Ncm Nmm`` (by analogy
  with ``lbFin``/``Nm``). ``LIST`` prints the unit token in upper case (``N``, ``LBF``,
  ``LBFIN``), ``AOUT`` with at least two digits, ``POL``/``IPOL``/``OPOL`` for the polarity.
- Torque sign: clockwise positive, counter-clockwise negative (as compression/tension).
- Zero is printed without a sign (``0.0 N``, never ``-0.0 N``).
- Overload: the reading (and any latched peak) is pinned at exactly ±capacity of the profile
  (``500.0 N``, ``-112.40 lbF``); no other flag is sent. The manual's overload behaviour on
  the serial line was not retrieved.
- ``AOUTn`` streams the displayed reading (the ``?`` reply) n times per second;
  ``AOUT`` accepts 0, 1, 2, 5, 10, 25, 50, 125, 250 (others ``*12``, above 250 ``*22``).
  With ``baud`` set, a stream line that would leave more than one period late is dropped
  (counted in :attr:`Mark10Simulator.stream_dropped`).
- ``?A`` answers the mean load since the last ``CLR``/``Z`` (the manual's "Average mode" is not
  emulated as a mode). ``?ET`` answers ``*11`` (external trigger mode is never on).
- ``FLTCn`` averages the load over 2^n samples at 7000 samples/s (n = 8: a 36 ms window; n = 0:
  none), ``FLTPn`` likewise for the peaks; noise is added after the filter and does not shrink
  with it.
- Peaks come from the noise-free load at the curve's corners plus the size of the noise there,
  and are never below any reading sent since the last clear. Peak tension is never
  compressive and peak compression never tensile (both start at 0 after a clear).
- ``AOFFn``, ``SAVE``, ``MIT``/``MITD`` and set points are stored and reported but change nothing
  else; auto power-off is the ``vanish`` fault. Not emulated (answer ``*10``): ``?CW``,
  ``?CCW``, ``?P1``, ``MEM``, ``STA``, ``CLRMEM``, external trigger and I/O bit commands.
- Lower-case commands answer ``*10``; an empty line (bare CR) is ignored; more than 64 bytes
  without CR are discarded.
- Reply latency ``reply_latency_s`` + up to ``latency_jitter_s`` (5-10 ms by default),
  replies never overtake each other.

Physics (:class:`LoadModel`): the load is a piecewise-linear curve on the simulator clock plus
Gaussian noise (``noise_pct_fs`` % of capacity, default 0.05 %, a new value every 10 ms) and an
optional linear zero drift, quantised to the resolution. Part tests (:func:`start_test` or a
scenario entry) splice a curve onto it, drawn from ``random.Random`` seeded by ``seed`` and the
test's number, so the same seed gives the same parts:

- ``jump_ring``: tension ramp at ``rate_n_per_s``; a soldered ring breaks at ``strength_n`` ±
  ``spread_n`` (normal), the force falls to 0 in 5 ms; an unsoldered ring opens at a uniform
  ``open_fraction_min``..``open_fraction_max`` (25-45 %) of that strength: a plateau that sags
  8 % over ``plateau_s``, then a fall to 0 over 0.15 s.
- ``prong``: compression push-out; individually set stones at ``strength_n`` ± ``spread_n``,
  shared prongs at a uniform 45-65 % of that.
- ``hold``: 16 CFR 1500.51-.53 style: ramp to ``target`` (in ``unit``) within ``ramp_s`` (default
  4 s), hold ``hold_s`` (default 10 s), release over 0.5 s; or fail (fall to 0 in 10 ms) when
  the load reaches ``fail_at`` on the ramp or ``fail_after_s`` into the hold.

Vanishing and coming back (``vanish``/``come_back`` or the ``vanish`` fault) are those of
:class:`simulators._pty.PtyPort`: the pty master is closed, the client's pyserial raises
``SerialException``; the device returns on a new pty (``new_path=True``: guaranteed another
path), published by :attr:`path`, ``path_file``, ``link_path`` (a by-id style symlink) and
``on_path``.

Fault kinds (``set_fault(kind, **params)`` or a scenario ``[[fault]]``): ``no_reply``
(``stream``: also silence AOUT, default true), ``late_reply`` (``delay_s``), ``partial_line``
(``mode`` = ``"split"`` with ``gap_s`` between the halves, or ``"no_terminator"``), ``garbage``
(``where`` = before/inside, ``content`` = nul/ff/noise, ``count``), ``cr_only``, ``overload``
(``side``), ``panel_unit`` (``unit``: set at the front panel when the window opens),
``panel_zero`` (ZERO pressed when the window opens), ``vanish`` (``new_path``; the device comes
back when the window ends), ``interleave`` (``count`` stream lines sent before each reply) and
``duplicate`` (every line sent twice). A scenario entry whose kind is ``jump_ring``, ``prong``
or ``hold`` starts that part test at ``start`` (its parameters as for :meth:`start_test`).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import math
import random
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulators._pty import PtyPort
from simulators.scenario import (
    FaultTimeline,
    FaultWindow,
    ParamValue,
    Scenario,
    ScenarioError,
    ScenarioVocabulary,
    load_scenario,
)

__all__ = [
    "ALL_UNITS",
    "AOUT_RATES",
    "DEFAULT_PROFILE",
    "EVENT_FAULTS",
    "FORCE_UNITS",
    "MARK10_VOCABULARY",
    "PROFILES",
    "TEST_KINDS",
    "TORQUE_UNITS",
    "GarbageParams",
    "GaugeProfile",
    "HoldParams",
    "JumpRingParams",
    "LateReplyParams",
    "LoadCurve",
    "LoadModel",
    "Mark10ModelParams",
    "Mark10Simulator",
    "NoParams",
    "PartRun",
    "ProngParams",
    "SerialGaugeSimulator",
    "StrictParams",
    "UnitDef",
    "VanishParams",
    "format_number",
    "nice_step",
    "plan_part",
    "running_gauge",
    "running_mark10",
    "serve",
    "serve_gauge",
]

Quantity: TypeAlias = Literal["force", "torque"]

ERR_ILLEGAL = "*10"
ERR_NOT_APPLICABLE = "*11"
ERR_SPECIFIER = "*12"
ERR_TOO_LARGE = "*22"

#: ``AOUTn`` rates accepted (the Cooper 7i list, §1.1); 0 switches the stream off.
AOUT_RATES = (0, 1, 2, 5, 10, 25, 50, 125, 250)
#: Noise takes a new value this often (simulator choice: a 100 Hz display update).
NOISE_PERIOD_S = 0.01
#: Load-cell sampling rate used to turn FLTC/FLTP (2^n samples) into seconds (simulator choice).
SAMPLE_RATE_HZ = 7000.0
#: Commands longer than this without a CR are discarded (simulator choice).
MAX_COMMAND_BYTES = 64


# --- units and profiles -------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitDef:
    """A unit as the gauge names it: reply token, GCL2 command, SI value of one unit."""

    token: str
    command: str
    si: float  # newtons (force) or newton-metres (torque) per unit
    quantity: Quantity


_LBF_N = 4.4482216152605
_OZF_N = 0.27801385095378125
_KGF_N = 9.80665
_INCH_M = 0.0254

FORCE_UNITS: Mapping[str, UnitDef] = {
    u.token: u
    for u in (
        UnitDef("lbF", "LB", _LBF_N, "force"),
        UnitDef("ozF", "OZ", _OZF_N, "force"),
        UnitDef("kgF", "KG", _KGF_N, "force"),
        UnitDef("gF", "G", _KGF_N / 1000.0, "force"),
        UnitDef("N", "N", 1.0, "force"),
        UnitDef("mN", "MN", 0.001, "force"),
        UnitDef("kN", "KN", 1000.0, "force"),
    )
}
TORQUE_UNITS: Mapping[str, UnitDef] = {
    u.token: u
    for u in (
        UnitDef("lbFft", "LBFT", _LBF_N * 12 * _INCH_M, "torque"),
        UnitDef("lbFin", "LBIN", _LBF_N * _INCH_M, "torque"),
        UnitDef("ozFin", "OZIN", _OZF_N * _INCH_M, "torque"),
        UnitDef("kgFm", "KGM", _KGF_N, "torque"),
        UnitDef("kgFmm", "KGMM", _KGF_N / 1000.0, "torque"),
        UnitDef("gFcm", "GCM", _KGF_N / 100_000.0, "torque"),
        UnitDef("Nm", "NM", 1.0, "torque"),
        UnitDef("Ncm", "NCM", 0.01, "torque"),
        UnitDef("Nmm", "NMM", 0.001, "torque"),
    )
}
ALL_UNITS: Mapping[str, UnitDef] = {**FORCE_UNITS, **TORQUE_UNITS}
_UNIT_BY_COMMAND: Mapping[str, UnitDef] = {u.command: u for u in ALL_UNITS.values()}


def nice_step(value: float) -> float:
    """The smallest 1-2-5 × 10^k step that is at least ``value`` (> 0)."""
    if not value > 0:
        raise ValueError(f"a resolution must be > 0 (got {value})")
    exponent = math.floor(math.log10(value))
    for e in (exponent, exponent + 1):
        for mantissa in (1, 2, 5):
            step = float(f"{mantissa}e{e}")
            if step >= value * (1 - 1e-9):
                return step
    raise AssertionError("unreachable: 10^(k+1) >= value")  # pragma: no cover


def decimals_for(step: float) -> int:
    """How many decimals print a multiple of ``step`` exactly."""
    return max(0, -math.floor(math.log10(step) + 1e-9))


def format_number(value: float, step: float, *, sign: bool = True) -> str:
    """``value`` rounded to ``step`` with the step's decimals; no ``+``, no ``-0``."""
    decimals = decimals_for(step)
    quantised = round(value / step) * step
    text = f"{abs(quantised) if not sign else quantised:.{decimals}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text


@dataclass(frozen=True)
class GaugeProfile:
    """Capacity and resolution of one gauge model (simulator choice, see module docstring)."""

    name: str
    quantity: Quantity
    product: str  # RN
    model: str  # RM
    capacity: float  # in native_unit
    native_unit: str
    resolution: float  # in native_unit
    units: tuple[str, ...]
    serial_base: int

    @property
    def capacity_si(self) -> float:
        """Capacity in N or N·m."""
        return self.capacity * ALL_UNITS[self.native_unit].si

    def step(self, unit: str) -> float:
        """The display resolution in ``unit``."""
        if unit == self.native_unit:
            return self.resolution
        native = ALL_UNITS[self.native_unit].si
        return nice_step(self.resolution * native / ALL_UNITS[unit].si)


_FORCE_ALL = ("lbF", "ozF", "kgF", "gF", "N")
PROFILES: Mapping[str, GaugeProfile] = {
    p.name: p
    for p in (
        GaugeProfile(
            "M5-2", "force", "Series 5", "M5-2", 10.0, "N", 0.001, (*_FORCE_ALL, "mN"), 5_020_000
        ),
        GaugeProfile(
            "M5-100", "force", "Series 5", "M5-100", 500.0, "N", 0.1, (*_FORCE_ALL, "kN"), 5_100_000
        ),
        GaugeProfile(
            "M5-50", "force", "Series 5", "M5-50", 50.0, "lbF", 0.01, (*_FORCE_ALL, "kN"), 5_050_000
        ),
        GaugeProfile(
            "TT01-12",
            "torque",
            "TT01",
            "TT01-12",
            12.0,
            "lbFin",
            0.01,
            ("lbFin", "lbFft", "ozFin", "kgFmm", "gFcm", "Nm", "Ncm", "Nmm"),
            7_012_000,
        ),
    )
}
DEFAULT_PROFILE = "M5-100"


# --- the load curve and the part tests ----------------------------------------------------------


class LoadCurve:
    """A piecewise-linear load (N or N·m, compression/CW positive) on the simulator clock.

    Constant before the first and after the last knot. Not thread-safe.
    """

    def __init__(self) -> None:
        self._t: list[float] = [0.0]
        self._v: list[float] = [0.0]

    def value(self, t: float) -> float:
        """The load at ``t``."""
        i = bisect.bisect_right(self._t, t) - 1
        if i < 0:
            return self._v[0]
        if i >= len(self._t) - 1:
            return self._v[-1]
        t0, t1, v0, v1 = self._t[i], self._t[i + 1], self._v[i], self._v[i + 1]
        return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def knots_between(self, a: float, b: float) -> list[float]:
        """Knot times strictly inside ``(a, b)``."""
        lo = bisect.bisect_right(self._t, a)
        hi = bisect.bisect_left(self._t, b)
        return self._t[lo:hi]

    def mean(self, a: float, b: float) -> float:
        """The mean load over ``[a, b]`` (the value at ``b`` when the interval is empty)."""
        if b - a <= 1e-12:
            return self.value(b)
        edges = [a, *self.knots_between(a, b), b]
        area = sum(
            (x1 - x0) * (self.value(x0) + self.value(x1)) / 2.0
            for x0, x1 in itertools.pairwise(edges)
        )
        return area / (b - a)

    def splice(self, t0: float, knots: Sequence[tuple[float, float]]) -> None:
        """Keep the curve up to ``t0`` and continue it through ``knots`` (times > ``t0``)."""
        v0 = self.value(t0)
        keep = bisect.bisect_right(self._t, t0)
        del self._t[keep:], self._v[keep:]
        if self._t[-1] < t0:
            self._t.append(t0)
            self._v.append(v0)
        for t, v in knots:
            if t <= self._t[-1]:
                raise ValueError(f"knots must come after {self._t[-1]} (got {t})")
            self._t.append(t)
            self._v.append(v)


class StrictParams(BaseModel):
    """Frozen parameters that reject unknown keys (so misspelt TOML keys are reported)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class JumpRingParams(StrictParams):
    """``jump_ring``: pull a jump ring to failure (tension)."""

    soldered: bool = True
    #: Mean break load of a soldered ring, N.
    strength_n: float = Field(default=80.0, gt=0, le=100_000)
    #: Standard deviation of the strength, N.
    spread_n: float = Field(default=6.0, ge=0, le=100_000)
    open_fraction_min: float = Field(default=0.25, gt=0, le=1)
    open_fraction_max: float = Field(default=0.45, gt=0, le=1)
    #: Load rate of the stand, N/s.
    rate_n_per_s: float = Field(default=50.0, gt=0, le=1e6)
    #: How long an unsoldered ring keeps opening before it slips off, s.
    plateau_s: float = Field(default=0.8, ge=0, le=60)
    #: Fix the break (soldered) or opening (unsoldered) load instead of drawing it, N.
    break_n: float | None = Field(default=None, gt=0)


class ProngParams(StrictParams):
    """``prong``: push a set stone out of its prongs (compression)."""

    setting: Literal["individual", "shared"] = "individual"
    #: Mean push-out force of an individually set stone, N.
    strength_n: float = Field(default=60.0, gt=0, le=100_000)
    spread_n: float = Field(default=5.0, ge=0, le=100_000)
    shared_fraction_min: float = Field(default=0.45, gt=0, le=1)
    shared_fraction_max: float = Field(default=0.65, gt=0, le=1)
    rate_n_per_s: float = Field(default=30.0, gt=0, le=1e6)
    #: Fix the push-out force instead of drawing it, N.
    push_out_n: float | None = Field(default=None, gt=0)


class HoldParams(StrictParams):
    """``hold``: a 16 CFR 1500.51-.53 style torque or tension hold."""

    target: float = Field(gt=0, le=1e6)
    #: Unit of ``target`` and ``fail_at``: a reply token such as ``lbF``, ``N``, ``lbFin``.
    unit: str
    ramp_s: float = Field(default=4.0, gt=0, le=60)
    hold_s: float = Field(default=10.0, ge=0, le=3600)
    release_s: float = Field(default=0.5, gt=0, le=60)
    #: The part fails when the load reaches this on the ramp (in ``unit``).
    fail_at: float | None = Field(default=None, gt=0)
    #: The part fails this many seconds into the hold.
    fail_after_s: float | None = Field(default=None, ge=0)
    #: tension/compression on a force gauge (default tension), cw/ccw on torque (default cw).
    direction: Literal["tension", "compression", "cw", "ccw"] | None = None

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        if unit not in ALL_UNITS:
            raise ValueError(f"unknown unit {unit!r} (known: {', '.join(ALL_UNITS)})")
        return unit


TEST_KINDS: Mapping[str, type[StrictParams]] = {
    "jump_ring": JumpRingParams,
    "prong": ProngParams,
    "hold": HoldParams,
}


@dataclass(frozen=True)
class PartRun:
    """One part test as planned: its curve and its known outcome (the ground truth)."""

    number: int
    kind: str
    start: float  # simulator clock, s
    end: float  # when the curve is back at rest
    peak: float  # signed peak load of the noise-free curve, N or N·m
    outcome: Literal["broke", "opened", "pushed_out", "held", "failed"]
    failure_time: float | None
    knots: tuple[tuple[float, float], ...]
    params: Mapping[str, Any]


def _draw_strength(rng: random.Random, mean: float, spread: float) -> float:
    return max(0.1 * mean, rng.gauss(mean, spread))


def plan_part(
    kind: str,
    params: StrictParams,
    *,
    number: int,
    t0: float,
    v0: float,
    quantity: Quantity,
    seed: int,
) -> PartRun:
    """Plan part test ``number`` starting at ``t0`` from load ``v0`` (pure; seeded)."""
    # Not cryptographic: a reproducible draw per (seed, test number).
    rng = random.Random(f"{seed}:test:{number}")  # noqa: S311
    knots: list[tuple[float, float]]
    failure: float | None
    outcome: Literal["broke", "opened", "pushed_out", "held", "failed"]
    if isinstance(params, JumpRingParams | ProngParams) and quantity != "force":
        raise ValueError(f"a {kind} test needs a force gauge, not a torque gauge")
    if isinstance(params, JumpRingParams):
        strength = _draw_strength(rng, params.strength_n, params.spread_n)
        fraction = rng.uniform(params.open_fraction_min, params.open_fraction_max)
        load = strength if params.soldered else fraction * strength
        if params.break_n is not None:
            load = params.break_n
        t1 = t0 + abs(-load - v0) / params.rate_n_per_s
        failure = t1
        if params.soldered:
            knots = [(t1, -load), (t1 + 0.005, 0.0)]
            outcome = "broke"
        else:
            t2 = t1 + params.plateau_s
            knots = [(t1, -load), (t2, -0.92 * load), (t2 + 0.15, 0.0)]
            if params.plateau_s == 0:
                knots = [(t1, -load), (t1 + 0.15, 0.0)]
            outcome = "opened"
        peak = -load
    elif isinstance(params, ProngParams):
        strength = _draw_strength(rng, params.strength_n, params.spread_n)
        fraction = rng.uniform(params.shared_fraction_min, params.shared_fraction_max)
        load = strength if params.setting == "individual" else fraction * strength
        if params.push_out_n is not None:
            load = params.push_out_n
        t1 = t0 + abs(load - v0) / params.rate_n_per_s
        knots = [(t1, load), (t1 + 0.01, 0.0)]
        failure, outcome, peak = t1, "pushed_out", load
    elif isinstance(params, HoldParams):
        unit = ALL_UNITS[params.unit]
        if unit.quantity != quantity:
            raise ValueError(f"unit {params.unit!r} is a {unit.quantity} unit; gauge is {quantity}")
        direction = params.direction or ("tension" if quantity == "force" else "cw")
        if (direction in ("cw", "ccw")) != (quantity == "torque"):
            raise ValueError(f"direction {direction!r} does not fit a {quantity} gauge")
        sign = 1.0 if direction in ("compression", "cw") else -1.0
        target = params.target * unit.si
        fail_at = None if params.fail_at is None else params.fail_at * unit.si
        t_top = t0 + params.ramp_s
        if fail_at is not None and fail_at < target:
            failure = t0 + params.ramp_s * fail_at / target
            knots = [(failure, sign * fail_at), (failure + 0.01, 0.0)]
            outcome, peak = "failed", sign * fail_at
        elif params.fail_after_s is not None and params.fail_after_s < params.hold_s:
            failure = t_top + params.fail_after_s
            knots = [(t_top, sign * target)]
            if failure > t_top:
                knots.append((failure, sign * target))
            knots.append((failure + 0.01, 0.0))
            outcome, peak = "failed", sign * target
        else:
            failure = None
            t_release = t_top + params.hold_s
            knots = [(t_top, sign * target)]
            if t_release > t_top:
                knots.append((t_release, sign * target))
            knots.append((t_release + params.release_s, 0.0))
            outcome, peak = "held", sign * target
    else:  # pragma: no cover - TEST_KINDS is closed
        raise ValueError(f"unknown test kind {kind!r}")
    return PartRun(
        number=number,
        kind=kind,
        start=t0,
        end=knots[-1][0],
        peak=peak,
        outcome=outcome,
        failure_time=failure,
        knots=tuple(knots),
        params=params.model_dump(),
    )


class LoadModel:
    """What the load cell sees: the curve, tare, drift, noise, overload (SI units).

    Pure with respect to time apart from :meth:`zero` and :meth:`start_test`, which change the
    tare and the curve from a given time on. Not thread-safe; the simulator serialises access.
    """

    def __init__(
        self,
        *,
        capacity_si: float,
        quantity: Quantity,
        seed: int,
        noise_sd_si: float,
        drift_si_per_s: float,
        timeline: FaultTimeline,
    ) -> None:
        self.capacity_si = capacity_si
        self.quantity: Quantity = quantity
        self.seed = seed
        self.noise_sd_si = noise_sd_si
        self.drift_si_per_s = drift_si_per_s
        self.curve = LoadCurve()
        self.tare = 0.0
        self.runs: list[PartRun] = []
        self._timeline = timeline

    def noise(self, t: float) -> float:
        """The noise at ``t``: one Gaussian draw per 10 ms tick, seeded by (seed, tick)."""
        if self.noise_sd_si == 0.0:
            return 0.0
        tick = math.floor(t / NOISE_PERIOD_S)
        rng = random.Random(f"{self.seed}:noise:{tick}")  # noqa: S311
        return rng.gauss(0.0, self.noise_sd_si)

    def clean(self, t: float, window: float = 0.0) -> float:
        """The filtered, tared, drifting load without noise or saturation."""
        curve = self.curve.mean(t - window, t) if window > 0 else self.curve.value(t)
        return curve + self.drift_si_per_s * (t - window / 2.0) - self.tare

    def _overload_side(self, t: float) -> float | None:
        sides = [w for w in self._timeline.active(t) if w.kind == "overload"]
        if not sides:
            return None
        return 1.0 if str(sides[-1].params.get("side")) in ("compression", "cw") else -1.0

    def reading(self, t: float, window: float = 0.0) -> float:
        """The measured load at ``t``, pinned at ±capacity on overload."""
        side = self._overload_side(t)
        value = 1.5 * side * self.capacity_si if side is not None else None
        if value is None:
            value = self.clean(t, window) + self.noise(t)
        return max(-self.capacity_si, min(self.capacity_si, value))

    def overloaded(self, t: float, window: float = 0.0) -> bool:
        """True when the reading at ``t`` is pinned at capacity."""
        return abs(self.reading(t, window)) >= self.capacity_si

    def peak(self, a: float, t: float, sign: float, window: float = 0.0) -> float:
        """The latched peak on side ``sign`` (+1 compression/CW, -1 tension/CCW) over [a, t]."""
        candidates = [self.clean(a, window), self.clean(t, window)]
        for knot in self.curve.knots_between(a, t):
            excursion = sign * abs(self.noise(knot))
            for x in (knot, knot + window):
                if a < x <= t:
                    candidates.append(self.clean(x, window) + excursion)
        for w in self._timeline.windows("overload"):
            if w.start <= t and w.end > a:
                side = 1.0 if str(w.params.get("side")) in ("compression", "cw") else -1.0
                candidates.append(1.5 * side * self.capacity_si)
        value = max(candidates) if sign > 0 else min(candidates)
        value = max(-self.capacity_si, min(self.capacity_si, value))
        return max(0.0, value) if sign > 0 else min(0.0, value)

    def average(self, a: float, t: float) -> float:
        """Mean load over ``[a, t]`` (for ``?A``)."""
        value = self.curve.mean(a, t) + self.drift_si_per_s * (a + t) / 2.0 - self.tare
        return max(-self.capacity_si, min(self.capacity_si, value))

    def zero(self, t: float) -> None:
        """Tare: the noise-free reading at ``t`` becomes 0."""
        self.tare = self.curve.value(t) + self.drift_si_per_s * t

    def start_test(self, t: float, kind: str, params: StrictParams) -> PartRun:
        """Splice part test ``kind`` onto the curve at ``t`` and return its plan."""
        run = plan_part(
            kind,
            params,
            number=len(self.runs) + 1,
            t0=t,
            v0=self.curve.value(t),
            quantity=self.quantity,
            seed=self.seed,
        )
        self.curve.splice(t, run.knots)
        self.runs.append(run)
        return run


# --- scenario vocabulary ------------------------------------------------------------------------


class NoParams(StrictParams):
    """Parameters of a fault kind that takes none."""


class _NoReplyParams(StrictParams):
    #: Also silence the AOUT stream.
    stream: bool = True


class LateReplyParams(StrictParams):
    """``late_reply``: each reply comes ``delay_s`` later than usual."""

    delay_s: float = Field(default=0.5, gt=0, le=60)


class _PartialParams(StrictParams):
    mode: Literal["split", "no_terminator"] = "split"
    gap_s: float = Field(default=0.2, ge=0, le=10)


class GarbageParams(StrictParams):
    """``garbage``: ``count`` bytes of ``content`` before or inside every line sent."""

    where: Literal["before", "inside"] = "before"
    content: Literal["nul", "ff", "noise"] = "noise"
    count: int = Field(default=4, ge=1, le=64)


class _OverloadParams(StrictParams):
    side: Literal["tension", "compression", "cw", "ccw"] = "tension"


class _PanelUnitParams(StrictParams):
    unit: str

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        if unit not in ALL_UNITS:
            raise ValueError(f"unknown unit {unit!r} (known: {', '.join(ALL_UNITS)})")
        return unit


class VanishParams(StrictParams):
    """``vanish``: the device disappears; ``new_path`` makes it come back elsewhere."""

    new_path: bool = False


class _InterleaveParams(StrictParams):
    count: int = Field(default=1, ge=1, le=10)


class Mark10ModelParams(StrictParams):
    """The ``[model]`` table of a Mark-10 scenario (every key optional)."""

    profile: Literal["M5-2", "M5-100", "M5-50", "TT01-12"] = "M5-100"
    seed: int = 0
    #: Load-cell noise, standard deviation in % of full scale.
    noise_pct_fs: float = Field(default=0.05, ge=0, le=5)
    #: Zero drift in % of full scale per minute.
    zero_drift_pct_fs_per_min: float = Field(default=0.0, ge=-10, le=10)
    reply_latency_s: float = Field(default=0.005, ge=0, le=5)
    latency_jitter_s: float = Field(default=0.005, ge=0, le=5)
    #: Pace output at this baud (8N1); 0 = as fast as the pty goes.
    baud: int = Field(default=0, ge=0, le=4_000_000)
    #: Unit at power-on (a reply token); default the profile's native unit.
    unit: str = ""
    mode: Literal["CUR", "PT", "PC", "PCW", "PCCW"] = "CUR"
    format: Literal["FULL", "NUM"] = "FULL"
    aout: int = 0
    fltc: int = Field(default=8, ge=0, le=10)
    fltp: int = Field(default=1, ge=0, le=10)
    aoff: int = Field(default=5, ge=0, le=30)
    battery: int = Field(default=0, ge=0, le=3)
    firmware: str = "1.00"
    #: ``RS`` reply; default the profile's base number plus the seed.
    serial_number: str = ""
    #: Reply to successful set commands (empty: none).
    ack: str = ""

    @field_validator("aout")
    @classmethod
    def _known_rate(cls, rate: int) -> int:
        if rate not in AOUT_RATES:
            raise ValueError(f"AOUT rate must be one of {AOUT_RATES}")
        return rate


FAULT_KINDS: Mapping[str, type[BaseModel]] = {
    "no_reply": _NoReplyParams,
    "late_reply": LateReplyParams,
    "partial_line": _PartialParams,
    "garbage": GarbageParams,
    "cr_only": NoParams,
    "overload": _OverloadParams,
    "panel_unit": _PanelUnitParams,
    "panel_zero": NoParams,
    "vanish": VanishParams,
    "interleave": _InterleaveParams,
    "duplicate": NoParams,
    **TEST_KINDS,
}
#: Kinds that act once, when their window opens (``vanish`` also when it closes).
EVENT_FAULTS = frozenset({"panel_unit", "panel_zero", "vanish", *TEST_KINDS})

MARK10_VOCABULARY = ScenarioVocabulary(
    simulator="mark10", faults=FAULT_KINDS, model=Mark10ModelParams
)


# --- the shared serial-gauge machinery ----------------------------------------------------------


def _last(windows: Sequence[FaultWindow], kind: str) -> FaultWindow | None:
    """The most recently created active window of ``kind`` (hand-set faults win)."""
    matching = [w for w in windows if w.kind == kind]
    return matching[-1] if matching else None


class SerialGaugeSimulator(ABC):
    """What the Mark-10 and Imada simulators share: the pty, the clock, faults, part tests.

    Subclasses set :attr:`TERMINATOR`, :attr:`vocabulary` and :attr:`name`, and implement
    :meth:`_on_line` (one received command), :meth:`_stream_text` and :meth:`_apply_panel_unit`.
    Public methods are thread-safe (one re-entrant lock); everything the port thread runs takes
    the same lock.
    """

    TERMINATOR: ClassVar[bytes] = b"\r\n"
    vocabulary: ClassVar[ScenarioVocabulary]
    name: ClassVar[str] = "gauge"

    def __init__(
        self,
        *,
        scenario: Scenario,
        seed: int,
        quantity: Quantity,
        capacity_si: float,
        noise_pct_fs: float,
        drift_pct_fs_per_min: float,
        reply_latency_s: float,
        latency_jitter_s: float,
        baud: int | None,
        path_file: Path | None,
        link_path: Path | None,
        on_path: Callable[[str | None], None] | None,
    ) -> None:
        for number, entry in enumerate(scenario.faults, start=1):
            if entry.kind in TEST_KINDS and entry.duration is not None:
                raise ScenarioError(
                    scenario.source,
                    [
                        f"[[fault]] #{number} (kind = {entry.kind!r}): duration: a part test "
                        "runs its own course; leave duration out"
                    ],
                )
        self.scenario = scenario
        self.seed = seed
        self._lock = threading.RLock()
        self._timeline = FaultTimeline(scenario.windows())
        self.model = LoadModel(
            capacity_si=capacity_si,
            quantity=quantity,
            seed=seed,
            noise_sd_si=noise_pct_fs / 100.0 * capacity_si,
            drift_si_per_s=drift_pct_fs_per_min / 100.0 * capacity_si / 60.0,
            timeline=self._timeline,
        )
        self.reply_latency_s = reply_latency_s
        self.latency_jitter_s = latency_jitter_s
        self._port = PtyPort(
            self._on_bytes,
            name=self.name,
            baud=baud,
            path_file=path_file,
            link_path=link_path,
            on_path=on_path,
        )
        self._t0: float | None = None
        self._rx = bytearray()
        self._replies = 0
        self._junk_count = 0
        self._last_reply_due = 0.0
        self._hand_vanish = False
        # Check the scripted tests against this gauge now, not when they fire.
        for kind in TEST_KINDS:
            for window in self._timeline.windows(kind):
                self._checked_test_params(kind, dict(window.params), where=scenario.source)

    # life cycle

    def start(self, timeout: float = 5.0) -> str:
        """Start the clock and serve on a new pty; returns its path."""
        with self._lock:
            if self._t0 is not None:
                raise RuntimeError(f"{self.name}: a simulator starts once")
            self._t0 = time.monotonic()
        path = self._port.start(timeout)
        for kind in sorted(EVENT_FAULTS):
            for window in self._timeline.windows(kind):
                if window.scripted:
                    self._schedule_event(window)
        return path

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the pty; safe to call twice."""
        self._port.stop(timeout)

    @property
    def path(self) -> str | None:
        """The pty path to open (``/dev/pts/N``), ``None`` while vanished."""
        return self._port.path

    @property
    def port(self) -> PtyPort:
        """The pty server (counters, ``dropped_items``, ``errors``, ``generation``)."""
        return self._port

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the simulator's thread (should stay empty)."""
        return self._port.errors

    def elapsed(self) -> float:
        """Seconds on the simulator clock (the scenario's time base); 0 before :meth:`start`."""
        t0 = self._t0
        return 0.0 if t0 is None else time.monotonic() - t0

    # faults

    def set_fault(self, kind: str, **params: ParamValue) -> None:
        """Activate fault ``kind`` from now until :meth:`clear_faults` (see module docstring)."""
        if kind in TEST_KINDS:
            raise ValueError(f"{kind!r} is a part test: use start_test({kind!r}, ...)")
        checked = self.vocabulary.fault_params(kind, params)
        self._check_fault_fits(kind, checked)
        with self._lock:
            t = self.elapsed()
            self._timeline.start_manual(kind, t, checked)
            window = FaultWindow(kind, t, math.inf, checked, scripted=False)
        if kind == "vanish":
            self._hand_vanish = True
            self._port.vanish()
        elif kind in EVENT_FAULTS:
            self._fire(window)

    def clear_faults(self) -> None:
        """End every hand-set fault (a hand-set ``vanish`` comes back on the same terms)."""
        with self._lock:
            t = self.elapsed()
            vanish = [w for w in self._timeline.active(t) if w.kind == "vanish" and not w.scripted]
            self._timeline.stop_manual(t)
        if self._hand_vanish:
            self._hand_vanish = False
            new_path = bool(vanish[-1].params.get("new_path", False)) if vanish else False
            self._port.come_back(new_path=new_path)

    def vanish(self) -> None:
        """The device disappears now (pty closed); see :mod:`simulators._pty`."""
        self._port.vanish()

    def come_back(self, *, new_path: bool = False) -> str:
        """The device comes back on a new pty; returns its path."""
        return self._port.come_back(new_path=new_path)

    # part tests

    def start_test(self, kind: str, **params: Any) -> PartRun:
        """Start part test ``kind`` (``jump_ring``, ``prong``, ``hold``) now; returns its plan."""
        checked = self._checked_test_params(kind, params, where=self.name)
        with self._lock:
            return self.model.start_test(self.elapsed(), kind, checked)

    @property
    def runs(self) -> list[PartRun]:
        """Every part test started so far, in order."""
        with self._lock:
            return list(self.model.runs)

    def _checked_test_params(
        self, kind: str, params: Mapping[str, Any], *, where: str
    ) -> StrictParams:
        model = TEST_KINDS.get(kind)
        if model is None:
            raise ValueError(f"unknown test kind {kind!r} (known: {', '.join(TEST_KINDS)})")
        try:
            checked = model.model_validate(dict(params))
        except ValidationError as exc:
            raise ScenarioError(where, [f"{kind}: {exc}"]) from exc
        quantity = self.model.quantity
        problem: str | None = None
        if kind in ("jump_ring", "prong") and quantity != "force":
            problem = f"a {kind} test needs a force gauge, not a {quantity} gauge"
        if isinstance(checked, HoldParams):
            unit = ALL_UNITS[checked.unit]
            direction = checked.direction
            if unit.quantity != quantity:
                problem = f"unit: {checked.unit!r} is not a {quantity} unit"
            elif direction is not None and (direction in ("cw", "ccw")) != (quantity == "torque"):
                problem = f"direction: {direction!r} does not fit a {quantity} gauge"
        if problem is not None:
            raise ScenarioError(where, [f"{kind}: {problem}"])
        return checked

    def _check_fault_fits(self, kind: str, params: Mapping[str, ParamValue]) -> None:  # noqa: B027
        """Optional hook: refuse fault parameters that do not fit this gauge (raise
        ValueError). The default accepts them all."""

    # events

    def _schedule_event(self, window: FaultWindow) -> None:
        t0 = self._t0
        if t0 is None:
            return
        self._port.call_at(t0 + window.start, lambda: self._fire(window))
        if window.kind == "vanish" and math.isfinite(window.end):
            new_path = bool(window.params.get("new_path", False))

            def come_back() -> None:
                self._port.come_back(new_path=new_path)

            self._port.call_at(t0 + window.end, come_back)

    def _fire(self, window: FaultWindow) -> None:
        with self._lock:
            if window.kind in TEST_KINDS:
                params = self._checked_test_params(window.kind, dict(window.params), where="")
                self.model.start_test(window.start, window.kind, params)
            elif window.kind == "panel_unit":
                self._apply_panel_unit(str(window.params["unit"]))
            elif window.kind == "panel_zero":
                self._zero(self.elapsed())
            elif window.kind == "vanish" and window.scripted:
                self._port.vanish()

    # receiving

    def _on_bytes(self, data: bytes) -> None:
        with self._lock:
            self._rx += data.replace(b"\n", b"")  # LF is ignored (§1.1)
            while (end := self._rx.find(b"\r")) >= 0:
                line = bytes(self._rx[:end])
                del self._rx[: end + 1]
                if line:
                    self._on_line(line.decode("latin-1"))
            if len(self._rx) > MAX_COMMAND_BYTES:
                self._rx.clear()

    # sending

    def _emit(self, text: str, *, reply: bool) -> None:
        """Send one line through the active faults (see module docstring)."""
        t = self.elapsed()
        active = self._timeline.active(t)
        silent = _last(active, "no_reply")
        if silent is not None and (reply or bool(silent.params.get("stream", True))):
            return
        interleave = _last(active, "interleave")
        if reply and interleave is not None:
            for _ in range(int(interleave.params["count"])):
                self._emit(self._stream_text(t), reply=False)
        terminator = self.TERMINATOR
        if _last(active, "cr_only") is not None:
            terminator = b"\r"
        if _last(active, "missing_cr") is not None:
            terminator = b""
        payload = text.encode("ascii")
        split_gap: float | None = None
        partial = _last(active, "partial_line")
        if partial is not None:
            if partial.params["mode"] == "no_terminator":
                terminator = b""
            else:
                split_gap = float(partial.params["gap_s"])
        garbage = _last(active, "garbage")
        if garbage is not None:
            junk = self._junk(str(garbage.params["content"]), int(garbage.params["count"]))
            if garbage.params["where"] == "before":
                payload = junk + payload
            else:
                middle = len(payload) // 2
                payload = payload[:middle] + junk + payload[middle:]
        line = payload + terminator
        delay = 0.0
        if reply:
            self._replies += 1
            rng = random.Random(f"{self.seed}:latency:{self._replies}")  # noqa: S311
            delay = self.reply_latency_s + self.latency_jitter_s * rng.random()
            late = _last(active, "late_reply")
            if late is not None:
                delay += float(late.params["delay_s"])
            now = time.monotonic()
            due = max(now + delay, self._last_reply_due)
            self._last_reply_due = due + (split_gap or 0.0)
            delay = due - now
        copies = 2 if _last(active, "duplicate") is not None else 1
        for _ in range(copies):
            if split_gap is None:
                self._port.send(line, delay=delay)
            else:
                cut = max(1, len(line) // 2)
                self._port.send(line[:cut], delay=delay)
                self._port.send(line[cut:], delay=delay + split_gap)

    def _junk(self, content: str, count: int) -> bytes:
        if content == "nul":
            return b"\x00" * count
        if content == "ff":
            return b"\xff" * count
        self._junk_count += 1
        rng = random.Random(f"{self.seed}:garbage:{self._junk_count}")  # noqa: S311
        # Control and high bytes, never CR or LF, so the line framing itself survives.
        alphabet = [b for b in (*range(0x00, 0x20), *range(0x80, 0x100)) if b not in (10, 13)]
        return bytes(rng.choice(alphabet) for _ in range(count))

    # subclass hooks

    @abstractmethod
    def _on_line(self, line: str) -> None: ...

    @abstractmethod
    def _stream_text(self, t: float) -> str: ...

    @abstractmethod
    def _apply_panel_unit(self, unit: str) -> None: ...

    @abstractmethod
    def _zero(self, t: float) -> None: ...


# --- the Mark-10 gauge --------------------------------------------------------------------------


class Mark10Simulator(SerialGaugeSimulator):
    """A Mark-10 Series 5 force gauge or TT01-style torque gauge on a pty (module docstring).

    Keyword arguments ``profile`` and ``seed`` are defaults that the scenario's ``[model]``
    overrides; ``model`` (a mapping of ``[model]`` keys) overrides both. ``baud`` (if given)
    overrides ``[model] baud``. ``path_file``, ``link_path`` and ``on_path`` publish the pty
    path (see :mod:`simulators._pty`).
    """

    TERMINATOR = b"\r\n"
    vocabulary = MARK10_VOCABULARY
    name = "mark10"

    def __init__(
        self,
        *,
        profile: str = DEFAULT_PROFILE,
        seed: int = 0,
        scenario: Scenario | None = None,
        model: Mapping[str, ParamValue] | None = None,
        baud: int | None = None,
        path_file: Path | None = None,
        link_path: Path | None = None,
        on_path: Callable[[str | None], None] | None = None,
    ) -> None:
        scenario = (scenario or Scenario()).validated(MARK10_VOCABULARY)
        try:
            params = Mark10ModelParams.model_validate(
                {"profile": profile, "seed": seed, **scenario.model, **(model or {})}
            )
        except ValidationError as exc:
            raise ScenarioError(scenario.source, [f"[model]: {exc}"]) from exc
        self.params = params
        self.profile = PROFILES[params.profile]
        unit = params.unit or self.profile.native_unit
        if unit not in self.profile.units:
            raise ScenarioError(
                scenario.source,
                [
                    f"[model]: unit: {unit!r} is not offered by {self.profile.name} "
                    f"(offered: {', '.join(self.profile.units)})"
                ],
            )
        torque = self.profile.quantity == "torque"
        if params.mode in (("PT", "PC") if torque else ("PCW", "PCCW")):
            raise ScenarioError(
                scenario.source, [f"[model]: mode: {params.mode} does not fit {self.profile.name}"]
            )
        super().__init__(
            scenario=scenario,
            seed=params.seed,
            quantity=self.profile.quantity,
            capacity_si=self.profile.capacity_si,
            noise_pct_fs=params.noise_pct_fs,
            drift_pct_fs_per_min=params.zero_drift_pct_fs_per_min,
            reply_latency_s=params.reply_latency_s,
            latency_jitter_s=params.latency_jitter_s,
            baud=baud if baud is not None else (params.baud or None),
            path_file=path_file,
            link_path=link_path,
            on_path=on_path,
        )
        for window in self._timeline.windows("panel_unit") + self._timeline.windows("overload"):
            try:
                self._check_fault_fits(window.kind, window.params)
            except ValueError as exc:
                raise ScenarioError(scenario.source, [str(exc)]) from exc
        self.unit = unit
        self.mode: str = params.mode
        self.full = params.format == "FULL"
        self.ipol = False
        self.opol = False
        self.fltc = params.fltc
        self.fltp = params.fltp
        self.aout = 0
        self.aoff = params.aoff
        self.mit = "MIT"
        self.setpoint_high: float | None = None
        self.setpoint_low: float | None = None
        self.serial_number = params.serial_number or str(self.profile.serial_base + params.seed)
        #: Stream lines dropped because the paced link could not keep up.
        self.stream_dropped = 0
        #: AOUT stream lines handed to the port (before faults such as ``no_reply`` apply).
        self.stream_lines_sent = 0
        self._cleared_at = 0.0
        self._seen_high = 0.0
        self._seen_low = 0.0
        self._aout_generation = 0
        self._initial_aout = params.aout

    def start(self, timeout: float = 5.0) -> str:
        """Start the clock and serve on a new pty; returns its path."""
        path = super().start(timeout)
        if self._initial_aout:
            with self._lock:
                self._set_aout(self._initial_aout)
        return path

    # --- front panel (thread-safe) --------------------------------------------------------

    def press_zero(self) -> None:
        """Someone presses ZERO on the gauge: tare and clear the peaks."""
        with self._lock:
            self._zero(self.elapsed())

    def set_panel_unit(self, unit: str) -> None:
        """Someone changes the unit on the gauge's menu (``unit`` is a reply token)."""
        self._check_fault_fits("panel_unit", {"unit": unit})
        with self._lock:
            self._apply_panel_unit(unit)

    def reading(self) -> str:
        """What ``?`` would answer now (without faults, latency or terminator)."""
        with self._lock:
            return self._format(self._displayed(self.elapsed()))

    # --- readings --------------------------------------------------------------------------

    def _window(self, n: int) -> float:
        # 2^n samples span 2^n - 1 sample intervals: n = 0 is no averaging at all.
        return float((1 << n) - 1) / SAMPLE_RATE_HZ

    def _current(self, t: float) -> float:
        value = self.model.reading(t, self._window(self.fltc))
        self._seen_high = max(self._seen_high, value)
        self._seen_low = min(self._seen_low, value)
        return value

    def _peak(self, t: float, sign: float) -> float:
        value = self.model.peak(self._cleared_at, t, sign, self._window(self.fltp))
        return max(value, self._seen_high) if sign > 0 else min(value, self._seen_low)

    def _displayed(self, t: float) -> float:
        if self.mode in ("PT", "PCCW"):
            return self._peak(t, -1.0)
        if self.mode in ("PC", "PCW"):
            return self._peak(t, 1.0)
        return self._current(t)

    def _format(self, value_si: float) -> str:
        unit = ALL_UNITS[self.unit]
        value = value_si / unit.si
        if self.ipol:
            value = -value
        text = format_number(value, self.profile.step(self.unit), sign=not self.opol)
        return f"{text} {self.unit}" if self.full else text

    def _stream_text(self, t: float) -> str:
        return self._format(self._displayed(t))

    def _clear(self, t: float) -> None:
        self._cleared_at = t
        self._seen_high = self._seen_low = 0.0

    def _zero(self, t: float) -> None:
        self.model.zero(t)
        self._clear(t)

    def _apply_panel_unit(self, unit: str) -> None:
        self.unit = unit

    def _check_fault_fits(self, kind: str, params: Mapping[str, ParamValue]) -> None:
        torque = self.profile.quantity == "torque"
        if kind == "panel_unit" and str(params["unit"]) not in self.profile.units:
            raise ValueError(
                f"panel_unit: {params['unit']!r} is not offered by {self.profile.name} "
                f"(offered: {', '.join(self.profile.units)})"
            )
        if kind == "overload":
            side = str(params.get("side", "tension"))
            if (side in ("cw", "ccw")) != torque:
                raise ValueError(f"overload: side {side!r} does not fit {self.profile.name}")

    # --- streaming -------------------------------------------------------------------------

    def _set_aout(self, rate: int) -> None:
        self.aout = rate
        self._aout_generation += 1
        if rate:
            generation = self._aout_generation
            first = time.monotonic() + 1.0 / rate
            self._port.call_at(first, lambda: self._stream_tick(generation, first, rate))

    def _stream_tick(self, generation: int, due: float, rate: int) -> None:
        with self._lock:
            if generation != self._aout_generation:
                return
            period = 1.0 / rate
            if self._port.backlog_s() > period:
                self.stream_dropped += 1
            else:
                self.stream_lines_sent += 1
                self._emit(self._stream_text(self.elapsed()), reply=False)
            following = due + period
            now = time.monotonic()
            if following < now - period:  # far behind (a stalled thread): skip ahead
                following = now + period
            self._port.call_at(following, lambda: self._stream_tick(generation, following, rate))

    # --- commands --------------------------------------------------------------------------

    def _on_line(self, line: str) -> None:
        reply = self._execute(line.strip(" "), self.elapsed())
        if reply is not None:
            self._emit(reply, reply=True)

    def _ok(self) -> str | None:
        return self.params.ack or None

    def _execute(self, cmd: str, t: float) -> str | None:
        torque = self.profile.quantity == "torque"
        match cmd:
            case "?":
                return self._format(self._displayed(t))
            case "?C":
                return self._format(self._current(t))
            case "?PT" | "?PC":
                return (
                    ERR_NOT_APPLICABLE
                    if torque
                    else self._format(self._peak(t, -1.0 if cmd == "?PT" else 1.0))
                )
            case "?PCW" | "?PCCW":
                return (
                    ERR_NOT_APPLICABLE
                    if not torque
                    else self._format(self._peak(t, 1.0 if cmd == "?PCW" else -1.0))
                )
            case "?A":
                return self._format(self.model.average(self._cleared_at, t))
            case "?ET":
                return ERR_NOT_APPLICABLE
            case "FULL" | "NUM":
                self.full = cmd == "FULL"
                return self._ok()
            case "CUR":
                self.mode = cmd
                return self._ok()
            case "PT" | "PC" | "PCW" | "PCCW":
                if torque != (cmd in ("PCW", "PCCW")):
                    return ERR_NOT_APPLICABLE
                self.mode = cmd
                return self._ok()
            case "CLR":
                self._clear(t)
                return self._ok()
            case "Z":
                self._zero(t)
                return self._ok()
            case "LIST":
                return self._list()
            case "RN":
                return self.profile.product
            case "RM":
                return self.profile.model
            case "RV":
                return self.params.firmware
            case "RS":
                return self.serial_number
            case "SAVE":
                return self._ok()
            case "MIT" | "MITD":
                self.mit = cmd
                return self._ok()
            case "SPHD":
                self.setpoint_high = None
                return self._ok()
            case "SPLD":
                self.setpoint_low = None
                return self._ok()
        unit = _UNIT_BY_COMMAND.get(cmd)
        if unit is not None:
            if unit.token not in self.profile.units:
                return ERR_NOT_APPLICABLE
            self.unit = unit.token
            return self._ok()
        for prefix, handler in (
            ("FLTC", self._cmd_fltc),
            ("FLTP", self._cmd_fltp),
            ("AOUT", self._cmd_aout),
            ("AOFF", self._cmd_aoff),
            ("IPOL", self._cmd_ipol),
            ("OPOL", self._cmd_opol),
            ("SPH", self._cmd_sph),
            ("SPL", self._cmd_spl),
        ):
            if cmd.startswith(prefix):
                return handler(cmd[len(prefix) :])
        return ERR_ILLEGAL

    def _int_arg(self, arg: str, high: int, allowed: Sequence[int] | None = None) -> int | str:
        if not arg.isdigit() or not arg.isascii():
            return ERR_SPECIFIER
        value = int(arg)
        if value > high:
            return ERR_TOO_LARGE
        if allowed is not None and value not in allowed:
            return ERR_SPECIFIER
        return value

    def _cmd_fltc(self, arg: str) -> str | None:
        value = self._int_arg(arg, 10)
        if isinstance(value, str):
            return value
        self.fltc = value
        return self._ok()

    def _cmd_fltp(self, arg: str) -> str | None:
        value = self._int_arg(arg, 10)
        if isinstance(value, str):
            return value
        self.fltp = value
        return self._ok()

    def _cmd_aout(self, arg: str) -> str | None:
        value = self._int_arg(arg, max(AOUT_RATES), AOUT_RATES)
        if isinstance(value, str):
            return value
        self._set_aout(value)
        return self._ok()

    def _cmd_aoff(self, arg: str) -> str | None:
        value = self._int_arg(arg, 30)
        if isinstance(value, str):
            return value
        self.aoff = value
        return self._ok()

    def _cmd_ipol(self, arg: str) -> str | None:
        value = self._int_arg(arg, 1)
        if isinstance(value, str):
            return ERR_SPECIFIER
        self.ipol = value == 1
        return self._ok()

    def _cmd_opol(self, arg: str) -> str | None:
        value = self._int_arg(arg, 1)
        if isinstance(value, str):
            return ERR_SPECIFIER
        self.opol = value == 1
        return self._ok()

    def _setpoint(self, arg: str) -> float | str:
        try:
            value = float(arg)
        except ValueError:
            return ERR_SPECIFIER
        if not math.isfinite(value):
            return ERR_SPECIFIER
        if abs(value) * ALL_UNITS[self.unit].si > self.profile.capacity_si * (1 + 1e-9):
            return ERR_TOO_LARGE
        return value

    def _cmd_sph(self, arg: str) -> str | None:
        value = self._setpoint(arg)
        if isinstance(value, str):
            return value
        self.setpoint_high = value
        return self._ok()

    def _cmd_spl(self, arg: str) -> str | None:
        value = self._setpoint(arg)
        if isinstance(value, str):
            return value
        self.setpoint_low = value
        return self._ok()

    def _list(self) -> str:
        polarity = "OPOL" if self.opol else ("IPOL" if self.ipol else "POL")
        fields = [
            f"V{self.params.firmware}",
            self.unit.upper(),
            self.mode,
            f"FLTC{self.fltc}",
            f"FLTP{self.fltp}",
            f"AOUT{self.aout:02d}",
            f"AOFF{self.aoff}",
            "FULL" if self.full else "NUM",
            self.mit,
            polarity,
            f"B{self.params.battery}",
        ]
        return ";".join(fields)


# --- running it ---------------------------------------------------------------------------------


@contextlib.contextmanager
def running_mark10(**kwargs: Any) -> Iterator[Mark10Simulator]:
    """Run a :class:`Mark10Simulator` (its keyword arguments) for the ``with`` block.

    The pty is being served when the block is entered; on exit the simulator stops (bounded)
    and any exception raised inside its thread is raised here.
    """
    simulator = Mark10Simulator(**kwargs)
    with running_gauge(simulator):
        yield simulator


@contextlib.contextmanager
def running_gauge(simulator: SerialGaugeSimulator) -> Iterator[None]:
    """Start ``simulator``, stop it afterwards and surface errors from its thread."""
    simulator.start()
    try:
        yield
    finally:
        simulator.stop()
    if simulator.errors:
        raise RuntimeError(f"{simulator.name} simulator failed inside its thread") from (
            simulator.errors[0]
        )


def serve_gauge(
    make: Callable[[], SerialGaugeSimulator],
    describe: Callable[[SerialGaugeSimulator], dict[str, object]],
) -> int:
    """Start a simulator, print one JSON line, serve until SIGTERM/SIGINT (main thread only)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        simulator = make()
        try:
            path = simulator.start()
        except OSError as exc:
            print(f"error: cannot open a pty: {exc}", file=sys.stderr)
            return 1
        try:
            info = describe(simulator)
            line: dict[str, object] = {
                key: info.pop(key) for key in ("family", "model", "transport") if key in info
            }
            line.update({"port": path, "address": path, **info})
            print(json.dumps(line), flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            simulator.stop()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return 0


def serve(
    pty: bool,
    seed: int,
    scenario_path: Path | None,
    profile: str = DEFAULT_PROFILE,
    *,
    path_file: Path | None = None,
) -> int:
    """Serve a simulated Mark-10 gauge for ``daq simulate`` until SIGTERM or SIGINT.

    Prints one JSON line once the pty is open, for example ``{"family": "force", "model":
    "mark10", "transport": "serial", "port": "/dev/pts/7", "address": "/dev/pts/7", "profile":
    "M5-100", ...}``; when the device vanishes and comes back, ``path_file`` (if given) holds
    the new path. Returns 0 after a clean stop, 2 for a bad scenario file or arguments (the
    reason goes to stderr), 1 when no pty can be opened.
    """
    if not pty:
        print(
            "error: the mark10 simulator is a serial device; serve it with --pty", file=sys.stderr
        )
        return 2
    if profile not in PROFILES:
        print(f"error: unknown profile {profile!r} (known: {', '.join(PROFILES)})", file=sys.stderr)
        return 2
    try:
        scenario = (
            None if scenario_path is None else load_scenario(scenario_path, MARK10_VOCABULARY)
        )
        simulator = Mark10Simulator(
            profile=profile, seed=seed, scenario=scenario, path_file=path_file
        )
    except (ScenarioError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def describe(sim: SerialGaugeSimulator) -> dict[str, object]:
        assert isinstance(sim, Mark10Simulator)
        p = sim.profile
        return {
            "family": p.quantity,
            "model": "mark10",
            "transport": "serial",
            "profile": p.name,
            "capacity": p.capacity,
            "unit": sim.unit,
            "baud": sim.port.baud,
            "seed": sim.seed,
        }

    return serve_gauge(lambda: simulator, describe)
