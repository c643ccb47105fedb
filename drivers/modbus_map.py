"""Modbus register maps as data, and the pure codecs that decode them.

A map file (TOML, ``schema = 1``, see drivers/maps/) lists a controller's points: channel,
quantity, address, data type, unit (or ``display`` when the controller's display-unit register
decides it), a plausible range, and optionally ``interval_s``, how often at most a point is
read (points with one interval form a register group with its own poll rate). A new controller
is a new map file, not new code.

Word orders for 32-bit values, named by where bytes A (most significant) to D land:
``ABCD`` high word first, ``CDAB`` low word first (Watlow's default), ``BADC`` and ``DCBA``
with the bytes of each word swapped as well.
"""

from __future__ import annotations

import math
import struct
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daq.errors import ProtocolError

__all__ = [
    "WORD_ORDERS",
    "DataType",
    "DisplayUnit",
    "InputError",
    "MapPoint",
    "RegisterMap",
    "StatusMap",
    "WordOrder",
    "decode",
    "load_map",
    "read_plan",
]

WordOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
WORD_ORDERS: tuple[WordOrder, ...] = ("ABCD", "CDAB", "BADC", "DCBA")
DataType = Literal["float32", "int32", "uint32", "int16", "uint16"]

_WIDTH: dict[str, int] = {"float32": 2, "int32": 2, "uint32": 2, "int16": 1, "uint16": 1}
_FORMAT: dict[str, str] = {"float32": ">f", "int32": ">i", "uint32": ">I"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MapPoint(_Strict):
    channel: Annotated[str, Field(min_length=1)]
    quantity: str
    address: Annotated[int, Field(ge=0, le=65535)]
    type: DataType = "float32"
    #: A unit symbol, or ``display`` to take it from the display-unit register.
    unit: str
    #: Scaled integers: value = raw * scale (e.g. 0.1 for one implied decimal place).
    scale: float = 1.0
    plausible: tuple[float, float] | None = None
    #: Flag the value ``stuck`` once its registers have not changed for this many seconds
    #: (0: never). Meant for process values, which always carry some noise; never for set
    #: points. Seconds, not polls: a controller refreshes its registers at its own pace.
    stuck_after_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    #: Read this point at most every ``interval_s`` seconds (a set point that seldom changes,
    #: to spare a busy RS-485 line); left out, it is read on every poll. Points with the same
    #: interval form one group, read together when it is due.
    interval_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @property
    def width(self) -> int:
        return _WIDTH[self.type]


class DisplayUnit(_Strict):
    address: Annotated[int, Field(ge=0, le=65535)]
    values: dict[int, str]


class StatusMap(_Strict):
    address: Annotated[int, Field(ge=0, le=65535)]
    ok: list[int]
    values: dict[int, str] = Field(default_factory=dict)


class InputError(_Strict):
    """A register that says a process value cannot be trusted (a sensor break, an open
    thermocouple): any code outside ``ok`` refuses the points in ``channels`` for that poll."""

    address: Annotated[int, Field(ge=0, le=65535)]
    ok: Annotated[list[int], Field(min_length=1)]
    values: dict[int, str] = Field(default_factory=dict)
    channels: Annotated[list[str], Field(min_length=1)]
    #: What a bad code means, in words for the log ("sensor break").
    means: str = "input error"


class RegisterMap(_Strict):
    schema_: Annotated[int, Field(alias="schema")]
    model: str
    word_order: WordOrder = "ABCD"
    #: 1 when the manual numbers registers from 1 (the wire address is one less).
    base: Literal[0, 1] = 0
    display_unit: DisplayUnit | None = None
    status: StatusMap | None = None
    input_error: list[InputError] = Field(default_factory=list)
    point: Annotated[list[MapPoint], Field(min_length=1)]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _checks(self) -> RegisterMap:
        if self.schema_ != 1:
            raise ValueError(f"map schema {self.schema_} is not supported (this reads 1)")
        names = [p.channel for p in self.point]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"channel(s) listed twice: {', '.join(dupes)}")
        if self.display_unit is None and any(p.unit == "display" for p in self.point):
            raise ValueError("a point uses unit = 'display' but the map has no [display_unit]")
        unknown = sorted({c for e in self.input_error for c in e.channels} - set(names))
        if unknown:
            raise ValueError(f"input_error names channel(s) the map has not: {', '.join(unknown)}")
        return self

    def wire(self, address: int) -> int:
        """The 0-based PDU address of a register numbered as in the manual."""
        return address - self.base


def load_map(path: Path) -> RegisterMap:
    """Load and validate a register map file. Raises ValueError naming the file and key."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"register map {path}: cannot read it: {exc}") from exc
    except RecursionError as exc:  # tomllib recurses once per nesting level (found by fuzzing)
        raise ValueError(f"register map {path}: arrays or tables are nested too deep") from exc
    except ValueError as exc:  # an integer longer than int()'s 4300-digit limit
        raise ValueError(f"register map {path}: {str(exc).split(':')[0]}") from exc
    try:
        return RegisterMap.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"register map {path}: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ValueError("\n".join(lines)) from exc


def _ordered_bytes(registers: list[int], order: WordOrder) -> bytes:
    hi, lo = registers[0], registers[1]
    if order in ("CDAB", "DCBA"):
        hi, lo = lo, hi
    data = struct.pack(">HH", hi, lo)
    if order in ("BADC", "DCBA"):
        data = bytes((data[1], data[0], data[3], data[2]))
    return data


def decode(registers: list[int], data_type: DataType, order: WordOrder) -> float:
    """Decode one value from its registers. Raises ProtocolError on a wrong register count."""
    need = _WIDTH[data_type]
    if len(registers) != need:
        raise ProtocolError(f"{data_type} needs {need} registers, got {len(registers)}")
    if data_type == "uint16":
        return float(registers[0])
    if data_type == "int16":
        raw = registers[0]
        return float(raw - 0x10000 if raw & 0x8000 else raw)
    (value,) = struct.unpack(_FORMAT[data_type], _ordered_bytes(registers, order))
    return float(value)


def read_plan(addresses: list[tuple[int, int]], max_gap: int = 8) -> list[tuple[int, int]]:
    """Group (address, width) spans into as few reads as possible (at most 125 registers each).

    Spans closer than ``max_gap`` registers share one read; the gap is read and ignored.
    """
    blocks: list[tuple[int, int]] = []
    for start, width in sorted(set(addresses)):
        end = start + width
        if blocks:
            b_start, b_count = blocks[-1]
            b_end = b_start + b_count
            if start - b_end <= max_gap and end - b_start <= 125:
                blocks[-1] = (b_start, max(b_end, end) - b_start)
                continue
        blocks.append((start, width))
    return blocks


def plausible(value: float, bounds: tuple[float, float] | None) -> bool:
    """True when the value is finite and inside the point's plausible range.

    Tiny non-zero magnitudes are implausible too: a float read in the wrong word order lands
    there (35.0 stored CDAB and read ABCD is 2.37e-41, which is inside any temperature range).
    """
    if not math.isfinite(value):
        return False
    if value != 0.0 and abs(value) < 1e-30:
        return False
    return bounds is None or bounds[0] <= value <= bounds[1]
