"""Simulated process controllers on one Modbus RTU line, served on a pty pair made by ``socat``.

Instruments (register maps from Hallmark's domain notes, INSTRUMENTS_AND_STANDARDS.md §2.2 and
§2.4; it pairs with ``drivers/maps/`` written from the same notes, and does not import drivers/):

- :class:`EzZonePm`, Watlow EZ-ZONE PM with Modbus RTU enabled (the factory default protocol is
  Standard Bus, not Modbus). Per the ``numat/watlow`` driver: process value at 360 and set point
  at 2160, each an IEEE float in two registers, high word first (ABCD). 362 is the input error
  register (``gregoryleblanc/CsHeater`` AnalogInput.md), an enumeration read as one 16-bit
  register at 362 in ``ornl-epics/watlow`` (``watlowApp/Db/Watlow_PM_Analog_Input.template``,
  record ``InputError``): 61 None, 65 Open, 32 Fail, 127 Shorted, 140 Measurement Error,
  139 Bad Calibration Data, 9 Ambient Error, 141 RTD Error, 246 Not Sourced. So a healthy input
  reads **61, not 0**; 363 is served as 0. Set point 2160 is writable.
- :class:`Eurotherm3200`, per the 3200 manual HA028651 §15.5: PV.IN at 1, TG.SP at 2, MAN.OP 3,
  WRK.OP 4, WRK.SP at 5, RNG.LO 11, RNG.HI 12, as 16-bit scaled integers with ``decimals``
  implied decimal places (values beyond ±327.67 wrap with 2 decimals, as on the real unit), and
  the IEEE float region at 0x8000 + 2 × address (ABCD). TG.SP is writable in both forms; WRK.SP
  follows it at once. Sensor break at 258 (0 good, 1 failed) as on the Eurotherm 2400 (AERCO
  Modbus manual, domain notes §2.4); that the 3200 serves it at the same address is assumed.

Addresses are 0-based PDU addresses (mbpoll's ``-0``). Default line: 9600 baud 8N1 (the 3200's
default; pty pairs do not emulate baud rate). The chamber controller holds 35 °C (ASTM B117 /
ISO 9227 salt spray) and the saturator controller 47 °C (this project's choice), unless set
otherwise.

Process model (domain notes §6.4, "controlled oscillation of ±0.2–0.5 °C around 35 °C"): the
served process value is the device's ``pv`` plus seeded noise, uniform in ±``noise_c`` (default
0.3 °C), drawn anew every :data:`NOISE_PERIOD_S` from ``random.Random(f"{seed}:{id}:{tick}")``:
the same seed gives the same values at the same times whatever the order of reads. ``noise=False``
serves ``pv`` exactly. A door-open dip (below) adds to it.

Line setup: ``socat -d -d pty,raw,echo=0,link=DIR/ttyA pty,raw,echo=0,link=DIR/ttyB`` links two
ptys (socat is started and ended by its PID). A pymodbus ``ModbusSerialServer`` (RTU framer, one
``SimDevice`` per device id) serves ``ttyA``; clients open :attr:`RtuLine.path` (``ttyB``). A
reply to an id not on the line is dropped (pymodbus 3.16 would answer 04), so an absent id gets
silence, as on a real RS-485 line.

Fault kinds, per device id (:meth:`RtuLine.set_fault`, or a scenario ``[[fault]]`` with
``device = N``; ``device = 0`` or left out means every device on the line). Several may be active
at once; :meth:`RtuLine.clear_fault` ends the hand-set ones.

- ``crc_error``: the reply leaves with its last CRC byte inverted (``trace_packet`` hook).
- ``truncated``: only the first half of the reply frame is sent (no CRC), a truncated frame as
  in domain notes §6.4; the client waits for the rest and times out.
- ``exception``: the device answers Modbus exception ``code`` (1, 2, 3, 4, 5, 6, 8, 10 or 11;
  default 4) to every request (action hook).
- ``no_reply``: the request is processed but nothing goes back (``trace_packet`` returns b"").
- ``frozen``: a stuck input: the process value stays at the value it had when the fault began
  (its registers are identical on every read); set points still answer and accept writes.
- ``sensor_break``: EZ-ZONE PM: input error 362 = 65 (Open) and the PV pinned at
  :data:`EZZONE_SENSOR_BREAK_PV` (9999.0, a project choice: the sources do not say what 360
  reads during an input error; domain notes §6.4 say "PV pinned at a range limit", and 9999 is
  the top of the PM's four-digit range settings). Eurotherm 3200: 258 = 1 and PV.IN pinned at
  RNG.HI (default 1372.0 °C, the type K thermocouple span's top: a project choice).
- ``door_open`` (``depth`` °C, default 6; ``recover_s``, default 600): the salt-spray cabinet's
  door is opened at the fault's start: the PV drops by ``depth`` at once and recovers
  exponentially with time constant ``recover_s / 3`` (95 % back after ``recover_s``; domain notes
  §6.4, "a drop of several °C, then recovery over about 10 min"). Only the start matters: the dip
  runs its course after the fault is cleared, as the air warms up whatever the operator does.
- ``reboot`` (scenario only; ``down_s``, default 0): as :meth:`RtuLine.reboot` at ``start``.
- :meth:`RtuLine.reboot`: set points and process values back to the power-on defaults; with
  ``down_s`` the device is silent for that long first, as while it restarts.

:func:`serve` runs a line for ``daq simulate`` until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field
from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

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
    "DEFAULT_DEVICES",
    "DEVICE_KINDS",
    "DOOR_DEPTH_C",
    "DOOR_RECOVER_S",
    "EUROTHERM_FLOAT_BASE",
    "EZZONE_INPUT_ERROR_NONE",
    "EZZONE_INPUT_ERROR_OPEN",
    "EZZONE_SENSOR_BREAK_PV",
    "FAULT_KINDS",
    "NOISE_C",
    "NOISE_PERIOD_S",
    "RTU_VOCABULARY",
    "SIMULATES",
    "Eurotherm3200",
    "EzZonePm",
    "Fault",
    "RtuLine",
    "RtuLineModel",
    "SimController",
    "door_dip",
    "parse_devices",
    "process_noise",
    "running_rtu_line",
    "serve",
]

#: The drivers (drivers/registry.py names) whose instruments this module simulates.
SIMULATES = ("watlow_ezzone_pm", "eurotherm_3200")

#: Eurotherm's IEEE float region: parameter ``a`` is at ``EUROTHERM_FLOAT_BASE + 2 * a``.
EUROTHERM_FLOAT_BASE = 0x8000

#: EZ-ZONE input error enumeration (ornl-epics/watlow Watlow_PM_Analog_Input.template).
EZZONE_INPUT_ERROR_NONE = 61
EZZONE_INPUT_ERROR_OPEN = 65
#: What the EZ-ZONE PV reads during a sensor break here (a project choice, see the docstring).
EZZONE_SENSOR_BREAK_PV = 9999.0

#: Default noise half-width, °C (domain notes §6.4: ±0.2–0.5 °C around the set point).
NOISE_C = 0.3
#: The noise takes a new value this often, s (a simulated 10 Hz input update).
NOISE_PERIOD_S = 0.1
#: Door-open defaults: the dip in °C and the time to 95 % recovery in s (domain notes §6.4).
DOOR_DEPTH_C = 6.0
DOOR_RECOVER_S = 600.0

#: ``daq simulate rtu-line`` default: a chamber EZ-ZONE PM at 1, a saturator Eurotherm at 2.
DEFAULT_DEVICES = "1:ezzone_pm,2:eurotherm_3200"

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0

FaultKind = Literal[
    "crc_error", "exception", "no_reply", "truncated", "frozen", "sensor_break", "door_open"
]
_FAULT_KIND_NAMES: tuple[str, ...] = get_args(FaultKind)
_EXCEPTION_CODES = tuple(int(code) for code in ExcCodes)


@dataclass(frozen=True)
class Fault:
    """A fault of one device: ``kind``, and its parameters where the kind has them.

    ``code`` is the Modbus exception code for ``exception``; ``depth`` (°C) and ``recover_s``
    shape a ``door_open`` dip. Other kinds ignore them.
    """

    kind: FaultKind
    code: int = 4
    depth: float = DOOR_DEPTH_C
    recover_s: float = DOOR_RECOVER_S

    def __post_init__(self) -> None:
        if self.kind not in _FAULT_KIND_NAMES:
            known = ", ".join(_FAULT_KIND_NAMES)
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {known})")
        if self.kind == "exception" and self.code not in _EXCEPTION_CODES:
            raise ValueError(f"Modbus defines no exception code {self.code}")
        if self.kind == "door_open" and not (
            math.isfinite(self.depth) and self.depth > 0 and math.isfinite(self.recover_s)
        ):
            raise ValueError("a door_open fault needs a finite depth > 0 °C and recover_s")
        if self.kind == "door_open" and not self.recover_s > 0:
            raise ValueError(f"door_open recover_s must be > 0 s, got {self.recover_s}")

    def params(self) -> dict[str, ParamValue]:
        """The parameters the fault's kind uses, as a timeline window holds them."""
        if self.kind == "exception":
            return {"code": self.code}
        if self.kind == "door_open":
            return {"depth": self.depth, "recover_s": self.recover_s}
        return {}


# --- scenario vocabulary ------------------------------------------------------------------------


class _DeviceParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The device id the fault applies to; 0 (the Modbus broadcast id) means every device.
    device: int = Field(default=0, ge=0, le=247)


class _ExceptionParams(_DeviceParams):
    code: Literal[1, 2, 3, 4, 5, 6, 8, 10, 11] = 4


class _DoorParams(_DeviceParams):
    depth: float = Field(default=DOOR_DEPTH_C, gt=0.0, le=100.0, allow_inf_nan=False)
    recover_s: float = Field(default=DOOR_RECOVER_S, gt=0.0, allow_inf_nan=False)


class _RebootParams(_DeviceParams):
    down_s: float = Field(default=0.0, ge=0.0, le=3600.0, allow_inf_nan=False)


class RtuLineModel(BaseModel):
    """The ``[model]`` table of an RTU-line scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Noise seed; the same seed gives the same values at the same times.
    seed: int = 0
    #: Serve the process values with noise (False: exactly the devices' ``pv``).
    noise: bool = True
    #: Half-width of the uniform noise, °C.
    noise_c: float = Field(default=NOISE_C, ge=0.0, le=5.0, allow_inf_nan=False)


FAULT_KINDS: Mapping[str, type[BaseModel]] = {
    "crc_error": _DeviceParams,
    "exception": _ExceptionParams,
    "no_reply": _DeviceParams,
    "truncated": _DeviceParams,
    "frozen": _DeviceParams,
    "sensor_break": _DeviceParams,
    "door_open": _DoorParams,
    "reboot": _RebootParams,
}

RTU_VOCABULARY = ScenarioVocabulary(simulator="modbus_rtu", faults=FAULT_KINDS, model=RtuLineModel)


# --- devices ------------------------------------------------------------------------------------


class SimController(Protocol):
    """What :class:`RtuLine` needs from a simulated controller."""

    device_id: int
    model: str
    #: The controlled value the served process value is built around (°C).
    pv: float

    def blocks(self) -> Sequence[tuple[int, int]]:
        """The served register blocks as ``(start, count)``; other addresses answer 02."""
        ...

    def registers(self, pv: float, sensor_break: bool) -> dict[int, int]:
        """Every served register's value, with ``pv`` as the process value being measured."""
        ...

    def write(self, address: int, values: Sequence[int]) -> int | None:
        """Apply a register write; an exception code refuses it."""
        ...

    def reboot(self) -> None:
        """Back to the power-on defaults."""
        ...


def _float_words(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def _words_float(words: Sequence[int]) -> float:
    value: float = struct.unpack(">f", struct.pack(">HH", words[0], words[1]))[0]
    return value


class EzZonePm:
    """Watlow EZ-ZONE PM: PV float at 360, input error at 362, set point float at 2160 (ABCD)."""

    PV = 360
    INPUT_ERROR = 362
    SETPOINT = 2160

    def __init__(self, device_id: int = 1, *, pv: float = 35.0, setpoint: float = 35.0) -> None:
        self.device_id = device_id
        self.model = "Watlow EZ-ZONE PM"
        self._defaults = (pv, setpoint)
        self.pv = pv
        self.setpoint = setpoint

    def blocks(self) -> Sequence[tuple[int, int]]:
        return [(self.PV, 4), (self.SETPOINT, 2)]

    def registers(self, pv: float, sensor_break: bool) -> dict[int, int]:
        served = _float_words(EZZONE_SENSOR_BREAK_PV if sensor_break else pv)
        sp = _float_words(self.setpoint)
        return {
            self.PV: served[0],
            self.PV + 1: served[1],
            self.INPUT_ERROR: EZZONE_INPUT_ERROR_OPEN if sensor_break else EZZONE_INPUT_ERROR_NONE,
            self.INPUT_ERROR + 1: 0,
            self.SETPOINT: sp[0],
            self.SETPOINT + 1: sp[1],
        }

    def write(self, address: int, values: Sequence[int]) -> int | None:
        span = range(address, address + len(values))
        if any(a not in (self.SETPOINT, self.SETPOINT + 1) for a in span):
            return int(ExcCodes.ILLEGAL_ADDRESS)
        words = _float_words(self.setpoint)
        for offset, value in enumerate(values):
            words[address + offset - self.SETPOINT] = value
        self.setpoint = _words_float(words)
        return None

    def reboot(self) -> None:
        self.pv, self.setpoint = self._defaults


class Eurotherm3200:
    """Eurotherm 3200: PV.IN 1, TG.SP 2, WRK.SP 5, RNG 11/12 as scaled int16, sensor break 258.

    The same parameters 1-5 and 11-12 are IEEE floats at 0x8000 + 2a (ABCD).
    """

    PV = 1
    TARGET_SP = 2
    MANUAL_OP = 3
    WORKING_OP = 4
    WORKING_SP = 5
    RANGE_LO = 11
    RANGE_HI = 12
    SENSOR_BREAK = 258

    def __init__(
        self,
        device_id: int = 2,
        *,
        pv: float = 47.0,
        setpoint: float = 47.0,
        decimals: int = 1,
        range_lo: float = -200.0,
        range_hi: float = 1372.0,
    ) -> None:
        self.device_id = device_id
        self.model = "Eurotherm 3200"
        self.decimals = decimals
        self.range_lo = range_lo
        self.range_hi = range_hi
        self._defaults = (pv, setpoint)
        self.pv = pv
        self.setpoint = setpoint

    def _values(self, pv: float) -> dict[int, float]:
        return {
            self.PV: pv,
            self.TARGET_SP: self.setpoint,
            self.MANUAL_OP: 0.0,
            self.WORKING_OP: 0.0,
            self.WORKING_SP: self.setpoint,
            self.RANGE_LO: self.range_lo,
            self.RANGE_HI: self.range_hi,
        }

    def blocks(self) -> Sequence[tuple[int, int]]:
        base = EUROTHERM_FLOAT_BASE
        return [
            (self.PV, 5),
            (self.RANGE_LO, 2),
            (self.SENSOR_BREAK, 1),
            (base + 2 * self.PV, 10),
            (base + 2 * self.RANGE_LO, 4),
        ]

    def scaled(self, value: float) -> int:
        """The 16-bit register of a value: two's complement, wrapping beyond ±32767 counts."""
        return round(value * 10.0**self.decimals) & 0xFFFF

    def registers(self, pv: float, sensor_break: bool) -> dict[int, int]:
        out: dict[int, int] = {self.SENSOR_BREAK: 1 if sensor_break else 0}
        for address, value in self._values(self.range_hi if sensor_break else pv).items():
            out[address] = self.scaled(value)
            words = _float_words(value)
            out[EUROTHERM_FLOAT_BASE + 2 * address] = words[0]
            out[EUROTHERM_FLOAT_BASE + 2 * address + 1] = words[1]
        return out

    def write(self, address: int, values: Sequence[int]) -> int | None:
        if address == self.TARGET_SP and len(values) == 1:
            raw = values[0] - 0x10000 if values[0] & 0x8000 else values[0]
            self.setpoint = raw / 10.0**self.decimals
            return None
        if address == EUROTHERM_FLOAT_BASE + 2 * self.TARGET_SP and len(values) == 2:
            self.setpoint = _words_float(values)
            return None
        return int(ExcCodes.ILLEGAL_ADDRESS)

    def reboot(self) -> None:
        self.pv, self.setpoint = self._defaults


#: ``serve``'s device names: the class and the driver (drivers/registry.py name) of each.
DEVICE_KINDS: Mapping[str, tuple[Callable[[int], SimController], str]] = {
    "ezzone_pm": (EzZonePm, "watlow_ezzone_pm"),
    "watlow_ezzone_pm": (EzZonePm, "watlow_ezzone_pm"),
    "eurotherm_3200": (Eurotherm3200, "eurotherm_3200"),
}


def parse_devices(spec: str) -> list[tuple[SimController, str]]:
    """Parse ``"1:ezzone_pm,2:eurotherm_3200"`` into devices, each with its driver name.

    Raises ``ValueError`` naming the bad item.
    """
    out: list[tuple[SimController, str]] = []
    seen: set[int] = set()
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        id_text, sep, name = item.partition(":")
        kind = DEVICE_KINDS.get(name.strip())
        if not sep or kind is None:
            known = ", ".join(DEVICE_KINDS)
            raise ValueError(f"device {item!r}: write ID:MODEL, MODEL one of {known}")
        try:
            device_id = int(id_text)
        except ValueError:
            raise ValueError(f"device {item!r}: the id must be a number 1..247") from None
        if not 1 <= device_id <= 247 or device_id in seen:
            raise ValueError(f"device {item!r}: ids must be distinct and 1..247")
        seen.add(device_id)
        make, driver = kind
        out.append((make(device_id), driver))
    if not out:
        raise ValueError(f"no devices in {spec!r}; write e.g. {DEFAULT_DEVICES!r}")
    return out


# --- process model (pure) -----------------------------------------------------------------------


def process_noise(seed: int, device_id: int, t: float, half_width_c: float) -> float:
    """The noise on one device's process value at ``t`` s, °C: uniform in ±``half_width_c``.

    Constant within a :data:`NOISE_PERIOD_S` tick and drawn from
    ``random.Random(f"{seed}:{device_id}:{tick}")``, so it depends on nothing but its arguments.
    """
    if half_width_c <= 0:
        return 0.0
    tick = math.floor(t / NOISE_PERIOD_S)
    # Not cryptographic: a reproducible draw per (seed, device, tick).
    rng = random.Random(f"{seed}:{device_id}:{tick}")  # noqa: S311
    return rng.uniform(-half_width_c, half_width_c)


def door_dip(since_s: float, depth_c: float, recover_s: float) -> float:
    """How far below normal the PV is ``since_s`` seconds after the door opened, °C (>= 0).

    ``depth_c`` at once, then an exponential recovery with time constant ``recover_s / 3``
    (5 % of the dip left after ``recover_s``). Zero before the door opens.
    """
    if since_s < 0:
        return 0.0
    return depth_c * math.exp(-3.0 * since_s / recover_s)


# --- the line -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LinkState:
    silent: bool = False
    truncated: bool = False
    crc_error: bool = False
    exception: int | None = None


class RtuLine:
    """Serve controllers on one Modbus RTU line over a socat pty pair (own thread and loop).

    ``faults`` are hand-set faults active from the start; ``scenario`` (checked against
    :data:`RTU_VOCABULARY`) adds scripted ones on the line's clock, which starts with
    :meth:`start`, and its ``[model]`` keys override ``seed``, ``noise`` and ``noise_c``.
    Fault methods are thread-safe.
    """

    def __init__(
        self,
        devices: Sequence[SimController],
        *,
        faults: Mapping[int, Fault] | None = None,
        baudrate: int = 9600,
        noise: bool = True,
        noise_c: float = NOISE_C,
        seed: int = 0,
        scenario: Scenario | None = None,
    ) -> None:
        ids = [d.device_id for d in devices]
        if not devices or len(set(ids)) != len(ids) or not all(1 <= i <= 247 for i in ids):
            raise ValueError(f"need one or more distinct device ids 1..247, got {ids}")
        scenario = (scenario or Scenario()).validated(RTU_VOCABULARY)
        self.params = RtuLineModel.model_validate(
            {"seed": seed, "noise": noise, "noise_c": noise_c, **scenario.model}
        )
        self.scenario = scenario
        self.devices = {d.device_id: d for d in devices}
        self.baudrate = baudrate
        self._lock = threading.Lock()
        self._timelines = self._scripted_timelines(scenario)
        for device_id, fault in (faults or {}).items():
            self._device(device_id)
            self._timelines[device_id].start_manual(fault.kind, 0.0, fault.params())
        self._down_until: dict[int, float] = {}
        self._reboots_done: dict[int, set[float]] = {device_id: set() for device_id in self.devices}
        self._frozen: dict[int, tuple[float, float]] = {}
        self._t0: float | None = None
        self._dir: Path | None = None
        self._socat: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusSerialServer | None = None
        #: The pty a client opens (socat's ``ttyB`` link), once started.
        self.path = ""

    def _scripted_timelines(self, scenario: Scenario) -> dict[int, FaultTimeline]:
        """One timeline per device with the scenario's windows for it (``device = 0``: all)."""
        windows: dict[int, list[FaultWindow]] = {device_id: [] for device_id in self.devices}
        problems = []
        for number, entry in enumerate(scenario.faults, start=1):
            target = int(entry.params.get("device", 0))
            if target and target not in self.devices:
                on_line = ", ".join(str(i) for i in self.devices)
                problems.append(
                    f"[[fault]] #{number} (kind = {entry.kind!r}): device: no device {target}"
                    f" on this line (devices: {on_line})"
                )
                continue
            for device_id in [target] if target else list(self.devices):
                windows[device_id].append(entry.window())
        if problems:
            raise ScenarioError(scenario.source, problems)
        return {device_id: FaultTimeline(found) for device_id, found in windows.items()}

    # -- clock --------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds on the line's clock (the scenario's time base); 0 before :meth:`start`."""
        t0 = self._t0
        return 0.0 if t0 is None else time.monotonic() - t0

    # -- faults (thread-safe) -----------------------------------------------------------------

    def set_fault(
        self,
        device_id: int,
        kind: FaultKind,
        *,
        code: int = 4,
        depth: float = DOOR_DEPTH_C,
        recover_s: float = DOOR_RECOVER_S,
    ) -> None:
        """Give one device a fault from now until it is cleared (see the module docstring)."""
        self._device(device_id)
        fault = Fault(kind, code, depth, recover_s)
        with self._lock:
            self._timelines[device_id].start_manual(kind, self.elapsed(), fault.params())

    def clear_fault(self, device_id: int | None = None) -> None:
        """End one device's hand-set faults, or every device's (and restart silences)."""
        ids = list(self.devices) if device_id is None else [self._device(device_id).device_id]
        with self._lock:
            t = self.elapsed()
            for i in ids:
                self._timelines[i].stop_manual(t)
                self._down_until.pop(i, None)

    def reboot(self, device_id: int, *, down_s: float = 0.0) -> None:
        """Restart a device: defaults back, silent for ``down_s`` seconds meanwhile."""
        device = self._device(device_id)
        with self._lock:
            self._reboot(device, self.elapsed(), down_s)

    def _reboot(self, device: SimController, t: float, down_s: float) -> None:
        device.reboot()
        if down_s > 0:
            self._down_until[device.device_id] = t + down_s

    def _device(self, device_id: int) -> SimController:
        try:
            return self.devices[device_id]
        except KeyError:
            raise ValueError(f"no device {device_id} on this line") from None

    def _catch_up(self, device_id: int, t: float) -> list[FaultWindow]:
        """Apply scripted reboots due by ``t``; return the windows active at ``t`` (locked)."""
        timeline = self._timelines[device_id]
        done = self._reboots_done[device_id]
        for window in timeline.windows("reboot"):
            if window.scripted and window.start <= t and window.start not in done:
                done.add(window.start)
                down_s = float(window.params.get("down_s", 0.0))
                self._reboot(self.devices[device_id], window.start, down_s)
        return timeline.active(t)

    def _link(self, device_id: int) -> _LinkState:
        with self._lock:
            t = self.elapsed()
            active = self._catch_up(device_id, t)
            down = self._down_until.get(device_id)
        kinds = {window.kind for window in active}
        exceptions = [window for window in active if window.kind == "exception"]
        return _LinkState(
            silent="no_reply" in kinds or (down is not None and t < down),
            truncated="truncated" in kinds,
            crc_error="crc_error" in kinds,
            exception=int(exceptions[-1].params["code"]) if exceptions else None,
        )

    # -- process model ------------------------------------------------------------------------

    def _offset(self, device_id: int, t: float) -> float:
        """Noise plus door-open dips at ``t``, °C (locked)."""
        params = self.params
        offset = process_noise(params.seed, device_id, t, params.noise_c) if params.noise else 0.0
        for window in self._timelines[device_id].windows("door_open"):
            if window.start <= t:
                depth, recover_s = float(window.params["depth"]), float(window.params["recover_s"])
                offset -= door_dip(t - window.start, depth, recover_s)
        return offset

    def _registers(
        self, device: SimController, active: Sequence[FaultWindow], t: float
    ) -> dict[int, int]:
        """The device's registers at ``t`` with the value faults applied (locked)."""
        device_id = device.device_id
        frozen = [window.start for window in active if window.kind == "frozen"]
        if frozen:
            since = min(frozen)
            held = self._frozen.get(device_id)
            if held is None or held[0] != since:
                held = (since, device.pv + self._offset(device_id, since))
                self._frozen[device_id] = held
            pv = held[1]
        else:
            self._frozen.pop(device_id, None)
            pv = device.pv + self._offset(device_id, t)
        sensor_break = any(window.kind == "sensor_break" for window in active)
        return device.registers(pv, sensor_break)

    def registers(self, device_id: int) -> dict[int, int]:
        """Every register of one device as a read would return it now (faults applied)."""
        device = self._device(device_id)
        with self._lock:
            t = self.elapsed()
            return self._registers(device, self._catch_up(device_id, t), t)

    # -- start / stop -------------------------------------------------------------------------

    def start(self) -> str:
        """Create the pty pair, start the clock and serve. Returns the client's path."""
        exe = shutil.which("socat")
        if exe is None:
            raise RuntimeError("socat is not installed (Debian: apt-get install socat)")
        self._dir = Path(tempfile.mkdtemp(prefix="hallmark-rtu-"))
        server_end, client_end = self._dir / "ttyA", self._dir / "ttyB"
        self._socat = subprocess.Popen(
            [
                exe,
                "-d",
                "-d",
                f"pty,raw,echo=0,link={server_end}",
                f"pty,raw,echo=0,link={client_end}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        pause = threading.Event()
        while not (server_end.exists() and client_end.exists()):
            if self._socat.poll() is not None:
                raise RuntimeError(f"socat exited with {self._socat.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"socat made no pty pair within {_START_TIMEOUT_S} s")
            pause.wait(0.01)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="rtu-line", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(str(server_end)), loop).result(
            _START_TIMEOUT_S
        )
        with self._lock:
            self._t0 = time.monotonic()
        self.path = str(client_end)
        return self.path

    async def _serve(self, port: str) -> None:
        sim_devices = [
            SimDevice(
                device.device_id,
                simdata=[
                    SimData(start, count=count, datatype=DataType.REGISTERS)
                    for start, count in device.blocks()
                ],
                action=self._action_for(device),
            )
            for device in self.devices.values()
        ]
        server = ModbusSerialServer(
            sim_devices,
            framer=FramerType.RTU,
            port=port,
            baudrate=self.baudrate,
            ignore_missing_devices=True,
            trace_packet=self._trace_packet,
        )
        await server.serve_forever(background=True)
        self._server = server

    def stop(self) -> None:
        """Stop the server, the loop and socat; remove the links. Safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is not None:
            server, self._server = self._server, None
            try:
                if server is not None:
                    asyncio.run_coroutine_threadsafe(_shutdown(server), loop).result(
                        _STOP_TIMEOUT_S
                    )
            finally:
                loop.call_soon_threadsafe(loop.stop)
                if self._thread is not None:
                    self._thread.join(_STOP_TIMEOUT_S)
                    if not self._thread.is_alive():
                        loop.close()
        socat, self._socat = self._socat, None
        if socat is not None:
            socat.terminate()
            try:
                socat.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                socat.kill()
                socat.wait(_STOP_TIMEOUT_S)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- pymodbus hooks -----------------------------------------------------------------------

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending or not data:
            return data
        if data[0] not in self.devices:
            return b""  # pymodbus 3.16 answers 04 for an id it lacks; RS-485 stays silent
        link = self._link(data[0])
        if link.silent:
            return b""
        if link.truncated:
            return data[: len(data) // 2]
        if link.crc_error:
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    def _action_for(self, device: SimController) -> _Action:
        async def action(  # noqa: PLR0917 - the positional signature is pymodbus's SimAction
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            _ = function_code, count
            code = self._link(device.device_id).exception
            if code is not None:
                return ExcCodes(code)
            with self._lock:
                if set_values is not None:
                    refused = device.write(address, [int(v) for v in set_values])
                    if refused is not None:
                        return ExcCodes(refused)
                t = self.elapsed()
                current = self._registers(device, self._catch_up(device.device_id, t), t)
            for index in range(len(registers)):
                registers[index] = current.get(start_address + index, 0)
            return None

        return action


class _Action(Protocol):
    async def __call__(  # noqa: PLR0917 - the positional signature is pymodbus's SimAction
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None: ...


async def _shutdown(server: ModbusSerialServer) -> None:
    # pymodbus 3.16 leaves ModbusBaseServer.shutdown() unannotated.
    await server.shutdown()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def running_rtu_line(
    devices: Sequence[SimController] | None = None,
    faults: Mapping[int, Fault] | None = None,
    *,
    baudrate: int = 9600,
    noise: bool = True,
    noise_c: float = NOISE_C,
    seed: int = 0,
    scenario: Scenario | None = None,
) -> Iterator[RtuLine]:
    """An :class:`RtuLine` serving for the block; default: an EZ-ZONE PM at 1, a 3200 at 2."""
    line = RtuLine(
        devices or [EzZonePm(1), Eurotherm3200(2)],
        faults=faults,
        baudrate=baudrate,
        noise=noise,
        noise_c=noise_c,
        seed=seed,
        scenario=scenario,
    )
    try:
        line.start()
        yield line
    finally:
        line.stop()


def serve(
    devices_spec: str = DEFAULT_DEVICES,
    seed: int = 0,
    scenario_path: Path | None = None,
    *,
    baudrate: int = 9600,
) -> int:
    """Run an RTU line for ``daq simulate rtu-line`` until SIGTERM or SIGINT (main thread only).

    Prints one JSON line once serving, for example ``{"family": "chamber", "transport":
    "modbus-rtu", "address": "rtu:///tmp/hallmark-rtu-x/ttyB?baudrate=9600", "path":
    "/tmp/hallmark-rtu-x/ttyB", "baudrate": 9600, "seed": 0, "devices": {"1": {"model":
    "Watlow EZ-ZONE PM", "driver": "watlow_ezzone_pm"}, ...}}``. Returns 0 after a clean stop,
    2 for a bad device list or scenario file, 1 when the line cannot be set up (the reason goes
    to stderr).
    """
    try:
        parsed = parse_devices(devices_spec)
        scenario = None if scenario_path is None else load_scenario(scenario_path, RTU_VOCABULARY)
        line = RtuLine(
            [device for device, _ in parsed], baudrate=baudrate, seed=seed, scenario=scenario
        )
    except (ScenarioError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        _ = signum, frame
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            path = line.start()
        except (OSError, RuntimeError, TimeoutError) as exc:
            print(f"error: cannot set up the RTU line: {exc}", file=sys.stderr)
            return 1
        info = {
            "family": "chamber",
            "transport": "modbus-rtu",
            "address": f"rtu://{path}?baudrate={baudrate}",
            "path": path,
            "baudrate": baudrate,
            "seed": line.params.seed,
            "devices": {
                str(device.device_id): {"model": device.model, "driver": driver}
                for device, driver in parsed
            },
        }
        print(json.dumps(info), flush=True)
        while not stop.wait(0.5):
            continue
    finally:
        line.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
    return 0
