"""XRF coating-thickness gauges through their serial print-out ("telegram"), the fallback link.

Instruments: benchtop XRF whose PC software prints results to an RS-232 port (Fischer WinFTM,
Hitachi, Bowman, Thermo "formatted telegrams"; INSTRUMENTS_AND_STANDARDS.md §1.3). No vendor
print format is public, so the layout is a template (drivers/xrf_templates/): the built-in
``telegram-default`` documents one of our own — a result block between a ``RESULT`` line (or
STX) and an ``END`` line (or ETX, or a form feed), whose body reads like an export file. Prefer
the export folder (drivers/xrf_export.py) where the software can write files.

Address: a serial port or pyserial URL, as for every serial instrument
(drivers/transport/serial.py ``parse_line_address``): ``/dev/ttyUSB0``, ``/dev/pts/3``,
``COM3``, ``socket://HOST:PORT``, ``rfc2217://HOST:PORT``, ``loop://``, with optional
``?baudrate=9600&bytesize=8&parity=N&stopbits=1``. Options win over the address; 9600 8N1
otherwise. VISA resources are not supported here.

Push mode: ``receive(timeout)`` returns the samples of the next complete block, or [] when none
completes within ``timeout``. Blocks may arrive split across reads; bytes outside a block are
ignored (counted in ``garbage``). A block that meets the next start line, grows past
``max_block_bytes``, or goes quiet for ``block_gap_s`` before its end line is truncated:
``receive`` raises ``ProtocolError`` saying what was missing, and nothing of it is recorded. A
complete block that does not parse raises ``ProtocolError`` or ``UnitError``. A port that fails
raises ``TransportError``.

Quirks: the shared line transport keeps printable ASCII only, which would drop the ``µ`` of
``Au [µm]`` (0xB5 in Windows-1252) and the STX/ETX/form-feed framing, so this module reads raw
bytes from pyserial itself and frames them with ``TelegramFramer`` (pure, tested without a
port). When a layer's unit changes between blocks (µm to µin at the instrument), its samples
are flagged ``unit_changed:µm->µin``; values are recorded as sent and converted downstream.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

import serial
from pydantic import BaseModel, ConfigDict, Field, field_validator

from daq.errors import InstrumentError, ProtocolError, TransportError, UnitError
from daq.instrument import InstrumentSettings, Mode
from daq.model import Sample
from drivers.transport.serial import LineAddress, SerialSettings, parse_line_address
from drivers.xrf_parse import (
    Template,
    UncertaintyRule,
    decode,
    load_template,
    parse_text,
    to_samples,
)

__all__ = [
    "Block",
    "TelegramFramer",
    "Truncated",
    "XrfTelegram",
    "XrfTelegramOptions",
    "build",
    "check_address",
    "check_options",
]

log = logging.getLogger(__name__)

_DEFAULTS = SerialSettings(baudrate=9600, bytesize=8, parity="N", stopbits=1.0)
_SLICE_S = 0.05
_MAX_LINE = 4096
_BREAK = re.compile(rb"\r\n|\r|\n|[\x02\x03\x0c]")
_NOISE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\xff]")


# -- framing (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """A complete result block: the lines between its start and end lines."""

    body: bytes
    start: str


@dataclass(frozen=True, slots=True)
class Truncated:
    """A block that ended without its end line; ``reason`` says what was missing."""

    reason: str


class TelegramFramer:
    """Bytes in, result blocks out. Pure: the caller passes the monotonic time.

    Lines end with CR-LF, CR or LF; STX (0x02), ETX (0x03) and form feed (0x0C) are lines of
    their own, so they can be start or end markers.
    """

    def __init__(
        self,
        start: re.Pattern[str],
        end: re.Pattern[str],
        *,
        gap_s: float = 5.0,
        max_block: int = 65536,
    ) -> None:
        self.start = start
        self.end = end
        self.gap_s = gap_s
        self.max_block = max_block
        #: Bytes thrown away outside blocks (line noise, partial blocks from before connecting).
        self.garbage = 0
        self._buf = bytearray()
        self._after_cr = False
        self._lines: list[bytes] | None = None  # None: outside a block
        self._size = 0
        self._start = ""
        self._last = 0.0

    @property
    def in_block(self) -> bool:
        return self._lines is not None

    def feed(self, data: bytes, now: float) -> list[Block | Truncated]:
        """Add bytes as they came; returns the blocks (and truncations) they complete."""
        out: list[Block | Truncated] = []
        if not data:
            return out
        if self._after_cr and data[:1] == b"\n":
            data = data[1:]
        self._after_cr = False
        self._buf += data
        if self._lines is not None:
            self._last = now
        pos = 0
        for m in _BREAK.finditer(self._buf):
            self._line(bytes(self._buf[pos : m.start()]), now, out)
            mark = m.group()
            if mark in (b"\x02", b"\x03", b"\x0c"):
                self._line(mark, now, out)
            pos = m.end()
        del self._buf[:pos]
        if self._buf == b"" and data.endswith(b"\r"):
            self._after_cr = True
        if len(self._buf) > _MAX_LINE:
            if self._lines is not None:
                out.append(self._truncate(f"a line longer than {_MAX_LINE} bytes"))
            else:
                self.garbage += len(self._buf)
            self._buf.clear()
        return out

    def expire(self, now: float) -> list[Block | Truncated]:
        """Close a block that has been quiet for ``gap_s`` (an end line without its line end
        completes it; anything else truncates it)."""
        if self._lines is None or now - self._last < self.gap_s:
            return []
        out: list[Block | Truncated] = []
        rest = bytes(self._buf)
        self._buf.clear()
        if rest.strip() and self._is(self.end, rest):
            self._line(rest, now, out)
            return out
        if rest:
            self._lines.append(rest)
        out.append(self._truncate(f"nothing arrived for {self.gap_s:g} s"))
        return out

    def _is(self, pattern: re.Pattern[str], line: bytes) -> bool:
        # Line noise (XON/XOFF, BEL, NUL on connect) glued to a marker line must not hide it.
        text = line.decode("latin-1")
        if len(line) > 1:
            text = _NOISE.sub("", text)
        return pattern.search(text) is not None

    def _truncate(self, why: str) -> Truncated:
        count = len(self._lines or [])
        start = self._start
        self._lines = None
        self._size = 0
        return Truncated(
            f"result block {start!r} has no end line (matching {self.end.pattern!r}): {why};"
            f" its {count} line(s) are thrown away"
        )

    def _start_at(self, line: bytes) -> int:
        """Where a start marker begins in the line, or -1. A pattern that is not anchored
        (``XRF RESULT$``) also finds a start glued to line noise or to a line cut short."""
        m = self.start.search(line.decode("latin-1"))
        if m:
            return m.start()
        return 0 if self._is(self.start, line) else -1

    def _line(self, line: bytes, now: float, out: list[Block | Truncated]) -> None:
        at = self._start_at(line)
        if at > 0:
            head, line = line[:at], line[at:]
            if self._lines is None:
                self.garbage += len(head)
            else:
                self._lines.append(head)  # the cut tail; the block is truncated just below
        if self._lines is None:
            if at >= 0:
                self._open(line, now)
            else:
                self.garbage += len(line)
            return
        if at >= 0:
            out.append(self._truncate("the next block began"))
            self._open(line, now)
        elif self._is(self.end, line):
            out.append(Block(b"\n".join(self._lines), self._start))
            self._lines = None
            self._size = 0
        else:
            self._lines.append(line)
            self._size += len(line) + 1
            if self._size > self.max_block:
                out.append(self._truncate(f"it grew past {self.max_block} bytes"))

    def _open(self, line: bytes, now: float) -> None:
        self._lines = []
        self._size = 0
        self._start = _NOISE.sub("", line.decode("latin-1")).strip()[:40] or "STX"
        self._last = now


# -- options -------------------------------------------------------------------------------------


class XrfTelegramOptions(BaseModel):
    """Options under ``[instrument.options]`` for an XRF print-out on a serial port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Template: a built-in name (``telegram-default``) or a path; it needs a [telegram] table.
    template: str = "telegram-default"
    #: Serial settings; unset ones come from the address query, then 9600 8N1.
    baudrate: Annotated[int, Field(gt=0)] | None = None
    bytesize: Literal[5, 6, 7, 8] | None = None
    parity: Literal["N", "E", "O", "M", "S"] | None = None
    stopbits: float | None = None

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, v: float | None) -> float | None:
        if v is not None and v not in (1.0, 1.5, 2.0):
            raise ValueError("stopbits is 1, 1.5 or 2")
        return v

    #: A block quiet this long before its end line is truncated.
    block_gap_s: Annotated[float, Field(gt=0, le=600, allow_inf_nan=False)] = 5.0
    #: A block longer than this is truncated (a stuck printer, a wrong template).
    max_block_bytes: Annotated[int, Field(ge=256)] = 65536
    #: Expanded uncertainty per application (first match wins), recorded as ``uncertainty``.
    uncertainty: list[UncertaintyRule] = Field(default_factory=lambda: [UncertaintyRule()])
    #: The measurement the samples are written under (docs/schema.md).
    measurement: str = "thickness"


def check_address(address: str) -> LineAddress:
    """A serial port or pyserial URL (not VISA). Raises ValueError."""
    parsed = parse_line_address(address)
    if parsed.kind != "serial":
        raise ValueError(f"'{address}': the XRF print-out is read from a serial port or URL")
    return parsed


def check_options(options: XrfTelegramOptions) -> list[tuple[str, str]]:
    """The template must load and frame telegrams."""
    try:
        tpl = load_template(options.template)
    except ValueError as exc:
        return [("options.template", str(exc))]
    if tpl.telegram_start is None:
        return [("options.template", f"{tpl.source} has no [telegram] start and end lines")]
    return []


# -- the driver ----------------------------------------------------------------------------------


class XrfTelegram:
    """An XRF gauge printing result blocks to a serial port. The constructor does no I/O."""

    mode: Mode = "push"

    def __init__(
        self, settings: InstrumentSettings, options: XrfTelegramOptions, template: Template
    ) -> None:
        if template.telegram_start is None or template.telegram_end is None:
            raise ValueError(f"template {template.source} has no [telegram] table")
        self.name = settings.name
        self.settings = settings
        self.options = options
        self.template = template
        self.address = check_address(settings.address)
        given = SerialSettings(
            options.baudrate,
            options.bytesize,
            options.parity,
            None if options.stopbits is None else float(options.stopbits),
        )
        self.serial_settings = given.over(self.address.settings).over(_DEFAULTS)
        self._start = template.telegram_start
        self._end = template.telegram_end
        self._framer = self._new_framer()
        self._events: deque[Block | Truncated] = deque()
        self._port: Any = None
        self._last_ns = 0
        self._units: dict[str, str] = {}

    def _new_framer(self) -> TelegramFramer:
        return TelegramFramer(
            self._start,
            self._end,
            gap_s=self.options.block_gap_s,
            max_block=self.options.max_block_bytes,
        )

    @property
    def garbage(self) -> int:
        """Bytes ignored outside result blocks since connecting."""
        return self._framer.garbage

    def connect(self) -> None:
        """Open the port. Raises TransportError."""
        self.close()
        s = self.serial_settings
        stopbits: float = s.stopbits if s.stopbits is not None else 1.0
        try:
            port = serial.serial_for_url(
                self.address.target,
                do_not_open=True,
                timeout=_SLICE_S,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=int(stopbits) if stopbits in (1.0, 2.0) else stopbits,
            )
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(
                f"{self.name}: cannot open {self.address} ({s.describe()}): {exc}"
            ) from exc
        self._port = port
        self._framer = self._new_framer()
        self._events.clear()

    def close(self) -> None:
        """Close the port. Idempotent; never raises."""
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def poll(self) -> list[Sample]:
        raise InstrumentError(f"{self.name} pushes its results; it is not polled")

    def _read(self, wait: float) -> bytes:
        port = self._port
        if port is None:
            raise TransportError(f"{self.name}: {self.address} is not open")
        try:
            waiting = port.in_waiting
            if waiting:
                return bytes(port.read(waiting))
            if wait <= 0:
                return b""
            first = bytes(port.read(1))  # waits at most one slice (the port's timeout)
            waiting = port.in_waiting if first else 0
            return first + bytes(port.read(waiting)) if waiting else first
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"{self.name}: reading {self.address} failed: {exc}") from exc

    def receive(self, timeout: float) -> list[Sample]:
        """Samples of the next complete result block, or [] within ``timeout``."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            if self._events:
                event = self._events.popleft()
                if isinstance(event, Truncated):
                    raise ProtocolError(f"{self.name}: {event.reason}")
                return self._samples(event)
            now = time.monotonic()
            self._events.extend(self._framer.expire(now))
            if self._events:
                continue
            left = deadline - now
            if left <= 0:
                return []
            data = self._read(min(left, _SLICE_S))
            if data:
                self._events.extend(self._framer.feed(data, time.monotonic()))

    def _samples(self, block: Block) -> list[Sample]:
        try:
            text, used = decode(block.body, self.template.spec.format.encoding)
            series = parse_text(text, self.template, used)
        except (ProtocolError, UnitError) as exc:
            raise type(exc)(f"{self.name}: result block {block.start!r}: {exc}") from exc
        out: list[Sample] = []
        for one in series:
            base = max(time.time_ns(), self._last_ns + 1)
            out.extend(
                to_samples(
                    one,
                    instrument=self.name,
                    time_ns=base,
                    rules=self.options.uncertainty,
                    measurement=self.options.measurement,
                )
            )
            self._last_ns = base + len(one.readings) - 1
        flagged = []
        for s in out:
            before = self._units.get(s.channel)
            self._units[s.channel] = s.unit
            if before is not None and before != s.unit:
                flagged.append(replace(s, flags=(*s.flags, f"unit_changed:{before}->{s.unit}")))
            else:
                flagged.append(s)
        return flagged


def build(settings: InstrumentSettings, options: XrfTelegramOptions) -> XrfTelegram:
    """Build the driver with its template (no I/O beyond reading the template)."""
    return XrfTelegram(settings, options, load_template(options.template))
