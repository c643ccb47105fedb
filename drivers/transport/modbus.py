"""Modbus link over TCP or RTU (serial), through pymodbus's synchronous clients.

Addresses:

- ``tcp://HOST:PORT`` (port 502 when left out)
- ``rtu://DEVICE?baudrate=9600&parity=N&bytesize=8&stopbits=1`` for RTU over a serial port,
  e.g. ``rtu:///dev/ttyUSB0?baudrate=19200``.

Several controllers on one RS-485 line (the same ``rtu://`` device) share one open port and one
scheduler that owns the wire (drivers/transport/rtu_line.py): their requests go out one at a
time, in turn. ``tcp://`` links keep one client each.

pymodbus's own retries are switched off: retrying and reconnecting belong to the runtime, which
backs off and keeps the other instruments running. A Modbus exception reply becomes an
``InstrumentError`` that names the code in words; no reply becomes ``InstrumentTimeout``; a
refused or dropped connection becomes ``TransportError``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from daq.errors import InstrumentError, InstrumentTimeout, TransportError
from drivers.transport import rtu_line
from drivers.transport.rtu_line import RtuLine, SerialSettings

__all__ = ["EXCEPTION_NAMES", "ModbusAddress", "ModbusLink", "parse_address"]

#: Modbus exception codes in words (Modbus Application Protocol v1.1b3 §7).
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge (busy with a long operation)",
    6: "device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target did not respond",
}


@dataclass(frozen=True, slots=True)
class ModbusAddress:
    kind: str  # "tcp" or "rtu"
    host: str = ""
    port: int = 502
    device: str = ""
    serial: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.kind == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return f"rtu://{self.device}"


def parse_address(address: str) -> ModbusAddress:
    """Parse a Modbus address. Raises ValueError with a plain-words reason."""
    parts = urlsplit(address)
    if parts.scheme == "tcp":
        if not parts.hostname:
            raise ValueError(f"'{address}' has no host; write tcp://HOST:PORT")
        try:
            port = parts.port or 502
        except ValueError as exc:
            raise ValueError(f"'{address}' has an invalid port") from exc
        return ModbusAddress("tcp", host=parts.hostname, port=port)
    if parts.scheme == "rtu":
        device = (parts.netloc + parts.path) or ""
        if not device:
            raise ValueError(f"'{address}' names no serial device; write rtu:///dev/ttyUSB0")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        serial: dict[str, Any] = {}
        try:
            if "baudrate" in query:
                serial["baudrate"] = int(query.pop("baudrate"))
            if "bytesize" in query:
                serial["bytesize"] = int(query.pop("bytesize"))
            if "stopbits" in query:
                serial["stopbits"] = int(query.pop("stopbits"))
        except ValueError as exc:
            raise ValueError(f"'{address}': baudrate, bytesize and stopbits are numbers") from exc
        if "parity" in query:
            parity = query.pop("parity").upper()
            if parity not in ("N", "E", "O"):
                raise ValueError(f"'{address}': parity is N, E or O")
            serial["parity"] = parity
        if query:
            raise ValueError(f"'{address}': unknown setting(s) {', '.join(sorted(query))}")
        return ModbusAddress("rtu", device=device, serial=serial)
    raise ValueError(
        f"'{address}' is not a Modbus address; write tcp://HOST:PORT or rtu:///dev/ttyUSB0"
    )


class ModbusLink:
    """A blocking Modbus client for one device id on one link. The constructor does no I/O."""

    def __init__(self, address: str, *, timeout: float, device_id: int = 1) -> None:
        self.address = parse_address(address)
        self.timeout = timeout
        self.device_id = device_id
        self._client: ModbusTcpClient | None = None
        self._line: RtuLine | None = None

    def open(self) -> None:
        """Connect. Raises TransportError when the device cannot be reached.

        An ``rtu://`` link attaches to its serial line's shared port (opening it when it is the
        first, or when a failure closed it); two links that give one port different serial
        settings are refused here.
        """
        self.close()
        a = self.address
        if a.kind == "rtu":
            self._line = rtu_line.attach(
                a.device, SerialSettings.from_options(a.serial), timeout=self.timeout
            )
            return
        client = ModbusTcpClient(
            a.host, port=a.port, timeout=self.timeout, retries=0, reconnect_delay=0
        )
        try:
            ok = client.connect()  # type: ignore[no-untyped-call]
        except (ModbusException, OSError) as exc:
            client.close()  # type: ignore[no-untyped-call]
            raise TransportError(f"cannot connect to {a}: {exc}") from exc
        if not ok:
            client.close()  # type: ignore[no-untyped-call]
            raise TransportError(f"cannot connect to {a} (refused or not there)")
        self._client = client

    def read_holding(self, address: int, count: int) -> list[int]:
        """Read ``count`` holding registers from ``address`` (0-based PDU address)."""
        client, line = self._client, self._line
        if client is None and line is None:
            raise TransportError(f"not connected to {self.address}")
        try:
            if line is not None:
                reply = line.transact(
                    self.device_id,
                    self.timeout,
                    lambda c, device_id: c.read_holding_registers(
                        address, count=count, device_id=device_id
                    ),
                )
            else:
                assert client is not None
                reply = client.read_holding_registers(
                    address, count=count, device_id=self.device_id
                )
        except ModbusIOException as exc:
            who = f"device {self.device_id} on " if line is not None else ""
            raise InstrumentTimeout(
                f"no reply from {who}{self.address} within {self.timeout:g} s"
                f" (reading register {address})"
            ) from exc
        except ConnectionException as exc:
            raise TransportError(f"connection to {self.address} lost: {exc.string}") from exc
        except (ModbusException, OSError) as exc:
            raise TransportError(f"link to {self.address} failed: {exc}") from exc
        if reply.isError():
            code = int(getattr(reply, "exception_code", 0))
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise InstrumentError(
                f"device answered Modbus exception {code:02d} ({name}) for register {address}"
            )
        registers = list(reply.registers)
        if len(registers) != count:
            raise InstrumentError(f"asked for {count} registers at {address}, got {len(registers)}")
        return registers

    def close(self) -> None:
        """Close the link. Idempotent; never raises."""
        line, self._line = self._line, None
        if line is not None:
            rtu_line.detach(line)
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(ModbusException, OSError):
                client.close()  # type: ignore[no-untyped-call]
