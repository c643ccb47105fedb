r"""Simulated XRF gauge printing result telegrams (push mode) on a serial port (a pty).

Instrument: a PC-hosted benchtop XRF coating-thickness gauge (FISCHERSCOPE/WinFTM, Hitachi FT,
Bowman, Thermo class) whose software "prints" each finished series to an RS-232 port, the
fallback integration of Hallmark's domain notes (INSTRUMENTS_AND_STANDARDS.md §1.3, §6.3). The
result model is :mod:`simulators.xrf`. It pairs with driver code written separately from the
same notes; it does not import it.

**No vendor publishes this format.** Both layouts below are simulator conventions, chosen to
look like instrument printouts: ``generic`` and ``fischer-like`` (a made-up variant with other
labels and ordering; it is *not* Fischer's format). A layout is a :class:`TelegramTemplate`
(data), so a third gauge model is one more entry in :data:`TEMPLATES`.

Wire conventions (both templates)
    ASCII (anything else becomes ``?``), every line ends CR LF, one block per series, pushed
    when the series finishes; nothing is sent between blocks and input from the reader is
    ignored. A block starts with the template's first header line and ends with its end
    line. Values are fixed-point with ``.`` as decimal separator: thickness 3 decimals in
    ``um`` (µm) or 1 in ``uin`` (µin), s one more, composition 1 decimal in ``%``, CoV 2
    decimals in ``%``. A composition column is labelled with the template's
    ``composition_label`` (``Au%`` in ``generic``). The statistics are computed from the printed
    readings. The port is a pty in raw mode: a reader opens :attr:`TelegramSimulator.address`
    with pyserial (any baud rate; ``baud`` paces output like a real link, unpaced by default).
    Output sent while no reader has the port open is discarded when it opens (pyserial
    flushes the input on open), like a printer port with nobody listening.

Both examples: ``Au/Ni/CuZn``, two readings, seed 7 (each line ends CR LF; widths are
fixed by the format strings in :data:`GENERIC` and :data:`FISCHER_LIKE`).

``generic``: ``Key: value`` header lines, one ``<reading> <element> <value> <unit>`` line per
layer per reading, then six statistics lines per column (``by_layer``), then ``END``::

    XRF RESULT
    Instrument: XRF-SIM 1
    Application: Au/Ni/CuZn
    Product: HM-RING-001
    Part: P0001
    Lot: 1
    Operator: OP1
    Date: 2025-01-15 09:30:00
    Measuring time: 30 s
    Readings: 2
      1 Au       1.040 um
      1 Ni       3.105 um
      2 Au       1.038 um
      2 Ni       2.800 um
    Statistics
    Au   n            2
    Au   Mean     1.039 um
    Au   s       0.0014 um
    Au   CoV       0.14 %
    Au   Min      1.038 um
    Au   Max      1.040 um
    Ni   n            2
    Ni   Mean     2.952 um
    Ni   s       0.2157 um
    Ni   CoV       7.30 %
    Ni   Min      2.800 um
    Ni   Max      3.105 um
    END

An alloy layer adds its composition to the reading line (``  1 Au       3.045 um   58.5 %``)
and gets its own six statistics lines named ``Au%``. A golden sample prints ``Part: GOLDEN``
and ``Lot: 0``.

``fischer-like``: the block starts with a 32-dash rule *followed by* ``Appl.:`` (the same rule
closes the header); an ``n=`` line opens each reading; statistics are grouped by statistic
(``by_statistic``) after a single ``n`` line; ``=== END ===`` ends the block::

    --------------------------------
    Appl.:  Au/Ni/CuZn
    Prod.:  HM-RING-001
    Part:   P0001   Lot: 1
    Oper.:  OP1
    15.01.2025   09:30:00
    t(meas) = 30 s
    --------------------------------
    n=  1
      Au (1) =    1.040 um
      Ni (2) =    3.105 um
    n=  2
      Au (1) =    1.038 um
      Ni (2) =    2.800 um
    ---------- Statistics ----------
    n       =     2
    Mean    Au (1) =    1.039 um
    Mean    Ni (2) =    2.952 um
    Std.Dev Au (1) =   0.0014 um
    Std.Dev Ni (2) =   0.2157 um
    C.O.V.  Au (1) =     0.14 %
    C.O.V.  Ni (2) =     7.30 %
    Min     Au (1) =    1.038 um
    Min     Ni (2) =    2.800 um
    Max     Au (1) =    1.040 um
    Max     Ni (2) =    3.105 um
    === END ===

(composition: ``  Au (1) =    3.045 um    58.5 %`` and statistics lines named ``Au% (1)``.)

Fault kinds (``set_fault(kind, **params)`` or a scenario's ``[[fault]]``): those of
:data:`simulators.xrf.SHARED_FAULT_KINDS` and ``garbage``:

- ``truncated`` (``keep_fraction``): the block stops after that fraction of its bytes, always
  before the end line and without a final CR LF; the next block starts normally, so its first
  line is glued to the cut one unless the reader times out between blocks.
- ``garbage`` (``count``, ``position`` = ``before`` | ``inside``): ``count`` random bytes (never
  CR or LF) glued to the front of the first header line, or inserted into one random reading
  line.
- ``unknown_element`` (``element``, ``layer``): that layer is labelled ``element``.
- ``unit_uin``: the whole block in ``uin``.
- ``wrong_decimal``: every number uses ``,`` as its decimal separator.
- ``no_output``: the series is measured but nothing is sent.
- ``clock_skew`` (``seconds``): the printed date-time is off by that much.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulators._pty import PtyPort
from simulators.scenario import (
    ParamValue,
    Scenario,
    ScenarioError,
    ScenarioVocabulary,
    load_scenario,
)
from simulators.xrf import (
    COV_DECIMALS,
    SHARED_FAULT_KINDS,
    ActiveFaults,
    Emission,
    Series,
    Table,
    XrfModelParams,
    XrfSimulator,
    apply_series_faults,
    format_number,
    serve_until_signal,
    tabulate,
)

__all__ = [
    "FISCHER_LIKE",
    "GENERIC",
    "TELEGRAM_FAULT_KINDS",
    "TELEGRAM_VOCABULARY",
    "TEMPLATES",
    "TelegramModelParams",
    "TelegramSimulator",
    "TelegramTemplate",
    "render_lines",
    "render_telegram",
    "running_xrf_telegram",
    "serve_telegram",
    "wire_bytes",
]

StatKey = Literal["n", "mean", "s", "cov", "min", "max"]
_STAT_KEYS: tuple[StatKey, ...] = ("n", "mean", "s", "cov", "min", "max")


@dataclass(frozen=True)
class TelegramTemplate:
    """One gauge model's print layout, as data. Each string is a :meth:`str.format` template.

    Fields available: in ``header``, ``instrument application product part_id lot operator
    date time measuring_time n``; in ``reading_start``, ``number``; in ``layer_line``,
    ``number element layer value unit`` (``composition_suffix`` adds ``composition``); in
    ``statistics_header``, ``n``; in ``statistic_line``, ``label element layer value unit``,
    where ``element`` is the column's name (``composition_label`` for composition columns).
    ``statistics_order`` is ``by_layer`` (a column's six lines together) or ``by_statistic``
    (one statistic for every column, then the next).
    """

    name: str
    description: str
    header: tuple[str, ...]
    date_format: str
    time_format: str
    reading_start: tuple[str, ...]
    layer_line: str
    composition_suffix: str
    composition_label: str
    statistics_header: tuple[str, ...]
    statistic_line: str
    statistics_order: Literal["by_layer", "by_statistic"]
    statistic_labels: Mapping[StatKey, str]
    end: tuple[str, ...]
    unit_labels: Mapping[str, str]
    line_ending: str = "\r\n"


GENERIC = TelegramTemplate(
    name="generic",
    description="Hallmark's default print layout (a simulator convention, not a vendor format)",
    header=(
        "XRF RESULT",
        "Instrument: {instrument}",
        "Application: {application}",
        "Product: {product}",
        "Part: {part_id}",
        "Lot: {lot}",
        "Operator: {operator}",
        "Date: {date} {time}",
        "Measuring time: {measuring_time} s",
        "Readings: {n}",
    ),
    date_format="%Y-%m-%d",
    time_format="%H:%M:%S",
    reading_start=(),
    layer_line="{number:>3} {element:<5}{value:>9} {unit}",
    composition_suffix="  {composition:>5} %",
    composition_label="{element}%",
    statistics_header=("Statistics",),
    statistic_line="{element:<5}{label:<5}{value:>9} {unit}",
    statistics_order="by_layer",
    statistic_labels=MappingProxyType(
        {"n": "n", "mean": "Mean", "s": "s", "cov": "CoV", "min": "Min", "max": "Max"}
    ),
    end=("END",),
    unit_labels=MappingProxyType({"um": "um", "uin": "uin", "%": "%"}),
)

FISCHER_LIKE = TelegramTemplate(
    name="fischer-like",
    description=(
        "a second, made-up layout with other labels and ordering, in the style of European "
        "instrument printouts; a simulator convention, NOT Fischer's real format"
    ),
    header=(
        "--------------------------------",
        "Appl.:  {application}",
        "Prod.:  {product}",
        "Part:   {part_id}   Lot: {lot}",
        "Oper.:  {operator}",
        "{date}   {time}",
        "t(meas) = {measuring_time} s",
        "--------------------------------",
    ),
    date_format="%d.%m.%Y",
    time_format="%H:%M:%S",
    reading_start=("n= {number:>2}",),
    layer_line="  {element} ({layer}) = {value:>8} {unit}",
    composition_suffix="   {composition:>5} %",
    composition_label="{element}%",
    statistics_header=("---------- Statistics ----------", "n       = {n:>5}"),
    statistic_line="{label:<8}{element} ({layer}) = {value:>8} {unit}",
    statistics_order="by_statistic",
    statistic_labels=MappingProxyType(
        {"n": "n", "mean": "Mean", "s": "Std.Dev", "cov": "C.O.V.", "min": "Min", "max": "Max"}
    ),
    end=("=== END ===",),
    unit_labels=MappingProxyType({"um": "um", "uin": "uin", "%": "%"}),
)

#: The shipped layouts by name; add a :class:`TelegramTemplate` here for another gauge model.
TEMPLATES: Mapping[str, TelegramTemplate] = MappingProxyType(
    {template.name: template for template in (GENERIC, FISCHER_LIKE)}
)


# --- rendering (pure) ----------------------------------------------------------------------------


def _number(value: float, decimals: int, decimal: str) -> str:
    return format_number(value, decimals, decimal)


def _measuring_time(value: float, decimal: str) -> str:
    return str(int(value)) if value == int(value) else format_number(value, 1, decimal)


def render_lines(
    series: Series, table: Table, template: TelegramTemplate, *, decimal: str = "."
) -> list[str]:
    """The lines of one block (without line endings) for a tabulated series."""
    when = series.measured_at
    fields = {
        "instrument": series.instrument,
        "application": series.application.name,
        "product": series.product,
        "part_id": series.part_id,
        "lot": series.lot,
        "operator": series.operator,
        "date": when.strftime(template.date_format),
        "time": when.strftime(template.time_format),
        "measuring_time": _measuring_time(series.measuring_time_s, decimal),
        "n": len(table.rows),
    }
    lines = [line.format(**fields) for line in template.header]
    thickness = [i for i, c in enumerate(table.columns) if c.quantity == "thickness"]
    composition_of = {
        table.columns[i].layer: i for i, c in enumerate(table.columns) if c.quantity != "thickness"
    }
    for reading_index, row in enumerate(table.rows):
        number = reading_index + 1
        lines += [line.format(number=number) for line in template.reading_start]
        for i in thickness:
            column = table.columns[i]
            line = template.layer_line.format(
                number=number,
                element=column.element,
                layer=column.layer,
                value=_number(row[i], column.decimals, decimal),
                unit=template.unit_labels[column.unit],
            )
            if column.layer in composition_of:
                j = composition_of[column.layer]
                line += template.composition_suffix.format(
                    composition=_number(row[j], table.columns[j].decimals, decimal)
                )
            lines.append(line)
    lines += [line.format(n=len(table.rows)) for line in template.statistics_header]
    cells = [(i, key) for i in range(len(table.columns)) for key in _STAT_KEYS]
    if template.statistics_order == "by_statistic":
        cells = [(i, key) for key in _STAT_KEYS for i in range(len(table.columns))]
        cells = [(i, key) for i, key in cells if key != "n"]  # n is in the statistics header
    for i, key in cells:
        lines.append(_statistic_line(table, i, key, template, decimal))
    lines += list(template.end)
    return lines


def _statistic_line(
    table: Table, index: int, key: StatKey, template: TelegramTemplate, decimal: str
) -> str:
    column = table.columns[index]
    stats = table.stats[index]
    unit = template.unit_labels[column.unit]
    match key:
        case "n":
            value, unit = str(stats.n), ""
        case "mean":
            value = _number(stats.mean, column.decimals, decimal)
        case "s":
            value = _number(stats.s, column.decimals + 1, decimal)
        case "cov":
            value, unit = _number(stats.cov_pct, COV_DECIMALS, decimal), "%"
        case "min":
            value = _number(stats.minimum, column.decimals, decimal)
        case "max":
            value = _number(stats.maximum, column.decimals, decimal)
    name = column.element
    if column.quantity == "composition":
        name = template.composition_label.format(element=column.element)
    return template.statistic_line.format(
        label=template.statistic_labels[key],
        element=name,
        layer=column.layer,
        value=value,
        unit=unit,
    ).rstrip()


def render_telegram(
    series: Series,
    template: TelegramTemplate = GENERIC,
    *,
    unit: Literal["um", "uin"] = "um",
    faults: ActiveFaults | None = None,
) -> bytes:
    """The block for ``series`` with the content faults applied (``unknown_element``,
    ``unit_uin``, ``wrong_decimal``, ``clock_skew``); delivery faults are applied on the wire.
    """
    faults = faults or {}
    series = apply_series_faults(series, faults)
    table = tabulate(series, "uin" if "unit_uin" in faults else unit)
    decimal = "," if "wrong_decimal" in faults else "."
    lines = render_lines(series, table, template, decimal=decimal)
    text = "".join(line + template.line_ending for line in lines)
    return text.encode("ascii", errors="replace")


def wire_bytes(
    data: bytes, template: TelegramTemplate, faults: ActiveFaults, rng: random.Random
) -> bytes:
    """What goes on the wire for a rendered block: ``no_output``, ``truncated``, ``garbage``."""
    if "no_output" in faults:
        return b""
    if "truncated" in faults:
        end = "".join(line + template.line_ending for line in template.end).encode("ascii")
        keep = int(len(data) * float(faults["truncated"]["keep_fraction"]))
        data = data[: max(1, min(keep, len(data) - len(end) - 1))]
        # Never end on a whole line: a cut block has no final CR LF.
        data = data.removesuffix(b"\n").removesuffix(b"\r")
    if "garbage" in faults:
        params = faults["garbage"]
        noise = bytes(
            rng.choice([b for b in range(256) if b not in (0x0A, 0x0D)])
            for _ in range(int(params["count"]))
        )
        if params["position"] == "before":
            data = noise + data
        else:
            data = _insert_in_reading_line(data, noise, template, rng)
    return data


def _insert_in_reading_line(
    data: bytes, noise: bytes, template: TelegramTemplate, rng: random.Random
) -> bytes:
    ending = template.line_ending.encode("ascii")
    lines = data.split(ending)
    header = len(template.header) + len(template.reading_start)
    index = min(len(lines) - 1, header + rng.randrange(max(1, len(lines) // 3)))
    line = lines[index]
    at = rng.randrange(len(line) + 1)
    lines[index] = line[:at] + noise + line[at:]
    return ending.join(lines)


# --- scenario vocabulary -------------------------------------------------------------------------


class _GarbageParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(default=16, ge=1, le=4096)
    position: Literal["before", "inside"] = "before"


#: Every fault kind of the telegram output (see the module docstring).
TELEGRAM_FAULT_KINDS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {**SHARED_FAULT_KINDS, "garbage": _GarbageParams}
)


class TelegramModelParams(XrfModelParams):
    """The ``[model]`` table of the telegram output: the shared keys plus the print layout."""

    #: Print layout, a key of :data:`TEMPLATES`.
    template: str = "generic"
    #: Pace output at this many bit/s (8N1); 0 sends each line at once.
    baud: int = Field(default=0, ge=0, le=1_000_000)

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str) -> str:
        if value not in TEMPLATES:
            raise ValueError(f"unknown template {value!r} (known: {', '.join(TEMPLATES)})")
        return value


TELEGRAM_VOCABULARY = ScenarioVocabulary(
    simulator="xrf_telegram", faults=TELEGRAM_FAULT_KINDS, model=TelegramModelParams
)


# --- the simulator -------------------------------------------------------------------------------


class TelegramSimulator(XrfSimulator):
    """An XRF gauge printing a result block on a pty each time a series finishes.

    ``template`` and ``baud`` (when given) override the ``[model]`` keys; ``model`` overrides
    the scenario's ``[model]``, which overrides ``seed``. Nothing is emitted until
    :meth:`emit_series` is called, or every ``interval_s`` seconds when set.
    """

    vocabulary = TELEGRAM_VOCABULARY

    def __init__(
        self,
        *,
        seed: int = 0,
        scenario: Scenario | None = None,
        model: Mapping[str, ParamValue] | None = None,
        template: str | None = None,
        baud: int | None = None,
        interval_s: float | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        merged = dict(model or {})
        if template is not None:
            merged["template"] = template
        if baud is not None:
            merged["baud"] = baud
        super().__init__(
            seed=seed, scenario=scenario, model=merged, interval_s=interval_s, clock=clock
        )
        params = self.params
        if not isinstance(params, TelegramModelParams):  # pragma: no cover - vocabulary wiring
            raise TypeError("model parameters are not TelegramModelParams")
        self.template = TEMPLATES[params.template]
        self._port = PtyPort(
            lambda _data: None,  # a printer port: what the reader sends is ignored
            name=f"xrf-telegram {params.instrument}",
            baud=params.baud or None,
        )
        self._path: str | None = None

    @property
    def address(self) -> str:
        """The pty slave path a reader opens with pyserial (empty before :meth:`start`)."""
        return self._path or ""

    @property
    def port_errors(self) -> list[BaseException]:
        """Errors raised on the pty thread (see :class:`simulators._pty.PtyPort`)."""
        return self._port.errors

    def _open_output(self, timeout: float) -> None:
        self._path = self._port.start(timeout)

    def _close_output(self, timeout: float) -> None:
        self._port.stop(timeout)

    def _render(self, series: Series, faults: ActiveFaults) -> Emission:
        unit = "uin" if "unit_uin" in faults else self.params.unit
        skewed = apply_series_faults(series, faults)
        return Emission(
            seq=series.seq,
            series=series,
            table=tabulate(skewed, unit),
            faults=tuple(sorted(faults)),
            data=render_telegram(series, self.template, unit=self.params.unit, faults=faults),
        )

    def _deliver(self, emission: Emission, faults: ActiveFaults, stop: threading.Event) -> None:
        rng = random.Random(f"{self.params.seed}:{emission.seq}:wire")  # noqa: S311
        sent = wire_bytes(emission.data, self.template, faults, rng)
        emission.sent = sent
        # Line by line, so a paced link delivers a block progressively like a printer port.
        for line in sent.splitlines(keepends=True):
            self._port.send(line)


_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0


@contextlib.contextmanager
def running_xrf_telegram(**kwargs: Any) -> Iterator[TelegramSimulator]:
    """Run a :class:`TelegramSimulator` (its keyword arguments) for the ``with`` block.

    The pty exists and the worker runs when the block is entered; start and stop are bounded
    (5 s each). An error raised while delivering is raised again on exit.
    """
    simulator = TelegramSimulator(**kwargs)
    simulator.start(_START_TIMEOUT_S)
    try:
        yield simulator
    finally:
        simulator.stop(_STOP_TIMEOUT_S)
    errors = [*simulator.errors, *simulator.port_errors]
    if errors:
        raise errors[0]


def serve_telegram(
    *,
    seed: int = 0,
    scenario_path: Path | None = None,
    template: str | None = None,
    interval_s: float = 30.0,
) -> int:
    """Serve for ``daq simulate xrf-telegram``: one series every ``interval_s`` until a signal.

    Prints one JSON line (``family``, ``model``, ``transport``, ``address`` = the pty path,
    ``template``, ``interval_s``) once the port exists, then serves until SIGTERM or SIGINT.
    Returns 0 after a clean stop, 2 for a bad scenario or argument, 1 when no pty can be
    opened or a delivery failed (reason on stderr). Call it from the main thread (it installs
    signal handlers and restores them on return).
    """
    try:
        scenario = (
            None if scenario_path is None else load_scenario(scenario_path, TELEGRAM_VOCABULARY)
        )
        simulator = TelegramSimulator(
            seed=seed, scenario=scenario, template=template, interval_s=interval_s
        )
    except (ScenarioError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return serve_until_signal(
            simulator,
            lambda address: {
                "family": "xrf",
                "model": "xrf_telegram",
                "transport": "serial-pty",
                "address": address,
                "template": simulator.template.name,
                "interval_s": interval_s,
            },
        )
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
