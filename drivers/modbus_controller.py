"""Modbus process controllers (chamber temperature and humidity loops), driven by a register map.

Instruments: Watlow F4T (map ``watlow_f4t``), and any controller whose registers are described
by a map file in drivers/maps/ (see drivers/modbus_map.py for the format). Transport: Modbus TCP
or RTU through pymodbus (drivers/transport/modbus.py).

Per poll the driver reads the display-unit register (so a front-panel switch between °C and °F
converts correctly, and is flagged ``unit_changed`` on the record), the status register, and
every point that is due, in as few block reads as the map allows. A point without
``interval_s`` is due on every poll; points with an ``interval_s`` form a register group that is
due when that many seconds have passed since the group was last read (the first poll reads
everything). A poll returns samples for the points it read only.

A value outside its plausible range (the symptom of a wrong word order: 35.0 read CDAB as ABCD
is about 2.4e-41) fails the poll with a ``ProtocolError`` that says to check ``word_order``:
such values are never recorded.

A process value whose registers do not change for ``stuck_after_s`` seconds is flagged
``stuck`` (a frozen sensor or controller); set points never are.

Quirks: Watlow serves floats low word first (CDAB) by default, but the word order is a field
setting (the F4T Data Map parameter; byte-swapped BADC has been reported), hence the option.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from daq.config import InstrumentConfig
from daq.errors import InstrumentError, ProtocolError
from daq.instrument import InstrumentSettings, Mode
from daq.model import Sample
from drivers.modbus_map import (
    MapPoint,
    RegisterMap,
    WordOrder,
    decode,
    load_map,
    plausible,
    read_plan,
)
from drivers.rtu_capacity import DEFAULT_TURNAROUND_S, BlockRead, PollPlan
from drivers.transport.modbus import ModbusLink

__all__ = ["MAPS_DIR", "ModbusController", "ModbusControllerOptions", "build", "capacity_plan"]

MAPS_DIR = Path(__file__).parent / "maps"


class ModbusControllerOptions(BaseModel):
    """Options under ``[instrument.options]`` for a Modbus controller."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Modbus device id (unit id / slave address) on the link.
    device_id: Annotated[int, Field(ge=0, le=247)] = 1
    #: Overrides the map's word order for 32-bit values.
    word_order: WordOrder | None = None
    #: A register map file of your own instead of the driver's built-in one.
    map: Path | None = None
    #: The measurement the points are written under (docs/schema.md).
    measurement: str = "chamber"
    #: Overrides the map's ``stuck_after_s`` for the points that have one (0 turns it off).
    stuck_after_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    #: Seconds the controller takes to start its reply, assumed for the RS-485 line-capacity
    #: check only (drivers/rtu_capacity.py); it is not a timeout.
    turnaround_s: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = DEFAULT_TURNAROUND_S


class ModbusController:
    """A map-driven Modbus controller. The constructor does no I/O."""

    mode: Mode = "poll"

    def __init__(
        self, settings: InstrumentSettings, options: ModbusControllerOptions, regmap: RegisterMap
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.options = options
        self.map = regmap
        self.word_order: WordOrder = options.word_order or regmap.word_order
        self.link = ModbusLink(
            settings.address, timeout=settings.timeout, device_id=options.device_id
        )
        #: Registers read on every poll whatever is due: display unit and status.
        self._always: list[tuple[int, int]] = []
        if regmap.display_unit is not None:
            self._always.append((regmap.wire(regmap.display_unit.address), 1))
        if regmap.status is not None:
            self._always.append((regmap.wire(regmap.status.address), 1))
        for check in regmap.input_error:
            self._always.append((regmap.wire(check.address), 1))
        self._plan = read_plan(self._always + self._spans(regmap.point))
        # register group (its interval_s) -> monotonic time it was last read in a good poll
        self._group_read_at: dict[float, float] = {}
        self._display_unit: str | None = None
        # channel -> (registers last read, monotonic time they were first read so)
        self._unchanged_since: dict[str, tuple[list[int], float]] = {}

    def connect(self) -> None:
        self.link.open()
        try:
            self._read_all()  # proves the device answers and speaks this map
        except BaseException:
            self.link.close()
            raise

    def _spans(self, points: Sequence[MapPoint]) -> list[tuple[int, int]]:
        return [(self.map.wire(p.address), p.width) for p in points]

    def _due(self, now: float) -> list[MapPoint]:
        """The points to read on a poll at monotonic time ``now``."""
        due = []
        for point in self.map.point:
            interval = point.interval_s
            last = self._group_read_at.get(interval) if interval is not None else None
            if interval is None or last is None or now - last >= interval:
                due.append(point)
        return due

    def block_reads(self) -> list[BlockRead]:
        """The block reads of polling, per register group (for the line-capacity check).

        The every-poll group carries the display-unit and status registers; each group with an
        ``interval_s`` is planned on its own, as when it alone is due.
        """
        groups: dict[float | None, list[MapPoint]] = {None: []}
        for point in self.map.point:
            groups.setdefault(point.interval_s, []).append(point)
        reads: list[BlockRead] = []
        for interval, points in groups.items():
            spans = self._spans(points) + (self._always if interval is None else [])
            reads.extend(BlockRead(start, count, interval) for start, count in read_plan(spans))
        return reads

    def capacity_plan(self) -> PollPlan:
        """This controller's load on its line, for drivers/rtu_capacity.py."""
        return PollPlan(tuple(self.block_reads()), self.options.turnaround_s)

    def _read_all(self) -> dict[int, int]:
        return self._read(self._plan)

    def _read(self, plan: Sequence[tuple[int, int]]) -> dict[int, int]:
        registers: dict[int, int] = {}
        for start, count in plan:
            for offset, value in enumerate(self.link.read_holding(start, count)):
                registers[start + offset] = value
        return registers

    def _unit_of_display(self, registers: dict[int, int]) -> str:
        du = self.map.display_unit
        assert du is not None
        code = registers[self.map.wire(du.address)]
        unit = du.values.get(code)
        if unit is None:
            known = ", ".join(f"{k}={v}" for k, v in du.values.items())
            raise InstrumentError(
                f"display-unit register {du.address} holds {code}, which this map does not know"
                f" (known: {known})"
            )
        return unit

    def poll(self) -> list[Sample]:
        started = time.monotonic()
        due = self._due(started)
        if len(due) == len(self.map.point):
            registers = self._read_all()
        else:
            registers = self._read(read_plan(self._always + self._spans(due)))
        now = time.time_ns()
        flags: list[str] = []
        if self.map.status is not None:
            st = self.map.status
            code = registers[self.map.wire(st.address)]
            if code not in st.ok:
                flags.append(f"status={st.values.get(code, str(code))}")
        if self.map.display_unit is not None:
            display = self._unit_of_display(registers)
            if self._display_unit is not None and display != self._display_unit:
                flags.append(f"unit_changed:{self._display_unit}->{display}")
            self._display_unit = display
        due_names = {p.channel for p in due}
        for check in self.map.input_error:
            code = registers[self.map.wire(check.address)]
            hit = due_names.intersection(check.channels)
            if code not in check.ok and hit:
                meaning = check.values.get(code, "not a healthy code")
                raise InstrumentError(
                    f"{check.means} on {', '.join(sorted(hit))}: register {check.address} reads"
                    f" {code} ({meaning}); not recorded — check the sensor and its wiring"
                )
        samples = []
        for point in due:
            start = self.map.wire(point.address)
            regs = [registers[start + i] for i in range(point.width)]
            value = decode(regs, point.type, self.word_order) * point.scale
            if not plausible(value, point.plausible):
                raise ProtocolError(
                    f"{point.channel} decoded as {value:.6g}, outside the plausible range"
                    f" {point.plausible}: check word_order (now {self.word_order}), or a sensor"
                    " break pinning the value at its range limit"
                )
            unit = self._display_unit if point.unit == "display" else point.unit
            assert unit is not None
            point_flags = flags
            if self._is_stuck(point.channel, point.stuck_after_s, regs):
                point_flags = [*flags, "stuck"]
            regs_text = " ".join(f"{r:04X}" for r in regs)
            samples.append(
                Sample(
                    instrument=self.name,
                    measurement=self.options.measurement,
                    channel=point.channel,
                    quantity=point.quantity,
                    value=value,
                    unit=unit,
                    time_ns=now,
                    raw=f"{point.address}: {regs_text}",
                    flags=tuple(point_flags),
                )
            )
        for point in due:
            if point.interval_s is not None:
                self._group_read_at[point.interval_s] = started
        return samples

    def _is_stuck(self, channel: str, stuck_after_s: float, regs: list[int]) -> bool:
        limit = stuck_after_s
        if limit and self.options.stuck_after_s is not None:
            limit = self.options.stuck_after_s
        if not limit:
            return False
        now = time.monotonic()
        last, since = self._unchanged_since.get(channel, ([], now))
        if regs != last:
            since = now
        self._unchanged_since[channel] = (regs, since)
        return now - since >= limit

    def receive(self, timeout: float) -> list[Sample]:
        raise InstrumentError(f"{self.name} is polled; it does not push results")

    def close(self) -> None:
        self.link.close()


def build(
    settings: InstrumentSettings, options: ModbusControllerOptions, default_map: str
) -> ModbusController:
    """Build a controller with its map: the option's file, else the built-in ``default_map``."""
    path = options.map or MAPS_DIR / f"{default_map}.toml"
    return ModbusController(settings, options, load_map(path))


def capacity_plan(inst: InstrumentConfig, default_map: str) -> PollPlan:
    """The line load of a validated map-controller instrument (no I/O but reading its map).

    Raises ValueError (pydantic's ValidationError is one) when its options or map are invalid.
    """
    options = ModbusControllerOptions.model_validate(inst.options)
    settings = InstrumentSettings(inst.name, inst.address, inst.timeout)
    return build(settings, options, default_map).capacity_plan()
