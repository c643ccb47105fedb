"""Simulated XRF gauge software writing result files (CSV/TXT) into a watched directory.

Instrument: a PC-hosted benchtop XRF coating-thickness gauge (FISCHERSCOPE/WinFTM, Hitachi FT,
Bowman, Thermo class) whose software exports one file per finished series, the recommended
integration of Hallmark's domain notes (INSTRUMENTS_AND_STANDARDS.md §1.3, §6.3). The result
model is :mod:`simulators.xrf`. It pairs with driver code written separately from the same
notes; it does not import it.

**No vendor format is reproduced.** WinFTM and Hitachi export field names are unverified; the
layout, labels and file names below are simulator conventions, and the labels live in
:data:`LABELS` (data) so a reader's column mapping can be tested against more than one.

File layout, one series per file (``tests/fixtures/xrf/export_en_utf8.csv``: ``Au/Ni/CuZn``,
seed 7, style ``en-csv``; every line ends CR LF)::

    Instrument,XRF-SIM 1                    <- header block: label, value
    Application,Au/Ni/CuZn
    Product,HM-RING-001
    Part,P0001
    Lot,1
    Operator,OP1
    Date,2025-01-15                         <- en: ISO date; de: 15.01.2025
    Time,09:30:00
    Measuring time [s],30
                                            <- an empty line
    Reading,X [mm],Y [mm],Au [µm],Ni [µm]   <- per layer top first; then Au [%] per alloy layer
    1,9.99,20.04,1.040,3.105
    2,10.46,20.04,1.038,2.800
    3,11.05,20.01,1.015,2.909
    4,11.51,19.97,1.042,2.838
    5,11.97,19.97,1.029,2.984
                                            <- an empty line
    Statistics
    n,,,5,5                                 <- X and Y cells empty; values under their columns
    Mean,,,1.033,2.927
    Std. dev.,,,0.0111,0.1218
    CoV [%],,,1.08,4.16
    Min,,,1.015,2.800
    Max,,,1.042,3.105

German (``language = "de"``): ``Gerät, Anwendung, Produkt, Teil, Los, Bediener, Datum, Uhrzeit,
Messzeit [s]``, ``Messung``, ``Statistik``, ``Mittelwert, Std.-Abw., VK [%]``. Numbers are
fixed-point (see :mod:`simulators.xrf` for decimals), never quoted, never grouped.

Realism knobs (``[model]`` keys, or a preset ``style`` from :data:`EXPORT_STYLES`):
``language`` (en/de), ``delimiter`` (``,`` ``;`` or tab), ``decimal`` (``.`` or ``,``),
``encoding`` (``utf-8``, ``utf-8-sig``, ``utf-16`` = UTF-16 LE with BOM as Windows writes it,
``cp1252``), ``micro`` (``µ`` or ``u`` in units), ``line_ending`` (``crlf`` or ``lf``),
``extension`` (csv/txt), ``write_mode``: ``in_place`` (the file grows under its final name) or
``rename`` (written as ``<name>.tmp`` in the same directory, then renamed with
:func:`os.replace`).

File names: ``<YYYYmmdd_HHMMSS>_<seq:04d>_<part>.<ext>`` from the instrument's date-time, the
series number and the part id (characters other than letters, digits, ``-`` and ``_`` become
``_``), so names sort in measuring order.

Fault kinds (``set_fault(kind, **params)`` or a scenario's ``[[fault]]``): those of
:data:`simulators.xrf.SHARED_FAULT_KINDS` and three of the export's own:

- ``truncated`` (``keep_fraction``): the file is written at once but only that fraction of its
  bytes (a half file that never completes; it may end inside a UTF-16 code unit).
- ``slow_write`` (``chunk_bytes``, ``interval_s``, ``stop_fraction``): written in chunks with a
  pause after each, so a watcher sees it grow; with ``stop_fraction`` < 1 writing stops there
  for good. In ``rename`` mode the growing (or abandoned) file is the ``.tmp``.
- ``duplicate`` (``rename``, ``delay_s``): after ``delay_s`` the same bytes are saved again,
  under the same name (``rename = false``) or as ``<stem> (2).<ext>``.
- ``not_export`` (``size_bytes``): a file of ``size_bytes`` seeded random bytes (starting
  ``\\x89XRF\\x00``) named ``<stem>-spectrum.<ext>`` is written just before the export.
- ``unknown_element`` (``element``, ``layer``): that layer's columns are headed ``element``.
- ``unit_uin``: thickness columns in ``µin`` (or ``uin``).
- ``wrong_decimal``: the other decimal separator (with ``,`` as both delimiter and decimal
  separator the columns no longer line up: that is the fault).
- ``no_output``: nothing is written. ``clock_skew`` (``seconds``): the date-time and the file
  name are off by that much.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulators.scenario import (
    ParamValue,
    Scenario,
    ScenarioError,
    ScenarioVocabulary,
    load_scenario,
)
from simulators.xrf import (
    COV_DECIMALS,
    POSITION_DECIMALS,
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
    "EXPORT_FAULT_KINDS",
    "EXPORT_STYLES",
    "EXPORT_VOCABULARY",
    "LABELS",
    "NOT_EXPORT_MAGIC",
    "ExportFormat",
    "ExportModelParams",
    "ExportSimulator",
    "encode_text",
    "export_name",
    "render_export",
    "render_text",
    "running_xrf_export",
    "serve_export",
]

_log = logging.getLogger(__name__)

Language = Literal["en", "de"]
Delimiter = Literal[",", ";", "\t"]
Decimal = Literal[".", ","]
Encoding = Literal["utf-8", "utf-8-sig", "utf-16", "cp1252"]

#: The first bytes of a ``not_export`` file.
NOT_EXPORT_MAGIC = b"\x89XRF\x00"

#: Header, column and statistics labels per language (simulator conventions).
LABELS: Mapping[Language, Mapping[str, str]] = MappingProxyType(
    {
        "en": MappingProxyType(
            {
                "instrument": "Instrument",
                "application": "Application",
                "product": "Product",
                "part": "Part",
                "lot": "Lot",
                "operator": "Operator",
                "date": "Date",
                "time": "Time",
                "measuring_time": "Measuring time [s]",
                "reading": "Reading",
                "x": "X [mm]",
                "y": "Y [mm]",
                "statistics": "Statistics",
                "n": "n",
                "mean": "Mean",
                "s": "Std. dev.",
                "cov": "CoV [%]",
                "min": "Min",
                "max": "Max",
                "date_format": "%Y-%m-%d",
            }
        ),
        "de": MappingProxyType(
            {
                "instrument": "Gerät",
                "application": "Anwendung",
                "product": "Produkt",
                "part": "Teil",
                "lot": "Los",
                "operator": "Bediener",
                "date": "Datum",
                "time": "Uhrzeit",
                "measuring_time": "Messzeit [s]",
                "reading": "Messung",
                "x": "X [mm]",
                "y": "Y [mm]",
                "statistics": "Statistik",
                "n": "n",
                "mean": "Mittelwert",
                "s": "Std.-Abw.",
                "cov": "VK [%]",
                "min": "Min",
                "max": "Max",
                "date_format": "%d.%m.%Y",
            }
        ),
    }
)


@dataclass(frozen=True)
class ExportFormat:
    """How the export files look on disk (see the module docstring)."""

    language: Language = "en"
    delimiter: Delimiter = ","
    decimal: Decimal = "."
    encoding: Encoding = "utf-8"
    micro: Literal["µ", "u"] = "µ"
    line_ending: Literal["crlf", "lf"] = "crlf"
    extension: Literal["csv", "txt"] = "csv"
    write_mode: Literal["in_place", "rename"] = "in_place"


#: Presets: English comma CSV; German semicolon/decimal-comma Windows-1252 TXT; the UTF-16
#: (with BOM) tab-separated text that Windows programs write as "Unicode text".
EXPORT_STYLES: Mapping[str, ExportFormat] = MappingProxyType(
    {
        "en-csv": ExportFormat(),
        "de-txt": ExportFormat(
            language="de", delimiter=";", decimal=",", encoding="cp1252", extension="txt"
        ),
        "utf16-txt": ExportFormat(delimiter="\t", encoding="utf-16", extension="txt"),
    }
)


# --- rendering (pure) ----------------------------------------------------------------------------


def _unit_label(unit: str, micro: str) -> str:
    return {"um": f"{micro}m", "uin": f"{micro}in", "%": "%"}[unit]


def render_text(series: Series, table: Table, fmt: ExportFormat) -> str:
    """The file's text (line endings applied), for an already tabulated series."""
    labels = LABELS[fmt.language]
    d = fmt.delimiter

    def num(value: float, decimals: int) -> str:
        return format_number(value, decimals, fmt.decimal)

    when = series.measured_at
    time_s = series.measuring_time_s
    measuring_time = str(int(time_s)) if time_s == int(time_s) else num(time_s, 1)
    header = [
        ("instrument", series.instrument),
        ("application", series.application.name),
        ("product", series.product),
        ("part", series.part_id),
        ("lot", str(series.lot)),
        ("operator", series.operator),
        ("date", when.strftime(labels["date_format"])),
        ("time", when.strftime("%H:%M:%S")),
        ("measuring_time", measuring_time),
    ]
    lines = [f"{labels[key]}{d}{value}" for key, value in header]
    lines.append("")
    names = [f"{c.element} [{_unit_label(c.unit, fmt.micro)}]" for c in table.columns]
    lines.append(d.join([labels["reading"], labels["x"], labels["y"], *names]))
    for number, (reading, row) in enumerate(zip(series.readings, table.rows, strict=True), 1):
        cells = [
            str(number),
            num(reading.x_mm, POSITION_DECIMALS),
            num(reading.y_mm, POSITION_DECIMALS),
        ]
        cells += [
            num(value, column.decimals) for value, column in zip(row, table.columns, strict=True)
        ]
        lines.append(d.join(cells))
    lines.append("")
    lines.append(labels["statistics"])
    rows: list[tuple[str, list[str]]] = [
        ("n", [str(s.n) for s in table.stats]),
        (
            "mean",
            [num(s.mean, c.decimals) for s, c in zip(table.stats, table.columns, strict=True)],
        ),
        ("s", [num(s.s, c.decimals + 1) for s, c in zip(table.stats, table.columns, strict=True)]),
        ("cov", [num(s.cov_pct, COV_DECIMALS) for s in table.stats]),
        (
            "min",
            [num(s.minimum, c.decimals) for s, c in zip(table.stats, table.columns, strict=True)],
        ),
        (
            "max",
            [num(s.maximum, c.decimals) for s, c in zip(table.stats, table.columns, strict=True)],
        ),
    ]
    for key, values in rows:
        lines.append(d.join([labels[key], "", "", *values]))
    ending = "\r\n" if fmt.line_ending == "crlf" else "\n"
    return "".join(line + ending for line in lines)


def encode_text(text: str, encoding: Encoding) -> bytes:
    """``text`` in ``encoding``; ``utf-16`` is little-endian with a BOM, as Windows writes it."""
    if encoding == "utf-16":
        return b"\xff\xfe" + text.encode("utf-16-le")
    # Windows-1252 has no place for most scripts: such characters become "?".
    return text.encode(encoding, errors="replace")


def render_export(
    series: Series,
    fmt: ExportFormat | None = None,
    *,
    unit: Literal["um", "uin"] = "um",
    faults: ActiveFaults | None = None,
) -> bytes:
    """The complete file for ``series``, with the content faults applied (``unknown_element``,
    ``unit_uin``, ``wrong_decimal``, ``clock_skew``); file-level faults are applied on write.
    """
    fmt = fmt or ExportFormat()
    faults = faults or {}
    series = apply_series_faults(series, faults)
    table = tabulate(series, "uin" if "unit_uin" in faults else unit)
    if "wrong_decimal" in faults:
        fmt = replace(fmt, decimal="," if fmt.decimal == "." else ".")
    return encode_text(render_text(series, table, fmt), fmt.encoding)


def export_name(series: Series, fmt: ExportFormat, faults: ActiveFaults | None = None) -> str:
    """The file name for ``series`` (``clock_skew`` shifts the time stamp in it too)."""
    series = apply_series_faults(series, faults or {})
    stamp = series.measured_at.strftime("%Y%m%d_%H%M%S")
    part = re.sub(r"[^A-Za-z0-9_-]", "_", series.part_id)
    return f"{stamp}_{series.seq:04d}_{part}.{fmt.extension}"


# --- scenario vocabulary -------------------------------------------------------------------------


class _SlowWriteParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_bytes: int = Field(default=64, ge=1, le=1 << 20)
    interval_s: float = Field(default=0.05, gt=0.0, le=10.0)
    stop_fraction: float = Field(default=1.0, gt=0.0, le=1.0)


class _DuplicateParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rename: bool = False
    delay_s: float = Field(default=0.2, ge=0.0, le=60.0)


class _NotExportParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    size_bytes: int = Field(default=4096, ge=len(NOT_EXPORT_MAGIC), le=256 << 20)


#: Every fault kind of the export output (see the module docstring).
EXPORT_FAULT_KINDS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        **SHARED_FAULT_KINDS,
        "slow_write": _SlowWriteParams,
        "duplicate": _DuplicateParams,
        "not_export": _NotExportParams,
    }
)


class ExportModelParams(XrfModelParams):
    """The ``[model]`` table of the export output: the shared keys plus the file format.

    ``style`` picks a preset of :data:`EXPORT_STYLES`; each format key given overrides it.
    """

    style: str = "en-csv"
    language: Language | None = None
    delimiter: Delimiter | None = None
    decimal: Decimal | None = None
    encoding: Encoding | None = None
    micro: Literal["µ", "u"] | None = None
    line_ending: Literal["crlf", "lf"] | None = None
    extension: Literal["csv", "txt"] | None = None
    write_mode: Literal["in_place", "rename"] | None = None

    @field_validator("style")
    @classmethod
    def _known_style(cls, value: str) -> str:
        if value not in EXPORT_STYLES:
            raise ValueError(f"unknown style {value!r} (known: {', '.join(EXPORT_STYLES)})")
        return value

    @model_validator(mode="after")
    def _readable(self) -> ExportModelParams:
        fmt = self.export_format()
        if fmt.delimiter == fmt.decimal:
            raise ValueError(
                f"delimiter and decimal: both {fmt.delimiter!r} (pick ';' with a decimal comma)"
            )
        return self

    def export_format(self) -> ExportFormat:
        """The preset with the given keys applied."""
        keys = (
            "language",
            "delimiter",
            "decimal",
            "encoding",
            "micro",
            "line_ending",
            "extension",
            "write_mode",
        )
        overrides = {key: getattr(self, key) for key in keys if getattr(self, key) is not None}
        return replace(EXPORT_STYLES[self.style], **overrides)


EXPORT_VOCABULARY = ScenarioVocabulary(
    simulator="xrf_export", faults=EXPORT_FAULT_KINDS, model=ExportModelParams
)


# --- the simulator -------------------------------------------------------------------------------


class ExportSimulator(XrfSimulator):
    """XRF software exporting one result file per series into ``directory`` (created if absent).

    The file format comes from the :class:`ExportModelParams` keys in ``model`` (``style`` also
    as an argument, which wins); ``model`` overrides the scenario's ``[model]``, which
    overrides ``seed``. Files appear when :meth:`emit_series` is called, or every
    ``interval_s`` seconds when set; they are written on the worker thread.
    """

    vocabulary = EXPORT_VOCABULARY

    def __init__(
        self,
        directory: Path | str,
        *,
        seed: int = 0,
        scenario: Scenario | None = None,
        model: Mapping[str, ParamValue] | None = None,
        style: str | None = None,
        interval_s: float | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        merged = dict(model or {})
        if style is not None:
            merged["style"] = style
        super().__init__(
            seed=seed, scenario=scenario, model=merged, interval_s=interval_s, clock=clock
        )
        params = self.params
        if not isinstance(params, ExportModelParams):  # pragma: no cover - vocabulary wiring
            raise TypeError("model parameters are not ExportModelParams")
        self.style = params.style
        self.format = params.export_format()
        self.directory = Path(directory)

    @property
    def address(self) -> str:
        """The directory the files are written into."""
        return str(self.directory)

    def _open_output(self, timeout: float) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def _close_output(self, timeout: float) -> None:
        pass

    def _render(self, series: Series, faults: ActiveFaults) -> Emission:
        unit = "uin" if "unit_uin" in faults else self.params.unit
        return Emission(
            seq=series.seq,
            series=series,
            table=tabulate(apply_series_faults(series, faults), unit),
            faults=tuple(sorted(faults)),
            data=render_export(series, self.format, unit=self.params.unit, faults=faults),
        )

    def _deliver(self, emission: Emission, faults: ActiveFaults, stop: threading.Event) -> None:
        if "no_output" in faults:
            return
        name = export_name(emission.series, self.format, faults)
        path = self.directory / name
        if "not_export" in faults:
            size = int(faults["not_export"]["size_bytes"])
            junk = self.directory / f"{path.stem}-spectrum{path.suffix}"
            self._write_junk(junk, size, emission.seq, stop)
            emission.paths.append(junk)
        data = emission.data
        chunk, pause, keep, abandon = len(data) or 1, 0.0, len(data), False
        if "truncated" in faults:
            keep = int(len(data) * float(faults["truncated"]["keep_fraction"]))
        if "slow_write" in faults:
            params = faults["slow_write"]
            chunk, pause = int(params["chunk_bytes"]), float(params["interval_s"])
            if float(params["stop_fraction"]) < 1.0:
                keep = min(keep, int(len(data) * float(params["stop_fraction"])))
                abandon = True
        emission.sent = data[:keep]
        written = self._write(path, data[:keep], chunk, pause, stop, abandon=abandon)
        emission.paths.append(written)
        if "duplicate" in faults and written == path and not stop.is_set():
            params = faults["duplicate"]
            if stop.wait(float(params["delay_s"])):
                return
            again = self.directory / f"{path.stem} (2){path.suffix}" if params["rename"] else path
            emission.paths.append(
                self._write(again, data, len(data) or 1, 0.0, stop, abandon=False)
            )

    def _write(
        self,
        path: Path,
        data: bytes,
        chunk: int,
        pause: float,
        stop: threading.Event,
        *,
        abandon: bool,
    ) -> Path:
        """Write ``data`` to ``path`` in ``chunk``-byte pieces, ``pause`` s apart.

        In ``rename`` mode the bytes go to ``<name>.tmp``, renamed to ``path`` at the end unless
        the writer ``abandon``s the file (or the simulator stops first). Returns the file left
        on disk: ``path``, or the ``.tmp`` when it was not renamed.
        """
        rename = self.format.write_mode == "rename"
        target = path.with_name(path.name + ".tmp") if rename else path
        with target.open("wb") as stream:
            for start in range(0, len(data), chunk):
                stream.write(data[start : start + chunk])
                stream.flush()
                if pause and start + chunk < len(data) and stop.wait(pause):
                    return target
        if rename and not abandon:
            os.replace(target, path)
            return path
        return target

    def _write_junk(self, path: Path, size: int, seq: int, stop: threading.Event) -> None:
        rng = random.Random(f"{self.params.seed}:{seq}:junk")  # noqa: S311
        block = rng.randbytes(min(size, 1 << 20))
        with path.open("wb") as stream:
            stream.write(NOT_EXPORT_MAGIC)
            left = size - len(NOT_EXPORT_MAGIC)
            while left > 0 and not stop.is_set():
                piece = block[: min(left, len(block))]
                stream.write(piece)
                left -= len(piece)


_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0


@contextlib.contextmanager
def running_xrf_export(directory: Path | str, **kwargs: Any) -> Iterator[ExportSimulator]:
    """Run an :class:`ExportSimulator` writing into ``directory`` for the ``with`` block.

    Takes its keyword arguments; start and stop are bounded (5 s each, a slow write in progress
    is abandoned). An error raised while writing is raised again on exit.
    """
    simulator = ExportSimulator(directory, **kwargs)
    simulator.start(_START_TIMEOUT_S)
    try:
        yield simulator
    finally:
        simulator.stop(_STOP_TIMEOUT_S)
    if simulator.errors:
        raise simulator.errors[0]


def serve_export(
    directory: Path | str,
    *,
    seed: int = 0,
    scenario_path: Path | None = None,
    style: str | None = None,
    interval_s: float = 30.0,
) -> int:
    """Serve for ``daq simulate xrf-export``: one file every ``interval_s`` until a signal.

    Prints one JSON line (``family``, ``model``, ``transport`` = ``directory``, ``address`` =
    the directory, ``style``, ``encoding``, ``interval_s``) once the directory exists, then
    writes until SIGTERM or SIGINT. Returns 0 after a clean stop, 2 for a bad scenario or
    argument, 1 when the directory cannot be created or a write failed (reason on stderr).
    Call it from the main thread.
    """
    try:
        scenario = (
            None if scenario_path is None else load_scenario(scenario_path, EXPORT_VOCABULARY)
        )
        simulator = ExportSimulator(
            directory, seed=seed, scenario=scenario, style=style, interval_s=interval_s
        )
    except (ScenarioError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return serve_until_signal(
            simulator,
            lambda address: {
                "family": "xrf",
                "model": "xrf_export",
                "transport": "directory",
                "address": address,
                "style": simulator.style,
                "encoding": simulator.format.encoding,
                "interval_s": interval_s,
            },
        )
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
