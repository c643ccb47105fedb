"""PLC-based Taber-style rotary abrasion testers (ASTM D4060) over Modbus TCP or RTU.

Instruments: a rotary abraser whose cycle counter, preset, load, turntable speed and run state
are served by a PLC as Modbus holding registers. No Taber abraser or counter publishes a data
interface (INSTRUMENTS_AND_STANDARDS.md §3.7, §6.5), so the register layout is **Hallmark's own
reference layout** (drivers/maps/abrasion_plc.toml), not a vendor's: a PLC programmer is asked to
serve it, and a PLC laid out otherwise is described by a map file of its own (option ``map``)
in the format of drivers/modbus_map.py. Transport: drivers/transport/modbus.py.

Reference layout (holding registers, 0-based PDU addresses, device id 1, 32-bit values high
word first, ABCD):

    0-1  cycle count (uint32)          6  state (0 idle, 1 running, 2 paused, 3 done,
    2-3  preset cycles (uint32)           4 stopped by operator, 5 fault)
    4    load per wheel, g (uint16)    7  test number, increments when a test starts
    5    turntable speed, rpm x 10     8  fault code (0 none, 1 motor overload, 2 vacuum fault,
                                          3 emergency stop)
                                       9  wheel type (10 = CS-10, 17 = CS-17)

Test facts (ASTM D4060, §3.7): CS-10/CS-17 wheels; 1000 g per wheel unless agreed (250 g and
500 g are alternatives); turntable 60 ± 2 rpm.

What a poll returns (one block read of the whole layout per poll):

- **running**: ``cycles`` (count, cycles), ``speed`` (rpm) and ``load`` (g per wheel) under
  measurement ``abrasion``; ``raw`` holds each value's register words.
- **paused**: ``cycles`` and ``load`` flagged ``paused``; no ``speed``, since a stopped
  turntable is not the test's speed (a speed limit would fail every pause).
- **idle, done, stopped, fault**: nothing, except the poll at which a test is found to have
  ended. An idle tester has no test to measure; the load and wheel of a test travel on its
  event.
- **a test's end** (the state leaves running/paused for done, stopped or fault; or the test
  number changed while we were not watching): ONE sample, channel ``test``, quantity
  ``count``, value = cycles completed, with ``extra`` fields ``test_number``, ``outcome``
  (``end point reached``, ``stopped by operator``, ``fault: motor overload``..., or
  ``unknown (end not seen)``), ``preset_cycles``, ``load_g``, ``wheel`` (``CS-10``, or the code
  when it has no name), ``fault_code`` (fault outcomes only), ``duration_s`` (host-measured
  from the first poll that saw it running to the poll that saw it end; only when both were
  seen, so it is good to about one poll interval) and ``mean_speed_rpm`` (over the polls that
  saw it running). Flags: ``speed_out_of_tolerance`` (mean speed outside ``speed_rpm`` ±
  ``speed_tolerance_rpm``, inclusive), ``stopped_early`` (fewer cycles than the preset, when
  the outcome is known), ``start_not_seen``, ``end_not_seen``.

Rules that keep a test from being recorded twice, or never: the last reported test number is
remembered for the life of the process, across reconnects. The first poll after start-up takes
a finished test it finds as already known (it may have been recorded before a restart); a test
running at start-up is recorded when it ends. A test the PLC resumes after it was reported
(stopped, then running with the same number) is not reported again; its cycles are in the
live series. A test whose number was never seen at all leaves only a gap in the numbers. Two
tests found at one poll are written 1 ns apart, since one series at one time is one point.

A state code the map does not name, or a value outside its plausible range (a turntable at
500 rpm; a count read in the wrong word order), fails the poll with a ``ProtocolError``; a
fault state is data, carried by the test's outcome, not an error.

The state machine (:func:`observe`) is pure: it takes what the registers said and the time,
and returns the new state and the samples, so that it is tested without any link.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from daq.errors import InstrumentError, ProtocolError, UnitError
from daq.instrument import InstrumentSettings, Mode
from daq.model import FieldValue, Sample
from daq.units import convert
from drivers.modbus_map import MapPoint, RegisterMap, WordOrder, decode, load_map, read_plan
from drivers.modbus_map import plausible as is_plausible
from drivers.transport.modbus import ModbusLink, parse_address

__all__ = [
    "DEFAULT_FAULT_NAMES",
    "DEFAULT_MAP",
    "DEFAULT_WHEEL_NAMES",
    "OUTCOME_UNKNOWN",
    "STATES",
    "AbrasionPlc",
    "AbrasionPlcOptions",
    "EventSettings",
    "Layout",
    "Snapshot",
    "State",
    "Tracker",
    "Watch",
    "build",
    "check_address",
    "check_options",
    "decode_snapshot",
    "layout_from_map",
    "lost_sight",
    "observe",
]

State = Literal["idle", "running", "paused", "done", "stopped", "fault"]
STATES: tuple[State, ...] = get_args(State)

#: The reference layout's fault codes (Hallmark's own; see the module docstring).
DEFAULT_FAULT_NAMES: dict[int, str] = {1: "motor overload", 2: "vacuum fault", 3: "emergency stop"}
#: The reference layout's wheel codes: the Taber wheel's number (ASTM D4060, §3.7).
DEFAULT_WHEEL_NAMES: dict[int, str] = {10: "CS-10", 17: "CS-17"}
#: The built-in map, drivers/maps/abrasion_plc.toml.
DEFAULT_MAP = Path(__file__).parent / "maps" / "abrasion_plc.toml"

OUTCOME_UNKNOWN = "unknown (end not seen)"
_STATE_NAMED: dict[str, State] = {s: s for s in STATES}
_IN_TEST: frozenset[str] = frozenset({"running", "paused"})
_ENDS: frozenset[str] = frozenset({"done", "stopped", "fault"})
#: Channel -> quantity the driver needs it to measure (None: a number or code, not emitted).
_REQUIRED: dict[str, str | None] = {
    "cycles": "count",
    "preset_cycles": "count",
    "load": "load",
    "speed": "speed",
    "test_number": None,
}
_OPTIONAL: dict[str, str | None] = {"fault_code": None, "wheel_code": None}
#: Inclusive limits: 62.0 rpm is inside 60 ± 2 despite floating-point dust.
_EPSILON = 1e-9

check_address = parse_address


class AbrasionPlcOptions(BaseModel):
    """Options under ``[instrument.options]`` for a PLC abrasion tester."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Modbus device id (unit id / slave address) of the PLC on the link.
    device_id: Annotated[int, Field(ge=0, le=247)] = 1
    #: The measurement the samples are written under (docs/schema.md).
    measurement: Annotated[str, Field(min_length=1)] = "abrasion"
    #: A register map file describing your PLC's layout instead of the reference layout.
    map: Path | None = None
    #: Overrides the map's word order for 32-bit values.
    word_order: WordOrder | None = None
    #: Turntable speed the test asks for (ASTM D4060: 60 rpm) and its tolerance (± 2 rpm).
    speed_rpm: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 60.0
    speed_tolerance_rpm: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 2.0
    #: Fault-code register value -> words for the outcome (0 means no fault).
    fault_names: dict[int, str] = Field(default_factory=lambda: dict(DEFAULT_FAULT_NAMES))
    #: Wheel-type register value -> wheel name.
    wheel_names: dict[int, str] = Field(default_factory=lambda: dict(DEFAULT_WHEEL_NAMES))


# -- the layout: which register holds what ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """A register map checked for what the abrasion driver needs."""

    model: str
    word_order: WordOrder
    #: 1 when the map numbers registers from 1 (the wire address is one less).
    base: int
    points: Mapping[str, MapPoint]
    state_address: int
    states: Mapping[int, State]
    #: (wire address, count) block reads covering every register.
    plan: tuple[tuple[int, int], ...]


def layout_from_map(regmap: RegisterMap, word_order: WordOrder | None = None) -> Layout:
    """Check a register map for the abrasion driver. Raises ValueError naming what is wrong."""
    where = f"register map '{regmap.model}'"
    problems: list[str] = []
    points = {p.channel: p for p in regmap.point}
    known = {**_REQUIRED, **_OPTIONAL}
    unknown = sorted(set(points) - set(known))
    if unknown:
        problems.append(
            f"point(s) {', '.join(unknown)} are not read by the abrasion driver"
            f" (it reads {', '.join(known)})"
        )
    missing = [c for c in _REQUIRED if c not in points]
    if missing:
        problems.append(f"point(s) {', '.join(missing)} are missing")
    for channel, quantity in known.items():
        point = points.get(channel)
        if point is None or quantity is None:
            continue
        if point.quantity != quantity:
            problems.append(f"point {channel} must have quantity '{quantity}'")
            continue
        try:
            convert(1.0, point.unit, quantity)
        except UnitError as exc:
            problems.append(f"point {channel}: {exc}")
    states: dict[int, State] = {}
    if regmap.status is None:
        problems.append("a [status] table describing the state register is missing")
    else:
        for code, name in regmap.status.values.items():
            if name not in STATES:
                problems.append(
                    f"[status] value {code} = '{name}' is not a state (use {', '.join(STATES)})"
                )
            else:
                states[code] = _STATE_NAMED[name]
        for needed in ("running", "done"):
            if needed not in states.values():
                problems.append(f"[status] values name no '{needed}' state")
    if problems:
        raise ValueError("\n".join(f"{where}: {p}" for p in problems))
    assert regmap.status is not None  # checked above
    spans = [(regmap.wire(p.address), p.width) for p in regmap.point]
    spans.append((regmap.wire(regmap.status.address), 1))
    return Layout(
        model=regmap.model,
        word_order=word_order or regmap.word_order,
        base=regmap.base,
        points=points,
        state_address=regmap.status.address,
        states=states,
        plan=tuple(read_plan(spans)),
    )


# -- one poll's registers, decoded -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the tester's registers said at one poll, decoded (load in g, speed in rpm)."""

    state: State
    test_number: int
    cycles: int
    preset_cycles: int = 0
    load_g: float = 0.0
    speed_rpm: float = 0.0
    fault_code: int | None = None
    wheel_code: int | None = None
    #: channel -> "address: words in hex", for the samples' ``raw``.
    raw: Mapping[str, str] = field(default_factory=dict)
    #: Every register read, "address: words", for a test event's ``raw``.
    block_raw: str = ""


def _words(words: Mapping[int, int], start: int, count: int, what: str) -> list[int]:
    try:
        return [words[start + i] for i in range(count)]
    except KeyError as exc:
        raise ProtocolError(f"register {exc.args[0]} ({what}) was not read") from exc


def decode_snapshot(words: Mapping[int, int], layout: Layout) -> Snapshot:
    """Decode the registers read (wire address -> word). Raises ProtocolError for a state code
    the map does not name and for a value outside its plausible range."""
    values: dict[str, float] = {}
    raw: dict[str, str] = {}
    for channel, point in layout.points.items():
        regs = _words(words, point.address - layout.base, point.width, channel)
        value = decode(regs, point.type, layout.word_order)
        if point.scale != 1.0:
            value = round(value * point.scale, 9)  # 620 x 0.1 is 62.000000000000007
        if not is_plausible(value, point.plausible):
            hint = f": check word_order (now {layout.word_order})" if point.width == 2 else ""
            bounds = point.plausible
            where = (
                "not a plausible value"
                if bounds is None
                else (f"outside the plausible {bounds[0]:g} to {bounds[1]:g}")
            )
            raise ProtocolError(
                f"register {point.address} ({channel}) reads {value:.6g} {point.unit},"
                f" {where}{hint}"
            )
        values[channel] = value
        raw[channel] = f"{point.address}: " + " ".join(f"{r:04X}" for r in regs)
    (code,) = _words(words, layout.state_address - layout.base, 1, "state")
    state = layout.states.get(code)
    if state is None:
        named = ", ".join(f"{k} {v}" for k, v in sorted(layout.states.items()))
        raise ProtocolError(
            f"state register {layout.state_address} holds {code}, which is no state this map"
            f" knows ({named}): is this the right map, device id and PLC program?"
        )
    load = layout.points["load"]
    speed = layout.points["speed"]
    blocks = [
        f"{start + layout.base}: "
        + " ".join(f"{r:04X}" for r in _words(words, start, count, "block"))
        for start, count in layout.plan
    ]
    return Snapshot(
        state=state,
        test_number=round(values["test_number"]),
        cycles=round(values["cycles"]),
        preset_cycles=round(values["preset_cycles"]),
        load_g=convert(values["load"], load.unit, "load")[0],
        speed_rpm=convert(values["speed"], speed.unit, "speed")[0],
        fault_code=round(values["fault_code"]) if "fault_code" in values else None,
        wheel_code=round(values["wheel_code"]) if "wheel_code" in values else None,
        raw=raw,
        block_raw="; ".join(blocks),
    )


# -- the pure state machine ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventSettings:
    """What :func:`observe` needs to word its samples."""

    instrument: str
    measurement: str = "abrasion"
    speed_rpm: float = 60.0
    speed_tolerance_rpm: float = 2.0
    fault_names: Mapping[int, str] = field(default_factory=lambda: dict(DEFAULT_FAULT_NAMES))
    wheel_names: Mapping[int, str] = field(default_factory=lambda: dict(DEFAULT_WHEEL_NAMES))


@dataclass(frozen=True, slots=True)
class Watch:
    """A test seen running and not yet reported."""

    test_number: int
    #: Time of the first poll that saw it running, when its start was seen; else None.
    started_ns: int | None
    #: The last registers seen while it ran.
    last: Snapshot
    speed_sum_rpm: float = 0.0
    speed_polls: int = 0


@dataclass(frozen=True, slots=True)
class Tracker:
    """What the driver remembers between polls (and across reconnects)."""

    #: The test number last reported, or taken as known at start-up.
    reported: int | None = None
    #: The registers of the previous poll; None before the first poll of the process.
    previous: Snapshot | None = None
    #: False after a reconnect: the previous poll may be long ago.
    continuous: bool = False
    watch: Watch | None = None


def lost_sight(tracker: Tracker) -> Tracker:
    """The tracker after a (re)connect: what happened since the last poll is unknown."""
    return replace(tracker, continuous=False)


@dataclass(frozen=True, slots=True)
class _Ended:
    test_number: int
    cycles: int
    #: Outcome in words; None when the end was not seen.
    outcome: str | None
    #: Registers describing the test (preset, load, wheel, fault code).
    basis: Snapshot
    watch: Watch | None


def _outcome(snap: Snapshot, settings: EventSettings) -> str:
    if snap.state == "done":
        return "end point reached"
    if snap.state == "stopped":
        return "stopped by operator"
    code = snap.fault_code
    if code is None or code == 0:
        return "fault: no fault code given"
    return f"fault: {settings.fault_names.get(code, f'code {code}')}"


def observe(
    tracker: Tracker, snap: Snapshot, now_ns: int, settings: EventSettings
) -> tuple[Tracker, list[Sample]]:
    """One poll's registers through the state machine: the new tracker and the samples.

    Pure: no I/O, no clock (``now_ns`` is the poll's UTC time in ns). Never raises.
    """
    ended: list[_Ended] = []
    watch = tracker.watch
    reported = tracker.reported
    first = tracker.previous is None
    number = snap.test_number
    if watch is not None and watch.test_number != number:
        # The PLC moved on to another test between polls: the watched one ended unseen.
        ended.append(_Ended(watch.test_number, watch.last.cycles, None, watch.last, watch))
        reported = watch.test_number
        watch = None
    live: list[Sample] = []
    if snap.state in _IN_TEST:
        if watch is None and number != reported:
            prev = tracker.previous
            # Seen starting: the previous poll, just before, showed it not yet running; or
            # the count still reads 0 (at 60 rpm it reaches 1 within a second).
            start_seen = snap.cycles == 0 or (
                tracker.continuous
                and prev is not None
                and not (prev.state in _IN_TEST and prev.test_number == number)
            )
            watch = Watch(number, now_ns if start_seen else None, snap)
        if watch is not None:
            running = snap.state == "running"
            watch = Watch(
                number,
                watch.started_ns,
                snap,
                watch.speed_sum_rpm + (snap.speed_rpm if running else 0.0),
                watch.speed_polls + (1 if running else 0),
            )
        live = _live(snap, now_ns, settings)
    elif snap.state in _ENDS:
        if watch is not None:
            ended.append(_Ended(number, snap.cycles, _outcome(snap, settings), snap, watch))
            reported, watch = number, None
        elif number != reported:
            if not first:  # a whole test ran between two polls (or while the link was down)
                ended.append(_Ended(number, snap.cycles, _outcome(snap, settings), snap, None))
            reported = number
    elif watch is not None:  # idle: the watched test ended and was cleared between polls
        cycles = max(watch.last.cycles, snap.cycles)  # a count only grows within a test
        ended.append(_Ended(number, cycles, None, watch.last, watch))
        reported, watch = number, None
    elif number != reported:
        if not first and snap.cycles > 0:  # a whole test ran and was cleared between polls
            ended.append(_Ended(number, snap.cycles, None, snap, None))
        reported = number
    last = len(ended) - 1
    events = [_test_sample(e, now_ns - (last - i), settings) for i, e in enumerate(ended)]
    return Tracker(reported, snap, True, watch), [*events, *live]


def _live(snap: Snapshot, now_ns: int, settings: EventSettings) -> list[Sample]:
    paused = snap.state == "paused"
    flags: tuple[str, ...] = ("paused",) if paused else ()
    values: list[tuple[str, str, float, str]] = [("cycles", "count", float(snap.cycles), "cycles")]
    if not paused:
        values.append(("speed", "speed", snap.speed_rpm, "rpm"))
    values.append(("load", "load", snap.load_g, "g"))
    return [
        Sample(
            instrument=settings.instrument,
            measurement=settings.measurement,
            channel=channel,
            quantity=quantity,
            value=value,
            unit=unit,
            time_ns=now_ns,
            raw=snap.raw.get(channel, ""),
            flags=flags,
        )
        for channel, quantity, value, unit in values
    ]


def _test_sample(e: _Ended, time_ns: int, settings: EventSettings) -> Sample:
    basis = e.basis
    extra: list[tuple[str, FieldValue]] = [
        ("test_number", e.test_number),
        ("outcome", e.outcome or OUTCOME_UNKNOWN),
        ("preset_cycles", basis.preset_cycles),
        ("load_g", basis.load_g),
    ]
    if basis.wheel_code is not None:
        extra.append(("wheel", settings.wheel_names.get(basis.wheel_code, str(basis.wheel_code))))
    if basis.state == "fault" and e.outcome is not None and basis.fault_code is not None:
        extra.append(("fault_code", basis.fault_code))
    flags: list[str] = []
    w = e.watch
    if w is not None and w.started_ns is not None and e.outcome is not None:
        extra.append(("duration_s", round((time_ns - w.started_ns) / 1e9, 3)))
    if w is None or w.started_ns is None:
        flags.append("start_not_seen")
    if e.outcome is None:
        flags.append("end_not_seen")
    if w is not None and w.speed_polls:
        mean = w.speed_sum_rpm / w.speed_polls
        extra.append(("mean_speed_rpm", round(mean, 3)))
        if abs(mean - settings.speed_rpm) > settings.speed_tolerance_rpm + _EPSILON:
            flags.append("speed_out_of_tolerance")
    if e.outcome is not None and e.cycles < basis.preset_cycles:
        flags.append("stopped_early")
    return Sample(
        instrument=settings.instrument,
        measurement=settings.measurement,
        channel="test",
        quantity="count",
        value=float(e.cycles),
        unit="cycles",
        time_ns=time_ns,
        # The registers that describe the test: those of the poll that saw it end, else those
        # of the last poll that saw it run.
        raw=basis.block_raw,
        flags=tuple(flags),
        extra=tuple(extra),
    )


# -- the driver ----------------------------------------------------------------------------------


class AbrasionPlc:
    """A PLC-served rotary abrasion tester, polled over Modbus. The constructor does no I/O."""

    mode: Mode = "poll"

    def __init__(
        self, settings: InstrumentSettings, options: AbrasionPlcOptions, regmap: RegisterMap
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.options = options
        self.layout = layout_from_map(regmap, options.word_order)
        self.link = ModbusLink(
            settings.address, timeout=settings.timeout, device_id=options.device_id
        )
        self.events = EventSettings(
            instrument=settings.name,
            measurement=options.measurement,
            speed_rpm=options.speed_rpm,
            speed_tolerance_rpm=options.speed_tolerance_rpm,
            fault_names=dict(options.fault_names),
            wheel_names=dict(options.wheel_names),
        )
        #: Kept for the life of the driver, across reconnects: a test is never reported twice.
        self.tracker = Tracker()

    def connect(self) -> None:
        """Open the link and read the layout once: the PLC answers and speaks this map."""
        self.link.open()
        try:
            decode_snapshot(self._read(), self.layout)
        except BaseException:
            self.link.close()
            raise
        self.tracker = lost_sight(self.tracker)

    def _read(self) -> dict[int, int]:
        words: dict[int, int] = {}
        for start, count in self.layout.plan:
            for offset, value in enumerate(self.link.read_holding(start, count)):
                words[start + offset] = value
        return words

    def poll(self) -> list[Sample]:
        """Read every register once; return live values while a test runs, and ended tests."""
        snap = decode_snapshot(self._read(), self.layout)
        self.tracker, samples = observe(self.tracker, snap, time.time_ns(), self.events)
        return samples

    def receive(self, timeout: float) -> list[Sample]:
        raise InstrumentError(f"{self.name} is polled; it does not push results")

    def close(self) -> None:
        self.link.close()


def _load(options: AbrasionPlcOptions) -> RegisterMap:
    return load_map(options.map or DEFAULT_MAP)


def check_options(options: AbrasionPlcOptions) -> list[tuple[str, str]]:
    """Problems with the options' map file, as (key, message), for ``daq check``."""
    try:
        layout_from_map(_load(options), options.word_order)
    except ValueError as exc:
        return [("options.map", str(exc))]
    return []


def build(settings: InstrumentSettings, options: AbrasionPlcOptions) -> AbrasionPlc:
    """Build the driver with the options' map file, else the reference layout (no I/O)."""
    return AbrasionPlc(settings, options, _load(options))
