"""SCPI data-acquisition units scanning a chamber's thermocouples and humidity transmitters.

Instruments: Keysight (Agilent, HP) 34970A/34972A and DAQ970A/DAQ973A with a multiplexer card
(channels ``sccc``: slot 1–3, channel 01–99, e.g. 101), over a raw socket
(``TCPIP::HOST::5025::SOCKET``), VXI-11 (``TCPIP::HOST::INSTR``) or RS-232
(``ASRL/dev/ttyUSB0::INSTR``); see drivers/transport/visa.py. In a salt-spray cabinet an
independent thermocouple in the exposure zone is what ASTM B117 / ISO 9227 hold to 35 ± 2 °C
(domain notes §3.1): name that channel ``temperature`` so that Hallmark's exposure validity
uses it.

Sources (third-party manual mirrors and public code, found with the search tool):

- HP 34970A User's Guide ch. 4, "To Build a Scan List From the Remote Interface"
  (office.manualsonline.com, hp_34970a p. 78): ``MEASure?``, ``CONFigure`` and ``ROUTe:SCAN``
  take a scan list and each redefines it; ``READ?`` starts a scan and returns the readings.
  Ch. 5, "Scanning Commands" (p. 228): ``ROUT:SCAN (@101:103)``.
- ``CONF:TEMP TC,<type>,(@list)``: a public script for a Keysight 34972A
  (gist lrodorigo/cdfad0ef9e7c20568e0914c27f3f3cbd: ``CONF:TEMP TC,J,(@101,102,103)``) and
  pstl-tools ``MEAS:TEMP? TC,K,(@...)``; types B, E, J, K, N, R, S, T.
- 34970A/34972A User's Guide, "Reading Format" (p. 104 of the 2010 edition, p. 118 of
  Keysight's; DAQ970A Programming Guide p. 139): ``FORMat:READing:CHANnel ON`` adds the
  channel number to each reading, ``FORMat:READing:UNIT`` the unit; "The MEASure? and
  CONFigure commands automatically turn off the units, time, channel, and alarm
  information", and so does ``*RST``. Hence FORM:READ:CHAN ON is sent after the CONF commands,
  and with only the channel on a reading is ``<value>,<channel>``.
- Mx+B scaling: 34972A User's Guide p. 138 (``CALC:SCALE:GAIN 1.2,(@101)``,
  ``CALC:SCALE:OFFSET 10,(@101)``, ``CALC:SCALE:UNIT 'PSI',(@101)``,
  ``CALC:SCALE:STATE ON,(@101)``); DAQ970A Programming Guide p. 76: scaled = gain ×
  measurement + offset, and changing a channel's configuration or temperature unit turns
  scaling off, so scaling is sent last. HP 34970A User's Guide ch. 5 p. 245: the label is at
  most three characters, the first a letter or ``#``, so ``"%RH"`` would be refused: the
  label defaults to ``RH`` (it never reaches us: FORM:READ:UNIT OFF).
- Overload ``+9.9E+37``: 34980A help, "TEMPerature:TRANsducer:TCouple:RJUNction:EXTernal?"
  (measurements "will be returned as 9.9E+37"); Keysight 53230A Programmer's Reference p. 46
  (out-of-range results "replaced with -9.9E+37 ... or +9.9E+37"); 34970A User's Guide ch. 5
  p. 280: an overload sets the Questionable Data register, "no error message is recorded in
  the instrument's error queue", so it shows only in the reading.
- ``SYST:ERR?`` answers ``<code>,"<message>"``, oldest first, until ``+0,"No error"``
  (Agilent E1411B manual p. 90).

On connect: ``*IDN?`` (kept in ``identity``), ``*RST`` (option ``reset``), ``*CLS``,
``CONF:TEMP TC,<type>,(@...)`` per thermocouple type, ``CONF:VOLT:DC (@...)`` for humidity
channels, ``UNIT:TEMP C,(@...)``, the four scaling commands per humidity channel,
``FORM:READ:CHAN ON``, ``FORM:READ:UNIT OFF``, ``ROUT:SCAN (@all)``, then the error queue is
read and any error fails the connect, listed. Channel lists are written with commas, in
ascending order: ``(@101,102,103)``.

Per poll: ``READ?`` → ``<value>,<channel>,<value>,<channel>,...``
(``+2.35120000E+01,101,+4.51000000E+01,103``). Every configured channel must come back
exactly once and no other (``ProtocolError`` otherwise).

Broken sensor (overload on a channel): the choice made here is to record nothing for that
channel and raise nothing, so the other channels keep streaming; the channel's name is in
``sensor_break`` until it reads again, and a warning is logged when it breaks (and a note when
it recovers). When every channel is overloaded the poll raises ``InstrumentError``: that is a
disconnected card or terminal block, not one sensor.

Quantities: thermocouple → ``temperature`` in ``°C`` (``UNIT:TEMP C``); humidity → a DC voltage
scaled by the instrument to ``%RH``. Other channel kinds are not offered: nothing downstream
has a quantity for a bare voltage.

Quirk: ``READ?`` answers only when the whole scan is done, so the instrument's ``timeout`` must
cover a full scan of every channel (more channels, longer integration: a longer timeout).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daq.errors import InstrumentError, ProtocolError
from daq.instrument import InstrumentSettings, Mode
from daq.model import Sample
from drivers.transport.visa import DEFAULT_BACKEND, VisaAddress, VisaLink
from drivers.transport.visa import check_address as check_visa_address

__all__ = [
    "OVERLOAD",
    "ScanChannel",
    "ScanReading",
    "ScpiScanner",
    "ScpiScannerOptions",
    "build",
    "channel_list",
    "check_address",
    "parse_scan",
    "setup_commands",
]

log = logging.getLogger(__name__)

#: Readings at or beyond this magnitude are the instrument's overload mark (+9.9E+37).
OVERLOAD = 9.9e37

TcType = Literal["B", "E", "J", "K", "N", "R", "S", "T"]
Kind = Literal["thermocouple", "humidity"]

#: What each channel kind records, as (quantity, unit).
_QUANTITY: dict[str, tuple[str, str]] = {
    "thermocouple": ("temperature", "°C"),
    "humidity": ("humidity", "%RH"),
}

#: An SCPI decimal number (NR1, NR2 or NR3).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,4})?")
#: A channel number as FORM:READ:CHAN ON writes it (``101``), sign tolerated.
_CHANNEL = re.compile(r"\+?\d{1,6}")
#: A 34970A scaling label: up to three characters, a letter or ``#`` first.
_LABEL = re.compile(r"[A-Za-z#][A-Za-z0-9_]{0,2}")


class ScanChannel(BaseModel):
    """One multiplexer channel in the scan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Channel number ``sccc``: slot 1–3 and channel 01–99 (101 … 399).
    channel: Annotated[int, Field(ge=101, le=399)]
    #: The channel (feature) name recorded; ``temperature`` for the exposure zone.
    name: Annotated[str, Field(min_length=1)]
    kind: Kind = "thermocouple"
    #: Thermocouple type (thermocouple channels only).
    tc_type: TcType = "K"
    #: Humidity channels: %RH per volt (the transmitter's span), set with CALC:SCAL:GAIN.
    gain: Annotated[float, Field(allow_inf_nan=False)] = 1.0
    #: Humidity channels: %RH at 0 V, set with CALC:SCAL:OFFS.
    offset: Annotated[float, Field(allow_inf_nan=False)] = 0.0

    @model_validator(mode="after")
    def _check(self) -> ScanChannel:
        if self.channel % 100 == 0:
            raise ValueError(f"channel {self.channel}: channels are numbered s01 to s99")
        if self.kind == "thermocouple" and (self.gain != 1.0 or self.offset != 0.0):
            raise ValueError(
                f"channel {self.channel}: gain and offset apply to humidity channels only"
            )
        if self.kind == "humidity" and self.gain == 0.0:
            raise ValueError(f"channel {self.channel}: a gain of 0 would read 0 %RH always")
        return self


class ScpiScannerOptions(BaseModel):
    """Options under ``[instrument.options]`` for a SCPI scanner."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: Annotated[list[ScanChannel], Field(min_length=1)]
    #: The measurement the points are written under (docs/schema.md).
    measurement: str = "chamber"
    #: Send ``*RST`` first (a known state: no alarms, no time stamps, no leftover scaling).
    reset: bool = True
    #: The label CALC:SCAL:UNIT gives humidity channels (34970A: 3 characters, letter first).
    humidity_label: str = "RH"
    #: The pyvisa backend: ``@py`` (pyvisa-py), ``@ivi``, or ``devices.yaml@sim`` in tests.
    backend: str = DEFAULT_BACKEND

    @model_validator(mode="after")
    def _check(self) -> ScpiScannerOptions:
        numbers = [c.channel for c in self.channels]
        dupes = sorted({n for n in numbers if numbers.count(n) > 1})
        if dupes:
            raise ValueError(f"channels: channel numbers used twice: {dupes}")
        names = [c.name for c in self.channels]
        dup_names = sorted({n for n in names if names.count(n) > 1})
        if dup_names:
            raise ValueError(f"channels: names used twice: {', '.join(dup_names)}")
        if _LABEL.fullmatch(self.humidity_label) is None:
            raise ValueError(
                "humidity_label: up to 3 letters, digits or _, starting with a letter or #"
            )
        return self


@dataclass(frozen=True, slots=True)
class ScanReading:
    """One ``value,channel`` pair of a scan; ``value`` is None for an overload."""

    channel: int
    value: float | None
    raw: str


def channel_list(channels: Sequence[int]) -> str:
    """``[103, 101]`` → ``(@101,103)``."""
    return "(@" + ",".join(str(c) for c in sorted(channels)) + ")"


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def setup_commands(options: ScpiScannerOptions) -> list[str]:
    """The commands that configure the scan, in order (without the final error check)."""
    commands: list[str] = []
    if options.reset:
        commands.append("*RST")
    commands.append("*CLS")
    tcs = [c for c in options.channels if c.kind == "thermocouple"]
    hums = [c for c in options.channels if c.kind == "humidity"]
    for tc_type in sorted({c.tc_type for c in tcs}):
        group = [c.channel for c in tcs if c.tc_type == tc_type]
        commands.append(f"CONF:TEMP TC,{tc_type},{channel_list(group)}")
    if hums:
        commands.append(f"CONF:VOLT:DC {channel_list([c.channel for c in hums])}")
    if tcs:
        commands.append(f"UNIT:TEMP C,{channel_list([c.channel for c in tcs])}")
    for c in sorted(hums, key=lambda c: c.channel):
        where = channel_list([c.channel])
        commands += [
            f"CALC:SCAL:GAIN {_fmt(c.gain)},{where}",
            f"CALC:SCAL:OFFS {_fmt(c.offset)},{where}",
            f'CALC:SCAL:UNIT "{options.humidity_label}",{where}',
            f"CALC:SCAL:STAT ON,{where}",
        ]
    commands += [
        "FORM:READ:CHAN ON",
        "FORM:READ:UNIT OFF",
        f"ROUT:SCAN {channel_list([c.channel for c in options.channels])}",
    ]
    return commands


def parse_scan(reply: str, expected: Sequence[int]) -> list[ScanReading]:
    """Parse a ``READ?`` reply with channel numbers on (``value,channel,...``).

    Returns one reading per expected channel, in scan order. Raises ProtocolError when the
    reply is not value/channel pairs, or a channel is missing, repeated or not in the scan.
    """
    fields = [f.strip() for f in reply.split(",")]
    if len(fields) % 2:
        raise ProtocolError(
            f"READ? answered {len(fields)} fields, not value,channel pairs: {reply[:80]!r}"
        )
    wanted = set(expected)
    readings: list[ScanReading] = []
    seen: set[int] = set()
    for i in range(0, len(fields), 2):
        value_text, channel_text = fields[i], fields[i + 1]
        if _CHANNEL.fullmatch(channel_text) is None:
            raise ProtocolError(
                f"READ? field {i + 2} is {channel_text[:20]!r}, not a channel number:"
                f" {reply[:80]!r}"
            )
        channel = int(channel_text)
        if channel not in wanted:
            raise ProtocolError(f"READ? returned channel {channel}, which is not in the scan")
        if channel in seen:
            raise ProtocolError(f"READ? returned channel {channel} twice")
        seen.add(channel)
        if _NUMBER.fullmatch(value_text) is None:
            raise ProtocolError(
                f"READ? value for channel {channel} is {value_text[:20]!r}, not a number"
            )
        number = float(value_text)
        value = number if math.isfinite(number) and abs(number) < OVERLOAD else None
        readings.append(ScanReading(channel, value, f"{value_text},{channel_text}"))
    missing = sorted(wanted - seen)
    if missing:
        raise ProtocolError(
            f"READ? did not return channel(s) {', '.join(map(str, missing))}"
            " (is the scan list set? ROUT:SCAN)"
        )
    return readings


class ScpiScanner:
    """A 34970A/DAQ970A-style scanner, polled with READ?. The constructor does no I/O."""

    mode: Mode = "poll"

    def __init__(
        self,
        settings: InstrumentSettings,
        options: ScpiScannerOptions,
        link: VisaLink | None = None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.options = options
        self.link = link or VisaLink(
            settings.address, backend=options.backend, timeout=settings.timeout, name=self.name
        )
        #: The ``*IDN?`` reply of the connected unit.
        self.identity = ""
        #: Names of the channels whose last scan read an overload (open thermocouple).
        self.sensor_break: tuple[str, ...] = ()
        self._by_number = {c.channel: c for c in options.channels}
        self._scan = [c.channel for c in sorted(options.channels, key=lambda c: c.channel)]

    def connect(self) -> None:
        self.link.open()
        try:
            self.identity = self.link.query("*IDN?")
            for command in setup_commands(self.options):
                self.link.write(command)
            self.link.check_errors("configuring the scan")
        except BaseException:
            self.link.close()
            raise
        self.sensor_break = ()

    def poll(self) -> list[Sample]:
        reply = self.link.query("READ?")
        now = time.time_ns()
        readings = parse_scan(reply, self._scan)
        broken = tuple(self._by_number[r.channel].name for r in readings if r.value is None)
        self._report_breaks(broken)
        if len(broken) == len(readings):
            raise InstrumentError(
                f"{self.name}: every channel reads overload ({', '.join(broken)}): is the"
                " terminal block or multiplexer card connected? (sensor break or open"
                " thermocouple?)"
            )
        samples: list[Sample] = []
        for r in readings:
            if r.value is None:
                continue
            ch = self._by_number[r.channel]
            quantity, unit = _QUANTITY[ch.kind]
            samples.append(
                Sample(
                    instrument=self.name,
                    measurement=self.options.measurement,
                    channel=ch.name,
                    quantity=quantity,
                    value=r.value,
                    unit=unit,
                    time_ns=now,
                    raw=r.raw,
                )
            )
        return samples

    def _report_breaks(self, broken: tuple[str, ...]) -> None:
        for name in broken:
            if name not in self.sensor_break:
                log.warning(
                    "%s: channel %s reads overload (+9.9E+37): sensor break or open"
                    " thermocouple? Not recorded until it reads again",
                    self.name,
                    name,
                )
        for name in self.sensor_break:
            if name not in broken:
                log.info("%s: channel %s reads again", self.name, name)
        self.sensor_break = broken

    def receive(self, timeout: float) -> list[Sample]:
        raise InstrumentError(f"{self.name} is polled; it does not push results")

    def close(self) -> None:
        self.link.close()


def check_address(address: str) -> VisaAddress:
    """Check a scanner address (a VISA resource string). Raises ValueError."""
    return check_visa_address(address)


def build(settings: InstrumentSettings, options: ScpiScannerOptions) -> ScpiScanner:
    """Build a scanner driver (no I/O)."""
    return ScpiScanner(settings, options)
