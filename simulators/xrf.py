"""Simulated XRF coating-thickness gauge: the result model both XRF outputs share.

Instrument family: benchtop energy-dispersive XRF coating-thickness gauges (FISCHERSCOPE X-RAY
with WinFTM, Hitachi FT / X-Strata, Bowman, Thermo). They are PC-hosted and have **no public
protocol**: results leave the PC as serial "print" telegrams or as export files (Hallmark's
domain notes, INSTRUMENTS_AND_STANDARDS.md §1.3, §6.3). This package simulates both ways out:

- :mod:`simulators.xrf_telegram`: push-mode result blocks on a pseudo-terminal (serial print).
- :mod:`simulators.xrf_export`: CSV/TXT result files written into a watched directory.

Both render the same :class:`Series` made by :class:`XrfModel`, so a test can compare what the
wire or the file says with the numbers the simulator meant. Every text layout is a simulator
convention written down in those modules, **not** a vendor format: WinFTM and Hitachi export
field names are unverified (§7 item 5), and real sample files from the customer's instruments
remain the true fixtures.

The model (seeded; the same seed and the same sequence of calls give the same numbers)
    An *application* names the coating stack top first and the substrate last, e.g.
    ``Au/Ni/CuZn`` (gold over nickel over brass); :data:`APPLICATIONS` lists the ones known,
    with nominal thicknesses taken from Hallmark's example SKU specs. A *series* is 1–50
    readings (spots) on one part, each giving a thickness per coating layer and, for alloy
    layers, a composition in mass %.

    For each series the part's true thickness per layer is the nominal (the golden sample),
    times the lot drift on ``drift_layer``, times a part-to-part factor ``N(1, part_sigma_pct)``
    (the golden sample is one physical piece: no part-to-part spread and no drift). Each
    reading is then::

        reading = true * (1 + curvature_bias_pct / 100) + N(0, sigma)
        sigma   = true * cov_ref_pct / 100 * sqrt(30 s / measuring_time_s)
                       * sqrt(max(1, 1 µm / true)) * (underlayer_factor if not the top layer)

    that is counting statistics (relative σ ∝ 1/√time and, for thin layers whose signal grows
    with thickness, ∝ 1/√thickness), underlayers about 3× worse (ISO 3497 / §1.3 ranges), and
    a systematic curvature/tilt bias (negative = low, as on small curved parts). Readings are
    clipped at 0. Composition is ``N(nominal, composition_sigma_pct * sqrt(30 s / time))``.

    Drift (the use case: a production lot plated thinner than the golden sample): from lot
    ``drift_start_lot`` on, the true thickness of layer ``drift_layer`` changes by
    ``drift_step_pct + drift_ramp_pct_per_lot * (lot - drift_start_lot)`` percent (a step, a
    ramp, or both). Parts are numbered in the order series are emitted; part *k* (0-based,
    golden samples not counted) belongs to lot ``k // parts_per_lot + 1`` unless a lot is given.

Statistics (n, mean, s with n - 1, CoV = s / mean in %, min, max) are computed from the
readings *as displayed* (rounded to the output's decimals in the output's unit), so a reader
recomputing them from the printed readings gets the printed statistics to the last digit
(within one unit of the last decimal). Decimals: thickness 3 in µm and 1 in µin (mean, min and
max too; s one more), composition 1, CoV 2, positions 2. 1 µin = 0.0254 µm exactly.

Faults come from a :class:`~simulators.scenario.FaultTimeline` (a scenario's ``[[fault]]``
windows plus ``set_fault``/``clear_faults`` by hand) and are evaluated when a series is
emitted. The kinds both outputs know are :data:`SHARED_FAULT_KINDS`; each output adds its own.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import random
import signal
import statistics as pystats
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import ClassVar, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulators.scenario import (
    FaultTimeline,
    FaultWindow,
    ParamValue,
    Scenario,
    ScenarioError,
    ScenarioVocabulary,
)

__all__ = [
    "APPLICATIONS",
    "COMPOSITION_DECIMALS",
    "COV_DECIMALS",
    "MICROINCH_PER_MICROMETRE",
    "POSITION_DECIMALS",
    "REFERENCE_THICKNESS_UM",
    "REFERENCE_TIME_S",
    "SHARED_FAULT_KINDS",
    "THICKNESS_DECIMALS",
    "ActiveFaults",
    "Application",
    "Column",
    "Emission",
    "Layer",
    "Reading",
    "Series",
    "Statistics",
    "Table",
    "XrfModel",
    "XrfModelParams",
    "XrfSimulator",
    "apply_series_faults",
    "format_number",
    "serve_until_signal",
    "statistics",
    "tabulate",
]

_log = logging.getLogger(__name__)

#: 1 in = 25.4 mm exactly, so 1 µm = 39.37… µin (the domain notes round this to 40).
MICROINCH_PER_MICROMETRE = 1.0 / 0.0254
#: Measuring time and thickness at which a top layer's relative σ equals ``cov_ref_pct``.
REFERENCE_TIME_S = 30.0
REFERENCE_THICKNESS_UM = 1.0

Unit: TypeAlias = Literal["um", "uin"]
#: Decimals shown for a reading (mean, min, max alike) per unit; s gets one more.
THICKNESS_DECIMALS: Mapping[Unit, int] = {"um": 3, "uin": 1}
COMPOSITION_DECIMALS = 1
COV_DECIMALS = 2
POSITION_DECIMALS = 2


# --- applications --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One coating layer: its label as printed, nominal thickness, optional composition.

    ``composition_pct`` is the mass % of ``element`` in an alloy layer (58.5 for 14 K gold);
    ``None`` for a layer measured for thickness only.
    """

    element: str
    nominal_um: float
    composition_pct: float | None = None


@dataclass(frozen=True)
class Application:
    """A measuring application: coating layers top first, then the substrate."""

    layers: tuple[Layer, ...]
    substrate: str
    description: str = ""

    @property
    def name(self) -> str:
        """``Au/Ni/CuZn``: the layer labels and the substrate joined by ``/``."""
        return "/".join([*(layer.element for layer in self.layers), self.substrate])


def _application(description: str, substrate: str, *layers: Layer) -> Application:
    return Application(tuple(layers), substrate, description)


#: The applications the simulator knows, by name. Nominals follow Hallmark's example SKU specs
#: (config/specs/) and the plating terms of the domain notes §3.5; they are simulator defaults.
APPLICATIONS: Mapping[str, Application] = {
    app.name: app
    for app in (
        _application("gold over nickel over brass", "CuZn", Layer("Au", 1.0), Layer("Ni", 3.0)),
        _application("gold flash on brass (< 0.175 µm: 'gold flash')", "CuZn", Layer("Au", 0.08)),
        _application(
            "14 K gold vermeil on sterling silver (FTC: >= 2.5 µm)",
            "Ag925",
            Layer("Au", 3.0, composition_pct=58.5),
        ),
        _application("rhodium on silver", "Ag", Layer("Rh", 0.5)),
        _application(
            "rhodium over palladium on sterling silver", "Ag925", Layer("Rh", 0.9), Layer("Pd", 0.3)
        ),
        _application(
            "gold over white bronze over copper on brass",
            "CuZn",
            Layer("Au", 1.0),
            Layer("CuSn", 2.0),
            Layer("Cu", 3.0),
        ),
    )
}


# --- model parameters ----------------------------------------------------------------------------

#: Free text printed in headers: letters (any script), digits, space and ``. _ - / + #``.
_TEXT_PATTERN = r"^[\w .\-/+#]{1,40}$"


class XrfModelParams(BaseModel):
    """The ``[model]`` keys both XRF outputs understand (each output adds its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Measuring application, a key of :data:`APPLICATIONS`.
    application: str = "Au/Ni/CuZn"
    #: Product (SKU) name the operator selected, printed in headers.
    product: str = Field(default="HM-RING-001", pattern=_TEXT_PATTERN)
    #: Operator name printed in headers.
    operator: str = Field(default="OP1", pattern=_TEXT_PATTERN)
    #: Instrument name printed in headers.
    instrument: str = Field(default="XRF-SIM 1", pattern=_TEXT_PATTERN)
    #: Nominal thickness of coating layer 1 (top), 2 and 3 in µm; default: the application's.
    #: ASTM B568's range is 0.01–75 µm.
    layer1_um: float | None = Field(default=None, ge=0.01, le=75.0, allow_inf_nan=False)
    layer2_um: float | None = Field(default=None, ge=0.01, le=75.0, allow_inf_nan=False)
    layer3_um: float | None = Field(default=None, ge=0.01, le=75.0, allow_inf_nan=False)
    #: Measuring time per spot, s (10–60 s is typical).
    measuring_time_s: float = Field(default=30.0, ge=1.0, le=600.0, allow_inf_nan=False)
    #: Readings (spots) per series when ``emit_series`` is not given ``n``.
    readings_per_series: int = Field(default=5, ge=1, le=50)
    #: Unit of the output: ``um`` (µm) or ``uin`` (µin).
    unit: Unit = "um"
    #: Relative σ in % of a 1 µm top layer measured for 30 s.
    cov_ref_pct: float = Field(default=1.5, ge=0.0, le=50.0, allow_inf_nan=False)
    #: How much worse an underlayer's relative σ is than the top layer's.
    underlayer_factor: float = Field(default=3.0, ge=1.0, le=20.0, allow_inf_nan=False)
    #: Part-to-part spread of the true thickness, relative σ in %.
    part_sigma_pct: float = Field(default=2.0, ge=0.0, le=50.0, allow_inf_nan=False)
    #: σ of a composition reading in mass % at 30 s.
    composition_sigma_pct: float = Field(default=0.3, ge=0.0, le=10.0, allow_inf_nan=False)
    #: Systematic bias of every thickness reading in % (negative: small curved or tilted parts).
    curvature_bias_pct: float = Field(default=0.0, ge=-50.0, le=50.0, allow_inf_nan=False)
    #: Parts per lot when lots are numbered automatically.
    parts_per_lot: int = Field(default=5, ge=1, le=100_000)
    #: First lot (1-based) affected by drift.
    drift_start_lot: int = Field(default=2, ge=1)
    #: Step change of the true thickness from ``drift_start_lot`` on, % (negative: thinner).
    drift_step_pct: float = Field(default=0.0, ge=-90.0, le=100.0, allow_inf_nan=False)
    #: Further change per lot after ``drift_start_lot``, % per lot.
    drift_ramp_pct_per_lot: float = Field(default=0.0, ge=-50.0, le=50.0, allow_inf_nan=False)
    #: Coating layer (1 = top) that drifts.
    drift_layer: int = Field(default=1, ge=1, le=3)
    #: Random seed: the same seed and calls give the same readings.
    seed: int = 0

    @field_validator("application")
    @classmethod
    def _known_application(cls, value: str) -> str:
        if value not in APPLICATIONS:
            raise ValueError(f"unknown application {value!r} (known: {', '.join(APPLICATIONS)})")
        return value

    @model_validator(mode="after")
    def _layers_exist(self) -> XrfModelParams:
        count = len(APPLICATIONS[self.application].layers)
        given = (self.layer1_um, self.layer2_um, self.layer3_um)
        for number, value in enumerate(given, start=1):
            if value is not None and number > count:
                raise ValueError(
                    f"layer{number}_um: application {self.application!r} "
                    f"has {count} coating layer(s)"
                )
        if self.drift_layer > count:
            raise ValueError(
                f"drift_layer: application {self.application!r} has {count} coating layer(s)"
            )
        return self

    def resolved_application(self) -> Application:
        """The application with the ``layerN_um`` overrides applied."""
        app = APPLICATIONS[self.application]
        overrides = (self.layer1_um, self.layer2_um, self.layer3_um)
        layers = tuple(
            layer if nominal is None else replace(layer, nominal_um=nominal)
            for layer, nominal in zip(app.layers, overrides, strict=False)
        )
        return replace(app, layers=layers)


# --- series --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One spot: its number (1-based), position and a value per coating layer (top first)."""

    number: int
    x_mm: float
    y_mm: float
    thickness_um: tuple[float, ...]
    composition_pct: tuple[float | None, ...]


@dataclass(frozen=True)
class Series:
    """One finished series of readings on one part, before any output formatting."""

    seq: int
    application: Application
    product: str
    part_id: str
    lot: int
    operator: str
    instrument: str
    measured_at: datetime
    measuring_time_s: float
    golden: bool
    #: Drift applied to ``drift_layer`` in %, 0 outside drift and for golden samples.
    drift_pct: float
    #: The part's true thickness per layer before bias and noise, µm.
    true_um: tuple[float, ...]
    readings: tuple[Reading, ...]


class XrfModel:
    """Makes :class:`Series` from :class:`XrfModelParams`; pure given its arguments."""

    def __init__(self, params: XrfModelParams) -> None:
        self.params = params
        self.application = params.resolved_application()

    def lot_of(self, part_index: int) -> int:
        """The lot (1-based) of the ``part_index``-th part (0-based)."""
        return part_index // self.params.parts_per_lot + 1

    def drift_pct(self, lot: int) -> float:
        """The drift in % of ``drift_layer``'s true thickness in ``lot``."""
        p = self.params
        if lot < p.drift_start_lot:
            return 0.0
        return p.drift_step_pct + p.drift_ramp_pct_per_lot * (lot - p.drift_start_lot)

    def relative_sigma(self, layer_index: int, thickness_um: float, time_s: float) -> float:
        """Counting-statistics relative σ of one reading (a fraction, not %)."""
        p = self.params
        sigma = p.cov_ref_pct / 100.0 * math.sqrt(REFERENCE_TIME_S / time_s)
        sigma *= math.sqrt(max(1.0, REFERENCE_THICKNESS_UM / max(thickness_um, 1e-6)))
        if layer_index > 0:
            sigma *= p.underlayer_factor
        return sigma

    def measure(
        self,
        *,
        seq: int,
        part_id: str,
        lot: int,
        n: int,
        golden: bool,
        measured_at: datetime,
    ) -> Series:
        """One series of ``n`` readings; the draws depend on ``seed`` and ``seq`` only."""
        p = self.params
        # Not cryptographic: reproducible draws per (seed, series number).
        rng = random.Random(f"{p.seed}:{seq}")  # noqa: S311
        time_s = p.measuring_time_s
        drift = 0.0 if golden else self.drift_pct(lot)
        true_um: list[float] = []
        for index, layer in enumerate(self.application.layers):
            value = layer.nominal_um
            if not golden:
                if index + 1 == p.drift_layer:
                    value *= max(0.02, 1.0 + drift / 100.0)
                value *= max(0.05, rng.gauss(1.0, p.part_sigma_pct / 100.0))
            true_um.append(value)
        bias = 1.0 + p.curvature_bias_pct / 100.0
        comp_sigma = p.composition_sigma_pct * math.sqrt(REFERENCE_TIME_S / time_s)
        readings = []
        for number in range(1, n + 1):
            thickness = []
            composition: list[float | None] = []
            for index, layer in enumerate(self.application.layers):
                true = true_um[index]
                sigma = true * self.relative_sigma(index, true, time_s)
                thickness.append(max(0.0, true * bias + rng.gauss(0.0, sigma)))
                if layer.composition_pct is None:
                    composition.append(None)
                else:
                    drawn = rng.gauss(layer.composition_pct, comp_sigma)
                    composition.append(min(100.0, max(0.0, drawn)))
            # Spots along a line on the part, as a programmed stage would place them.
            x = 10.0 + 0.5 * (number - 1) + rng.uniform(-0.05, 0.05)
            y = 20.0 + rng.uniform(-0.05, 0.05)
            readings.append(Reading(number, x, y, tuple(thickness), tuple(composition)))
        return Series(
            seq=seq,
            application=self.application,
            product=p.product,
            part_id=part_id,
            lot=lot,
            operator=p.operator,
            instrument=p.instrument,
            measured_at=measured_at,
            measuring_time_s=time_s,
            golden=golden,
            drift_pct=drift,
            true_um=tuple(true_um),
            readings=tuple(readings),
        )


# --- display table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One result column: a layer's thickness or composition, in a display unit."""

    element: str
    #: Coating layer number, 1 = top.
    layer: int
    quantity: Literal["thickness", "composition"]
    unit: Literal["um", "uin", "%"]
    decimals: int


@dataclass(frozen=True)
class Statistics:
    """Statistics of one column over a series; ``s`` uses n - 1 (0 when n = 1)."""

    n: int
    mean: float
    s: float
    cov_pct: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class Table:
    """A series as displayed: columns, rounded reading values and statistics per column."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[float, ...], ...]
    stats: tuple[Statistics, ...]


def statistics(values: Sequence[float]) -> Statistics:
    """n, mean, sample standard deviation, CoV (%), min and max of ``values`` (not empty)."""
    if not values:
        raise ValueError("statistics of no values")
    mean = pystats.fmean(values)
    s = pystats.stdev(values) if len(values) > 1 else 0.0
    cov = 0.0 if mean == 0 else s / mean * 100.0
    return Statistics(len(values), mean, s, cov, min(values), max(values))


def tabulate(series: Series, unit: Unit) -> Table:
    """The series as displayed in ``unit``: thickness columns, then composition columns.

    Reading values are rounded to the column's decimals; statistics come from those values.
    """
    layers = series.application.layers
    decimals = THICKNESS_DECIMALS[unit]
    factor = MICROINCH_PER_MICROMETRE if unit == "uin" else 1.0
    columns = [
        Column(layer.element, index + 1, "thickness", unit, decimals)
        for index, layer in enumerate(layers)
    ]
    columns += [
        Column(layer.element, index + 1, "composition", "%", COMPOSITION_DECIMALS)
        for index, layer in enumerate(layers)
        if layer.composition_pct is not None
    ]
    rows = []
    for reading in series.readings:
        row = []
        for column in columns:
            index = column.layer - 1
            if column.quantity == "thickness":
                raw = reading.thickness_um[index] * factor
            else:
                composition = reading.composition_pct[index]
                raw = 0.0 if composition is None else composition
            row.append(round(raw, column.decimals))
        rows.append(tuple(row))
    stats = tuple(statistics([row[i] for row in rows]) for i in range(len(columns)))
    return Table(tuple(columns), tuple(rows), stats)


def format_number(value: float, decimals: int, decimal: str = ".") -> str:
    """``value`` with ``decimals`` decimals and ``decimal`` as the separator (no grouping)."""
    text = f"{value:.{decimals}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text if decimal == "." else text.replace(".", decimal)


# --- fault kinds both outputs share -------------------------------------------------------------


class _NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _TruncatedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fraction of the bytes that get out before the cut.
    keep_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)


class _UnknownElementParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The label printed instead of the layer's element.
    element: str = Field(default="Xx", pattern=r"^[A-Za-z][A-Za-z0-9]{0,7}$")
    #: Which coating layer (1 = top) gets the wrong label.
    layer: int = Field(default=1, ge=1, le=3)


class _ClockSkewParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds added to the instrument PC's clock (negative: it runs behind).
    seconds: float = Field(ge=-1e7, le=1e7, allow_inf_nan=False)


#: Fault kinds of both outputs. ``truncated``: the output stops part way (no end marker / a
#: half file); ``unknown_element``: a layer carries a label the reader does not expect;
#: ``unit_uin``: the series comes out in µin; ``wrong_decimal``: the other decimal separator;
#: ``no_output``: the series finishes but nothing comes out; ``clock_skew``: the date-time
#: printed is off by ``seconds``.
SHARED_FAULT_KINDS: Mapping[str, type[BaseModel]] = {
    "truncated": _TruncatedParams,
    "unknown_element": _UnknownElementParams,
    "unit_uin": _NoParams,
    "wrong_decimal": _NoParams,
    "no_output": _NoParams,
    "clock_skew": _ClockSkewParams,
}

ActiveFaults: TypeAlias = Mapping[str, Mapping[str, ParamValue]]


def apply_series_faults(series: Series, faults: ActiveFaults) -> Series:
    """The content faults both outputs apply to a series: ``unknown_element``, ``clock_skew``."""
    if "unknown_element" in faults:
        params = faults["unknown_element"]
        index = int(params["layer"]) - 1
        layers = list(series.application.layers)
        layers[index] = replace(layers[index], element=str(params["element"]))
        series = replace(series, application=replace(series.application, layers=tuple(layers)))
    if "clock_skew" in faults:
        seconds = float(faults["clock_skew"]["seconds"])
        series = replace(series, measured_at=series.measured_at + timedelta(seconds=seconds))
    return series


# --- the running simulator -----------------------------------------------------------------------


@dataclass
class Emission:
    """What one ``emit_series`` produced, filled in as the output is delivered.

    ``data`` is the payload exactly as rendered with the content faults applied (the telegram
    bytes or the export file's bytes); a ``truncated`` fault's cut, ``garbage`` and
    ``no_output`` are applied on delivery and shown in ``sent``. ``paths`` lists every file the
    export left on disk (final names, or a ``.tmp`` that was never renamed). :meth:`wait`
    blocks until delivery has finished.
    """

    seq: int
    series: Series
    table: Table
    faults: tuple[str, ...]
    data: bytes
    sent: bytes = b""
    paths: list[Path] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float = 10.0) -> Emission:
        """Wait until delivered; raise :class:`TimeoutError`, or the delivery's own error."""
        if not self.done.wait(timeout):
            raise TimeoutError(f"series {self.seq} not delivered within {timeout} s")
        if self.error is not None:
            raise self.error
        return self


_Job: TypeAlias = tuple[Emission, ActiveFaults]


def _local_now() -> datetime:
    # XRF PCs print local wall time, without a zone, to the second.
    return datetime.now().replace(microsecond=0)


class XrfSimulator(ABC):
    """What both XRF outputs share: model, fault timeline, the series counter and one worker.

    The worker thread delivers emissions in order (so a slow export does not block the caller)
    and, with ``interval_s``, emits a series by itself every ``interval_s`` seconds as an
    operator at the gauge would. Public methods are thread-safe.
    """

    #: Set by each output: its scenario vocabulary.
    vocabulary: ClassVar[ScenarioVocabulary]

    def __init__(
        self,
        *,
        seed: int = 0,
        scenario: Scenario | None = None,
        model: Mapping[str, ParamValue] | None = None,
        interval_s: float | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if interval_s is not None and not interval_s > 0:
            raise ValueError(f"interval_s must be > 0 seconds (got {interval_s})")
        scenario = (scenario or Scenario()).validated(self.vocabulary)
        merged: dict[str, ParamValue] = {"seed": seed, **scenario.model, **(model or {})}
        problems, _ = self.vocabulary.check_model(merged)
        if problems:
            raise ScenarioError(f"{scenario.source} (+ model arguments)", problems)
        params = self.vocabulary.model.model_validate(merged)
        if not isinstance(params, XrfModelParams):  # pragma: no cover - vocabulary wiring
            raise TypeError(f"{self.vocabulary.simulator}: model is not XrfModelParams")
        self.params: XrfModelParams = params
        self.scenario = scenario
        self.model = XrfModel(params)
        self._check_fault_layers(scenario)
        self.interval_s = interval_s
        self._clock = clock or _local_now
        self._lock = threading.Lock()
        self._timeline = FaultTimeline(scenario.windows())
        self._seq = 0
        self._parts = 0
        self._t0: float | None = None
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Errors raised while delivering, oldest first (the ``running_*`` helpers re-raise).
        self.errors: list[BaseException] = []

    # --- life cycle ----------------------------------------------------------------------------

    @property
    @abstractmethod
    def address(self) -> str:
        """Where a reader finds the output: the pty path, or the export directory."""

    def start(self, timeout: float = 5.0) -> str:
        """Start the clock, the output and the worker thread; returns :attr:`address`."""
        if self._thread is not None:
            raise RuntimeError(f"{self.vocabulary.simulator}: a simulator starts once")
        self._open_output(timeout)
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"{self.vocabulary.simulator}-sim", daemon=True
        )
        with self._lock:
            self._t0 = time.monotonic()
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError(f"{self.vocabulary.simulator}: worker did not start in {timeout} s")
        return self.address

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker and close the output; safe to call twice.

        A slow write in progress is abandoned where it is; series still queued are not
        delivered (their :meth:`Emission.wait` raises :class:`RuntimeError`).
        """
        self._stop.set()
        self._jobs.put(None)
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(
                    f"{self.vocabulary.simulator}: worker did not stop in {timeout} s"
                )
        self._close_output(timeout)

    def elapsed(self) -> float:
        """Seconds on the simulator clock (the scenario's time base); 0 before :meth:`start`."""
        t0 = self._t0
        return 0.0 if t0 is None else time.monotonic() - t0

    # --- faults --------------------------------------------------------------------------------

    def set_fault(self, kind: str, **params: ParamValue) -> None:
        """Activate a fault from now until :meth:`clear_faults` (or another of the same kind)."""
        checked = self.vocabulary.fault_params(kind, params)
        self._check_fault_layers(Scenario(), extra=(kind, checked))
        with self._lock:
            self._timeline.start_manual(kind, self.elapsed(), checked)

    def clear_faults(self) -> None:
        """End every hand-set fault; the scenario's windows keep their schedule."""
        with self._lock:
            self._timeline.stop_manual(self.elapsed())

    def active_faults(self) -> dict[str, Mapping[str, ParamValue]]:
        """The faults active now, by kind (a hand-set fault wins over a scripted one)."""
        with self._lock:
            return self._active(self.elapsed())

    def _active(self, t: float) -> dict[str, Mapping[str, ParamValue]]:
        active: dict[str, FaultWindow] = {}
        for window in self._timeline.active(t):
            active[window.kind] = window  # later windows (hand-set ones) win
        return {kind: window.params for kind, window in active.items()}

    def _check_fault_layers(
        self, scenario: Scenario, extra: tuple[str, Mapping[str, ParamValue]] | None = None
    ) -> None:
        count = len(self.model.application.layers)
        entries = [(f"[[fault]] #{i}", e.kind, e.params) for i, e in enumerate(scenario.faults, 1)]
        if extra is not None:
            entries.append(("set_fault", extra[0], extra[1]))
        problems = [
            f"{where} (kind = {kind!r}): layer: application "
            f"{self.model.application.name!r} has {count} coating layer(s)"
            for where, kind, params in entries
            if kind == "unknown_element" and int(params.get("layer", 1)) > count
        ]
        if problems:
            raise ScenarioError(scenario.source, problems)

    # --- series --------------------------------------------------------------------------------

    def emit_series(
        self,
        part_id: str | None = None,
        n: int | None = None,
        *,
        lot: int | None = None,
        golden: bool = False,
        when: datetime | None = None,
    ) -> Emission:
        """The operator finished a series now: measure it and queue its output.

        ``part_id`` defaults to ``P0001``, ``P0002``… (``GOLDEN`` for a golden sample);
        ``n`` to ``readings_per_series``; ``lot`` to the part's automatic lot; ``when`` to the
        clock. A golden sample is the reference piece: nominal thickness, no drift, not counted
        as a part. Returns at once; :meth:`Emission.wait` waits for delivery.
        """
        count = self.params.readings_per_series if n is None else n
        if not 1 <= count <= 50:
            raise ValueError(f"n must be 1..50 readings (got {count})")
        if lot is not None and lot < 1:
            raise ValueError(f"lot must be >= 1 (got {lot})")
        with self._lock:
            if self._thread is None or self._stop.is_set():
                raise RuntimeError(f"{self.vocabulary.simulator}: not running")
            faults = self._active(self.elapsed())
            self._seq += 1
            seq = self._seq
            if golden:
                part = "GOLDEN" if part_id is None else part_id
                part_lot = 0 if lot is None else lot
            else:
                part = f"P{self._parts + 1:04d}" if part_id is None else part_id
                part_lot = self.model.lot_of(self._parts) if lot is None else lot
                self._parts += 1
            series = self.model.measure(
                seq=seq,
                part_id=part,
                lot=part_lot,
                n=count,
                golden=golden,
                measured_at=self._clock() if when is None else when,
            )
            emission = self._render(series, faults)
            self._jobs.put((emission, faults))
        _log.info(
            "%s: series %d (%s, %d readings, faults: %s)",
            self.params.instrument,
            seq,
            part,
            count,
            ", ".join(emission.faults) or "none",
        )
        return emission

    def _deliver_guarded(
        self, emission: Emission, faults: ActiveFaults, stop: threading.Event
    ) -> None:
        try:
            self._deliver(emission, faults, stop)
        except Exception as exc:
            _log.exception("%s: delivering series %d failed", self.params.instrument, emission.seq)
            emission.error = exc
            self.errors.append(exc)
        finally:
            emission.done.set()

    def _run(self, started: threading.Event) -> None:
        started.set()
        try:
            self._serve_jobs()
        finally:
            # Whatever was queued when the simulator stopped is never delivered.
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].error = RuntimeError(f"series {job[0].seq}: simulator stopped first")
                    job[0].done.set()

    def _serve_jobs(self) -> None:
        next_due = None if self.interval_s is None else time.monotonic() + self.interval_s
        while not self._stop.is_set():
            timeout = None if next_due is None else max(0.0, next_due - time.monotonic())
            try:
                job = self._jobs.get(timeout=timeout)
            except queue.Empty:
                if next_due is not None and self.interval_s is not None:
                    next_due += self.interval_s
                    self._emit_on_schedule()
                continue
            if job is None:
                return
            self._deliver_guarded(job[0], job[1], self._stop)

    def _emit_on_schedule(self) -> None:
        try:
            self.emit_series()
        except RuntimeError:
            pass  # stopping: the loop ends on the stop flag
        except Exception as exc:
            _log.exception("%s: scheduled series failed", self.params.instrument)
            self.errors.append(exc)

    # --- the output, per subclass --------------------------------------------------------------

    @abstractmethod
    def _open_output(self, timeout: float) -> None: ...

    @abstractmethod
    def _close_output(self, timeout: float) -> None: ...

    @abstractmethod
    def _render(self, series: Series, faults: ActiveFaults) -> Emission:
        """Render a series (content faults applied) into an :class:`Emission`; no I/O."""

    @abstractmethod
    def _deliver(self, emission: Emission, faults: ActiveFaults, stop: threading.Event) -> None:
        """Deliver on the worker thread; return early once ``stop`` is set."""


def serve_until_signal(
    simulator: XrfSimulator,
    describe: Callable[[str], Mapping[str, object]],
    *,
    timeout: float = 5.0,
) -> int:
    """Start ``simulator``, print ``describe(address)`` as one JSON line, serve until SIGTERM
    or SIGINT, stop. Call from the main thread; the previous signal handlers are restored.
    """
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.signal(signum, on_signal) for signum in signals}
    try:
        address = simulator.start(timeout)
        try:
            print(json.dumps(dict(describe(address))), flush=True)
            while not stop.wait(0.2):
                pass
        finally:
            simulator.stop(timeout)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if not simulator.errors else 1
