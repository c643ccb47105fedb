"""Watlow F4T chamber controller over SCPI (TCP socket), for salt-spray and humidity chambers.

Instruments: Watlow F4T (also inside TestEquity and ESPEC chambers) with its SCPI port on the
network, address ``TCPIP::HOST::5025::SOCKET`` (port 5025 is the default of ESPEC's library,
``EspecNorthAmerica/WatlowF4T-SCPI-Lib`` → ``f4tscpi/f4t_class.py``). The same controller over
Modbus is drivers/modbus_controller.py with the ``watlow_f4t`` map.

Protocol (same library, ``f4tscpi/f4t_interface.py``; domain notes §2.3): commands are ASCII
lines ending in LF, each query answered by one line:

- ``*IDN?`` → an identity line; it must name Watlow or F4T (``check_identity = false`` skips
  the check, for an OEM firmware that answers otherwise).
- ``:UNIT:TEMPERATURE?`` → ``C`` or ``F`` (the library's ``TempUnits`` enum).
- ``:SOURCE:CLOOP{n}:PVALUE?`` → the process value of control loop n as a number
  (``35.2``); ``:SOURCE:CLOOP{n}:SPOINT?`` → its set point. ESPEC's chambers use loop 1 for
  temperature and loop 2 for humidity.

Per poll the driver reads the temperature unit (when a temperature loop is configured), then
each loop's process value and set point. A unit switched at the front panel between polls is
reported in the new unit (the core converts it) and flagged ``unit_changed:°C->°F``, as the
Modbus driver does. Humidity loops are in ``%RH``.

Sensor break (domain notes §6.4: "PV pinned at a range limit"): a process value that is not a
number, NaN, pinned at ±9999 or outside ``plausible`` (in the controller's unit) fails the
poll with an error that asks "sensor break or open thermocouple?"; such a value is never
recorded. A process value whose reply text does not change for ``stuck_after_s`` seconds is
flagged ``stuck``; set points never are. ``raw`` keeps the reply text.

Quirks: none of the replies carries a unit; the unit comes from ``:UNIT:TEMPERATURE?`` only,
so it is read every poll rather than once.
"""

from __future__ import annotations

import math
import re
import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daq.errors import InstrumentError, ProtocolError
from daq.instrument import InstrumentSettings, Mode
from daq.model import Sample
from drivers.transport.visa import DEFAULT_BACKEND, VisaAddress, VisaLink
from drivers.transport.visa import check_address as check_visa_address

__all__ = [
    "F4TScpi",
    "F4TScpiOptions",
    "LoopOption",
    "build",
    "check_address",
    "parse_number",
    "parse_unit",
    "pv_command",
    "sp_command",
]

Quantity = Literal["temperature", "humidity"]

#: What ``:UNIT:TEMPERATURE?`` may answer, mapped to Hallmark's units.
_UNITS = {"C": "°C", "CEL": "°C", "CELSIUS": "°C", "F": "°F", "FAR": "°F", "FAHRENHEIT": "°F"}

#: An SCPI decimal number (NR1, NR2 or NR3): ``35``, ``-3.5``, ``+3.5E+01``.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

#: Watlow controllers show a broken input as a value pinned at this magnitude.
_PINNED = 9999.0

_SENSOR_BREAK = "sensor break or open thermocouple?"


class LoopOption(BaseModel):
    """One control loop to read: its process value as ``channel``, its set point too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The loop number n in ``:SOURCE:CLOOP{n}:...`` (1 = temperature, 2 = humidity on ESPEC).
    loop: Annotated[int, Field(ge=1, le=16)]
    #: The channel (feature) name the process value is recorded as.
    channel: Annotated[str, Field(min_length=1)]
    quantity: Quantity = "temperature"
    #: Whether to read and record the loop's set point.
    read_setpoint: bool = True
    #: The set point's channel name; ``<channel>_setpoint`` when not given.
    setpoint: Annotated[str, Field(min_length=1)] | None = None

    @property
    def setpoint_channel(self) -> str:
        return self.setpoint or f"{self.channel}_setpoint"


def _default_loops() -> list[LoopOption]:
    return [LoopOption(loop=1, channel="temperature", setpoint="setpoint")]


class F4TScpiOptions(BaseModel):
    """Options under ``[instrument.options]`` for an F4T over SCPI."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Loops to read; by default loop 1 as ``temperature`` with its set point as ``setpoint``.
    loops: Annotated[list[LoopOption], Field(min_length=1)] = Field(default_factory=_default_loops)
    #: The measurement the points are written under (docs/schema.md).
    measurement: str = "chamber"
    #: Refuse an instrument whose ``*IDN?`` names neither Watlow nor F4T.
    check_identity: bool = True
    #: Process values outside this range (in the controller's unit) are a sensor fault.
    plausible: tuple[float, float] = (-100.0, 400.0)
    #: Flag a process value ``stuck`` when its reply is unchanged this long (0 turns it off).
    stuck_after_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 60.0
    #: The pyvisa backend: ``@py`` (pyvisa-py), ``@ivi``, or ``devices.yaml@sim`` in tests.
    backend: str = DEFAULT_BACKEND

    @model_validator(mode="after")
    def _check(self) -> F4TScpiOptions:
        low, high = self.plausible
        if not low < high:
            raise ValueError(f"plausible: the low end {low} must be below the high end {high}")
        names = [lp.channel for lp in self.loops]
        names += [lp.setpoint_channel for lp in self.loops if lp.read_setpoint]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"loops: channel names used twice: {', '.join(dupes)}")
        loops = [lp.loop for lp in self.loops]
        if len(set(loops)) != len(loops):
            raise ValueError("loops: a loop number is listed twice")
        return self


def pv_command(loop: int) -> str:
    """The query for loop n's process value."""
    return f":SOURCE:CLOOP{loop}:PVALUE?"


def sp_command(loop: int) -> str:
    """The query for loop n's set point."""
    return f":SOURCE:CLOOP{loop}:SPOINT?"


def parse_unit(reply: str) -> str:
    """``C`` → ``°C``, ``F`` → ``°F``. Raises ProtocolError for anything else."""
    key = reply.strip().strip("\"'").upper()
    unit = _UNITS.get(key)
    if unit is None:
        raise ProtocolError(f":UNIT:TEMPERATURE? answered {reply[:40]!r}, expected C or F")
    return unit


def parse_number(
    reply: str, command: str, plausible: tuple[float, float], *, sensor: bool = True
) -> float:
    """A numeric reply as a float, refused when it cannot be a reading.

    Not a number → ProtocolError; NaN, pinned at ±9999 or outside ``plausible`` →
    InstrumentError. For a process value (``sensor``) both say "sensor break or open
    thermocouple?".
    """
    text = reply.strip()
    hint = f" ({_SENSOR_BREAK})" if sensor else ""
    if text.lower().lstrip("+-") == "nan":
        raise InstrumentError(f"{command} answered {text!r}: not a number{hint}")
    if _NUMBER.fullmatch(text) is None:
        raise ProtocolError(f"{command} answered {text[:40]!r}, which is not a number{hint}")
    value = float(text)
    if math.isnan(value) or math.isinf(value) or abs(value) >= _PINNED:
        raise InstrumentError(f"{command} answered {text}: pinned at the range limit{hint}")
    low, high = plausible
    if not low <= value <= high:
        raise InstrumentError(
            f"{command} answered {text}, outside the plausible range [{low:g}, {high:g}]{hint}"
        )
    return value


class F4TScpi:
    """A Watlow F4T polled over SCPI. The constructor does no I/O."""

    mode: Mode = "poll"

    def __init__(
        self, settings: InstrumentSettings, options: F4TScpiOptions, link: VisaLink | None = None
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.options = options
        self.link = link or VisaLink(
            settings.address, backend=options.backend, timeout=settings.timeout, name=self.name
        )
        #: The ``*IDN?`` reply of the connected controller.
        self.identity = ""
        self._unit: str | None = None
        # channel -> (reply text last seen, monotonic time it was first seen so)
        self._unchanged_since: dict[str, tuple[str, float]] = {}
        self._needs_unit = any(lp.quantity == "temperature" for lp in options.loops)

    def connect(self) -> None:
        self.link.open()
        try:
            identity = self.link.query("*IDN?")
            if self.options.check_identity and not _names_f4t(identity):
                raise InstrumentError(
                    f"{self.name} at {self.settings.address} is not a Watlow F4T: *IDN?"
                    f" answered {identity[:80]!r} (set check_identity = false if this"
                    " controller answers so)"
                )
            self.identity = identity
            if self._needs_unit:
                self._unit = parse_unit(self.link.query(":UNIT:TEMPERATURE?"))
        except BaseException:
            self.link.close()
            raise

    def poll(self) -> list[Sample]:
        flags: list[str] = []
        unit: str | None = None
        if self._needs_unit:
            unit = parse_unit(self.link.query(":UNIT:TEMPERATURE?"))
            if self._unit is not None and unit != self._unit:
                flags.append(f"unit_changed:{self._unit}->{unit}")
            self._unit = unit
        replies: list[tuple[LoopOption, str, str | None]] = []
        for lp in self.options.loops:
            pv = self.link.query(pv_command(lp.loop))
            sp = self.link.query(sp_command(lp.loop)) if lp.read_setpoint else None
            replies.append((lp, pv, sp))
        now = time.time_ns()
        plausible = self.options.plausible
        samples: list[Sample] = []
        for lp, pv, sp in replies:
            loop_unit = unit if lp.quantity == "temperature" else "%RH"
            assert loop_unit is not None
            loop_flags = flags if lp.quantity == "temperature" else []
            value = parse_number(pv, pv_command(lp.loop), plausible)
            pv_flags = [*loop_flags, "stuck"] if self._is_stuck(lp.channel, pv) else loop_flags
            samples.append(
                self._sample(
                    lp.channel, lp.quantity, value, loop_unit, now=now, raw=pv, flags=pv_flags
                )
            )
            if sp is not None:
                sp_value = parse_number(sp, sp_command(lp.loop), plausible, sensor=False)
                samples.append(
                    self._sample(
                        lp.setpoint_channel,
                        lp.quantity,
                        sp_value,
                        loop_unit,
                        now=now,
                        raw=sp,
                        flags=loop_flags,
                    )
                )
        return samples

    def _sample(
        self,
        channel: str,
        quantity: str,
        value: float,
        unit: str,
        *,
        now: int,
        raw: str,
        flags: list[str],
    ) -> Sample:
        return Sample(
            instrument=self.name,
            measurement=self.options.measurement,
            channel=channel,
            quantity=quantity,
            value=value,
            unit=unit,
            time_ns=now,
            raw=raw,
            flags=tuple(flags),
        )

    def _is_stuck(self, channel: str, reply: str) -> bool:
        limit = self.options.stuck_after_s
        if not limit:
            return False
        now = time.monotonic()
        last, since = self._unchanged_since.get(channel, ("", now))
        if reply != last:
            since = now
        self._unchanged_since[channel] = (reply, since)
        return now - since >= limit

    def receive(self, timeout: float) -> list[Sample]:
        raise InstrumentError(f"{self.name} is polled; it does not push results")

    def close(self) -> None:
        self.link.close()


def _names_f4t(identity: str) -> bool:
    text = identity.upper()
    return "WATLOW" in text or "F4T" in text


def check_address(address: str) -> VisaAddress:
    """Check an F4T address (a VISA resource string). Raises ValueError."""
    return check_visa_address(address)


def build(settings: InstrumentSettings, options: F4TScpiOptions) -> F4TScpi:
    """Build an F4T SCPI driver (no I/O)."""
    return F4TScpi(settings, options)
