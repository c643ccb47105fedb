"""XRF coating-thickness results: layouts as data (templates), and the pure parsers that read them.

Instruments: benchtop XRF gauges (Fischer FISCHERSCOPE X-RAY XDL/XDV/XAN with WinFTM, Hitachi
FT / X-Strata, Bowman, Thermo). They are PC-hosted and publish **no** protocol
(docs: INSTRUMENTS_AND_STANDARDS.md §1.3): results leave the PC as export files (CSV/TXT, §6.3)
or as a print-out over RS-232. Neither layout is public. **WinFTM and Hitachi field names are
unverified**: the two built-in templates are written from the description in §6.3, not from a
vendor file. Build each instrument's template from its own export files (they are the real
test fixtures): a TOML file with ``extends = "export-default"`` that overrides what differs.

Templates (TOML, ``schema = 1``, drivers/xrf_templates/; format documented in
``export-default.toml``): header-field aliases, column aliases and column patterns (English and
German), unit spellings, value markers, statistics labels and, for the print-out, the start and
end lines of a result block. ``extends`` names a template (or path) whose tables this one
overrides key by key.

The layout both templates read (a telegram is the same text between its start and end lines)::

    Application;Au/Ni/CuZn                header block: key;value or key: value
    Operator;M. Keller                    (application, product, part, operator,
    Date;14.03.2026                        instrument, date and time)
    Time;10:22:05
    Reading;X [mm];Y [mm];Au [µm];Ni [µm];Au [%]     table header: one column per layer,
    1;12,50;-3,20;2,61;3,05;75,1                      top layer first; composition in %
    2;12,80;-3,10;2,58;3,11;74,9
    Mean;;;2,60;3,08;75,0                              statistics rows (n, mean, s, CoV,
    n;;;2;2;2                                          min, max, range)

A second table header starts the next series. Without a table, a template's ``[lines]``
patterns read one layer per line (``  2 Au   1.038 um``, print-outs); without those,
``Au [µm]: 2,61`` lines give one reading (``Reading: 7`` numbers it; a new ``Reading`` line
starts the next one).

Decoding: UTF-8 (with or without BOM), UTF-16 (with BOM, or recognised by its zero bytes),
else Windows-1252; binary content is refused. Separators ``;``, tab, ``,`` or runs of two or
more spaces; decimal comma or point; ``µ``, ``μ`` or ``u`` in units; CR-LF, LF or CR.

Errors — the only two this module raises while parsing:

- ``ProtocolError``: the content does not follow the layout (binary or undecodable bytes, no
  readings, an unknown element such as ``Xx [µm]``, a value that is not a number, a row
  shorter than its header, a layer listed twice).
- ``UnitError``: a layer column whose unit is not a thickness unit the template knows
  (``Au [mg/cm²]``).

``load_template`` raises ``ValueError`` naming the file and key (it runs at config time).

Statistics the file states are checked against its readings (n, mean, min, max, within the
rounding of the printed digits); a disagreement flags that layer's samples
``statistics_mismatch`` instead of refusing the file, because readings are the data.
"""

from __future__ import annotations

import codecs
import fnmatch
import math
import re
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from daq.errors import ProtocolError, UnitError
from daq.model import FieldValue, Sample
from daq.units import convert

__all__ = [
    "ELEMENTS",
    "TEMPLATES_DIR",
    "LayerValue",
    "Series",
    "Statistic",
    "Template",
    "UncertaintyRule",
    "XrfReading",
    "decode",
    "load_template",
    "parse_export",
    "parse_text",
    "to_samples",
    "uncertainty_pct",
    "verify_statistics",
]

TEMPLATES_DIR = Path(__file__).parent / "xrf_templates"

#: Every chemical element symbol: a layer or composition column must name one (or an alloy
#: written as a run of them, such as ``NiP``).
_PERIODIC_TABLE = """
    H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge
    As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm
    Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U
    Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"""
ELEMENTS: frozenset[str] = frozenset(_PERIODIC_TABLE.split())

StatKind = Literal["n", "mean", "s", "cov", "min", "max", "range"]
_STAT_KINDS: tuple[StatKind, ...] = ("n", "mean", "s", "cov", "min", "max", "range")
#: Statistics in the layer's unit (converted with the value); the others are counts or %.
_STAT_SCALED: tuple[StatKind, ...] = ("mean", "s", "min", "max", "range")

_SEPARATORS: dict[str, str] = {";": ";", "\t": "\t", "tab": "\t", ",": ",", "whitespace": " "}
_WS_SPLIT = re.compile(r"\t| {2,}")
_KEY_VALUE = re.compile(r"^\s*(?P<key>[^:=]*?[^:=\s])\s*[:=]\s*(?P<value>.*?)\s*$")
_NUMBER = re.compile(r"^[-+]?(?:[0-9]+(?:[.,][0-9]+)?|[.,][0-9]+)(?:[eE][-+]?[0-9]{1,3})?$")
_READING_NO = re.compile(r"^#?\s*([0-9]{1,9})\.?$")
_ELEMENT_PART = re.compile(r"[A-Z][a-z]?")
#: Control characters that may appear in text (tab, line ends, STX/ETX, form feed, DOS EOF).
_ALLOWED_CONTROL = frozenset("\t\n\r\x02\x03\x0c\x1a")
_MAX_LINE = 4096
_SNIFF_LINES = 500


def fold(text: str) -> str:
    """The form in which aliases are compared: NFKC, µ/μ as u, case-folded, single spaces,
    no trailing colon."""
    text = unicodedata.normalize("NFKC", text).replace("μ", "u")
    text = " ".join(text.casefold().split())
    return text.rstrip(":").rstrip()


# -- templates -----------------------------------------------------------------------------------


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from exc
    return text


Regex = Annotated[str, AfterValidator(_regex)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FormatSpec(_Strict):
    encoding: str = "auto"
    separator: Literal["auto", ";", ",", "\t", "tab", "whitespace"] = "auto"
    decimal: Literal["auto", ".", ","] = "auto"
    layers_top_first: bool = True
    date_formats: list[str] = Field(default_factory=list)


class FieldsSpec(_Strict):
    application: list[str]
    product: list[str]
    part: list[str]
    operator: list[str]
    instrument: list[str]
    datetime: list[str]
    date: list[str]
    time: list[str]


class ColumnsSpec(_Strict):
    reading: list[str]
    position: list[str]
    x: list[str]
    y: list[str]
    time: list[str]
    ignore: list[Regex] = Field(default_factory=list)
    thickness: Annotated[list[Regex], Field(min_length=1)]
    composition: list[Regex] = Field(default_factory=list)


class ValuesSpec(_Strict):
    missing: list[str]
    below: list[str] = Field(default_factory=list)
    above: list[str] = Field(default_factory=list)
    flagged: list[str] = Field(default_factory=list)


class StatisticsSpec(_Strict):
    n: list[str] = Field(default_factory=list)
    mean: list[str] = Field(default_factory=list)
    s: list[str] = Field(default_factory=list)
    cov: list[str] = Field(default_factory=list)
    min: list[str] = Field(default_factory=list)
    max: list[str] = Field(default_factory=list)
    range: list[str] = Field(default_factory=list)


class LinesSpec(_Strict):
    """Results written one layer per line (print-outs), as regular expressions."""

    #: A line giving the number of the reading whose layer lines follow: group ``reading``.
    number: list[Regex] = Field(default_factory=list)
    #: One layer of one reading: groups ``element``, ``value``, ``unit``; optional
    #: ``reading`` (else the last number line; else a repeated element starts a new
    #: reading) and ``composition`` (% of that element).
    layer: list[Regex] = Field(default_factory=list)
    #: One statistic of one layer: groups ``element``, ``stat`` (a [statistics] label) and
    #: ``value``. Lines whose element is not a layer (``Au%``) or label unknown are skipped.
    statistic: list[Regex] = Field(default_factory=list)


class TelegramSpec(_Strict):
    start: Regex
    end: Regex


class TemplateSpec(_Strict):
    """A template file as written (validated); ``Template`` is its compiled form."""

    schema_: Annotated[int, Field(alias="schema")]
    name: str
    description: str = ""
    format: FormatSpec = FormatSpec()
    fields: FieldsSpec
    columns: ColumnsSpec
    units: dict[str, list[str]]
    values: ValuesSpec
    statistics: StatisticsSpec = StatisticsSpec()
    lines: LinesSpec = LinesSpec()
    telegram: TelegramSpec | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template: what the parsers use. Build it with ``load_template``."""

    spec: TemplateSpec
    source: str
    fields: Mapping[str, str]  # folded alias -> field name
    columns: Mapping[str, str]  # folded alias -> reading/position/x/y/time
    ignore: tuple[re.Pattern[str], ...]
    thickness: tuple[re.Pattern[str], ...]
    composition: tuple[re.Pattern[str], ...]
    units: Mapping[str, str]  # folded spelling -> unit symbol for the Sample
    missing: frozenset[str]
    statistics: Mapping[str, StatKind]
    line_number: tuple[re.Pattern[str], ...]
    line_layer: tuple[re.Pattern[str], ...]
    line_statistic: tuple[re.Pattern[str], ...]
    telegram_start: re.Pattern[str] | None
    telegram_end: re.Pattern[str] | None

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def from_spec(cls, spec: TemplateSpec, source: str) -> Template:
        """Compile a validated spec. Raises ValueError for a pattern without its groups or a
        unit that is not a length."""
        fields: dict[str, str] = {}
        for name in FieldsSpec.model_fields:
            for alias in getattr(spec.fields, name):
                fields.setdefault(fold(alias), name)
        columns: dict[str, str] = {}
        for name in ("reading", "position", "x", "y", "time"):
            for alias in getattr(spec.columns, name):
                columns.setdefault(fold(alias), name)
        thickness = tuple(re.compile(p) for p in spec.columns.thickness)
        for p in thickness:
            if not {"element", "unit"} <= set(p.groupindex):
                raise ValueError(
                    f"columns.thickness: pattern {p.pattern!r} needs the groups"
                    " (?P<element>...) and (?P<unit>...)"
                )
        composition = tuple(re.compile(p) for p in spec.columns.composition)
        for p in composition:
            if "element" not in p.groupindex:
                raise ValueError(
                    f"columns.composition: pattern {p.pattern!r} needs the group (?P<element>...)"
                )
        units: dict[str, str] = {}
        for symbol, spellings in spec.units.items():
            try:
                convert(1.0, symbol, "length")
            except UnitError as exc:
                raise ValueError(f"units.{symbol}: {exc}") from exc
            for spelling in [symbol, *spellings]:
                units.setdefault(fold(spelling), symbol)
        stats: dict[str, StatKind] = {}
        for kind in _STAT_KINDS:
            for alias in getattr(spec.statistics, kind):
                stats.setdefault(fold(alias), kind)
        line_patterns: dict[str, tuple[re.Pattern[str], ...]] = {}
        for section, needs in (
            ("number", {"reading"}),
            ("layer", {"element", "value", "unit"}),
            ("statistic", {"element", "stat", "value"}),
        ):
            compiled = tuple(re.compile(p) for p in getattr(spec.lines, section))
            for p in compiled:
                missing = needs - set(p.groupindex)
                if missing:
                    groups = ", ".join(f"(?P<{g}>...)" for g in sorted(missing))
                    raise ValueError(f"lines.{section}: pattern {p.pattern!r} needs {groups}")
            line_patterns[section] = compiled
        tg = spec.telegram
        return cls(
            spec=spec,
            source=source,
            fields=fields,
            columns=columns,
            ignore=tuple(re.compile(p) for p in spec.columns.ignore),
            thickness=thickness,
            composition=composition,
            units=units,
            missing=frozenset(fold(m) for m in spec.values.missing),
            statistics=stats,
            line_number=line_patterns["number"],
            line_layer=line_patterns["layer"],
            line_statistic=line_patterns["statistic"],
            telegram_start=re.compile(tg.start) if tg else None,
            telegram_end=re.compile(tg.end) if tg else None,
        )


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _template_path(ref: str | Path) -> Path:
    text = str(ref)
    if isinstance(ref, str) and "/" not in text and "\\" not in text and not text.endswith(".toml"):
        return TEMPLATES_DIR / f"{text}.toml"
    return Path(ref)


def _template_data(ref: str | Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    path = _template_path(ref)
    if path in seen:
        raise ValueError(f"XRF template {path}: 'extends' goes round in a circle")
    if len(seen) > 8:
        raise ValueError(f"XRF template {path}: 'extends' nests too deep")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        known = ", ".join(sorted(p.stem for p in TEMPLATES_DIR.glob("*.toml")))
        raise ValueError(
            f"XRF template {path}: cannot read it: {exc} (built-in templates: {known})"
        ) from exc
    except RecursionError as exc:  # tomllib recurses once per nesting level (found by fuzzing)
        raise ValueError(f"XRF template {path}: arrays or tables are nested too deep") from exc
    except ValueError as exc:  # an integer longer than int()'s 4300-digit limit
        raise ValueError(f"XRF template {path}: {str(exc).split(':')[0]}") from exc
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ValueError(f"XRF template {path}: extends: write a template name or path")
    parent_ref: str | Path = parent
    if ("/" in parent or parent.endswith(".toml")) and not Path(parent).is_absolute():
        parent_ref = path.parent / parent
    try:
        base = _template_data(parent_ref, (*seen, path))
    except ValueError as exc:
        # Name the file that holds the bad 'extends' too, not only the parent (found by
        # fuzzing: `extends = "x"` said only "XRF template .../x.toml: cannot read it").
        raise ValueError(f"XRF template {path}: extends = {parent!r}: {exc}") from exc
    return _merge(base, data)


def load_template(ref: str | Path) -> Template:
    """Load a template by built-in name (``export-default``) or path, following ``extends``.

    Raises ValueError naming the file and the key.
    """
    path = _template_path(ref)
    data = _template_data(ref, ())
    try:
        spec = TemplateSpec.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"XRF template {path}: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ValueError("\n".join(lines)) from exc
    if spec.schema_ != 1:
        raise ValueError(f"XRF template {path}: schema {spec.schema_} is not supported (reads 1)")
    try:
        return Template.from_spec(spec, str(path))
    except ValueError as exc:
        raise ValueError(f"XRF template {path}: {exc}") from exc


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LayerValue:
    """One layer's thickness in one reading, in the unit the instrument wrote."""

    element: str
    value: float
    unit: str
    #: ``below_range`` (``<0.05``), ``above_range`` (``>50``), ``flagged`` (``2.61*``) or None.
    flag: str | None = None
    #: Digits after the decimal separator, to judge the rounding of stated statistics.
    decimals: int = 0


@dataclass(frozen=True, slots=True)
class XrfReading:
    """One spot measured: number, where, and its layers from the top down."""

    number: int
    layers: tuple[LayerValue, ...]
    composition: tuple[tuple[str, float], ...] = ()
    position: str | None = None
    time: str | None = None
    raw: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class Statistic:
    """A statistic the file states for one layer."""

    element: str
    kind: StatKind
    value: float
    decimals: int = 0


@dataclass(frozen=True, slots=True)
class Series:
    """A series of readings on one part, with what the header says about it."""

    readings: tuple[XrfReading, ...]
    application: str | None = None
    product: str | None = None
    part: str | None = None
    operator: str | None = None
    instrument: str | None = None
    #: The instrument PC's clock, ISO 8601 when it could be read, else its own text.
    instrument_time: str | None = None
    statistics: tuple[Statistic, ...] = ()
    #: Stated statistics that disagree with the readings: (element, what is wrong in words).
    mismatches: tuple[tuple[str, str], ...] = ()
    encoding: str = ""
    separator: str = ""

    def units(self) -> dict[str, str]:
        """Unit per layer element, as written."""
        return {lv.element: lv.unit for r in self.readings for lv in r.layers}


# -- decoding ------------------------------------------------------------------------------------


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[:4096]
    half = len(sample) // 2
    if half < 2:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def decode(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """Bytes to text: (text, encoding used). Raises ProtocolError for binary or undecodable
    content. ``auto`` tries BOMs, UTF-16 by its zero bytes, strict UTF-8, then Windows-1252."""
    used = encoding
    try:
        if encoding != "auto":
            text = data.decode(encoding)
        elif data.startswith(codecs.BOM_UTF8):
            used = "utf-8-sig"
            text = data.decode(used)
        elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            used = "utf-16"
            text = data.decode(used)
        elif (guess := _utf16_without_bom(data)) is not None:
            used = guess
            text = data.decode(used)
        else:
            try:
                used = "utf-8"
                text = data.decode(used)
            except UnicodeDecodeError:
                used = "cp1252"
                text = data.decode(used)
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"the content is not {used} text (at byte {exc.start}:"
            f" {data[exc.start : exc.start + 4]!r}); is it binary, cut short, or in another"
            " encoding?"
        ) from exc
    except LookupError as exc:
        raise ProtocolError(f"unknown encoding {encoding!r} in the template") from exc
    except UnicodeError as exc:
        # Codecs such as idna, punycode or "undefined" raise the base class (found by fuzzing).
        raise ProtocolError(
            f"the content cannot be read as {used} text ({exc}); check the template's encoding"
        ) from exc
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise ProtocolError("the content is binary (it holds zero bytes), not a text export")
    controls = sum(
        1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROL
    )
    if controls > max(2, len(text) // 100):
        raise ProtocolError(
            f"the content is binary ({controls} control characters), not a text export"
        )
    return text, used


# -- cells, numbers, columns ---------------------------------------------------------------------


def _split_chars(line: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes ("" is a quote inside quotes)."""
    cells: list[str] = []
    cur: list[str] = []
    quoted = False
    i = 0
    while i < len(line):
        ch = line[i]
        if quoted:
            if ch == '"':
                if line[i + 1 : i + 2] == '"':
                    cur.append('"')
                    i += 1
                else:
                    quoted = False
            else:
                cur.append(ch)
        elif ch == '"' and not "".join(cur).strip():
            cur = []
            quoted = True
        elif ch == sep:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    cells.append("".join(cur).strip())
    return cells


def _split(line: str, sep: str) -> list[str]:
    if sep == " ":
        return [c.strip() for c in _WS_SPLIT.split(line.strip())]
    return _split_chars(line, sep)


@dataclass(frozen=True, slots=True)
class _Number:
    value: float
    decimals: int
    flag: str | None


def _number(text: str, decimal: str, tpl: Template, where: str) -> _Number | None:
    """A cell as a number; None when the template calls it missing. Raises ProtocolError."""
    cell = text.strip()
    if fold(cell) in tpl.missing:
        return None
    flag: str | None = None
    spec = tpl.spec.values
    for marker, name in (
        *((m, "below_range") for m in spec.below),
        *((m, "above_range") for m in spec.above),
    ):
        if marker and cell.startswith(marker):
            cell, flag = cell[len(marker) :].strip(), name
            break
    for marker in spec.flagged:
        if marker and cell.endswith(marker):
            cell, flag = cell[: -len(marker)].strip(), flag or "flagged"
            break
    cell = cell.replace("\u2212", "-")  # a typographic minus
    if (
        not _NUMBER.match(cell)
        or (decimal == "." and "," in cell)
        or (decimal == "," and "." in cell)
    ):
        shown = text.strip()[:40]
        raise ProtocolError(f"{where}: {shown!r} is not a number")
    digits = re.split(r"[eE]", cell)[0]
    decimals = len(digits.replace(",", ".").partition(".")[2])
    value = float(cell.replace(",", "."))
    if not math.isfinite(value):
        raise ProtocolError(f"{where}: {text.strip()[:40]!r} is not a finite number")
    return _Number(value, decimals, flag)


def _looks_numeric(cell: str) -> bool:
    c = cell.strip().lstrip("<>").rstrip("*!?").strip().replace("\u2212", "-")
    return bool(_NUMBER.match(c))


def _valid_element(symbol: str) -> bool:
    parts = _ELEMENT_PART.findall(symbol)
    return bool(parts) and "".join(parts) == symbol and all(p in ELEMENTS for p in parts)


ColumnKind = Literal[
    "reading", "position", "x", "y", "time", "layer", "composition", "ignored", "unknown"
]


@dataclass(frozen=True, slots=True)
class _Column:
    kind: ColumnKind
    header: str
    element: str = ""
    unit: str = ""
    #: Why this column cannot be read (unknown element or unit); raised when it is used.
    problem: ProtocolError | UnitError | None = None


def _classify(header: str, tpl: Template) -> _Column:
    """What a column header (or a key of a key: value line) names. Never raises."""
    text = unicodedata.normalize("NFC", header.strip()).rstrip(":").rstrip()
    if not text:
        return _Column("unknown", header)
    if any(p.search(text) for p in tpl.ignore):
        return _Column("ignored", text)
    alias = tpl.columns.get(fold(text))
    if alias is not None:
        return _Column(alias, text)  # type: ignore[arg-type]
    for p in tpl.composition:
        m = p.match(text)
        if m:
            element = m.group("element") or ""
            if not _valid_element(element):
                err = ProtocolError(
                    f"column {text!r}: {element!r} is not a chemical element"
                    " (check the template's composition patterns)"
                )
                return _Column("composition", text, element, problem=err)
            return _Column("composition", text, element)
    for p in tpl.thickness:
        m = p.match(text)
        if not m:
            continue
        element = m.group("element") or ""
        spelled = (m.group("unit") or "").strip()
        unit = tpl.units.get(fold(spelled))
        if not _valid_element(element):
            if unit is None:
                return _Column("unknown", text)  # "Foo [kV]": not a layer at all
            perr = ProtocolError(
                f"column {text!r}: unknown element {element!r}; a layer column starts with an"
                " element symbol such as Au, Ni, Rh (or an alloy such as NiP)"
            )
            return _Column("layer", text, element, problem=perr)
        if unit is None:
            known = ", ".join(sorted(set(tpl.units.values())))
            uerr = UnitError(
                f"column {text!r}: unit {spelled!r} is not a thickness unit this template"
                f" knows ({known})"
            )
            return _Column("layer", text, element, problem=uerr)
        return _Column("layer", text, element, unit)
    return _Column("unknown", text)


def _header_score(cells: Sequence[str], tpl: Template) -> int:
    """How many layer/composition columns a line has if it is a table header, else 0."""
    if not cells or any(_looks_numeric(c) for c in cells if c):
        return 0
    kinds = [_classify(c, tpl).kind for c in cells if c]
    if "layer" not in kinds:  # composition alone ("Au%  Mean  58.6 %") is no table header
        return 0
    return sum(1 for k in kinds if k in ("layer", "composition"))


def _sniff(lines: Sequence[str], tpl: Template) -> str | None:
    """The separator of the first table header, or None when there is no table."""
    choice = tpl.spec.format.separator
    candidates = [_SEPARATORS[choice]] if choice != "auto" else [";", "\t", ",", " "]
    for line in lines[:_SNIFF_LINES]:
        if not line.strip():
            continue
        best, best_score = None, 0
        for sep in candidates:
            if sep != " " and sep not in line:
                continue
            score = _header_score(_split(line, sep), tpl)
            if score > best_score:
                best, best_score = sep, score
        if best is not None:
            return best
    return None


# -- date and time -------------------------------------------------------------------------------


def _instrument_time(text: str | None, tpl: Template) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).isoformat(timespec="seconds")
    except ValueError:
        pass
    for fmt in tpl.spec.format.date_formats:
        try:
            return datetime.strptime(text, fmt).isoformat(timespec="seconds")
        except ValueError:
            continue
    return text[:64]


# -- the parser ----------------------------------------------------------------------------------


@dataclass
class _Header:
    """Header fields as met, per series."""

    values: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: str) -> None:
        value = value.strip()
        if value:
            self.values[name] = value[:200]

    def instrument_time(self, tpl: Template) -> str | None:
        v = self.values
        if "datetime" in v:
            return _instrument_time(v["datetime"], tpl)
        if "date" in v and "time" in v:
            return _instrument_time(f"{v['date']} {v['time']}", tpl)
        if "date" in v:
            return _instrument_time(v["date"], tpl)
        return None


def _key_value(line: str, sep: str | None, tpl: Template) -> tuple[str, str] | None:
    """A header line as (key, value), or None. Tries the separator, then ``key: value``,
    then two or more spaces, keeping the first reading whose key the template knows."""
    tries: list[tuple[str, str]] = []
    if sep is not None and sep != " " and sep in line:
        cells = _split(line, sep)
        rest = [c for c in cells[1:]]
        while rest and not rest[-1]:
            rest.pop()
        tries.append((cells[0], sep.join(rest).strip()))
    m = _KEY_VALUE.match(line)
    if m:
        tries.append((m.group("key"), m.group("value")))
    cells = _split(line, " ")
    if len(cells) >= 2:
        tries.append((cells[0], " ".join(cells[1:])))
    for key, value in tries:
        if fold(key) in tpl.fields or _classify(key, tpl).kind not in ("unknown", "ignored"):
            return key, value
    return None


@dataclass
class _Table:
    columns: list[_Column]
    header: _Header
    sep: str
    line: int
    readings: list[XrfReading] = field(default_factory=list)
    stats: list[Statistic] = field(default_factory=list)

    @property
    def values(self) -> list[int]:
        return [i for i, c in enumerate(self.columns) if c.kind in ("layer", "composition")]


def _check_columns(columns: Sequence[_Column], line_no: int) -> None:
    seen: dict[str, str] = {}
    for col in columns:
        if col.problem is not None:
            raise type(col.problem)(f"line {line_no}: {col.problem}")
        if col.kind == "layer":
            if col.element in seen:
                raise ProtocolError(
                    f"line {line_no}: layer {col.element} has two columns ({seen[col.element]!r}"
                    f" and {col.header!r}); the template must tell them apart"
                )
            seen[col.element] = col.header
    if not any(c.kind == "layer" for c in columns):
        raise ProtocolError(
            f"line {line_no}: the table has composition columns but no thickness column"
            " such as 'Au [µm]'"
        )


def _aligned(cells: list[str], table: _Table, line_no: int, what: str) -> list[str]:
    """Cells lined up with the header. With the whitespace separator, a row that lacks the
    blank cells (statistics under a position column) is lined up with the value columns."""
    n = len(table.columns)
    while len(cells) > n and not cells[-1]:
        cells = cells[:-1]
    if len(cells) == n:
        return cells
    if table.sep == " " and len(cells) == len(table.values) + 1:
        out = [""] * n
        out[0] = cells[0]
        for idx, cell in zip(table.values, cells[1:], strict=True):
            out[idx] = cell
        return out
    if len(cells) > n:
        raise ProtocolError(
            f"line {line_no}: {what} has {len(cells)} cells, the table header (line"
            f" {table.line}) has {n}"
        )
    missing = table.columns[len(cells) :]
    if what == "statistics row" or all(c.kind != "layer" for c in missing):
        # Some writers leave out trailing empty cells; a row cut short lacks layer cells.
        return cells + [""] * (n - len(cells))
    raise ProtocolError(
        f"line {line_no}: {what} has {len(cells)} cells, the table header (line {table.line})"
        f" has {n} (cut short?)"
    )


def _position(parts: Mapping[str, str], decimal: str) -> str | None:
    if "position" in parts:
        return parts["position"]
    xy = []
    for k in ("x", "y"):
        if k in parts:
            xy.append(f"{k}={parts[k] if decimal == '.' else parts[k].replace(',', '.')}")
    return " ".join(xy) or None


def _reading_from_cells(
    cells: list[str],
    columns: Sequence[_Column],
    *,
    number: int,
    tpl: Template,
    decimal: str,
    line_no: int,
    raw: str,
    date: str | None,
) -> XrfReading:
    layers: list[LayerValue] = []
    comp: list[tuple[str, float]] = []
    parts: dict[str, str] = {}
    time_text: str | None = None
    for col, cell in zip(columns, cells, strict=True):
        where = f"line {line_no}, column {col.header!r}"
        if col.kind == "layer":
            num = _number(cell, decimal, tpl, where)
            if num is not None:
                layers.append(LayerValue(col.element, num.value, col.unit, num.flag, num.decimals))
        elif col.kind == "composition":
            num = _number(cell, decimal, tpl, where)
            if num is not None:
                comp.append((col.element, num.value))
        elif col.kind in ("position", "x", "y") and cell:
            parts[col.kind] = cell[:64]
        elif col.kind == "time" and cell:
            time_text = cell
    if not tpl.spec.format.layers_top_first:
        layers.reverse()
    when: str | None = None
    if time_text is not None:
        combined = time_text if date is None or len(time_text) > 8 else f"{date} {time_text}"
        when = _instrument_time(combined, tpl)
    return XrfReading(
        number=number,
        layers=tuple(layers),
        composition=tuple(comp),
        position=_position(parts, decimal),
        time=when,
        raw=raw.strip()[:500],
        line=line_no,
    )


def _reading_number(cell: str) -> int | None:
    m = _READING_NO.match(cell.strip())
    return int(m.group(1)) if m else None


def _add_row(
    table: _Table, cells: list[str], *, tpl: Template, decimal: str, line_no: int, raw: str
) -> bool:
    """Add a reading or statistics row. False when the line is neither (a trailer line)."""
    at = next((i for i, c in enumerate(cells) if c), 0)
    label = cells[at] if cells else ""
    kind = tpl.statistics.get(fold(label))
    if kind is not None and at not in table.values:
        cells = _aligned(cells, table, line_no, "statistics row")
        for idx in table.values:
            col = table.columns[idx]
            if col.kind != "layer":
                continue
            num = _number(cells[idx], decimal, tpl, f"line {line_no}, {label} of {col.header!r}")
            if num is not None:
                table.stats.append(Statistic(col.element, kind, num.value, num.decimals))
        return True
    reading_col = next((i for i, c in enumerate(table.columns) if c.kind == "reading"), None)
    if reading_col is not None:
        cell = cells[reading_col] if reading_col < len(cells) else ""
        number = _reading_number(cell)
        if number is None:
            value_cells = [cells[i] for i in table.values if i < len(cells)]
            if any(_looks_numeric(c) for c in value_cells):
                raise ProtocolError(
                    f"line {line_no}: reading number {cell[:20]!r} is not a whole number"
                )
            return False
    else:
        if not any(_looks_numeric(c) for c in cells):
            return False
        number = len(table.readings) + 1
    cells = _aligned(cells, table, line_no, "reading row")
    date = table.header.values.get("date")
    reading = _reading_from_cells(
        cells,
        table.columns,
        number=number,
        tpl=tpl,
        decimal=decimal,
        line_no=line_no,
        raw=raw,
        date=date,
    )
    table.readings.append(reading)
    return True


def _series(
    readings: Sequence[XrfReading],
    stats: Sequence[Statistic],
    *,
    header: _Header,
    tpl: Template,
    encoding: str,
    sep: str,
) -> Series:
    v = header.values
    return Series(
        readings=tuple(readings),
        application=v.get("application"),
        product=v.get("product"),
        part=v.get("part"),
        operator=v.get("operator"),
        instrument=v.get("instrument"),
        instrument_time=header.instrument_time(tpl),
        statistics=tuple(stats),
        mismatches=tuple(verify_statistics(readings, stats)),
        encoding=encoding,
        separator={";": ";", "\t": "tab", ",": ",", " ": "whitespace"}.get(sep, ""),
    )


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for i, line in enumerate(text.splitlines(), start=1):
        if len(line) > _MAX_LINE:
            raise ProtocolError(f"line {i} is {len(line)} characters long; not a text export")
        yield i, line.replace("\x1a", "")


def _decimal(tpl: Template, sep: str | None) -> str:
    choice = tpl.spec.format.decimal
    if choice != "auto":
        return choice
    return "." if sep == "," else "auto"


def parse_text(text: str, template: Template, encoding: str = "") -> list[Series]:
    """Parse decoded text into its series (one per table; one for key: value readings).

    Raises ProtocolError or UnitError (see the module docstring), nothing else.
    """
    tpl = template
    lines = list(_lines(text))
    sep = _sniff([line for _, line in lines], tpl)
    decimal = _decimal(tpl, sep)
    if sep is None:
        if tpl.line_layer and any(
            p.search(line) for _, line in lines[:_SNIFF_LINES] for p in tpl.line_layer
        ):
            return [_parse_layer_lines(lines, tpl, decimal, encoding)]
        return [_parse_key_values(lines, tpl, decimal, encoding)]
    out: list[Series] = []
    header = _Header()
    # Header lines met after a table: the next series' header if another table follows,
    # else a trailer of this one.
    after = _Header()
    table: _Table | None = None
    for line_no, line in lines:
        if not line.strip():
            continue
        cells = _split(line, sep)
        if _header_score(cells, tpl):
            if table is not None:
                out.append(_finish(table, tpl, encoding))
                header = _Header({**header.values, **after.values})
                after = _Header()
            columns = [_classify(c, tpl) for c in cells]
            _check_columns(columns, line_no)
            table = _Table(columns, header, sep, line_no)
            continue
        if table is not None and _add_row(
            table, cells, tpl=tpl, decimal=decimal, line_no=line_no, raw=line
        ):
            continue
        kv = _key_value(line, sep, tpl)
        if kv is not None:
            name = tpl.fields.get(fold(kv[0]))
            if name is not None:
                (after if table is not None else header).put(name, kv[1])
    if table is None:  # unreachable unless the sniffer and this loop disagree
        raise ProtocolError("no readings: found no table header with a column like 'Au [µm]'")
    table.header = _Header({**table.header.values, **after.values})
    out.append(_finish(table, tpl, encoding))
    return out


def _finish(table: _Table, tpl: Template, encoding: str) -> Series:
    if not table.readings:
        raise ProtocolError(
            f"the table at line {table.line} has no reading rows (the file may be cut short)"
        )
    return _series(
        table.readings,
        table.stats,
        header=table.header,
        tpl=tpl,
        encoding=encoding,
        sep=table.sep,
    )


def _parse_key_values(
    lines: Sequence[tuple[int, str]], tpl: Template, decimal: str, encoding: str
) -> Series:
    """Readings written as ``Au [µm]: 2,61`` lines (a print-out of one reading)."""
    header = _Header()
    readings: list[XrfReading] = []
    cur: dict[str, Any] = {"layers": [], "comp": [], "parts": {}, "raw": [], "number": None}

    def close() -> None:
        if not cur["layers"]:
            return
        layers = list(cur["layers"])
        if not tpl.spec.format.layers_top_first:
            layers.reverse()
        readings.append(
            XrfReading(
                number=cur["number"] if cur["number"] is not None else len(readings) + 1,
                layers=tuple(layers),
                composition=tuple(cur["comp"]),
                position=_position(cur["parts"], decimal),
                raw="\n".join(cur["raw"])[:500],
                line=cur["line"],
            )
        )

    for line_no, line in lines:
        if not line.strip():
            continue
        kv = _key_value(line, None, tpl)
        if kv is None:
            continue
        key, value = kv
        name = tpl.fields.get(fold(key))
        col = _classify(key, tpl)
        if name is not None and col.kind not in ("reading", "layer", "composition"):
            header.put(name, value)
            continue
        where = f"line {line_no} ({key.strip()[:40]!r})"
        if col.problem is not None:
            raise type(col.problem)(f"line {line_no}: {col.problem}")
        if col.kind == "reading":
            number = _reading_number(value)
            if number is None:
                raise ProtocolError(f"{where}: {value[:20]!r} is not a whole reading number")
            if cur["layers"]:
                close()
                cur = {"layers": [], "comp": [], "parts": {}, "raw": [], "number": None}
            cur["number"] = number
        elif col.kind == "layer":
            if any(lv.element == col.element for lv in cur["layers"]):
                raise ProtocolError(f"{where}: layer {col.element} is given twice")
            num = _number(value, decimal, tpl, where)
            if num is not None:
                if not cur["layers"]:
                    cur["line"] = line_no
                cur["layers"].append(
                    LayerValue(col.element, num.value, col.unit, num.flag, num.decimals)
                )
                cur["raw"].append(line.strip())
        elif col.kind == "composition":
            num = _number(value, decimal, tpl, where)
            if num is not None:
                cur["comp"].append((col.element, num.value))
        elif col.kind in ("position", "x", "y") and value:
            cur["parts"][col.kind] = value[:64]
    close()
    if not readings:
        raise ProtocolError(
            "no readings: found neither a table header nor lines such as 'Au [µm]: 2.61'"
        )
    return _series(readings, (), header=header, tpl=tpl, encoding=encoding, sep="")


def _first(patterns: Sequence[re.Pattern[str]], line: str) -> re.Match[str] | None:
    for p in patterns:
        m = p.search(line)
        if m:
            return m
    return None


def _group(m: re.Match[str], name: str) -> str | None:
    return m.group(name) if name in m.re.groupindex else None


def _parse_layer_lines(
    lines: Sequence[tuple[int, str]], tpl: Template, decimal: str, encoding: str
) -> Series:
    """Readings written one layer per line (template ``[lines]``)."""
    header = _Header()
    order: list[int] = []
    layers: dict[int, list[LayerValue]] = {}
    comps: dict[int, list[tuple[str, float]]] = {}
    raws: dict[int, list[str]] = {}
    first_line: dict[int, int] = {}
    stats: list[Statistic] = []
    current: int | None = None
    auto = 0
    for line_no, line in lines:
        if not line.strip():
            continue
        m = _first(tpl.line_number, line)
        if m:
            number = _reading_number(m.group("reading") or "")
            if number is None:
                raise ProtocolError(f"line {line_no}: {m.group('reading')!r} is no reading number")
            current = number
            continue
        m = _first(tpl.line_layer, line)
        if m:
            where = f"line {line_no}"
            element = m.group("element") or ""
            if not _valid_element(element):
                raise ProtocolError(f"{where}: unknown element {element!r}")
            spelled = (m.group("unit") or "").strip()
            unit = tpl.units.get(fold(spelled))
            if unit is None:
                known = ", ".join(sorted(set(tpl.units.values())))
                raise UnitError(
                    f"{where}: unit {spelled!r} of {element} is not a thickness unit this"
                    f" template knows ({known})"
                )
            given = _group(m, "reading")
            number = _reading_number(given) if given else current
            if given and number is None:
                raise ProtocolError(f"{where}: {given!r} is no reading number")
            if number is None:  # no numbers at all: a repeated element starts the next reading
                if auto == 0 or any(lv.element == element for lv in layers[auto]):
                    auto += 1
                number = auto
            if number not in layers:
                order.append(number)
                layers[number], comps[number], raws[number] = [], [], []
                first_line[number] = line_no
            if any(lv.element == element for lv in layers[number]):
                raise ProtocolError(f"{where}: reading {number} gives {element} twice")
            num = _number(m.group("value") or "", decimal, tpl, where)
            if num is not None:
                layers[number].append(LayerValue(element, num.value, unit, num.flag, num.decimals))
            comp_text = _group(m, "composition")
            if comp_text:
                comp = _number(comp_text, decimal, tpl, f"{where}, composition")
                if comp is not None:
                    comps[number].append((element, comp.value))
            raws[number].append(line.strip())
            continue
        m = _first(tpl.line_statistic, line)
        if m:
            element = m.group("element") or ""
            kind = tpl.statistics.get(fold(m.group("stat") or ""))
            if kind is not None and _valid_element(element):
                num = _number(m.group("value") or "", decimal, tpl, f"line {line_no}")
                if num is not None:
                    stats.append(Statistic(element, kind, num.value, num.decimals))
            continue
        kv = _key_value(line, None, tpl)
        if kv is not None:
            name = tpl.fields.get(fold(kv[0]))
            if name is not None:
                header.put(name, kv[1])
    readings = []
    for number in order:
        found = list(layers[number])
        if not found:
            continue
        if not tpl.spec.format.layers_top_first:
            found.reverse()
        readings.append(
            XrfReading(
                number=number,
                layers=tuple(found),
                composition=tuple(comps[number]),
                raw="\n".join(raws[number])[:500],
                line=first_line[number],
            )
        )
    if not readings:
        raise ProtocolError("no readings: no layer line gave a value")
    return _series(readings, stats, header=header, tpl=tpl, encoding=encoding, sep="")


def parse_export(data: bytes, template: Template) -> list[Series]:
    """Decode and parse an export file's bytes. Raises ProtocolError or UnitError only."""
    text, used = decode(data, template.spec.format.encoding)
    return parse_text(text, template, used)


# -- statistics ----------------------------------------------------------------------------------


def verify_statistics(
    readings: Sequence[XrfReading], stats: Sequence[Statistic]
) -> list[tuple[str, str]]:
    """Stated n, mean, min and max that disagree with the readings: (element, words).

    Tolerance: half a unit in the last printed digit of the statistic plus half of the
    readings' (both are rounded before they are printed).
    """
    problems: list[tuple[str, str]] = []
    for st in stats:
        values = [lv for r in readings for lv in r.layers if lv.element == st.element]
        if not values:
            problems.append(
                (st.element, f"{st.element} {st.kind} is stated but no reading has {st.element}")
            )
            continue
        if st.kind == "n":
            if not math.isclose(st.value, len(values)):
                problems.append(
                    (st.element, f"{st.element}: n is {st.value:g} but {len(values)} readings")
                )
            continue
        if st.kind not in ("mean", "min", "max"):
            continue
        nums = [lv.value for lv in values]
        # Each term divided first: a plain sum of values near the float limit overflows.
        mean = sum(v / len(nums) for v in nums)
        calc = {"mean": mean, "min": min(nums), "max": max(nums)}[st.kind]
        tol = 0.5 * 10.0**-st.decimals + 0.5 * 10.0 ** -min(lv.decimals for lv in values)
        if abs(calc - st.value) > tol * (1 + 1e-9) + 1e-12:
            problems.append(
                (
                    st.element,
                    f"{st.element}: stated {st.kind} {st.value:g} but the readings give {calc:.6g}",
                )
            )
    return problems


# -- samples -------------------------------------------------------------------------------------


class UncertaintyRule(_Strict):
    """Expanded measurement uncertainty for the applications whose name matches ``application``.

    Percentages of the reading. Defaults from ISO 3497-style fundamental-parameter figures
    (INSTRUMENTS_AND_STANDARDS.md §1.3): about ±5 % for a single layer, ±10 % for the top
    layer of a stack, and much worse for underlayers (up to ±37 % reported for the first one).
    Calibrate with standards and set your own per application.
    """

    #: fnmatch pattern, case-insensitive, on the application name ("*" matches any, also none).
    application: str = "*"
    single_pct: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 5.0
    top_pct: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 10.0
    under_pct: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 30.0
    #: Per element, overriding the position rule (``{ Ni = 20.0 }``).
    layer_pct: dict[str, Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )


_DEFAULT_RULE = UncertaintyRule()


def uncertainty_pct(
    rules: Sequence[UncertaintyRule],
    application: str | None,
    element: str,
    index: int,
    stack: int,
) -> float:
    """The uncertainty in % for the layer at ``index`` (0 = top) of a ``stack``-layer reading,
    from the first rule whose pattern matches the application (built-in defaults otherwise)."""
    name = (application or "").casefold()
    rule = next(
        (r for r in rules if fnmatch.fnmatchcase(name, r.application.casefold())), _DEFAULT_RULE
    )
    if element in rule.layer_pct:
        return rule.layer_pct[element]
    if stack <= 1:
        return rule.single_pct
    return rule.top_pct if index == 0 else rule.under_pct


def to_samples(
    series: Series,
    *,
    instrument: str,
    time_ns: int,
    rules: Sequence[UncertaintyRule] = (),
    measurement: str = "thickness",
    extra: Sequence[tuple[str, FieldValue]] = (),
) -> list[Sample]:
    """One Sample per layer per reading (measurement ``thickness``, channel ``layer_<El>``).

    Reading i (0-based) is stamped ``time_ns + i``: the readings of a series share a tag set,
    and InfluxDB keeps only one point per series and timestamp.
    """
    stats: dict[str, dict[StatKind, float]] = {}
    for st in series.statistics:
        stats.setdefault(st.element, {})[st.kind] = st.value
    mismatched = {element for element, _ in series.mismatches}
    head: list[tuple[str, FieldValue]] = [
        (k, v)
        for k, v in (
            ("application", series.application),
            ("product", series.product),
            ("part", series.part),
            ("operator", series.operator),
            ("xrf_instrument", series.instrument),
        )
        if v
    ]
    out: list[Sample] = []
    for i, reading in enumerate(series.readings):
        stack = "/".join(lv.element for lv in reading.layers)
        comp = [(f"comp_{el}_pct", v) for el, v in reading.composition]
        for idx, lv in enumerate(reading.layers):
            pct = uncertainty_pct(rules, series.application, lv.element, idx, len(reading.layers))
            # pct / 100 first: abs(value) * pct overflows to inf near the float limit (fuzzing).
            scaled: list[tuple[str, float]] = [("uncertainty", abs(lv.value) * (pct / 100.0))]
            fields: list[tuple[str, FieldValue]] = [
                *head,
                ("reading", reading.number),
                ("stack", stack),
                ("layer_index", idx + 1),
                ("uncertainty_pct", pct),
            ]
            if reading.position:
                fields.append(("position", reading.position))
            fields.extend(comp)
            layer_stats = stats.get(lv.element, {})
            for kind in _STAT_SCALED:
                if kind in layer_stats:
                    scaled.append((f"series_{kind}", layer_stats[kind]))
            if "n" in layer_stats:
                fields.append(("series_n", int(layer_stats["n"])))
            if "cov" in layer_stats:
                fields.append(("series_cov_pct", layer_stats["cov"]))
            fields.extend(extra)
            flags: list[str] = []
            if lv.flag:
                flags.append(lv.flag)
            if lv.element in mismatched:
                flags.append("statistics_mismatch")
            out.append(
                Sample(
                    instrument=instrument,
                    measurement=measurement,
                    channel=f"layer_{lv.element}",
                    quantity="length",
                    value=lv.value,
                    unit=lv.unit,
                    time_ns=time_ns + i,
                    raw=reading.raw,
                    instrument_time=reading.time or series.instrument_time,
                    flags=tuple(flags),
                    scaled=tuple(scaled),
                    extra=tuple(fields),
                )
            )
    return out
