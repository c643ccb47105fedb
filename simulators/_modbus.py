"""A Modbus TCP server for simulated register devices, with link-level fault injection.

Instrument simulators describe their registers as a table of :class:`Point` and implement
:class:`RegisterDevice` (compute registers on read, apply decoded writes); :class:`ModbusTcpDevice`
serves them with pymodbus and injects the faults that live below the register map.

How each fault uses pymodbus 3.16 (``pymodbus.server.ModbusTcpServer`` fed with
``pymodbus.simulator.SimDevice``/``SimData``, the non-deprecated datastore):

- Register values: one ``SimData`` per point fixes the legal addresses (anything else answers
  exception 02 before our code runs) and marks read-only points (writes to them answer 02).
  The ``SimDevice(action=...)`` coroutine runs on every request: for reads it overwrites the
  requested registers in place with values computed at that moment; for writes it decodes the
  written words and hands them to the device, which may refuse them with exception 03.
- Exception replies: the same ``action`` returns the configured ``ExcCodes`` member.
- No reply: the server's ``trace_packet`` hook sees each outgoing frame and returns ``b""``
  instead, so the request is read and processed but nothing goes back; the client times out.
- Disconnect: every handler in ``server.active_connections`` is closed; while the fault lasts,
  ``trace_connect`` closes new connections as soon as they are made and ``trace_packet`` closes
  a connection that sends a request (without decoding it).
- Wrong unit id: a catch-all ``SimDevice(id=0)`` answers exception 0x0B (gateway target failed
  to respond), the usual Modbus TCP answer for a unit that is not there; without it pymodbus
  3.16 raises ``KeyError`` inside the server and answers 04.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

__all__ = [
    "LinkFaults",
    "ModbusTcpDevice",
    "Point",
    "PointType",
    "RegisterDevice",
    "WordOrder",
    "decode_float32",
    "decode_int32",
    "encode_float32",
    "encode_int32",
]

_log = logging.getLogger(__name__)

#: Modbus TCP unit ids are one byte; pymodbus's SimDevice accepts 0..255.
_MAX_UNIT_ID = 255

PointType = Literal["float32", "int32", "uint16"]


class WordOrder(enum.Enum):
    """Order of the two 16-bit words of a 32-bit value (bytes inside a word are always big-endian).

    ``ABCD``: high word in the lower register address. ``CDAB``: low word first, which is what
    Watlow calls "the low order word contains the two low bytes".
    """

    ABCD = "ABCD"
    CDAB = "CDAB"

    def swapped(self) -> WordOrder:
        """The other word order."""
        return WordOrder.CDAB if self is WordOrder.ABCD else WordOrder.ABCD


def _words(raw: bytes, order: WordOrder) -> list[int]:
    high, low = struct.unpack(">HH", raw)
    return [high, low] if order is WordOrder.ABCD else [low, high]


def _raw(registers: Sequence[int], order: WordOrder) -> bytes:
    if len(registers) != 2:
        raise ValueError(f"a 32-bit value needs 2 registers, got {len(registers)}")
    first, second = registers
    high, low = (first, second) if order is WordOrder.ABCD else (second, first)
    return struct.pack(">HH", high, low)


def encode_float32(value: float, order: WordOrder) -> list[int]:
    """IEEE-754 single precision as two registers in ``order`` (35.0, CDAB -> [0x0000, 0x420C])."""
    return _words(struct.pack(">f", value), order)


def decode_float32(registers: Sequence[int], order: WordOrder) -> float:
    """Inverse of :func:`encode_float32`."""
    value: float = struct.unpack(">f", _raw(registers, order))[0]
    return value


def encode_int32(value: int, order: WordOrder) -> list[int]:
    """Signed 32-bit integer as two registers in ``order``."""
    return _words(struct.pack(">i", value), order)


def decode_int32(registers: Sequence[int], order: WordOrder) -> int:
    """Inverse of :func:`encode_int32`."""
    value: int = struct.unpack(">i", _raw(registers, order))[0]
    return value


_SIM_TYPES: dict[str, tuple[DataType, float | int]] = {
    "float32": (DataType.FLOAT32, 0.0),
    "int32": (DataType.INT32, 0),
    "uint16": (DataType.UINT16, 0),
}


@dataclass(frozen=True)
class Point:
    """One register point: name, 0-based PDU address, data type, and whether it is writable."""

    name: str
    address: int
    dtype: PointType
    writable: bool = False

    @property
    def width(self) -> int:
        """Number of 16-bit registers the point occupies."""
        return 1 if self.dtype == "uint16" else 2

    @property
    def end(self) -> int:
        """First address after the point."""
        return self.address + self.width

    def overlaps(self, address: int, count: int) -> bool:
        """True if the point shares a register with ``[address, address + count)``."""
        return self.address < address + count and address < self.end


class LinkFaults(NamedTuple):
    """Faults below the register map, as they stand at one instant."""

    no_reply: bool = False
    disconnect: bool = False
    exception: int | None = None


class RegisterDevice(Protocol):
    """What :class:`ModbusTcpDevice` needs from a simulated instrument."""

    @property
    def points(self) -> Sequence[Point]:
        """The register map."""
        ...

    def link_faults(self) -> LinkFaults:
        """The link-level faults active now."""
        ...

    def read(self, points: Sequence[Point]) -> list[list[int]]:
        """The registers of each point, as served now."""
        ...

    def write(self, writes: Sequence[tuple[Point, list[int]]]) -> int | None:
        """Apply writes (each point with its full, merged registers); an exception code refuses."""
        ...


class ModbusTcpDevice:
    """Serve one :class:`RegisterDevice` over Modbus TCP; start it inside the event loop."""

    def __init__(
        self, device: RegisterDevice, *, name: str, host: str, port: int, device_id: int
    ) -> None:
        if not 0 <= device_id <= _MAX_UNIT_ID:
            raise ValueError(f"device_id must be 0..{_MAX_UNIT_ID}, got {device_id}")
        self._device = device
        self._name = name
        self._points = sorted(device.points, key=lambda point: point.address)
        self._host = host
        self._port = port
        self._device_id = device_id
        self._server: ModbusTcpServer | None = None
        self._bound: tuple[str, int] | None = None

    @property
    def bound(self) -> tuple[str, int] | None:
        """``(host, port)`` actually listened on, once started."""
        return self._bound

    async def start(self) -> tuple[str, int]:
        """Listen; port 0 picks a free port. Returns the real ``(host, port)``."""
        if self._server is not None:
            raise RuntimeError("this Modbus TCP device is already started")
        simdata = [
            SimData(
                point.address,
                datatype=_SIM_TYPES[point.dtype][0],
                values=_SIM_TYPES[point.dtype][1],
                readonly=not point.writable,
            )
            for point in self._points
        ]
        devices = [SimDevice(self._device_id, simdata=simdata, action=self._action)]
        if self._device_id != 0:
            devices.append(
                SimDevice(
                    0,
                    simdata=[SimData(0, count=65536, datatype=DataType.REGISTERS)],
                    action=_absent_unit,
                )
            )
        server = ModbusTcpServer(
            devices,
            address=(self._host, self._port),
            trace_packet=self._trace_packet,
            trace_connect=self._trace_connect,
        )
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:  # pymodbus logs the OSError and raises this instead
            await _shutdown(server)
            raise OSError(
                f"{self._name} cannot listen on {self._host}:{self._port}"
                " (address in use or not available)"
            ) from exc
        listener = server.transport
        if not isinstance(listener, asyncio.Server) or not listener.sockets:
            await _shutdown(server)
            raise RuntimeError("pymodbus did not create a TCP listener")
        sockname = listener.sockets[0].getsockname()
        self._server = server
        self._bound = (str(sockname[0]), int(sockname[1]))
        return self._bound

    async def stop(self) -> None:
        """Close the listener and every connection; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        await _shutdown(server)
        # Let the transports deliver connection_lost before the loop may be closed.
        for _ in range(3):
            await asyncio.sleep(0)

    def drop_connections(self) -> None:
        """Close every open client connection (call on the server's event loop)."""
        if self._server is None:
            return
        handlers = list(self._server.active_connections.values())
        for handler in handlers:
            handler.close()
        if handlers:
            _log.info("%s %s: dropped %d connection(s)", self._name, self._bound, len(handlers))

    # pymodbus hooks ---------------------------------------------------------------------------

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        faults = self._device.link_faults()
        if faults.disconnect and self._server is not None:
            self._server.loop.call_soon(self.drop_connections)
            return b""
        if sending and faults.no_reply:
            return b""
        return data

    def _trace_connect(self, connected: bool) -> None:
        if connected and self._server is not None and self._device.link_faults().disconnect:
            self._server.loop.call_soon(self.drop_connections)

    async def _action(  # noqa: PLR0917 - the positional signature is pymodbus's SimAction
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        _ = function_code
        code = self._device.link_faults().exception
        if code is not None:
            return ExcCodes(code)
        touched = [point for point in self._points if point.overlaps(address, count)]
        if set_values is not None:
            return self._write(touched, address, set_values)
        for point, words in zip(touched, self._device.read(touched), strict=True):
            offset = point.address - start_address
            registers[offset : offset + point.width] = words
        return None

    def _write(
        self, touched: Sequence[Point], address: int, set_values: list[int] | list[bool]
    ) -> ExcCodes | None:
        # A write may cover part of a 32-bit point: merge it with the words served now.
        current = self._device.read(touched)
        writes: list[tuple[Point, list[int]]] = []
        for point, words in zip(touched, current, strict=True):
            merged = list(words)
            for index in range(point.width):
                written = point.address + index - address
                if 0 <= written < len(set_values):
                    merged[index] = int(set_values[written])
            writes.append((point, merged))
        code = self._device.write(writes)
        # pymodbus then copies set_values into its register list; reads overwrite them anyway.
        return None if code is None else ExcCodes(code)


async def _shutdown(server: ModbusTcpServer) -> None:
    # pymodbus 3.16 leaves ModbusBaseServer.shutdown() unannotated.
    await server.shutdown()  # type: ignore[no-untyped-call]


async def _absent_unit(  # noqa: PLR0917 - the positional signature is pymodbus's SimAction
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    _ = function_code, start_address, address, count, registers, set_values
    return ExcCodes.GATEWAY_NO_RESPONSE
