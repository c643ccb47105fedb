"""Simulator of a Watlow F4T controller on a salt-spray chamber, over Modbus TCP.

Instrument: Watlow F4T temperature/process controller as fitted to TestEquity (and ESPEC)
chambers, here on a neutral salt-spray (ASTM B117 / ISO 9227 NSS) cabinet whose loop 2 is the
saturator ("bubble tower"). It pairs with ``drivers/`` code written separately from the same
manuals; it does not import it.

Sources (collected in Hallmark's domain notes, INSTRUMENTS_AND_STANDARDS.md §2.1, §2.3, §3.1):

- TestEquity F4T manual, "Common Modbus Registers", data map 1 (easymanua.ls/testequity/f4t p.46):
  temperature set point 2782 (float, RW); closed-loop set point 2810 (float, R, the momentary set
  point while a ramp runs); actual chamber temperature 27586 (float, R); loop-2 ("humidity" on a
  humidity chamber, saturator here) set point 2942 and actual 28906. "By default, the low order
  word contains the two low bytes": the first register of a float holds the low word (CDAB).
- Watlow F4T Setup & Operations manual, Modbus appendix (easymanua.ls/watlow/f4t p.226-234):
  hardware ID at 0 (signed 32-bit), device status at 90 (u16: 138 = OK, 32 = Fail), display
  units at 1328 (u16, RW: 15 = °C, 30 = °F).
- Watlow uses function codes 03, 06 and 16 and has no coils or input registers (watlowlib,
  docs/protocol-modbus.md). The simulator also answers pymodbus's other register codes (23).
- Salt spray runs at 35 ± 2 °C (ASTM B117, ISO 9227 NSS). The saturator default of 47 °C is
  this project's choice, not a number from the standards.

Not confirmed in a retrieved source, and so simulator behaviour to check against a real
controller: that °F display units make *every* temperature register (actual and set points)
read and write in °F, the answer to a write to a read-only register (02 here), and the input
update rate (10 Hz here).

Register map served (0-based PDU addresses; mbpoll's ``-0``; 1-based tools add 1):

=======  ======================  =======  ====  ============================================
Address  Point                   Type     RW    Notes
=======  ======================  =======  ====  ============================================
0-1      hardware_id             s32      R     arbitrary constant (the real value is not
                                                published in the sources above)
90       device_status           u16      R     138 OK, 32 Fail
1328     display_units           u16      RW    15 °C, 30 °F; other values -> exception 03
2782-3   chamber_setpoint        float32  RW    -> target of the chamber's thermal model
2810-1   closed_loop_setpoint    float32  R     equals the set point (no ramps are simulated)
2942-3   saturator_setpoint      float32  RW    loop 2 set point
27586-7  chamber_temperature     float32  R     loop 1 actual
28906-7  saturator_temperature   float32  R     loop 2 actual
=======  ======================  =======  ====  ============================================

Any other address, and any read or write that touches one (a block read across a gap
included), answers exception 02; a write to a read-only point answers 02 as well. Set points
outside -100…200 °C (a simulator choice: the real limits come from each loop's range
settings) or non-finite floats answer 03. Other unit ids than ``device_id`` answer 0x0B.

Quirks reproduced:

- CDAB word order by default; ``word_order_swapped`` (or ``[model] word_order = "ABCD"``) serves
  ABCD, turning 35.0 into about 2.4e-41 for a client that decodes CDAB. The same order applies
  to the hardware ID and to written floats.
- °F display units change what every temperature register means; drivers must convert, and a
  set point written while °F is displayed is taken in °F.

Model: each loop follows its set point with a first-order lag (time constant
``time_constant_s``, default 180 s, so a door-open dip recovers in about ten minutes) plus
Gaussian noise (``noise_c``, default 0.05 °C) that changes every 0.1 s (a simulated 10 Hz
input update). Values are computed from the elapsed time since :meth:`ChamberSimulator.start`
and the history of set-point writes and fault windows, with noise drawn from
``random.Random(f"{seed}:{loop}:{tick}")``, so a read at any moment is consistent and two runs
with the same seed give the same values at the same times, whatever the order of reads.
``preheated=True`` starts both loops at their set points, otherwise at ``ambient_c`` (22 °C).

Fault kinds (``set_fault(kind, **params)`` or a scenario's ``[[fault]]``): ``no_reply``,
``exception`` (``code``: 1, 2, 3, 4, 6, 10 or 11), ``disconnect``, ``frozen`` (both actual
temperatures stick at their value when the fault began), ``word_order_swapped``, ``excursion``
(``delta`` °C added to the chamber target, followed with the lag), ``device_fail`` (status 32).
How each is wired into pymodbus is described in :mod:`simulators._modbus`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field
from pymodbus.constants import ExcCodes

from simulators._modbus import (
    LinkFaults,
    ModbusTcpDevice,
    Point,
    WordOrder,
    decode_float32,
    encode_float32,
    encode_int32,
)
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
    "CHAMBER_VOCABULARY",
    "DEVICE_STATUS_FAIL",
    "DEVICE_STATUS_OK",
    "FAULT_KINDS",
    "HARDWARE_ID",
    "NOISE_PERIOD_S",
    "POINTS",
    "SETPOINT_LIMITS_C",
    "UNITS_CELSIUS",
    "UNITS_FAHRENHEIT",
    "ChamberModel",
    "ChamberModelParams",
    "ChamberSimulator",
    "running_chamber",
    "serve",
]

DEVICE_STATUS_OK = 138
DEVICE_STATUS_FAIL = 32
UNITS_CELSIUS = 15
UNITS_FAHRENHEIT = 30
#: Not from a manual: any plausible constant does for a simulator.
HARDWARE_ID = 5_420_001
#: Accepted set-point range in °C (simulator choice; see module docstring).
SETPOINT_LIMITS_C = (-100.0, 200.0)
#: The simulated input update period: noise takes a new value every tick.
NOISE_PERIOD_S = 0.1

POINTS: tuple[Point, ...] = (
    Point("hardware_id", 0, "int32"),
    Point("device_status", 90, "uint16"),
    Point("display_units", 1328, "uint16", writable=True),
    Point("chamber_setpoint", 2782, "float32", writable=True),
    Point("closed_loop_setpoint", 2810, "float32"),
    Point("saturator_setpoint", 2942, "float32", writable=True),
    Point("chamber_temperature", 27586, "float32"),
    Point("saturator_temperature", 28906, "float32"),
)
_POINTS_BY_NAME = {point.name: point for point in POINTS}
Loop: TypeAlias = Literal["chamber", "saturator"]


# --- scenario vocabulary ------------------------------------------------------------------------


class _NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ExceptionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Literal[1, 2, 3, 4, 6, 10, 11]


class _ExcursionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    delta: float = Field(ge=-100.0, le=100.0, allow_inf_nan=False)


class ChamberModelParams(BaseModel):
    """The ``[model]`` table: the thermal model and the controller's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Chamber (loop 1) set point, °C.
    setpoint_c: float = Field(
        default=35.0, ge=SETPOINT_LIMITS_C[0], le=SETPOINT_LIMITS_C[1], allow_inf_nan=False
    )
    #: Saturator (loop 2) set point, °C.
    saturator_setpoint_c: float = Field(
        default=47.0, ge=SETPOINT_LIMITS_C[0], le=SETPOINT_LIMITS_C[1], allow_inf_nan=False
    )
    #: First-order lag time constant of both loops, s.
    time_constant_s: float = Field(default=180.0, gt=0.0, allow_inf_nan=False)
    #: Standard deviation of the measurement noise, °C (0 for exact values).
    noise_c: float = Field(default=0.05, ge=0.0, le=10.0)
    #: Where both loops start when not preheated, °C.
    ambient_c: float = Field(default=22.0, ge=-50.0, le=60.0)
    #: Noise seed; the same seed gives the same values at the same times.
    seed: int = 0
    #: Start at the set points instead of at ambient.
    preheated: bool = True
    #: Display units at start (register 1328).
    display_units: Literal["C", "F"] = "C"
    #: The controller's configured word order for 32-bit values.
    word_order: Literal["CDAB", "ABCD"] = "CDAB"


FAULT_KINDS: Mapping[str, type[BaseModel]] = {
    "no_reply": _NoParams,
    "exception": _ExceptionParams,
    "disconnect": _NoParams,
    "frozen": _NoParams,
    "word_order_swapped": _NoParams,
    "excursion": _ExcursionParams,
    "device_fail": _NoParams,
}

CHAMBER_VOCABULARY = ScenarioVocabulary(
    simulator="watlow_f4t", faults=FAULT_KINDS, model=ChamberModelParams
)


# --- thermal model ------------------------------------------------------------------------------


def _c_to_f(value_c: float) -> float:
    return value_c * 9.0 / 5.0 + 32.0


def _f_to_c(value_f: float) -> float:
    return (value_f - 32.0) * 5.0 / 9.0


def _float32(value: float) -> float:
    return decode_float32(encode_float32(value, WordOrder.ABCD), WordOrder.ABCD)


class ChamberModel:
    """The two thermal loops of the chamber, evaluated at any time from their history.

    Pure with respect to time: every method takes ``t`` (seconds since start) and depends only
    on the parameters, the set-point writes made before ``t`` and the fault windows of the
    timeline. Not thread-safe; :class:`ChamberSimulator` serialises access.
    """

    def __init__(self, params: ChamberModelParams, timeline: FaultTimeline) -> None:
        self.params = params
        self._timeline = timeline
        # Set-point history per loop: parallel lists of write times and values (°C).
        self._sp_times: dict[Loop, list[float]] = {"chamber": [0.0], "saturator": [0.0]}
        self._sp_values: dict[Loop, list[float]] = {
            "chamber": [params.setpoint_c],
            "saturator": [params.saturator_setpoint_c],
        }

    def setpoint(self, loop: Loop, t: float) -> float:
        """The set point (°C) of ``loop`` in force at ``t``."""
        index = bisect.bisect_right(self._sp_times[loop], t) - 1
        return self._sp_values[loop][max(index, 0)]

    def set_setpoint(self, loop: Loop, t: float, value_c: float) -> None:
        """Record a set-point write at ``t`` (writes must come in time order)."""
        times = self._sp_times[loop]
        if t < times[-1]:
            raise ValueError(f"set-point writes must come in time order ({t} < {times[-1]})")
        times.append(t)
        self._sp_values[loop].append(value_c)

    def target(self, loop: Loop, t: float) -> float:
        """What ``loop`` is heading for at ``t``: the set point plus active excursions."""
        value = self.setpoint(loop, t)
        if loop == "chamber":
            value += sum(
                float(window.params["delta"])
                for window in self._timeline.windows("excursion")
                if window.covers(t)
            )
        return value

    def temperature(self, loop: Loop, t: float) -> float:
        """The actual temperature (°C) of ``loop`` at ``t``, with noise and the frozen fault."""
        t = self._frozen_time(t)
        return self._lagged(loop, t) + self._noise(loop, t)

    def _frozen_time(self, t: float) -> float:
        starts = [w.start for w in self._timeline.windows("frozen") if w.covers(t)]
        return min(starts, default=t)

    def _lagged(self, loop: Loop, t: float) -> float:
        params = self.params
        value = self.setpoint(loop, 0.0) if params.preheated else params.ambient_c
        # Cost grows with the number of set-point writes and excursions, not with time.
        edges = set(self._sp_times[loop])
        if loop == "chamber":
            for window in self._timeline.windows("excursion"):
                edges.update((window.start, window.end))
        previous = 0.0
        for edge in [*sorted(e for e in edges if 0.0 < e < t), t]:
            # The target is constant on [previous, edge): the exact first-order step response.
            goal = self.target(loop, previous)
            value = goal + (value - goal) * math.exp(-(edge - previous) / params.time_constant_s)
            previous = edge
        return value

    def _noise(self, loop: Loop, t: float) -> float:
        if self.params.noise_c == 0.0:
            return 0.0
        tick = math.floor(t / NOISE_PERIOD_S)
        # Not cryptographic: a reproducible draw per (seed, loop, tick), independent of read order.
        rng = random.Random(f"{self.params.seed}:{loop}:{tick}")  # noqa: S311
        return rng.gauss(0.0, self.params.noise_c)


# --- the register device ------------------------------------------------------------------------


class _ChamberDevice:
    """Register-level behaviour of the F4T: faults, units, word order, writes. Lock-protected."""

    def __init__(self, params: ChamberModelParams, timeline: FaultTimeline) -> None:
        self._lock = threading.Lock()
        self._timeline = timeline
        self._model = ChamberModel(params, timeline)
        self._units = UNITS_FAHRENHEIT if params.display_units == "F" else UNITS_CELSIUS
        self._word_order = WordOrder(params.word_order)
        self._t0: float | None = None

    # clock

    def start_clock(self) -> None:
        with self._lock:
            self._t0 = time.monotonic()

    def elapsed(self) -> float:
        t0 = self._t0
        return 0.0 if t0 is None else time.monotonic() - t0

    # faults

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
        exception = _last(active, "exception")
        return LinkFaults(
            no_reply=_last(active, "no_reply") is not None,
            disconnect=_last(active, "disconnect") is not None,
            exception=None if exception is None else int(exception.params["code"]),
        )

    def read(self, points: Sequence[Point]) -> list[list[int]]:
        with self._lock:
            t = self.elapsed()
            order = self._order(t)
            return [self._encode(point, self._value(point.name, t), order) for point in points]

    def write(self, writes: Sequence[tuple[Point, list[int]]]) -> int | None:
        with self._lock:
            t = self.elapsed()
            order = self._order(t)
            changes: list[tuple[str, float | int]] = []
            for point, registers in writes:
                if point.name == "display_units":
                    if registers[0] not in (UNITS_CELSIUS, UNITS_FAHRENHEIT):
                        return ExcCodes.ILLEGAL_VALUE
                    changes.append((point.name, registers[0]))
                    continue
                value = decode_float32(registers, order)
                if not math.isfinite(value):
                    return ExcCodes.ILLEGAL_VALUE
                value_c = _f_to_c(value) if self._units == UNITS_FAHRENHEIT else value
                if not SETPOINT_LIMITS_C[0] <= value_c <= SETPOINT_LIMITS_C[1]:
                    return ExcCodes.ILLEGAL_VALUE
                changes.append((point.name, value_c))
            for name, value in changes:
                if name == "display_units":
                    self._units = int(value)
                else:
                    loop: Loop = "chamber" if name == "chamber_setpoint" else "saturator"
                    self._model.set_setpoint(loop, t, float(value))
            return None

    # values

    def reading(self, name: str) -> float | int:
        point = _POINTS_BY_NAME.get(name)
        if point is None:
            raise KeyError(f"no point {name!r}; known: {', '.join(_POINTS_BY_NAME)}")
        with self._lock:
            value = self._value(name, self.elapsed())
        return _float32(value) if point.dtype == "float32" else int(value)

    def _order(self, t: float) -> WordOrder:
        swapped = any(w.kind == "word_order_swapped" for w in self._timeline.active(t))
        return self._word_order.swapped() if swapped else self._word_order

    def _value(self, name: str, t: float) -> float | int:
        if name == "hardware_id":
            return HARDWARE_ID
        if name == "device_status":
            failed = any(w.kind == "device_fail" for w in self._timeline.active(t))
            return DEVICE_STATUS_FAIL if failed else DEVICE_STATUS_OK
        if name == "display_units":
            return self._units
        match name:
            case "chamber_setpoint" | "closed_loop_setpoint":
                value_c = self._model.setpoint("chamber", t)
            case "saturator_setpoint":
                value_c = self._model.setpoint("saturator", t)
            case "chamber_temperature":
                value_c = self._model.temperature("chamber", t)
            case "saturator_temperature":
                value_c = self._model.temperature("saturator", t)
            case _:
                raise KeyError(name)
        return _c_to_f(value_c) if self._units == UNITS_FAHRENHEIT else value_c

    @staticmethod
    def _encode(point: Point, value: float | int, order: WordOrder) -> list[int]:
        if point.dtype == "float32":
            return encode_float32(float(value), order)
        if point.dtype == "int32":
            return encode_int32(int(value), order)
        return [int(value)]


def _last(windows: Sequence[FaultWindow], kind: str) -> FaultWindow | None:
    """The most recently created active window of ``kind`` (hand-set faults win over scripts)."""
    matching = [window for window in windows if window.kind == kind]
    return matching[-1] if matching else None


# --- public simulator ---------------------------------------------------------------------------


class ChamberSimulator:
    """A Watlow F4T salt-spray chamber controller served over Modbus TCP.

    ``scenario`` is checked against :data:`CHAMBER_VOCABULARY`; its ``[model]`` keys override
    ``seed`` and ``preheated``. Faults set by hand add to the scenario's; :meth:`clear_faults`
    ends the hand-set ones only. ``set_fault``/``clear_faults`` are thread-safe.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        device_id: int = 1,
        seed: int = 0,
        scenario: Scenario | None = None,
        preheated: bool = True,
    ) -> None:
        scenario = (scenario or Scenario()).validated(CHAMBER_VOCABULARY)
        self.params = ChamberModelParams.model_validate(
            {"seed": seed, "preheated": preheated, **scenario.model}
        )
        self.scenario = scenario
        self._timeline = FaultTimeline(scenario.windows())
        self._device = _ChamberDevice(self.params, self._timeline)
        self._modbus = ModbusTcpDevice(
            self._device, name="F4T simulator", host=host, port=port, device_id=device_id
        )
        self._host = host
        self._port = port
        self.device_id = device_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> tuple[str, int]:
        """Start the clock and listen; port 0 picks a free port. Returns ``(host, port)``."""
        if self._loop is not None:
            raise RuntimeError("a ChamberSimulator starts once; make a new one to start again")
        self._loop = asyncio.get_running_loop()
        self._device.start_clock()
        host, port = await self._modbus.start()
        self._host, self._port = host, port
        self._watcher = asyncio.create_task(self._watch_timeline(), name="f4t-sim-timeline")
        return host, port

    async def stop(self) -> None:
        """Stop serving and close every connection; safe to call twice."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await self._modbus.stop()

    def set_fault(self, kind: str, **params: float | int) -> None:
        """Activate a fault from now until :meth:`clear_faults` (or another of the same kind)."""
        checked = CHAMBER_VOCABULARY.fault_params(kind, params)
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
        """The host listened on (as configured before :meth:`start`)."""
        return self._host

    @property
    def port(self) -> int:
        """The port listened on (0 before :meth:`start` when a free port was asked for)."""
        return self._port

    def elapsed(self) -> float:
        """Seconds on the simulator clock (the scenario's time base); 0 before :meth:`start`."""
        return self._device.elapsed()

    def reading(self, name: str) -> float | int:
        """The value a read of point ``name`` would return now, in display units.

        Floats come rounded to float32, exactly as a client decodes them.
        """
        return self._device.reading(name)

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
def running_chamber(**kwargs: Any) -> Iterator[ChamberSimulator]:
    """Run a :class:`ChamberSimulator` on its own event loop in a background thread.

    Takes the :class:`ChamberSimulator` keyword arguments. Start and stop are bounded
    (10 s each); the simulator is listening when the block is entered.
    """
    simulator = ChamberSimulator(**kwargs)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="f4t-simulator", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(_THREAD_START_TIMEOUT_S)
        yield simulator
    finally:
        try:
            asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(_THREAD_STOP_TIMEOUT_S)
            asyncio.run_coroutine_threadsafe(_cancel_other_tasks(), loop).result(
                _THREAD_STOP_TIMEOUT_S
            )
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_THREAD_STOP_TIMEOUT_S)
            if not thread.is_alive():
                loop.close()


async def _cancel_other_tasks() -> None:
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def serve(host: str, port: int, seed: int, scenario_path: Path | None) -> int:
    """Run the simulator for ``daq simulate chamber`` until SIGTERM or SIGINT.

    Prints one JSON line describing the endpoint to stdout once listening. Returns 0 after a
    clean stop, 2 for a bad scenario file, 1 when the address cannot be bound (the reason goes
    to stderr).
    """
    try:
        scenario = (
            None if scenario_path is None else load_scenario(scenario_path, CHAMBER_VOCABULARY)
        )
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(host, port, seed, scenario))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _serve(host: str, port: int, seed: int, scenario: Scenario | None) -> int:
    simulator = ChamberSimulator(host=host, port=port, seed=seed, scenario=scenario)
    bound_host, bound_port = await simulator.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        line = {
            "family": "chamber",
            "model": "watlow_f4t",
            "transport": "modbus-tcp",
            "host": bound_host,
            "port": bound_port,
            "address": simulator.address,
            "device_id": simulator.device_id,
        }
        print(json.dumps(line), flush=True)
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await simulator.stop()
    return 0
