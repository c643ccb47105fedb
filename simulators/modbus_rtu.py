"""Simulated process controllers on one Modbus RTU line, served on a pty pair made by ``socat``.

Instruments (register maps from Hallmark's domain notes, INSTRUMENTS_AND_STANDARDS.md §2.2 and
§2.4; it pairs with ``drivers/maps/`` written from the same notes, and does not import drivers/):

- :class:`EzZonePm`, Watlow EZ-ZONE PM with Modbus RTU enabled (the factory default protocol is
  Standard Bus, not Modbus). Per the ``numat/watlow`` driver: process value at 360 and set point
  at 2160, each an IEEE float in two registers, high word first (ABCD). 362 is the input error
  register (0: none; ``gregoryleblanc/CsHeater`` AnalogInput.md). Set point 2160 is writable.
- :class:`Eurotherm3200`, per the 3200 manual HA028651 §15.5: PV.IN at 1, TG.SP at 2, MAN.OP 3,
  WRK.OP 4, WRK.SP at 5, as 16-bit scaled integers with ``decimals`` implied decimal places
  (values beyond ±327.67 wrap with 2 decimals, as on the real unit), and the IEEE float region
  at 0x8000 + 2 × address (ABCD). TG.SP is writable in both forms; WRK.SP follows it at once.

Addresses are 0-based PDU addresses (mbpoll's ``-0``). Default line: 9600 baud 8N1 (the 3200's
default; pty pairs do not emulate baud rate). Values do not drift: the chamber controller shows
35 °C (ASTM B117 / ISO 9227 salt spray) and the saturator controller 47 °C (this project's
choice), unless set otherwise.

Line setup: ``socat -d -d pty,raw,echo=0,link=DIR/ttyA pty,raw,echo=0,link=DIR/ttyB`` links two
ptys (socat is started and ended by its PID). A pymodbus ``ModbusSerialServer`` (RTU framer, one
``SimDevice`` per device id) serves ``ttyA``; clients open :attr:`RtuLine.path` (``ttyB``). A
reply to an id not on the line is dropped (pymodbus 3.16 would answer 04), so an absent id gets
silence, as on a real RS-485 line.

Fault knobs, per device id (:meth:`RtuLine.set_fault`):

- ``crc_error``: the reply leaves with its last CRC byte inverted (``trace_packet`` hook).
- ``exception``: the device answers Modbus exception ``code`` (2 or 4 typically; action hook).
- ``no_reply``: the request is processed but nothing goes back (``trace_packet`` returns b"").
- :meth:`RtuLine.reboot`: set points and process values back to the power-on defaults; with
  ``down_s`` the device is silent for that long first, as while it restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

__all__ = [
    "EUROTHERM_FLOAT_BASE",
    "SIMULATES",
    "Eurotherm3200",
    "EzZonePm",
    "Fault",
    "RtuLine",
    "SimController",
    "running_rtu_line",
]

#: The drivers (drivers/registry.py names) whose instruments this module simulates.
SIMULATES = ("watlow_ezzone_pm", "eurotherm_3200")

#: Eurotherm's IEEE float region: parameter ``a`` is at ``EUROTHERM_FLOAT_BASE + 2 * a``.
EUROTHERM_FLOAT_BASE = 0x8000

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0

FaultKind = Literal["crc_error", "exception", "no_reply"]


@dataclass(frozen=True)
class Fault:
    """A fault of one device: ``kind``, and the exception ``code`` for ``exception``."""

    kind: FaultKind
    code: int = 4

    def __post_init__(self) -> None:
        if self.kind not in ("crc_error", "exception", "no_reply"):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind == "exception":
            ExcCodes(self.code)  # ValueError for a code Modbus does not define


class SimController(Protocol):
    """What :class:`RtuLine` needs from a simulated controller."""

    device_id: int
    model: str

    def blocks(self) -> Sequence[tuple[int, int]]:
        """The served register blocks as ``(start, count)``; other addresses answer 02."""
        ...

    def registers(self) -> dict[int, int]:
        """Every served register's value now."""
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

    def registers(self) -> dict[int, int]:
        pv, sp = _float_words(self.pv), _float_words(self.setpoint)
        return {
            self.PV: pv[0],
            self.PV + 1: pv[1],
            self.INPUT_ERROR: 0,
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
    """Eurotherm 3200: PV.IN 1, TG.SP 2, WRK.SP 5 as scaled int16, and floats at 0x8000 + 2a."""

    PV = 1
    TARGET_SP = 2
    MANUAL_OP = 3
    WORKING_OP = 4
    WORKING_SP = 5

    def __init__(
        self, device_id: int = 2, *, pv: float = 47.0, setpoint: float = 47.0, decimals: int = 1
    ) -> None:
        self.device_id = device_id
        self.model = "Eurotherm 3200"
        self.decimals = decimals
        self._defaults = (pv, setpoint)
        self.pv = pv
        self.setpoint = setpoint

    def _values(self) -> dict[int, float]:
        return {
            self.PV: self.pv,
            self.TARGET_SP: self.setpoint,
            self.MANUAL_OP: 0.0,
            self.WORKING_OP: 0.0,
            self.WORKING_SP: self.setpoint,
        }

    def blocks(self) -> Sequence[tuple[int, int]]:
        return [(1, 5), (EUROTHERM_FLOAT_BASE + 2, 10)]

    def scaled(self, value: float) -> int:
        """The 16-bit register of a value: two's complement, wrapping beyond ±32767 counts."""
        return round(value * 10.0**self.decimals) & 0xFFFF

    def registers(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for address, value in self._values().items():
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


class RtuLine:
    """Serve controllers on one Modbus RTU line over a socat pty pair (own thread and loop)."""

    def __init__(
        self,
        devices: Sequence[SimController],
        *,
        faults: Mapping[int, Fault] | None = None,
        baudrate: int = 9600,
    ) -> None:
        ids = [d.device_id for d in devices]
        if not devices or len(set(ids)) != len(ids) or not all(1 <= i <= 247 for i in ids):
            raise ValueError(f"need one or more distinct device ids 1..247, got {ids}")
        self.devices = {d.device_id: d for d in devices}
        self.baudrate = baudrate
        self._lock = threading.Lock()
        self._faults: dict[int, Fault] = dict(faults or {})
        self._down_until: dict[int, float] = {}
        self._dir: Path | None = None
        self._socat: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusSerialServer | None = None
        #: The pty a client opens (socat's ``ttyB`` link), once started.
        self.path = ""

    # -- faults (thread-safe) -----------------------------------------------------------------

    def set_fault(self, device_id: int, kind: FaultKind, *, code: int = 4) -> None:
        """Give one device a fault until it is cleared."""
        self._device(device_id)
        fault = Fault(kind, code)
        with self._lock:
            self._faults[device_id] = fault

    def clear_fault(self, device_id: int | None = None) -> None:
        """Clear one device's fault, or every fault (and restart silence)."""
        with self._lock:
            if device_id is None:
                self._faults.clear()
                self._down_until.clear()
            else:
                self._faults.pop(device_id, None)
                self._down_until.pop(device_id, None)

    def reboot(self, device_id: int, *, down_s: float = 0.0) -> None:
        """Restart a device: defaults back, silent for ``down_s`` seconds meanwhile."""
        device = self._device(device_id)
        with self._lock:
            device.reboot()
            if down_s > 0:
                self._down_until[device_id] = time.monotonic() + down_s

    def _device(self, device_id: int) -> SimController:
        try:
            return self.devices[device_id]
        except KeyError:
            raise ValueError(f"no device {device_id} on this line") from None

    def _fault(self, device_id: int) -> Fault | None:
        with self._lock:
            down = self._down_until.get(device_id)
            if down is not None and time.monotonic() < down:
                return Fault("no_reply")
            return self._faults.get(device_id)

    # -- start / stop -------------------------------------------------------------------------

    def start(self) -> str:
        """Create the pty pair and serve on it. Returns the client's path."""
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
        while not (server_end.exists() and client_end.exists()):
            if self._socat.poll() is not None:
                raise RuntimeError(f"socat exited with {self._socat.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"socat made no pty pair within {_START_TIMEOUT_S} s")
            time.sleep(0.01)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="rtu-line", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(str(server_end)), loop).result(
            _START_TIMEOUT_S
        )
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
        fault = self._fault(data[0])
        if fault is None:
            return data
        if fault.kind == "no_reply":
            return b""
        if fault.kind == "crc_error":
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
            fault = self._fault(device.device_id)
            if fault is not None and fault.kind == "exception":
                return ExcCodes(fault.code)
            with self._lock:
                if set_values is not None:
                    code = device.write(address, [int(v) for v in set_values])
                    if code is not None:
                        return ExcCodes(code)
                current = device.registers()
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
) -> Iterator[RtuLine]:
    """An :class:`RtuLine` serving for the block; default: an EZ-ZONE PM at 1, a 3200 at 2."""
    line = RtuLine(devices or [EzZonePm(1), Eurotherm3200(2)], faults=faults, baudrate=baudrate)
    try:
        line.start()
        yield line
    finally:
        line.stop()
