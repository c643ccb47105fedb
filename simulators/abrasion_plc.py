"""Simulator of a PLC-based Taber-style rotary abrasion tester, over Modbus TCP.

Instrument: a rotary platform abraser (ASTM D4060 "Taber" style) whose turntable, wheels and
counter are run by a PLC that serves its state as Modbus TCP holding registers. It pairs with a
driver written separately from the same register layout; it does not import drivers/.

Sources. No public data interface for Taber or linear abraser counters was found (Hallmark's
domain notes, INSTRUMENTS_AND_STANDARDS.md §3.7 and §6.5), so **the register layout is
Hallmark's own reference layout for PLC abrasion testers**, not a vendor's map. The test
parameters come from ASTM D4060 as summarised in §3.7: CS-10 / CS-17 wheels, 1000 g per wheel
unless agreed (250 g and 500 g are alternatives), turntable at 60 ± 2 rpm, typical runs of
500-10,000 cycles.

Register layout (holding registers, 0-based PDU addresses, device id 1, 32-bit values high word
first, ABCD):

=======  ==================  =======  ==  =====================================================
Address  Point               Type     RW  Notes
=======  ==================  =======  ==  =====================================================
0-1      cycle_count         uint32   R   cycles completed in the current or last test
2-3      preset_cycles       uint32   RW  the end point; 0 answers exception 03
4        load_g              uint16   R   load per wheel, g (1000; also 250, 500)
5        speed_rpm_x10       uint16   R   measured turntable speed, rpm × 10 (600 = 60.0 rpm);
                                          0 while the table is not turning
6        state               uint16   R   0 idle, 1 running, 2 paused, 3 done (preset
                                          reached), 4 stopped by operator, 5 fault
7        test_number         uint16   R   increments when a test starts (wraps at 65536)
8        fault_code          uint16   R   0 none, 1 motor overload, 2 vacuum fault,
                                          3 emergency stop
9        wheel               uint16   R   10 = CS-10, 17 = CS-17
=======  ==================  =======  ==  =====================================================

Other addresses, and reads that touch them, answer exception 02; writes to read-only registers
answer 02 (see :mod:`simulators._modbus`). Other unit ids answer 0x0B.

Model. A test starts by :meth:`AbrasionPlcSimulator.start_test` or a scenario ``start`` entry:
the count goes to 0, the test number up by one, and the count rises at speed / 60 cycles per
second times ``time_scale`` (so a 1000-cycle test takes 1000 s at 60 rpm, or 2 s with
``time_scale=500``). The measured speed is the nominal speed (``speed_rpm``, 60) plus seeded
noise, uniform in ±``speed_noise_rpm`` (0.5), drawn anew every :data:`SPEED_TICK_S` from
``random.Random(f"{seed}:speed:{tick}")``; the count integrates that measured speed. When the
count reaches the preset the state goes to 3 (done) and stays there until the next start.
:meth:`~AbrasionPlcSimulator.stop_test` -> 4, :meth:`~AbrasionPlcSimulator.pause_test` -> 2 and
:meth:`~AbrasionPlcSimulator.resume_test` -> 1; :meth:`~AbrasionPlcSimulator.fault` -> 5 with
the fault code, and the count stops. The next start clears the fault code. Writing the preset
while a test runs moves its end point (a preset at or below the count ends it at once).

Scenario ``[[fault]]`` kinds (checked against :data:`ABRASION_VOCABULARY`):

- events at ``start`` (no ``duration``): ``start`` (``preset``, ``load_g``, ``wheel``; the preset
  register when ``preset`` is left out), ``stop``, ``pause``, ``resume``, ``fault`` (``code``
  1-3). An event that does not apply (a stop with no test running) is logged and skipped.
- windows: ``speed`` (``rpm``: the nominal speed while active, e.g. 57 for a slow motor),
  ``no_reply``, ``exception`` (``code``), ``disconnect``. The link faults are served by
  :class:`simulators._modbus.ModbusTcpDevice`.

Time is the simulator clock (seconds since :meth:`AbrasionPlcSimulator.start`); the model is
advanced to the time of every read, write and method call, applying scripted events at their
own times, so values do not depend on how often a client polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import random
import signal
import struct
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pymodbus.constants import ExcCodes

from simulators._modbus import LinkFaults, ModbusTcpDevice, Point
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
    "ABRASION_VOCABULARY",
    "EVENT_KINDS",
    "FAULT_EMERGENCY_STOP",
    "FAULT_MOTOR_OVERLOAD",
    "FAULT_NONE",
    "FAULT_VACUUM",
    "POINTS",
    "SIMULATES",
    "SPEED_TICK_S",
    "STATE_DONE",
    "STATE_FAULT",
    "STATE_IDLE",
    "STATE_PAUSED",
    "STATE_RUNNING",
    "STATE_STOPPED",
    "WHEEL_CS10",
    "WHEEL_CS17",
    "AbraserStateError",
    "AbrasionModel",
    "AbrasionModelParams",
    "AbrasionPlcSimulator",
    "measured_speed",
    "running_abrasion_plc",
    "serve",
]

_log = logging.getLogger(__name__)

#: The driver (drivers/registry.py name) whose instrument this module simulates (same stem).
SIMULATES = ("abrasion_plc",)

STATE_IDLE = 0
STATE_RUNNING = 1
STATE_PAUSED = 2
STATE_DONE = 3
STATE_STOPPED = 4
STATE_FAULT = 5

FAULT_NONE = 0
FAULT_MOTOR_OVERLOAD = 1
FAULT_VACUUM = 2
FAULT_EMERGENCY_STOP = 3

WHEEL_CS10: Final = 10
WHEEL_CS17: Final = 17

#: The measured speed takes a new value this often, s of real time (a simulator choice).
SPEED_TICK_S = 0.1

_UINT16_MAX = 0xFFFF
_UINT32_MAX = 0xFFFF_FFFF

POINTS: tuple[Point, ...] = (
    # _modbus has no uint32 type; int32 fixes the width, the values are encoded as uint32 here.
    Point("cycle_count", 0, "int32"),
    Point("preset_cycles", 2, "int32", writable=True),
    Point("load_g", 4, "uint16"),
    Point("speed_rpm_x10", 5, "uint16"),
    Point("state", 6, "uint16"),
    Point("test_number", 7, "uint16"),
    Point("fault_code", 8, "uint16"),
    Point("wheel", 9, "uint16"),
)
_POINT_NAMES = tuple(point.name for point in POINTS)


# --- scenario vocabulary ------------------------------------------------------------------------


class _NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StartParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The end point; 0 means "the preset register as it stands".
    preset: int = Field(default=0, ge=0, le=_UINT32_MAX)
    load_g: int = Field(default=1000, ge=1, le=_UINT16_MAX)
    wheel: Literal[10, 17] = WHEEL_CS17


class _FaultParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Literal[1, 2, 3]


class _ExceptionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Literal[1, 2, 3, 4, 5, 6, 8, 10, 11]


class _SpeedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: float = Field(ge=0.0, le=600.0, allow_inf_nan=False)


class AbrasionModelParams(BaseModel):
    """The ``[model]`` table: the tester's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Noise seed; the same seed gives the same speeds (and counts) at the same times.
    seed: int = 0
    #: Simulated seconds per real second for the count (the clock of events stays real).
    time_scale: float = Field(default=1.0, gt=0.0, le=1e6, allow_inf_nan=False)
    #: Nominal turntable speed, rpm (ASTM D4060: 60 ± 2).
    speed_rpm: float = Field(default=60.0, ge=0.0, le=600.0, allow_inf_nan=False)
    #: Half-width of the uniform speed noise, rpm.
    speed_noise_rpm: float = Field(default=0.5, ge=0.0, le=10.0, allow_inf_nan=False)
    #: Power-on value of the preset register.
    preset_cycles: int = Field(default=1000, ge=1, le=_UINT32_MAX)
    #: Power-on load per wheel, g.
    load_g: int = Field(default=1000, ge=1, le=_UINT16_MAX)
    #: Power-on wheel type code.
    wheel: Literal[10, 17] = WHEEL_CS17


#: Kinds that happen at an instant (their ``start``) rather than over a window.
EVENT_KINDS = frozenset({"start", "stop", "pause", "resume", "fault"})

_FAULT_KINDS: Mapping[str, type[BaseModel]] = {
    "start": _StartParams,
    "stop": _NoParams,
    "pause": _NoParams,
    "resume": _NoParams,
    "fault": _FaultParams,
    "speed": _SpeedParams,
    "no_reply": _NoParams,
    "exception": _ExceptionParams,
    "disconnect": _NoParams,
}

ABRASION_VOCABULARY = ScenarioVocabulary(
    simulator="abrasion_plc", faults=_FAULT_KINDS, model=AbrasionModelParams
)


# --- the tester model ---------------------------------------------------------------------------


def measured_speed(seed: int, t: float, nominal_rpm: float, noise_rpm: float) -> float:
    """The turntable speed the PLC measures at ``t`` s, rpm: nominal plus seeded noise.

    Constant within a :data:`SPEED_TICK_S` tick; depends on nothing but its arguments. A table
    set to 0 rpm stands still (no noise).
    """
    if nominal_rpm <= 0.0:
        return 0.0
    if noise_rpm <= 0.0:
        return nominal_rpm
    tick = math.floor(t / SPEED_TICK_S)
    # Not cryptographic: a reproducible draw per (seed, tick).
    rng = random.Random(f"{seed}:speed:{tick}")  # noqa: S311
    return max(0.0, nominal_rpm + rng.uniform(-noise_rpm, noise_rpm))


class AbraserStateError(RuntimeError):
    """An operator action that does not apply in the tester's state (stop with nothing running)."""


@dataclass
class _Registers:
    cycles: float = 0.0  # completed cycles, fractional while turning
    preset: int = 1000
    load_g: int = 1000
    state: int = STATE_IDLE
    test_number: int = 0
    fault_code: int = FAULT_NONE
    wheel: int = WHEEL_CS17


class AbrasionModel:
    """The tester's state, advanced along the simulator clock. Not thread-safe.

    Every method takes ``t`` (seconds since start, never decreasing between calls); the model
    first integrates the count up to ``t``, applying the timeline's scripted events at their own
    times, then acts.
    """

    def __init__(
        self,
        params: AbrasionModelParams,
        timeline: FaultTimeline,
        events: Sequence[FaultWindow] = (),
    ) -> None:
        self.params = params
        self._timeline = timeline
        self._reg = _Registers(
            preset=params.preset_cycles, load_g=params.load_g, wheel=params.wheel
        )
        self._t = 0.0
        # Scripted events (kinds in EVENT_KINDS); a stable sort keeps file order for ties.
        self._events = sorted(
            (w for w in events if w.kind in EVENT_KINDS), key=lambda window: window.start
        )
        self._next_event = 0

    # time

    def advance(self, t: float) -> None:
        """Integrate to ``t``, applying every scripted event due by then."""
        while self._next_event < len(self._events) and self._events[self._next_event].start <= t:
            event = self._events[self._next_event]
            self._next_event += 1
            self._integrate(max(event.start, self._t))
            self._apply_event(event)
        self._integrate(max(t, self._t))

    def _integrate(self, t: float) -> None:
        start, self._t = self._t, t
        reg = self._reg
        if reg.state != STATE_RUNNING or t <= start:
            return
        for left, right in self._pieces(start, t):
            rpm = self._speed((left + right) / 2.0)
            reg.cycles += rpm / 60.0 * self.params.time_scale * (right - left)
            if reg.cycles >= reg.preset:
                reg.cycles = float(reg.preset)
                reg.state = STATE_DONE
                return

    def _pieces(self, start: float, end: float) -> list[tuple[float, float]]:
        """``[start, end)`` cut where the measured speed may change (ticks, speed windows)."""
        edges = {start, end}
        first = math.floor(start / SPEED_TICK_S) + 1
        last = math.ceil(end / SPEED_TICK_S)
        edges.update(tick * SPEED_TICK_S for tick in range(first, last))
        for window in self._timeline.windows("speed"):
            edges.update(e for e in (window.start, window.end) if start < e < end)
        ordered = sorted(edges)
        return list(itertools.pairwise(ordered))

    def _nominal(self, t: float) -> float:
        windows = [w for w in self._timeline.active(t) if w.kind == "speed"]
        return float(windows[-1].params["rpm"]) if windows else self.params.speed_rpm

    def _speed(self, t: float) -> float:
        return measured_speed(self.params.seed, t, self._nominal(t), self.params.speed_noise_rpm)

    # events and operator actions

    def _apply_event(self, event: FaultWindow) -> None:
        params = event.params
        try:
            match event.kind:
                case "start":
                    preset = int(params.get("preset", 0)) or None
                    load_g = int(params.get("load_g", 1000))
                    wheel = int(params.get("wheel", WHEEL_CS17))
                    self._start(preset, load_g, wheel)
                case "stop":
                    self._stop()
                case "pause":
                    self._pause()
                case "resume":
                    self._resume()
                case "fault":
                    self._fault(int(params["code"]))
        except (AbraserStateError, ValueError) as exc:
            _log.warning(
                "abrasion PLC simulator: scripted %s at %gs skipped: %s",
                event.kind,
                event.start,
                exc,
            )

    def start_test(self, t: float, preset: int | None, load_g: int, wheel: int) -> None:
        """Start a test at ``t`` (``preset`` None: the preset register as it stands)."""
        self.advance(t)
        self._start(preset, load_g, wheel)

    def stop_test(self, t: float) -> None:
        """The operator stops the running or paused test at ``t``."""
        self.advance(t)
        self._stop()

    def pause_test(self, t: float) -> None:
        """Pause the running test at ``t``."""
        self.advance(t)
        self._pause()

    def resume_test(self, t: float) -> None:
        """Resume the paused test at ``t``."""
        self.advance(t)
        self._resume()

    def fault(self, t: float, code: int) -> None:
        """A machine fault at ``t``: state 5 with ``code``; the count stops."""
        self.advance(t)
        self._fault(code)

    def _start(self, preset: int | None, load_g: int, wheel: int) -> None:
        reg = self._reg
        if reg.state in (STATE_RUNNING, STATE_PAUSED):
            raise AbraserStateError(f"test {reg.test_number} is still running; stop it first")
        if preset is not None and not 1 <= preset <= _UINT32_MAX:
            raise ValueError(f"the preset must be 1..{_UINT32_MAX} cycles, got {preset}")
        if not 1 <= load_g <= _UINT16_MAX:
            raise ValueError(f"the load per wheel must be 1..{_UINT16_MAX} g, got {load_g}")
        if wheel not in (WHEEL_CS10, WHEEL_CS17):
            raise ValueError(f"the wheel code must be 10 (CS-10) or 17 (CS-17), got {wheel}")
        if preset is not None:
            reg.preset = preset
        reg.load_g, reg.wheel = load_g, wheel
        reg.cycles = 0.0
        reg.state = STATE_RUNNING
        reg.fault_code = FAULT_NONE
        reg.test_number = (reg.test_number + 1) & _UINT16_MAX

    def _stop(self) -> None:
        if self._reg.state not in (STATE_RUNNING, STATE_PAUSED):
            raise AbraserStateError("no test is running")
        self._reg.state = STATE_STOPPED

    def _pause(self) -> None:
        if self._reg.state != STATE_RUNNING:
            raise AbraserStateError("no test is running")
        self._reg.state = STATE_PAUSED

    def _resume(self) -> None:
        if self._reg.state != STATE_PAUSED:
            raise AbraserStateError("no test is paused")
        self._reg.state = STATE_RUNNING

    def _fault(self, code: int) -> None:
        if code not in (FAULT_MOTOR_OVERLOAD, FAULT_VACUUM, FAULT_EMERGENCY_STOP):
            raise ValueError(f"fault code must be 1, 2 or 3, got {code}")
        self._reg.state = STATE_FAULT
        self._reg.fault_code = code

    # registers

    def write_preset(self, t: float, preset: int) -> bool:
        """Set the preset register at ``t``; False (refused) unless 1..2**32-1."""
        self.advance(t)
        if not 1 <= preset <= _UINT32_MAX:
            return False
        self._reg.preset = preset
        reg = self._reg
        if reg.state == STATE_RUNNING and reg.cycles >= preset:
            reg.cycles = float(preset)
            reg.state = STATE_DONE
        return True

    def values(self, t: float) -> dict[str, int]:
        """Every point's value at ``t``, by point name."""
        self.advance(t)
        reg = self._reg
        speed = self._speed(t) if reg.state == STATE_RUNNING else 0.0
        return {
            "cycle_count": min(math.floor(reg.cycles), reg.preset),
            "preset_cycles": reg.preset,
            "load_g": reg.load_g,
            "speed_rpm_x10": min(round(speed * 10.0), _UINT16_MAX),
            "state": reg.state,
            "test_number": reg.test_number,
            "fault_code": reg.fault_code,
            "wheel": reg.wheel,
        }


def _uint32_words(value: int) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">I", value))
    return [high, low]


def _words_uint32(words: Sequence[int]) -> int:
    value: int = struct.unpack(">I", struct.pack(">HH", words[0], words[1]))[0]
    return value


# --- the register device ------------------------------------------------------------------------


class _AbrasionDevice:
    """Register-level behaviour of the PLC: the model behind a lock, plus the link faults."""

    def __init__(
        self,
        params: AbrasionModelParams,
        timeline: FaultTimeline,
        events: Sequence[FaultWindow],
    ) -> None:
        self._lock = threading.Lock()
        self._timeline = timeline
        self.model = AbrasionModel(params, timeline, events)
        self._t0: float | None = None

    def start_clock(self) -> None:
        with self._lock:
            self._t0 = time.monotonic()

    def elapsed(self) -> float:
        t0 = self._t0
        return 0.0 if t0 is None else time.monotonic() - t0

    @contextlib.contextmanager
    def locked(self) -> Iterator[tuple[AbrasionModel, float]]:
        """The model and the time now, under the lock."""
        with self._lock:
            yield self.model, self.elapsed()

    def set_fault(self, kind: str, params: Mapping[str, ParamValue]) -> None:
        with self._lock:
            self._timeline.start_manual(kind, self.elapsed(), params)

    def clear_faults(self) -> None:
        with self._lock:
            self._timeline.stop_manual(self.elapsed())

    def next_start(self, after: float, kinds: set[str]) -> float | None:
        with self._lock:
            return self._timeline.next_start_after(after, kinds)

    # RegisterDevice protocol

    @property
    def points(self) -> Sequence[Point]:
        return POINTS

    def link_faults(self) -> LinkFaults:
        with self._lock:
            active = self._timeline.active(self.elapsed())
        exceptions = [w for w in active if w.kind == "exception"]
        return LinkFaults(
            no_reply=any(w.kind == "no_reply" for w in active),
            disconnect=any(w.kind == "disconnect" for w in active),
            exception=int(exceptions[-1].params["code"]) if exceptions else None,
        )

    def read(self, points: Sequence[Point]) -> list[list[int]]:
        with self.locked() as (model, t):
            values = model.values(t)
        return [_uint32_words(values[p.name]) if p.width == 2 else [values[p.name]] for p in points]

    def write(self, writes: Sequence[tuple[Point, list[int]]]) -> int | None:
        with self.locked() as (model, t):
            for point, registers in writes:
                if point.name != "preset_cycles":
                    return int(ExcCodes.ILLEGAL_ADDRESS)  # pymodbus refuses these first
                if not model.write_preset(t, _words_uint32(registers)):
                    return int(ExcCodes.ILLEGAL_VALUE)
        return None


# --- public simulator ---------------------------------------------------------------------------


class AbrasionPlcSimulator:
    """A PLC-run rotary abrasion tester served over Modbus TCP (see the module docstring).

    ``scenario`` is checked against :data:`ABRASION_VOCABULARY`; its ``[model]`` keys override
    ``seed``, ``time_scale`` and ``speed_rpm``. Methods are thread-safe.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        device_id: int = 1,
        seed: int = 0,
        scenario: Scenario | None = None,
        time_scale: float = 1.0,
        speed_rpm: float = 60.0,
    ) -> None:
        scenario = (scenario or Scenario()).validated(ABRASION_VOCABULARY)
        problems = [
            f"[[fault]] #{number} (kind = {entry.kind!r}): duration: an event takes no duration"
            for number, entry in enumerate(scenario.faults, start=1)
            if entry.kind in EVENT_KINDS and entry.duration is not None
        ]
        if problems:
            raise ScenarioError(scenario.source, problems)
        self.params = AbrasionModelParams.model_validate(
            {"seed": seed, "time_scale": time_scale, "speed_rpm": speed_rpm, **scenario.model}
        )
        self.scenario = scenario
        windows = scenario.windows()
        self._timeline = FaultTimeline(windows)
        self._device = _AbrasionDevice(self.params, self._timeline, windows)
        self._modbus = ModbusTcpDevice(
            self._device, name="abrasion PLC simulator", host=host, port=port, device_id=device_id
        )
        self._host = host
        self._port = port
        self.device_id = device_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> tuple[str, int]:
        """Start the clock and listen; port 0 picks a free port. Returns ``(host, port)``."""
        if self._loop is not None:
            raise RuntimeError("an AbrasionPlcSimulator starts once; make a new one to start again")
        self._loop = asyncio.get_running_loop()
        self._device.start_clock()
        host, port = await self._modbus.start()
        self._host, self._port = host, port
        self._watcher = asyncio.create_task(self._watch_timeline(), name="abrasion-sim-timeline")
        return host, port

    async def stop(self) -> None:
        """Stop serving and close every connection; safe to call twice."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await self._modbus.stop()

    # operator actions

    def start_test(
        self, preset: int | None = None, load_g: int = 1000, wheel: int = WHEEL_CS17
    ) -> None:
        """Start a test (state 1, count 0, test number + 1); ``preset`` None keeps the register.

        Raises :class:`AbraserStateError` while a test runs, ``ValueError`` for a bad argument.
        """
        with self._device.locked() as (model, t):
            model.start_test(t, preset, load_g, wheel)

    def stop_test(self) -> None:
        """The operator stops the test (state 4). :class:`AbraserStateError` if none runs."""
        with self._device.locked() as (model, t):
            model.stop_test(t)

    def pause_test(self) -> None:
        """Pause the running test (state 2)."""
        with self._device.locked() as (model, t):
            model.pause_test(t)

    def resume_test(self) -> None:
        """Resume the paused test (state 1)."""
        with self._device.locked() as (model, t):
            model.resume_test(t)

    def fault(self, code: int) -> None:
        """A machine fault: 1 motor overload, 2 vacuum fault, 3 emergency stop (state 5)."""
        with self._device.locked() as (model, t):
            model.fault(t, code)

    def values(self) -> dict[str, int]:
        """Every point's value as a read would return it now, by point name."""
        with self._device.locked() as (model, t):
            return model.values(t)

    # link faults

    def set_fault(self, kind: str, **params: float | int) -> None:
        """Activate a fault window from now until :meth:`clear_faults`.

        Link faults ``no_reply``, ``exception`` (``code``) and ``disconnect``, or ``speed``
        (``rpm``, the nominal turntable speed meanwhile).
        """
        if kind in EVENT_KINDS:
            raise ValueError(f"{kind!r} is an operator action: call its method instead")
        checked = ABRASION_VOCABULARY.fault_params(kind, params)
        self._device.set_fault(kind, checked)
        if kind == "disconnect" and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._modbus.drop_connections)

    def clear_faults(self) -> None:
        """End every hand-set fault; the scenario's windows keep their schedule."""
        self._device.clear_faults()

    @property
    def address(self) -> str:
        """``tcp://HOST:PORT``; the real port once :meth:`start` has returned."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"tcp://{host}:{self._port}"

    @property
    def host(self) -> str:
        """The host listened on."""
        return self._host

    @property
    def port(self) -> int:
        """The port listened on (0 before :meth:`start` when a free port was asked for)."""
        return self._port

    def elapsed(self) -> float:
        """Seconds on the simulator clock (the scenario's time base); 0 before :meth:`start`."""
        return self._device.elapsed()

    async def _watch_timeline(self) -> None:
        """Drop connections when a scripted ``disconnect`` window opens."""
        after = self.elapsed()
        while (start := self._device.next_start(after, {"disconnect"})) is not None:
            await asyncio.sleep(max(0.0, start - self.elapsed()))
            self._modbus.drop_connections()
            after = start


_THREAD_START_TIMEOUT_S = 10.0
_THREAD_STOP_TIMEOUT_S = 10.0


@contextlib.contextmanager
def running_abrasion_plc(**kwargs: Any) -> Iterator[AbrasionPlcSimulator]:
    """Run an :class:`AbrasionPlcSimulator` on its own event loop in a background thread.

    Takes the :class:`AbrasionPlcSimulator` keyword arguments; listening when the block is
    entered. Start and stop are bounded (10 s each).
    """
    simulator = AbrasionPlcSimulator(**kwargs)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="abrasion-plc-simulator", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(_THREAD_START_TIMEOUT_S)
        yield simulator
    finally:
        try:
            asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(_THREAD_STOP_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_THREAD_STOP_TIMEOUT_S)
            if not thread.is_alive():
                loop.close()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 0,
    scenario_path: Path | None = None,
    *,
    time_scale: float = 1.0,
) -> int:
    """Run the simulator for ``daq simulate`` until SIGTERM or SIGINT.

    Prints one JSON line once listening, for example ``{"family": "abrasion", "model":
    "abrasion_plc", "transport": "modbus-tcp", "host": "127.0.0.1", "port": 40123, "address":
    "tcp://127.0.0.1:40123", "device_id": 1, "time_scale": 1.0}``. Returns 0 after a clean stop,
    2 for a bad scenario file or option, 1 when the address cannot be bound (the reason goes
    to stderr).
    """
    try:
        scenario = (
            None if scenario_path is None else load_scenario(scenario_path, ABRASION_VOCABULARY)
        )
        simulator = AbrasionPlcSimulator(
            host=host, port=port, seed=seed, scenario=scenario, time_scale=time_scale
        )
    except (ScenarioError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(simulator))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _serve(simulator: AbrasionPlcSimulator) -> int:
    bound_host, bound_port = await simulator.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        line = {
            "family": "abrasion",
            "model": "abrasion_plc",
            "transport": "modbus-tcp",
            "host": bound_host,
            "port": bound_port,
            "address": simulator.address,
            "device_id": simulator.device_id,
            "time_scale": simulator.params.time_scale,
        }
        print(json.dumps(line), flush=True)
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await simulator.stop()
    return 0
