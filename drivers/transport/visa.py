"""A blocking, message-based SCPI link over pyvisa: one command out, one line back.

SCPI instruments (the Watlow F4T's SCPI port, Keysight 34970A/DAQ970A data-acquisition units)
take a command line ending in LF and answer queries with one line ending in LF (IEEE 488.2
message exchange; the F4T SCPI library ``EspecNorthAmerica/WatlowF4T-SCPI-Lib`` →
``f4tscpi/f4t_class.py`` sends ``cmd + b"\\n"`` to TCP port 5025 and reads up to the LF).

Addresses (``check_address``) are VISA resource strings, checked with pyvisa's own parser (no
I/O):

- ``TCPIP::127.0.0.1::5025::SOCKET``: a raw SCPI socket (the F4T, a DAQ970A on port 5025).
  Read and write termination are LF.
- ``TCPIP::192.168.1.20::INSTR``: VXI-11 (34970A behind a LAN gateway, DAQ970A).
- ``ASRL/dev/ttyUSB0::INSTR`` (pyvisa-py names POSIX ports so), ``ASRL3::INSTR``: RS-232.
- ``GPIB0::9::INSTR``, ``USB0::...::INSTR`` where a backend supports them.

The pyvisa backend is not part of the address: it is the ``backend`` argument (a driver
option), ``@py`` (pyvisa-py) by default, ``@sim`` or ``path/to/devices.yaml@sim`` for
pyvisa-sim, ``@ivi`` for a vendor VISA.

Errors, translated here once (daq/errors.py):

- no reply within the timeout → ``InstrumentTimeout`` naming the command;
- refused, lost or missing resource, any other VISA or socket failure → ``TransportError``;
- a reply that is empty, not ASCII text, or holds control characters → ``ProtocolError``
  (a read with no bytes at all, not even the terminator, is a ``TransportError``: pyvisa-sim
  hands out such a session for a resource it does not know);
- ``check_errors`` reads ``SYST:ERR?`` until ``+0,"No error"`` (at most 20 reads; SCPI error
  queues hold 10–30 entries and are read oldest first; e.g. Agilent E1411B manual,
  "SYSTem:ERRor?": "When the queue is empty, each following SYSTem:ERRor? command returns
  +0, "No error"") and raises ``InstrumentError`` listing what it found.

pyvisa's ``ResourceManager`` is one shared object per backend: closing it closes every session
opened through it, other instruments' included. So this link closes only its own resource,
never the manager.

pyvisa-py quirks (pyvisa_py/tcpip.py, 0.8): a refused TCP connection is not reported by
``open_resource`` (``connect_ex``'s result is dropped) but by the first write, as an
``OSError``; a socket closed by the peer reads as a timeout. Opening can also raise a bare
``Exception("could not connect: ...")``, which is why ``open`` catches ``Exception``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

import pyvisa
from pyvisa import constants, rname

from daq.errors import InstrumentError, InstrumentTimeout, ProtocolError, TransportError

__all__ = [
    "DEFAULT_BACKEND",
    "MAX_ERROR_READS",
    "VisaAddress",
    "VisaLink",
    "check_address",
    "decode_reply",
    "parse_error_reply",
]

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "@py"

#: Most ``SYST:ERR?`` reads in one ``check_errors`` call.
MAX_ERROR_READS = 20

#: Message-based resource classes this link can drive, as ``(interface, class)``.
_MESSAGE_BASED = {
    ("TCPIP", "SOCKET"),
    ("TCPIP", "INSTR"),
    ("ASRL", "INSTR"),
    ("GPIB", "INSTR"),
    ("USB", "INSTR"),
}

_EXAMPLES = "TCPIP::HOST::5025::SOCKET, TCPIP::HOST::INSTR or ASRL/dev/ttyUSB0::INSTR"

#: Serialises ResourceManager creation and opening: the manager is shared between threads.
_OPEN_LOCK = threading.Lock()

#: ``<code>,"<message>"`` as SCPI error queues answer (``-113,"Undefined header"``).
_ERROR_REPLY = re.compile(r'^\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*$')


@dataclass(frozen=True, slots=True)
class VisaAddress:
    """A checked VISA resource string."""

    #: The resource as written (pyvisa accepts it so).
    resource: str
    #: ``TCPIP``, ``ASRL``, ``GPIB`` or ``USB``.
    interface: str
    #: ``SOCKET`` or ``INSTR``.
    resource_class: str

    @property
    def is_socket(self) -> bool:
        return self.resource_class == "SOCKET"

    def __str__(self) -> str:
        return self.resource


def check_address(text: str) -> VisaAddress:
    """Check a VISA resource string without opening it. Raises ValueError in words."""
    resource = text.strip()
    if not resource:
        raise ValueError(f"the VISA address is empty; write e.g. {_EXAMPLES}")
    if "@" in resource:
        raise ValueError(
            f"'{text}': the pyvisa backend (@py, @sim) is an option (backend = ...), not part"
            " of the address"
        )
    try:
        parsed = rname.parse_resource_name(resource)
    except rname.InvalidResourceName as exc:
        raise ValueError(
            f"'{text}' is not a VISA resource string ({exc}); write e.g. {_EXAMPLES}"
        ) from exc
    interface = constants.InterfaceType(parsed.interface_type_const).name.upper()
    key = (interface, parsed.resource_class)
    if key not in _MESSAGE_BASED:
        raise ValueError(
            f"'{text}' is a {interface} {parsed.resource_class} resource; SCPI needs a"
            f" message-based one: {_EXAMPLES}"
        )
    if isinstance(parsed, rname.TCPIPSocket):
        port = int(parsed.port) if parsed.port.isdigit() else -1
        if not 0 < port < 65536:
            raise ValueError(f"'{text}': the port must be a number from 1 to 65535")
    if isinstance(parsed, rname.TCPIPInstr) and parsed.lan_device_name.isdigit():
        raise ValueError(
            f"'{text}' reads as a VXI-11 device named {parsed.lan_device_name}; for a raw"
            f" socket on port {parsed.lan_device_name} write"
            f" TCPIP::{parsed.host_address}::{parsed.lan_device_name}::SOCKET"
        )
    if isinstance(parsed, (rname.TCPIPSocket, rname.TCPIPInstr)) and not parsed.host_address:
        raise ValueError(f"'{text}' names no host")
    return VisaAddress(resource, interface, parsed.resource_class)


def parse_error_reply(reply: str) -> tuple[int, str]:
    """``-113,"Undefined header"`` → ``(-113, "Undefined header")``. Raises ProtocolError."""
    m = _ERROR_REPLY.match(reply)
    if m is None:
        raise ProtocolError(f'SYST:ERR? answered {reply[:60]!r}, not <code>,"<message>"')
    return int(m.group(1)), m.group(2).strip()


def _is_timeout(exc: pyvisa.VisaIOError) -> bool:
    return exc.error_code == constants.StatusCode.error_timeout


class VisaLink:
    """A SCPI command/reply link through pyvisa. The constructor does no I/O.

    ``timeout`` is the reply timeout in seconds; ``name`` is the instrument's name, for
    messages.
    """

    def __init__(
        self,
        address: str | VisaAddress,
        *,
        backend: str = DEFAULT_BACKEND,
        timeout: float = 1.0,
        name: str = "",
        termination: str = "\n",
    ) -> None:
        self.address = check_address(address) if isinstance(address, str) else address
        self.backend = backend
        self.timeout = timeout
        self.name = name or str(self.address)
        self.termination = termination
        self._res: Any = None

    @property
    def is_open(self) -> bool:
        return self._res is not None

    def _where(self) -> str:
        if self.name == str(self.address):
            return self.name
        return f"{self.name} ({self.address})"

    def open(self) -> None:
        """Open the resource. Raises TransportError."""
        self.close()
        ms = max(1, round(self.timeout * 1000))
        try:
            with _OPEN_LOCK:
                rm = pyvisa.ResourceManager(self.backend)
                res: Any = rm.open_resource(
                    self.address.resource,
                    timeout=ms,
                    open_timeout=ms,
                    read_termination=self.termination,
                    write_termination=self.termination,
                )
        except pyvisa.VisaIOError as exc:
            if exc.error_code == constants.StatusCode.error_resource_not_found:
                raise TransportError(f"{self._where()}: no such VISA resource") from exc
            raise TransportError(f"cannot open {self._where()}: {exc}") from exc
        # pyvisa-py raises a bare Exception when a TCP connection cannot be made; anything
        # failing here means the link is not there.
        except Exception as exc:
            detail = str(exc) or type(exc).__name__
            raise TransportError(f"cannot open {self._where()}: {detail}") from exc
        # A new connection carries no reply from an earlier one; after a timeout the runtime
        # closes and reopens the link, so a late reply cannot be taken for the next one.
        self._res = res

    def close(self) -> None:
        """Close the resource (never the shared ResourceManager). Idempotent; never raises."""
        res, self._res = self._res, None
        if res is not None:
            with contextlib.suppress(Exception):
                res.close()

    def _require(self) -> Any:
        if self._res is None:
            raise TransportError(f"{self._where()} is not open")
        return self._res

    def write(self, command: str) -> None:
        """Send one command line. Raises TransportError."""
        res = self._require()
        try:
            res.write(command)
        except pyvisa.VisaIOError as exc:
            if _is_timeout(exc):
                raise InstrumentTimeout(
                    f"{self._where()} did not take '{command}' within {self.timeout:g} s"
                ) from exc
            raise TransportError(f"sending '{command}' to {self._where()} failed: {exc}") from exc
        except (pyvisa.Error, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise TransportError(
                f"sending '{command}' to {self._where()} failed: {detail}"
            ) from exc

    def query(self, command: str) -> str:
        """Send a query and return its reply line, stripped. Raises TransportError,
        InstrumentTimeout or ProtocolError."""
        self.write(command)
        res = self._require()
        try:
            data = bytes(res.read_raw())
        except pyvisa.VisaIOError as exc:
            if _is_timeout(exc):
                raise InstrumentTimeout(
                    f"{self._where()} did not answer '{command}' within {self.timeout:g} s"
                ) from exc
            raise TransportError(
                f"reading the reply to '{command}' from {self._where()} failed: {exc}"
            ) from exc
        except (pyvisa.Error, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise TransportError(
                f"reading the reply to '{command}' from {self._where()} failed: {detail}"
            ) from exc
        if not data:
            # Not even a terminator: the session is not connected to anything (pyvisa-sim
            # hands out such a session for a resource it does not know).
            raise TransportError(
                f"{self._where()} returned nothing for '{command}': is the resource there?"
            )
        return decode_reply(data, command, self._where())

    def read_errors(self) -> list[tuple[int, str]]:
        """Read the error queue (``SYST:ERR?``) until it is empty, at most MAX_ERROR_READS
        times; returns the errors found, oldest first."""
        errors: list[tuple[int, str]] = []
        for _ in range(MAX_ERROR_READS):
            code, message = parse_error_reply(self.query("SYST:ERR?"))
            if code == 0:
                return errors
            errors.append((code, message))
        log.warning(
            "%s: error queue still not empty after %d reads", self._where(), MAX_ERROR_READS
        )
        return errors

    def check_errors(self, after: str = "") -> None:
        """Raise InstrumentError listing the instrument's queued errors, if it has any."""
        errors = self.read_errors()
        if not errors:
            return
        listed = "; ".join(f'{code},"{msg}"' for code, msg in errors)
        more = " (and maybe more)" if len(errors) >= MAX_ERROR_READS else ""
        context = f" after {after}" if after else ""
        raise InstrumentError(f"{self._where()} reports errors{context}: {listed}{more}")


def decode_reply(data: bytes, command: str, where: str) -> str:
    """A reply's bytes as text, without its terminator. Raises ProtocolError when it is empty
    or not printable ASCII."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"{where} answered '{command}' with non-text bytes {data[:40]!r}"
        ) from exc
    text = text.strip()
    if not text:
        raise ProtocolError(f"{where} answered '{command}' with an empty line")
    if not text.isprintable():
        raise ProtocolError(f"{where} answered '{command}' with control characters: {text[:40]!r}")
    return text
