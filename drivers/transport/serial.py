"""Line-oriented links to serial instruments: pyserial ports and URLs, or a VISA ASRL resource.

Force and torque gauges speak short ASCII lines: a command ending in CR (or CR-LF), a reply
ending in CR-LF (Mark-10) or CR alone (Imada). This module turns a byte stream into such lines
and knows nothing of what they mean.

Addresses (``parse_line_address``):

- A port name or path: ``/dev/ttyUSB0``, ``/dev/ttyACM0``, ``/dev/pts/3`` (a pty), ``COM3``.
- Any pyserial URL: ``socket://HOST:PORT`` (a serial-to-Ethernet server in raw TCP mode),
  ``rfc2217://HOST:PORT`` (a Telnet COM-port server), ``loop://`` (echoes what is written; for
  tests of this module). Opened with ``serial.serial_for_url``.
- ``visa://ASRL<port>::INSTR`` for a lab that drives its gauges through pyvisa:
  ``visa://ASRL/dev/ttyUSB0::INSTR`` or ``visa://ASRL/dev/pts/3::INSTR`` (pyvisa-py names a POSIX
  port ``ASRL<path>::INSTR``), ``visa://ASRL3::INSTR`` (COM3 on Windows). The pyvisa backend is
  ``@py`` (pyvisa-py) unless the query names another (``?backend=@ivi``). Only serial (ASRL)
  resources: a serial server is reached with ``socket://`` instead.

Every form takes serial settings in its query: ``?baudrate=19200&bytesize=8&parity=N&stopbits=1``
(parity N, E, O, M or S; stopbits 1, 1.5 or 2). The driver's options give the same settings;
an option that is set wins over the address, and the driver's default fills what neither gives.
Other query keys of a pyserial URL (``?logging=debug``) are passed on to pyserial.

Reading (``read_line``): bytes are collected until a terminator (CR-LF or CR by default) ends a
line. A line split across reads is joined; an LF left over from a CR-LF that was cut between
two reads is dropped; bytes that are not printable ASCII (0x00, 0xFF, line noise on connect or
hot-plug) are removed and counted in ``garbage``; a run of bytes longer than ``max_line``
without a terminator is thrown away (counted too), so a device that never sends its terminator
cannot grow the buffer. When no complete line arrives before the deadline the read raises
``InstrumentTimeout``; it never waits longer than its timeout (plus one read slice of at most
50 ms). A partial line stays buffered for the next read, so a stream line cut by a timeout is
completed by the next call; ``discard_input`` throws it away before a new command.

Errors: pyserial's ``SerialException``, ``OSError`` and pyvisa's errors become
``TransportError`` (the link is gone: the runtime reconnects); no line in time becomes
``InstrumentTimeout``. Nothing else from pyserial or pyvisa leaves this module.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import termios
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlencode

import pyvisa
import serial
from pyvisa import constants

from daq.errors import InstrumentTimeout, TransportError

__all__ = [
    "DEFAULT_TERMINATORS",
    "LineAddress",
    "LineAssembler",
    "LineLink",
    "SerialLink",
    "SerialSettings",
    "VisaLink",
    "open_line_link",
    "parse_line_address",
    "retry_interrupted",
]

log = logging.getLogger(__name__)

#: Reply terminators accepted by default: CR-LF (Mark-10) and CR alone (Imada).
DEFAULT_TERMINATORS: tuple[bytes, ...] = (b"\r\n", b"\r")

#: Longest wait inside one low-level read, so that deadlines are kept to within this.
_SLICE_S = 0.05

_PARITIES = ("N", "E", "O", "M", "S")
_BYTESIZES = (5, 6, 7, 8)
_STOPBITS = (1.0, 1.5, 2.0)
_SETTING_KEYS = ("baudrate", "bytesize", "parity", "stopbits")


# -- addresses ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Serial line settings; ``None`` means "not given here"."""

    baudrate: int | None = None
    bytesize: int | None = None
    parity: str | None = None
    stopbits: float | None = None

    def over(self, fallback: SerialSettings) -> SerialSettings:
        """These settings, with ``fallback`` filling what is not given."""
        return SerialSettings(
            baudrate=self.baudrate if self.baudrate is not None else fallback.baudrate,
            bytesize=self.bytesize if self.bytesize is not None else fallback.bytesize,
            parity=self.parity if self.parity is not None else fallback.parity,
            stopbits=self.stopbits if self.stopbits is not None else fallback.stopbits,
        )

    def describe(self) -> str:
        """``19200 8N1`` style, for messages."""
        stop = "" if self.stopbits is None else f"{self.stopbits:g}"
        return f"{self.baudrate or '?'} {self.bytesize or '?'}{self.parity or '?'}{stop or '?'}"


@dataclass(frozen=True, slots=True)
class LineAddress:
    """A parsed line-link address.

    ``target`` is what pyserial opens (a path or URL, with only pyserial's own query keys left)
    or, for ``kind == "visa"``, the VISA resource name.
    """

    kind: Literal["serial", "visa"]
    target: str
    settings: SerialSettings = SerialSettings()
    backend: str = "@py"

    def __str__(self) -> str:
        return f"visa://{self.target}" if self.kind == "visa" else self.target


def _settings_from(query: dict[str, str], address: str) -> SerialSettings:
    baudrate = bytesize = None
    stopbits = None
    parity = None
    try:
        if "baudrate" in query:
            baudrate = int(query["baudrate"])
        if "bytesize" in query:
            bytesize = int(query["bytesize"])
        if "stopbits" in query:
            stopbits = float(query["stopbits"])
    except ValueError as exc:
        raise ValueError(f"'{address}': baudrate, bytesize and stopbits are numbers") from exc
    if baudrate is not None and baudrate <= 0:
        raise ValueError(f"'{address}': baudrate must be positive")
    if bytesize is not None and bytesize not in _BYTESIZES:
        raise ValueError(f"'{address}': bytesize is 5, 6, 7 or 8")
    if stopbits is not None and stopbits not in _STOPBITS:
        raise ValueError(f"'{address}': stopbits is 1, 1.5 or 2")
    if "parity" in query:
        parity = query["parity"].upper()
        if parity not in _PARITIES:
            raise ValueError(f"'{address}': parity is N, E, O, M or S")
    return SerialSettings(baudrate, bytesize, parity, stopbits)


def parse_line_address(address: str) -> LineAddress:
    """Parse a serial or VISA address (forms in the module docstring). Raises ValueError."""
    address = address.strip()
    if not address:
        raise ValueError("the address is empty; write e.g. /dev/ttyUSB0 or socket://HOST:PORT")
    base, _, query_text = address.partition("?")
    try:
        pairs = parse_qsl(query_text, keep_blank_values=True, strict_parsing=bool(query_text))
    except ValueError as exc:
        raise ValueError(f"'{address}': the part after '?' is not key=value&...") from exc
    query = dict(pairs)
    ours = {k: v for k, v in query.items() if k in _SETTING_KEYS}
    rest = {k: v for k, v in query.items() if k not in _SETTING_KEYS}
    settings = _settings_from(ours, address)
    if base.lower().startswith("visa://"):
        resource = base[len("visa://") :]
        backend = rest.pop("backend", "@py")
        if rest:
            raise ValueError(f"'{address}': unknown setting(s) {', '.join(sorted(rest))}")
        upper = resource.upper()
        if not (upper.startswith("ASRL") and upper.endswith("::INSTR") and len(upper) > 11):
            raise ValueError(
                f"'{address}' is not a VISA serial resource; write e.g."
                " visa://ASRL/dev/ttyUSB0::INSTR (for a serial server use socket://HOST:PORT)"
            )
        return LineAddress("visa", resource, settings, backend or "@py")
    if "://" not in base:
        if not base:
            raise ValueError(f"'{address}' names no port; write e.g. /dev/ttyUSB0")
        if rest:
            raise ValueError(
                f"'{address}': unknown setting(s) {', '.join(sorted(rest))}"
                " (a port takes baudrate, bytesize, parity and stopbits)"
            )
        return LineAddress("serial", base, settings)
    target = base + ("?" + urlencode(rest) if rest else "")
    return LineAddress("serial", target, settings)


# -- turning bytes into lines (pure) -------------------------------------------------------------


def _printable(byte: int) -> bool:
    return 0x20 <= byte <= 0x7E or byte == 0x09


class LineAssembler:
    """Bytes in, lines out: partial lines, CR / CR-LF, garbage and overlong runs handled.

    Pure (no I/O), so the framing is tested without a port. ``garbage`` counts every byte
    thrown away: non-printable bytes, a stray LF, and runs longer than ``max_line``.
    """

    def __init__(self, max_line: int = 256) -> None:
        self.max_line = max_line
        self.garbage = 0
        self._buf = bytearray()
        self._after_cr = False

    def feed(self, data: bytes) -> None:
        """Add bytes as they came from the link."""
        self._buf += data

    def pending(self) -> bytes:
        """Bytes of a line not yet complete."""
        return bytes(self._buf)

    def clear(self) -> bytes:
        """Throw away whatever is buffered; returns it."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def next_line(self, terminators: Sequence[bytes] = DEFAULT_TERMINATORS) -> str | None:
        """The next complete, non-empty line (without its terminator), or None for now."""
        while True:
            if self._after_cr and self._buf[:1] == b"\n" and b"\r\n" in terminators:
                # The LF of a CR-LF whose CR ended the previous line on its own.
                del self._buf[0]
            if self._buf:
                self._after_cr = False
            end, term = self._find(terminators)
            if end < 0:
                if len(self._buf) > self.max_line:
                    self.garbage += len(self._buf)
                    log.debug("dropped %d bytes with no line end", len(self._buf))
                    self._buf.clear()
                return None
            raw = bytes(self._buf[:end])
            del self._buf[: end + len(term)]
            self._after_cr = term.endswith(b"\r")
            kept = bytes(b for b in raw if _printable(b))
            self.garbage += len(raw) - len(kept)
            text = kept.decode("ascii").strip()
            if text:
                return text

    def _find(self, terminators: Sequence[bytes]) -> tuple[int, bytes]:
        best, found = -1, b""
        for term in terminators:
            i = self._buf.find(term)
            if i < 0:
                continue
            # The earliest end wins; at the same place the longer terminator (CR-LF over CR).
            if best < 0 or i < best or (i == best and len(term) > len(found)):
                best, found = i, term
        return best, found


# -- links ---------------------------------------------------------------------------------------


class LineLink(Protocol):
    """What a line-oriented gauge driver needs from its link."""

    address: LineAddress
    timeout: float

    @property
    def garbage(self) -> int:
        """Bytes thrown away so far (non-printable, overlong runs)."""
        ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write_line(self, command: str, terminator: bytes = b"\r") -> None: ...

    def read_line(
        self, timeout: float | None = None, terminators: Sequence[bytes] = DEFAULT_TERMINATORS
    ) -> str: ...

    def read_lines(
        self, timeout: float, terminators: Sequence[bytes] = DEFAULT_TERMINATORS
    ) -> list[tuple[float, str]]: ...

    def query(
        self,
        command: str,
        timeout: float | None = None,
        terminator: bytes = b"\r",
        terminators: Sequence[bytes] = DEFAULT_TERMINATORS,
    ) -> str: ...

    def discard_input(self, terminators: Sequence[bytes] = DEFAULT_TERMINATORS) -> list[str]: ...


class _BaseLink(ABC):
    """Line handling shared by the pyserial and VISA links; subclasses move the bytes."""

    def __init__(
        self,
        address: LineAddress,
        *,
        timeout: float = 1.0,
        drain_s: float = 0.05,
        max_line: int = 256,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.drain_s = drain_s
        self._lines = LineAssembler(max_line)
        #: Stale bytes thrown away when the link was opened.
        self.stale_bytes = 0

    # subclasses ------------------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def _read_some(self, wait: float) -> bytes:
        """Whatever bytes arrive within ``wait`` s (returns as soon as some are there)."""
        ...

    @abstractmethod
    def _reset_input(self) -> None: ...

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    # public ----------------------------------------------------------------------------------
    @property
    def garbage(self) -> int:
        return self._lines.garbage

    def open(self) -> None:
        """Open the link and throw away stale input. Raises TransportError."""
        self.close()
        self._open()
        try:
            self._reset_input()
            # Bytes already on their way (a line the device was sending) come after the reset.
            self.stale_bytes = 0
            end = time.monotonic() + self.drain_s
            while (left := end - time.monotonic()) > 0:
                self.stale_bytes += len(self._read_some(left))
        except BaseException:
            self.close()
            raise
        self._lines = LineAssembler(self._lines.max_line)
        if self.stale_bytes:
            log.debug("%s: threw away %d stale bytes on open", self.address, self.stale_bytes)

    def close(self) -> None:
        """Close the link. Idempotent; never raises."""
        self._close()

    def write_line(self, command: str, terminator: bytes = b"\r") -> None:
        """Send ``command`` followed by ``terminator``."""
        self._write(command.encode("ascii") + terminator)

    def read_line(
        self, timeout: float | None = None, terminators: Sequence[bytes] = DEFAULT_TERMINATORS
    ) -> str:
        """The next complete line. Raises InstrumentTimeout when none comes within ``timeout``."""
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            line = self._lines.next_line(terminators)
            if line is not None:
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                partial = self._lines.pending()
                got = f" (got {partial[-40:]!r} without a line end)" if partial else ""
                raise InstrumentTimeout(
                    f"no complete line from {self.address} within {wait:g} s{got}"
                )
            self._lines.feed(self._read_some(min(left, _SLICE_S)))

    def read_lines(
        self, timeout: float, terminators: Sequence[bytes] = DEFAULT_TERMINATORS
    ) -> list[tuple[float, str]]:
        """Every line that completes within ``timeout`` s, each with its monotonic arrival time.

        Returns [] when none did; a partial line stays buffered for the next call.
        """
        deadline = time.monotonic() + timeout
        lines: list[tuple[float, str]] = []
        while True:
            now = time.monotonic()
            while (line := self._lines.next_line(terminators)) is not None:
                lines.append((now, line))
            left = deadline - now
            if left <= 0:
                return lines
            data = self._read_some(min(left, _SLICE_S))
            if data:
                self._lines.feed(data)

    def query(
        self,
        command: str,
        timeout: float | None = None,
        terminator: bytes = b"\r",
        terminators: Sequence[bytes] = DEFAULT_TERMINATORS,
    ) -> str:
        """Send a command and return the next line."""
        self.write_line(command, terminator)
        return self.read_line(timeout, terminators)

    def discard_input(self, terminators: Sequence[bytes] = DEFAULT_TERMINATORS) -> list[str]:
        """Throw away what has arrived unasked; returns the complete lines among it."""
        self._lines.feed(self._read_some(0.0))
        lines = []
        while (line := self._lines.next_line(terminators)) is not None:
            lines.append(line)
        self._lines.clear()
        return lines


#: How often a call interrupted by a signal is repeated before it counts as a failure.
_EINTR_RETRIES = 20


def retry_interrupted(call: Callable[[], object]) -> None:
    """Run ``call``, repeating it when a signal interrupted it (EINTR).

    pyserial's ``flush()`` is ``tcdrain()``, which Python does not repeat after a signal as it
    does ``read``/``write`` (PEP 475): a signal arriving while the port drains (a reload's
    SIGHUP, a child process ending, a debugger attaching) would otherwise read as a lost link.
    """
    for _ in range(_EINTR_RETRIES):
        try:
            call()
            return
        except termios.error as exc:
            if not exc.args or exc.args[0] != errno.EINTR:
                raise
    call()


def _translate(address: LineAddress, what: str, exc: BaseException) -> TransportError:
    detail = str(exc) or type(exc).__name__
    return TransportError(f"{what} {address} failed: {detail}")


class SerialLink(_BaseLink):
    """A line link over pyserial (``serial_for_url``). The constructor does no I/O."""

    def __init__(
        self,
        address: LineAddress,
        *,
        settings: SerialSettings = SerialSettings(),
        timeout: float = 1.0,
        drain_s: float = 0.05,
        max_line: int = 256,
    ) -> None:
        if address.kind != "serial":
            raise ValueError(f"{address} is not a pyserial address")
        super().__init__(address, timeout=timeout, drain_s=drain_s, max_line=max_line)
        self.settings = settings
        self._port: Any = None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def _open(self) -> None:
        s = self.settings
        kwargs: dict[str, Any] = {}
        if s.baudrate is not None:
            kwargs["baudrate"] = s.baudrate
        if s.bytesize is not None:
            kwargs["bytesize"] = s.bytesize
        if s.parity is not None:
            kwargs["parity"] = s.parity
        if s.stopbits is not None:
            kwargs["stopbits"] = int(s.stopbits) if s.stopbits in (1.0, 2.0) else s.stopbits
        try:
            port = serial.serial_for_url(
                self.address.target,
                do_not_open=True,
                timeout=_SLICE_S,
                write_timeout=self.timeout,
                **kwargs,
            )
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(
                f"cannot open {self.address} ({s.describe()}): {exc or type(exc).__name__}"
            ) from exc
        self._port = port

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def _require(self) -> Any:
        if self._port is None:
            raise TransportError(f"{self.address} is not open")
        return self._port

    def _write(self, data: bytes) -> None:
        port = self._require()
        try:
            port.write(data)
            retry_interrupted(port.flush)
        except serial.SerialTimeoutException as exc:
            raise TransportError(
                f"writing to {self.address} blocked for {self.timeout:g} s (flow control?)"
            ) from exc
        except (serial.SerialException, OSError, termios.error) as exc:
            # tcdrain() on a port that vanished mid-write raises termios.error, not OSError.
            raise _translate(self.address, "writing to", exc) from exc

    def _read_some(self, wait: float) -> bytes:
        port = self._require()
        try:
            waiting = port.in_waiting
            if waiting:
                return bytes(port.read(waiting))
            if wait <= 0:
                return b""
            # The port's timeout stays at one slice: changing it reconfigures a real port.
            first = bytes(port.read(1))
            waiting = port.in_waiting if first else 0
            return first + bytes(port.read(waiting)) if waiting else first
        except (serial.SerialException, OSError) as exc:
            raise _translate(self.address, "reading from", exc) from exc

    def _reset_input(self) -> None:
        port = self._require()
        try:
            port.reset_input_buffer()
        except (serial.SerialException, OSError, termios.error) as exc:
            raise _translate(self.address, "flushing", exc) from exc


class VisaLink(_BaseLink):
    """A line link over a pyvisa serial resource (``ASRL...::INSTR``).

    pyvisa's own termination handling is switched off; lines are framed here exactly as for
    pyserial, so both links behave the same. The constructor does no I/O.
    """

    def __init__(
        self,
        address: LineAddress,
        *,
        settings: SerialSettings = SerialSettings(),
        timeout: float = 1.0,
        drain_s: float = 0.05,
        max_line: int = 256,
    ) -> None:
        if address.kind != "visa":
            raise ValueError(f"{address} is not a VISA address")
        super().__init__(address, timeout=timeout, drain_s=drain_s, max_line=max_line)
        self.settings = settings
        self._rm: Any = None
        self._res: Any = None

    @property
    def is_open(self) -> bool:
        return self._res is not None

    def _open(self) -> None:
        s = self.settings
        kwargs: dict[str, Any] = {"timeout": max(1, round(self.timeout * 1000))}
        if s.baudrate is not None:
            kwargs["baud_rate"] = s.baudrate
        if s.bytesize is not None:
            kwargs["data_bits"] = s.bytesize
        if s.parity is not None:
            kwargs["parity"] = {
                "N": constants.Parity.none,
                "E": constants.Parity.even,
                "O": constants.Parity.odd,
                "M": constants.Parity.mark,
                "S": constants.Parity.space,
            }[s.parity]
        if s.stopbits is not None:
            kwargs["stop_bits"] = {
                1.0: constants.StopBits.one,
                1.5: constants.StopBits.one_and_a_half,
                2.0: constants.StopBits.two,
            }[s.stopbits]
        kwargs["end_input"] = constants.SerialTermination.none
        try:
            self._rm = pyvisa.ResourceManager(self.address.backend)
            self._res = self._rm.open_resource(self.address.target, **kwargs)
            self._res.read_termination = None
            self._res.write_termination = None
        except (pyvisa.Error, OSError, ValueError) as exc:
            self._close()
            raise TransportError(
                f"cannot open {self.address} ({s.describe()}): {exc or type(exc).__name__}"
            ) from exc

    def _close(self) -> None:
        res, self._res = self._res, None
        self._rm = None
        if res is not None:
            with contextlib.suppress(pyvisa.Error, OSError, ValueError):
                res.close()
        # The ResourceManager is not closed: it is pyvisa's one shared object per backend, and
        # closing it would close every other instrument's session too.

    def _require(self) -> Any:
        if self._res is None:
            raise TransportError(f"{self.address} is not open")
        return self._res

    def _write(self, data: bytes) -> None:
        res = self._require()
        try:
            res.write_raw(data)
        except (pyvisa.Error, OSError) as exc:
            raise _translate(self.address, "writing to", exc) from exc

    def _available(self, res: Any) -> int:
        return int(res.bytes_in_buffer)

    def _read_some(self, wait: float) -> bytes:
        res = self._require()
        deadline = time.monotonic() + max(wait, 0.0)
        try:
            while True:
                n = self._available(res)
                if n:
                    return bytes(res.read_bytes(n))
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                time.sleep(min(left, 0.002))
        except (pyvisa.Error, OSError) as exc:
            raise _translate(self.address, "reading from", exc) from exc

    def _reset_input(self) -> None:
        res = self._require()
        try:
            res.flush(constants.BufferOperation.discard_read_buffer)
        except (pyvisa.Error, OSError) as exc:
            raise _translate(self.address, "flushing", exc) from exc


def open_line_link(
    address: str | LineAddress,
    *,
    settings: SerialSettings = SerialSettings(),
    defaults: SerialSettings = SerialSettings(),
    timeout: float = 1.0,
    drain_s: float = 0.05,
    max_line: int = 256,
) -> SerialLink | VisaLink:
    """Build (not open) the link for an address.

    Settings are taken from ``settings`` (the driver's options) first, then the address query,
    then ``defaults`` (the driver's defaults for its instrument).
    """
    parsed = parse_line_address(address) if isinstance(address, str) else address
    effective = settings.over(parsed.settings).over(defaults)
    parsed = replace(parsed, settings=effective)
    if parsed.kind == "visa":
        return VisaLink(
            parsed, settings=effective, timeout=timeout, drain_s=drain_s, max_line=max_line
        )
    return SerialLink(
        parsed, settings=effective, timeout=timeout, drain_s=drain_s, max_line=max_line
    )
