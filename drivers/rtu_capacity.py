"""Can an RS-485 line carry its controllers' polls? Wire-time arithmetic for Modbus RTU.

Pure functions. For every ``rtu://`` line of a bench config, the wire time its instruments ask
for per second of running is summed; more than one second per second means polls will fall
behind however the scheduler orders them (drivers/transport/rtu_line.py sends one request at
a time).

Facts used, with their sources:

- A character on the wire is 1 start bit, 8 (``bytesize``) data bits, a parity bit when parity
  is even or odd, and 1 or 2 stop bits (Modbus over Serial Line Specification and
  Implementation Guide V1.02, §2.5.1 "The format for each byte in RTU mode"; 8N1 gives 10 bits).
- Frames are separated by at least 3.5 character times of silence (t3.5); above 19200 baud the
  spec recommends the fixed value 1.75 ms (same spec, §2.5.1.1;
  INSTRUMENTS_AND_STANDARDS.md §2.1). Each transaction has two frames, so 2 × t3.5.
- A read of ``n`` holding registers (function 0x03) is an 8-byte request (address, function,
  start address 2, quantity 2, CRC 2) and a 5 + 2n byte reply (address, function, byte count,
  2n data bytes, CRC 2) (Modbus Application Protocol V1.1b3 §6.3; RTU framing §2.5.1.1 of the
  serial spec).
- The device's turnaround (from the end of the request to the start of the reply) is not in
  any of our controllers' notes. Assumed 20 ms by default (:data:`DEFAULT_TURNAROUND_S`): a
  single-CPU device "typically begins responding within 20–30 ms" and simple ones in 5–20 ms
  (industrialmonitordirect.com, "Modbus RTU Slave Response Time"). The controller option
  ``turnaround_s`` overrides it per instrument.

A register group with its own ``interval_s`` (drivers/modbus_map.py) counts once per
``max(poll_interval, interval_s)``: the driver reads it at most that often. Groups are counted
as separate transactions even when a poll merges them into one read, so the figure errs on the
busy side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from daq.config import InstrumentConfig
from drivers.transport.modbus import parse_address
from drivers.transport.rtu_line import SerialSettings, inter_frame_delay_s

__all__ = [
    "DEFAULT_TURNAROUND_S",
    "NOTE_ABOVE",
    "BlockRead",
    "LineFinding",
    "PollPlan",
    "RtuInstrument",
    "char_time_s",
    "check_lines",
    "check_rtu_lines",
    "line_utilisation",
    "transaction_time_s",
    "wire_seconds_per_second",
]

#: Assumed device turnaround (see the module docstring for the source).
DEFAULT_TURNAROUND_S = 0.020
#: A line busier than this (but not over 1) gets a softer note: little room for a timeout.
NOTE_ABOVE = 0.8

#: Request of a 0x03 read: address, function, start (2), quantity (2), CRC (2).
REQUEST_BYTES = 8
#: Reply of a 0x03 read without its data: address, function, byte count, CRC (2).
REPLY_OVERHEAD_BYTES = 5


@dataclass(frozen=True, slots=True)
class BlockRead:
    """One block read of a poll: ``count`` registers from ``start``; ``interval_s`` when the
    block belongs to a register group read at most that often (None: every poll)."""

    start: int
    count: int
    interval_s: float | None = None


@dataclass(frozen=True, slots=True)
class PollPlan:
    """What one instrument puts on its line: its block reads and the device's turnaround."""

    reads: tuple[BlockRead, ...]
    turnaround_s: float = DEFAULT_TURNAROUND_S


@dataclass(frozen=True, slots=True)
class RtuInstrument:
    """One instrument on an RTU line, as the capacity check needs it."""

    name: str
    device: str
    serial: SerialSettings
    poll_interval: float
    plan: PollPlan


@dataclass(frozen=True, slots=True)
class LineFinding:
    """One finding about a line: ``error`` (the config cannot work), ``warning`` (polls will
    fall behind) or ``note`` (close to full)."""

    level: Literal["error", "warning", "note"]
    device: str
    message: str

    def __str__(self) -> str:
        return self.message


def char_time_s(serial: SerialSettings) -> float:
    """Seconds one character takes: (start + data + parity + stop bits) / baud rate."""
    bits = 1 + serial.bytesize + (0 if serial.parity == "N" else 1) + serial.stopbits
    return bits / serial.baudrate


def transaction_time_s(serial: SerialSettings, count: int, turnaround_s: float) -> float:
    """Wire time of one read of ``count`` holding registers: both frames, the t3.5 silence
    after each, and the device's turnaround."""
    chars = REQUEST_BYTES + REPLY_OVERHEAD_BYTES + 2 * count
    return chars * char_time_s(serial) + 2 * inter_frame_delay_s(serial) + turnaround_s


def wire_seconds_per_second(inst: RtuInstrument) -> float:
    """Seconds of wire time the instrument needs per second of running."""
    total = 0.0
    for read in inst.plan.reads:
        period = inst.poll_interval
        if read.interval_s is not None:
            period = max(period, read.interval_s)
        total += transaction_time_s(inst.serial, read.count, inst.plan.turnaround_s) / period
    return total


def line_utilisation(instruments: Sequence[RtuInstrument]) -> float:
    """Wire seconds per second the instruments on one line need together (over 1: too many)."""
    return sum(wire_seconds_per_second(i) for i in instruments)


def _controllers(n: int) -> str:
    return f"{n} controller" if n == 1 else f"{n} controllers"


def check_rtu_lines(instruments: Sequence[RtuInstrument]) -> list[LineFinding]:
    """Findings for every line the instruments use, in the order lines first appear."""
    lines: dict[str, list[RtuInstrument]] = {}
    for inst in instruments:
        lines.setdefault(inst.device, []).append(inst)
    findings: list[LineFinding] = []
    for device, members in lines.items():
        first = members[0]
        odd = [m for m in members if m.serial != first.serial]
        if odd:
            listed = "; ".join(f"'{m.name}' {m.serial}" for m in [first, *odd])
            findings.append(
                LineFinding(
                    "error",
                    device,
                    f"line {device} is given different serial settings ({listed}): one"
                    " RS-485 line has one baud rate and character format; make the rtu://"
                    " addresses agree",
                )
            )
            continue
        load = line_utilisation(members)
        baud = first.serial.baudrate
        who = _controllers(len(members))
        if load > 1.0:
            findings.append(
                LineFinding(
                    "warning",
                    device,
                    f"line {device} at {baud} baud needs {load:.3g} s of wire time per second"
                    f" for its {who}: polls will fall behind; poll less often or raise the"
                    " baud rate",
                )
            )
        elif load > NOTE_ABOVE:
            findings.append(
                LineFinding(
                    "note",
                    device,
                    f"line {device} at {baud} baud is {load:.0%} busy with its {who}: a"
                    " controller that stops answering holds the line for its whole timeout,"
                    " so polls may fall behind; consider polling less often",
                )
            )
    return findings


def check_lines(
    instruments: Sequence[InstrumentConfig],
    plans: Callable[[InstrumentConfig], PollPlan | None],
) -> list[LineFinding]:
    """Findings for the ``rtu://`` lines of a validated bench config.

    ``plans`` gives an instrument's poll plan, or None when it is not a Modbus controller
    (e.g. ``drivers.modbus_controller.capacity_plan``); a ValueError from it (options or map
    invalid, which the config check reports) leaves the instrument out. So are disabled
    instruments, push instruments, and addresses that are not ``rtu://``.
    """
    members: list[RtuInstrument] = []
    for inst in instruments:
        if not inst.enabled or inst.poll_interval is None:
            continue
        try:
            address = parse_address(inst.address)
        except ValueError:
            continue  # not a Modbus address; the config check reports bad ones
        if address.kind != "rtu":
            continue
        try:
            plan = plans(inst)
        except ValueError:
            continue  # bad options or map: the config check reports those
        if plan is None:
            continue
        members.append(
            RtuInstrument(
                name=inst.name,
                device=address.device,
                serial=SerialSettings.from_options(address.serial),
                poll_interval=inst.poll_interval,
                plan=plan,
            )
        )
    return check_rtu_lines(members)
