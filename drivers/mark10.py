"""Mark-10 force gauges and torque testers over RS-232/USB, Gauge Control Language 2 (GCL2).

Instruments: Mark-10 Series 4, 5 and 7 force gauges (M4/M5/M7 class), the TT01 torque tester
and the OEM versions of the same firmware (Omega DFG55, Cooper 7i indicator). Transport: a serial
line (drivers/transport/serial.py): the gauge's USB virtual COM port, a pty, a serial server
(``socket://``, ``rfc2217://``) or a VISA ASRL resource (``visa://ASRL/dev/ttyACM0::INSTR``).

Protocol, from the Series 4 guide §9.1.3 and the Series 5 guide "Command Set / GCL2" §9.6-9.8
(pp. 17-19), with the full command list from the Omega DFG55 and Cooper 7i guides:

- Commands end in CR or CR-LF (the LF is ignored); this driver sends CR-LF, as the Opentrons
  driver does against real gauges. Replies always end in CR-LF.
- A reading is ``<value> <unit>``: ``-18.78 lbF`` (tension is negative by default, ``IPOL``
  inverts it, ``OPOL`` leaves the sign out), ``4.285 N``; torque ``-18.78 lbFin``, ``0.52 Nm``.
  With the *Data format* set to numeric only (``NUM``) the unit is left out; the driver then
  takes the unit from the ``unit`` option and cannot see a front-panel unit change.
- Readings: ``?`` displayed, ``?C`` current, ``?PT``/``?PC`` peak tension/compression, ``?A``
  average, ``?ET`` external trigger; torque adds ``?CW``, ``?CCW``, ``?P1``.
- ``AOUTn`` makes the gauge send a reading n times a second unasked (1, 2, 5, 10, 25, 50, 125,
  250 on the 7i; 0 stops it).
- Errors: ``*10`` illegal command, ``*11`` not applicable, ``*12`` invalid specifier, ``*22``
  value too large; they become ``InstrumentError`` naming the command.

Two modes (option ``mode``):

- ``poll``: each poll sends the ``command`` (``?C`` by default; ``?PT`` for the latched peak)
  and records one sample in the gauge's own unit. Lines that arrived unasked since the last
  poll are thrown away first: a repeat of the last reply is a duplicated line; anything else
  means the gauge is streaming (AOUT on), whose lines cannot be told from replies, so the poll
  fails with a ``ProtocolError`` and the driver sends ``AOUT0``.
- ``push``: ``connect`` sends ``AOUT<aout_rate>`` and the driver builds the force curve from the
  stream; every test (drivers/forcetest.py: start above a threshold, peak, break or release,
  optional 16 CFR 1500.51-.53 hold) becomes one sample; ``close`` sends ``AOUT0``. Error replies
  and other lines in the stream are never taken for readings; a line repeated within half a
  stream period is a duplicate and dropped.

Every reading's unit is checked against the configured quantity (a force gauge answering ``Nm``
is a ``UnitError``); a unit change from the front panel is followed (the sample keeps the
gauge's unit, the pipeline converts it) and flagged ``unit_changed:N->lbF``. A reading at or
beyond ``capacity`` is flagged ``overload`` (what a gauge sends when overloaded is not in the
retrieved manuals).

Quirks: the default baud rate is not agreed among public drivers (Opentrons uses 115200, idealab
9600 8N1, a Series 5 README says 115200); this driver defaults to 115200 8N1: set ``baudrate``
(or ``?baudrate=`` in the address) to what the gauge's menu says. At 9600 baud a 12-character
line takes about 12 ms, so AOUT rates above about 50/s cannot get through. Curve times are the
host's arrival times; the stream's peak can be lower than the gauge's own latched peak (it
samples much faster than it streams). The USB id 0483:A1AD seen in the Opentrons driver is
unconfirmed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from daq.errors import (
    HallmarkError,
    InstrumentError,
    InstrumentTimeout,
    ProtocolError,
    UnitError,
)
from daq.instrument import InstrumentSettings, Mode
from daq.model import Sample
from daq.units import convert
from drivers.forcetest import ForceTestSession, GaugeOptions, parse_level
from drivers.transport.serial import LineLink, SerialSettings, open_line_link

__all__ = [
    "ERROR_REPLIES",
    "FORCE_UNITS",
    "TORQUE_UNITS",
    "ErrorReply",
    "Mark10",
    "Mark10Options",
    "Reading",
    "parse_line",
    "resolve_unit",
]

log = logging.getLogger(__name__)

#: GCL2 error replies in words.
ERROR_REPLIES = {
    "*10": "illegal command",
    "*11": "not applicable",
    "*12": "invalid specifier",
    "*22": "value too large",
}

#: Mark-10 unit tokens -> the spelling daq/units.py reads. Force tokens are [V]; of the torque
#: tokens only ``lbFin`` and ``Nm`` are seen in a manual, the rest follow the unit commands
#: (LBFT, OZIN, KGM, KGMM, GCM, NCM, NMM).
FORCE_UNITS = {u: u for u in ("lbF", "ozF", "kgF", "gF", "N", "mN", "kN")}
TORQUE_UNITS = {
    "lbFin": "lbFin",
    "lbFft": "lbf·ft",
    "ozFin": "ozFin",
    "kgFm": "kgf·m",
    "kgFcm": "kgFcm",
    "kgFmm": "kgf·mm",
    "gFcm": "gf·cm",
    "Nm": "Nm",
    "Ncm": "Ncm",
    "Nmm": "N·mm",
}
_UNITS = {"force": FORCE_UNITS, "torque": TORQUE_UNITS}

#: Reading commands; the torque-only ones need ``quantity = "torque"``.
ReadCommand = Literal["?", "?C", "?PT", "?PC", "?A", "?ET", "?CW", "?CCW", "?P1"]
_TORQUE_ONLY = ("?CW", "?CCW", "?P1")

_TERMINATORS = (b"\r\n", b"\r")
_COMMAND_END = b"\r\n"

#: Reply unit token -> the GCL2 command that selects it (Series 5 guide §9.6-9.8 "Units").
UNIT_COMMANDS: dict[str, str] = {
    "lbF": "LB", "ozF": "OZ", "kgF": "KG", "gF": "G", "N": "N", "mN": "MN", "kN": "KN",
    "lbFft": "LBFT", "lbFin": "LBIN", "ozFin": "OZIN", "kgFm": "KGM", "kgFmm": "KGMM",
    "gFcm": "GCM", "Nm": "NM", "Ncm": "NCM", "Nmm": "NMM",
}  # fmt: skip
_PEAK_COMMANDS = ("?PT", "?PC", "?PCW", "?PCCW")
_READING = re.compile(r"^([-+]?)\s*(\d+\.?\d*|\.\d+)(?:\s*([A-Za-z]+))?$")


# -- codec (pure) ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """A reading line: the value and the unit token as sent (None when numeric only)."""

    value: float
    token: str | None
    text: str


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A GCL2 error reply (``*10`` ...)."""

    code: str
    meaning: str


def parse_line(line: str) -> Reading | ErrorReply | None:
    """Classify one line: a reading, an error reply, or None for anything else."""
    text = line.strip()
    if text.startswith("*"):
        code = text.split()[0]
        if code in ERROR_REPLIES:
            return ErrorReply(code, ERROR_REPLIES[code])
        if re.fullmatch(r"\*\d+", code):
            return ErrorReply(code, "an error the manual does not list")
        return None
    m = _READING.match(text)
    if m is None:
        return None
    sign, digits, token = m.groups()
    value = float(digits)
    return Reading(-value if sign == "-" else value, token, text)


def resolve_unit(token: str | None, quantity: str, default: str | None) -> str:
    """The unit of a reading, spelled for daq/units.py, checked against ``quantity``.

    Raises UnitError for a unit of the other quantity, ProtocolError for an unknown token or a
    numeric-only reading with no configured unit.
    """
    if token is None:
        if default is None:
            raise ProtocolError(
                "the gauge sends numbers without a unit (Data format: numeric only / NUM):"
                " set options.unit to the gauge's unit, or set the gauge to FULL"
            )
        return default
    own = _UNITS[quantity]
    other_q = "torque" if quantity == "force" else "force"
    for table, q in ((own, quantity), (_UNITS[other_q], other_q)):
        unit = table.get(token)
        if unit is None:
            folded = {k.casefold(): v for k, v in table.items()}
            unit = folded.get(token.casefold())
        if unit is None:
            continue
        if q != quantity:
            raise UnitError(
                f"a {quantity} gauge sent a reading in '{token}', which is a {q} unit:"
                f" check the instrument (or options.quantity)"
            )
        return unit
    raise ProtocolError(f"unknown unit '{token}' in a reading (a Mark-10 {quantity} unit?)")


# -- options ---------------------------------------------------------------------------------------


class Mark10Options(GaugeOptions):
    """Options under ``[instrument.options]`` for a Mark-10 gauge (see GaugeOptions too)."""

    #: What a poll asks for: ``?C`` current, ``?`` displayed, ``?PT``/``?PC`` peak...
    command: ReadCommand = "?C"
    #: The gauge's unit when it sends numbers only (NUM); ignored while it sends units.
    unit: str | None = None
    #: Readings per second the gauge streams in push mode (AOUTn).
    aout_rate: Annotated[int, Field(ge=1, le=250)] = 50
    #: Switch the gauge to this unit at connect (GCL2 unit command, e.g. "N" sends ``N``,
    #: "lbF" sends ``LB``, "Nm" sends ``NM``). Leave out to read whatever unit it is set to.
    set_unit: str | None = None
    #: Send ``Z`` (zero and clear peaks) at connect.
    zero_on_connect: bool = False
    #: After reading a peak (``?PT``, ``?PC``, ``?PCW``, ``?PCCW``) in poll mode, send ``CLR`` so
    #: that the next part's peak starts from nothing.
    clear_after_peak: bool = True

    @model_validator(mode="after")
    def _check_mark10(self) -> Mark10Options:
        if self.command in _TORQUE_ONLY and self.quantity != "torque":
            raise ValueError(f"command {self.command} is for torque gauges (quantity = 'torque')")
        if self.unit is not None:
            try:
                convert(1.0, self.unit, self.quantity)
            except UnitError as exc:
                raise ValueError(f"unit: {exc}") from exc
        if self.set_unit is not None:
            command = UNIT_COMMANDS.get(self.set_unit)
            if command is None:
                raise ValueError(
                    f"set_unit: {self.set_unit!r} is not a Mark-10 unit (one of"
                    f" {', '.join(UNIT_COMMANDS)})"
                )
            try:
                convert(1.0, self.set_unit, self.quantity)
            except UnitError as exc:
                raise ValueError(f"set_unit: {exc}") from exc
        return self

    def serial_settings(self) -> SerialSettings:
        return SerialSettings(self.baudrate, self.bytesize, self.parity, self.stopbits)


#: 115200 8N1 (Opentrons and the Series 5 README); idealab's gauges ran at 9600.
DEFAULT_SERIAL = SerialSettings(115200, 8, "N", 1.0)


# -- driver ----------------------------------------------------------------------------------------


class Mark10:
    """A Mark-10 gauge, polled or streaming. The constructor does no I/O."""

    def __init__(
        self,
        settings: InstrumentSettings,
        options: Mark10Options,
        link: LineLink | None = None,
    ) -> None:
        self.name = settings.name
        self.mode: Mode = options.mode
        self.settings = settings
        self.options = options
        self.link: LineLink = link or open_line_link(
            settings.address,
            settings=options.serial_settings(),
            defaults=DEFAULT_SERIAL,
            timeout=settings.timeout,
        )
        self._unit: str | None = None  # the unit of the last reading, for unit_changed
        self._last_reply: str | None = None
        self._session = ForceTestSession(self.name, options)
        self._capacity = options.capacity
        self._streaming = False
        self._last_line: tuple[float, str] | None = None
        #: Lines that were neither readings nor replies, duplicates, and unasked error replies.
        self.ignored_lines = 0
        self.duplicates = 0
        #: Reading lines taken from the stream in push mode (duplicates included).
        self.stream_readings = 0
        self._garbage_seen = 0  # the link's garbage count when last looked at
        self._noisy = False  # line noise is arriving: reported once per burst

    # -- connect / close -----------------------------------------------------------------------
    def connect(self) -> None:
        """Open the port and prove a Mark-10 of the right quantity answers (or streams)."""
        self.link.open()
        # Setup commands answer nothing when they succeed (GCL2 lists only error replies); an
        # error reply (*10, *11...) shows up as an unasked line and is reported then.
        if self.options.set_unit is not None:
            self.link.write_line(UNIT_COMMANDS[self.options.set_unit], _COMMAND_END)
        if self.options.zero_on_connect:
            self.link.write_line("Z", _COMMAND_END)
        # self._unit is kept: a unit switched at the front panel while the link was down is
        # still a change to flag on the first reading after the reconnect.
        self._last_reply = None
        self._last_line = None
        self._session = ForceTestSession(self.name, self.options)
        try:
            if self.mode == "poll":
                # The identifying read is not recorded: after a reconnect it must not use up a
                # unit change made while the link was down (the first poll flags it).
                unit_before = self._unit
                self._read_once()
                if unit_before is not None:
                    self._unit = unit_before
            else:
                self._start_stream()
        except BaseException:
            self.link.close()
            raise

    def close(self) -> None:
        if self._streaming:
            self._streaming = False
            with contextlib.suppress(HallmarkError):
                self.link.write_line("AOUT0", _COMMAND_END)
        self.link.close()

    # -- polled ------------------------------------------------------------------------------
    def poll(self) -> list[Sample]:
        if self.mode != "poll":
            raise InstrumentError(f"{self.name} records tests from its stream (mode = push)")
        return [self._read_once()]

    def _read_once(self) -> Sample:
        self._check_unasked(self.link.discard_input(_TERMINATORS))
        command = self.options.command
        self.link.write_line(command, _COMMAND_END)
        reading = self._reply(command)
        self._report_noise()
        if command in _PEAK_COMMANDS and self.options.clear_after_peak:
            self.link.write_line("CLR", _COMMAND_END)
        unit = resolve_unit(reading.token, self.options.quantity, self.options.unit)
        flags: list[str] = []
        if self._unit is not None and unit != self._unit:
            flags.append(f"unit_changed:{self._unit}->{unit}")
            log.info("%s: unit changed on the gauge from %s to %s", self.name, self._unit, unit)
        self._unit = unit
        if self._over_capacity(reading.value, unit):
            flags.append("overload")
        self._last_reply = reading.text
        return Sample(
            instrument=self.name,
            measurement=self.options.measurement_name,
            channel=self.options.channel_name,
            quantity=self.options.quantity,
            value=reading.value,
            unit=unit,
            time_ns=time.time_ns(),
            raw=reading.text,
            flags=tuple(flags),
        )

    def _over_capacity(self, value: float, unit: str) -> bool:
        if self._capacity is None:
            return False
        return abs(value) >= parse_level(self._capacity).to(unit, self.options.quantity)

    def _reply(self, command: str) -> Reading:
        deadline = time.monotonic() + self.settings.timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.link.read_line(max(left, 0.0), _TERMINATORS)
            except InstrumentTimeout as exc:
                raise InstrumentTimeout(
                    f"{self.name}: no reply to {command!r} within {self.settings.timeout:g} s"
                    f" ({exc})"
                ) from exc
            parsed = parse_line(line)
            if isinstance(parsed, ErrorReply):
                raise InstrumentError(
                    f"{self.name}: the gauge answered {parsed.code} ({parsed.meaning})"
                    f" to {command!r}"
                )
            if isinstance(parsed, Reading):
                return parsed
            self.ignored_lines += 1
            log.debug("%s: ignored %r while waiting for the reply to %r", self.name, line, command)

    def _report_noise(self) -> None:
        """Log line noise (bytes the link threw away) once when a burst of it begins.

        The readings still parse once the noise is removed, so nothing else would tell the
        technician that the cable, the baud rate or the grounding is wrong.
        """
        count = self.link.garbage
        new = count - self._garbage_seen if count >= self._garbage_seen else count
        self._garbage_seen = count
        if new > 0 and not self._noisy:
            log.warning(
                "%s: %d byte(s) of line noise thrown away (not text): check the cable, the"
                " baud rate and the grounding",
                self.name,
                new,
            )
        self._noisy = new > 0

    def _check_unasked(self, lines: list[str]) -> None:
        readings = [r for r in map(parse_line, lines) if isinstance(r, Reading)]
        self.ignored_lines += len(lines) - len(readings)
        if not readings:
            return
        if all(r.text == self._last_reply for r in readings):
            self.duplicates += len(readings)
            log.debug("%s: dropped %d duplicated line(s)", self.name, len(readings))
            return
        with contextlib.suppress(InstrumentTimeout):
            self.link.write_line("AOUT0", _COMMAND_END)
            self.link.read_lines(0.1, _TERMINATORS)
            self.link.discard_input(_TERMINATORS)
        raise ProtocolError(
            f"{self.name}: the gauge sent {len(readings)} reading(s) unasked (AOUT on?), which"
            " cannot be told from replies; this poll is void. Sent AOUT0 to stop them;"
            " to record tests from the stream use mode = 'push'"
        )

    # -- pushed ------------------------------------------------------------------------------
    def _start_stream(self) -> None:
        command = f"AOUT{self.options.aout_rate}"
        self.link.write_line(command, _COMMAND_END)
        self._streaming = True
        deadline = time.monotonic() + self.settings.timeout + 2.0 / self.options.aout_rate
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.link.read_line(max(left, 0.0), _TERMINATORS)
            except InstrumentTimeout as exc:
                raise InstrumentTimeout(
                    f"{self.name}: no readings came after {command!r} ({exc})"
                ) from exc
            parsed = parse_line(line)
            if isinstance(parsed, ErrorReply):
                raise InstrumentError(
                    f"{self.name}: the gauge answered {parsed.code} ({parsed.meaning})"
                    f" to {command!r}: choose an aout_rate this gauge offers"
                )
            if isinstance(parsed, Reading):
                self._stream_reading(time.monotonic(), parsed)
                return
            self.ignored_lines += 1

    def receive(self, timeout: float) -> list[Sample]:
        """Results of tests that ended within ``timeout`` s; [] when none did."""
        if self.mode != "push":
            raise InstrumentError(f"{self.name} is polled (mode = poll); it does not push")
        samples: list[Sample] = []
        problem: HallmarkError | None = None
        for t, line in self.link.read_lines(timeout, _TERMINATORS):
            parsed = parse_line(line)
            if isinstance(parsed, Reading):
                try:
                    samples += self._stream_reading(t, parsed)
                except (UnitError, ProtocolError) as exc:
                    problem = problem or exc
            elif isinstance(parsed, ErrorReply):
                self.ignored_lines += 1
                log.warning(
                    "%s: the gauge sent %s (%s) unasked", self.name, parsed.code, parsed.meaning
                )
            else:
                self.ignored_lines += 1
                log.debug("%s: ignored %r in the stream", self.name, line)
        samples += self._session.expire(time.monotonic(), time.time_ns())
        self._report_noise()
        if problem is not None:
            if not samples:
                raise problem
            log.warning("%s: %s", self.name, problem)
        return samples

    def _stream_reading(self, t: float, reading: Reading) -> list[Sample]:
        self.stream_readings += 1
        last = self._last_line
        period = 1.0 / self.options.aout_rate
        if last is not None and reading.text == last[1] and t - last[0] < 0.5 * period:
            self.duplicates += 1
            return []
        self._last_line = (t, reading.text)
        unit = resolve_unit(reading.token, self.options.quantity, self.options.unit)
        if self._unit is not None and unit != self._unit:
            log.info("%s: unit changed on the gauge from %s to %s", self.name, self._unit, unit)
        self._unit = unit
        return self._session.feed(t, reading.value, unit, reading.text, time.time_ns())


def build(settings: InstrumentSettings, options: Mark10Options) -> Mark10:
    """Build a Mark-10 driver (no I/O)."""
    return Mark10(settings, options)
