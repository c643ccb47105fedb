"""Recording proxies: sit between the daemon and an instrument and write a byte transcript.

The daemon is pointed at the proxy instead of the instrument; the proxy forwards every byte in
both directions unchanged and writes it, with its time, to a transcript (daq/transcript.py),
one flushed line per chunk, so a recording stopped by a crash or a pulled plug keeps what it had.

- :class:`TcpRecordingProxy` listens on a local TCP port and opens a connection to the target
  for every connection it accepts (one at a time: a second waits in the listen backlog until
  the first ends, as a Modbus TCP daemon uses one connection per instrument). Who closed first
  is recorded as ``{"event": "disconnect", "by": "host" | "instrument"}``.
- :class:`SerialRecordingProxy` makes a pseudo-terminal pair (:func:`os.openpty`, raw mode) that
  the daemon opens like a serial port (optionally through a symlink, the way udev publishes
  ``/dev/serial/by-id/...``), and forwards to the real device through pyserial's
  ``serial_for_url`` (so ``/dev/ttyUSB0``, another pty, ``socket://`` and ``loop://`` all work).
  A pty does not emulate baud rate (pyserial 3.5 docs, "pty"): settings the daemon makes on the
  pty do not reach the device, whose settings are the proxy's ``baudrate`` etc.

Both run background threads that :meth:`stop` ends (bounded); the ``recording_*`` context
managers start and stop them around a ``with`` block.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import selectors
import socket
import threading
import tty
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import serial

from daq.errors import TransportError
from daq.transcript import Side, TranscriptWriter, WireProtocol

__all__ = [
    "SerialRecordingProxy",
    "TcpRecordingProxy",
    "parse_host_port",
    "recording_serial_proxy",
    "recording_tcp_proxy",
]

log = logging.getLogger(__name__)

#: How often the threads look at their stop flag (seconds).
_SLICE_S = 0.05
_READ_SIZE = 65536
_JOIN_S = 5.0


def parse_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT`` (or ``tcp://HOST:PORT``) as a pair. Raises ValueError in words."""
    body = text.removeprefix("tcp://").rstrip("/")
    host, sep, port = body.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"'{text}' has no port; write HOST:PORT, e.g. 192.168.1.20:502")
        host, port = body, str(default_port)
    host = host.strip("[]")
    if not host:
        raise ValueError(f"'{text}' has no host; write HOST:PORT, e.g. 192.168.1.20:502")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"'{text}': the port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"'{text}': the port must be 0-65535")
    return host, number


def _open_out(out: Path | IO[str]) -> tuple[IO[str], bool]:
    if isinstance(out, Path):
        return out.open("w", encoding="utf-8"), True
    return out, False


class _Proxy:
    """Start/stop bookkeeping shared by both proxies."""

    name = "recorder"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stream: IO[str] | None = None
        self._owns_stream = False
        self.writer: TranscriptWriter | None = None
        #: Problems met while forwarding (logged too), oldest first.
        self.errors: list[str] = []

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _problem(self, text: str) -> None:
        self.errors.append(text)
        log.warning("%s: %s", self.name, text)

    def _join(self) -> None:
        self._stop.set()
        late = []
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(_JOIN_S)
                if thread.is_alive():
                    late.append(thread.name)
        if self.writer is not None:
            self.writer.close()
        if self._stream is not None and self._owns_stream:
            self._stream.close()
        self._stream = None
        if late:
            raise TimeoutError(f"{self.name}: threads did not stop within {_JOIN_S} s: {late}")

    def __enter__(self) -> _Proxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._join()


class TcpRecordingProxy(_Proxy):
    """Forward a local TCP port to ``target`` and record both directions (see module docstring).

    The constructor does no I/O; :meth:`start` binds and returns ``tcp://HOST:PORT``.
    """

    def __init__(
        self,
        target: str,
        out: Path | IO[str],
        *,
        listen: str = "127.0.0.1:0",
        protocol: WireProtocol = "raw",
        note: str = "",
        connect_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.target = parse_host_port(target)
        self.listen = parse_host_port(listen)
        self.out = out
        self.protocol: WireProtocol = protocol
        self.note = note
        self.connect_timeout = connect_timeout
        self.name = f"recorder for {self.target[0]}:{self.target[1]}"
        self._server: socket.socket | None = None
        self.host = ""
        self.port = 0
        #: Connections proxied so far.
        self.connections = 0

    @property
    def address(self) -> str:
        """Where the daemon connects: ``tcp://HOST:PORT``."""
        return f"tcp://{self.host}:{self.port}"

    def start(self) -> str:
        """Bind, open the transcript and start accepting; returns :attr:`address`."""
        server = socket.create_server(self.listen)
        server.settimeout(_SLICE_S)
        self._server = server
        self.host, self.port = server.getsockname()[:2]
        self._stream, self._owns_stream = _open_out(self.out)
        self.writer = TranscriptWriter(
            self._stream,
            transport="tcp",
            protocol=self.protocol,
            target=f"{self.target[0]}:{self.target[1]}",
            note=self.note,
        )
        self._spawn(self._accept_loop, "tcp-recorder")
        log.info("%s: listening on %s", self.name, self.address)
        return self.address

    def stop(self) -> None:
        """Stop forwarding, close every socket and the transcript (idempotent)."""
        try:
            self._join()
        finally:
            if self._server is not None:
                self._server.close()
                self._server = None

    def _accept_loop(self) -> None:
        server = self._server
        while server is not None and not self._stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stop.is_set():
                    self._problem(f"accepting a connection failed: {exc}")
                return
            with client:
                self._proxy(client)

    def _proxy(self, client: socket.socket) -> None:
        writer = self.writer
        if writer is None:
            return
        try:
            upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
        except OSError as exc:
            self._problem(
                f"cannot connect to {self.target[0]}:{self.target[1]} ({exc}); "
                "closed the daemon's connection"
            )
            return
        self.connections += 1
        writer.event("connect")
        with upstream, selectors.DefaultSelector() as sel:
            client.setblocking(False)
            upstream.setblocking(False)
            sel.register(client, selectors.EVENT_READ, ("tx", upstream, "host"))
            sel.register(upstream, selectors.EVENT_READ, ("rx", client, "instrument"))
            while not self._stop.is_set():
                for key, _ in sel.select(_SLICE_S):
                    direction, other, side = key.data
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(_READ_SIZE)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        writer.event("disconnect", side)
                        return
                    writer.chunk(direction, data)
                    try:
                        other.setblocking(True)
                        other.settimeout(self.connect_timeout)
                        other.sendall(data)
                        other.setblocking(False)
                    except OSError as exc:
                        other_side: Side = "instrument" if side == "host" else "host"
                        self._problem(f"forwarding to the {other_side} failed: {exc}")
                        writer.event("disconnect", other_side)
                        return
            writer.event("disconnect", "host")


class SerialRecordingProxy(_Proxy):
    """Serve a pty the daemon opens, forward to ``device_url`` and record (see module docstring).

    The constructor does no I/O; :meth:`start` opens the device and the pty and returns the path
    the daemon opens (``link`` when given, else the pty's own ``/dev/pts/N``).
    """

    def __init__(
        self,
        device_url: str,
        out: Path | IO[str],
        *,
        baudrate: int | None = None,
        link: Path | None = None,
        note: str = "",
        serial_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.device_url = device_url
        self.out = out
        self.baudrate = baudrate
        self.link = link
        self.note = note
        self.serial_options = dict(serial_options or {})
        self.name = f"recorder for {device_url}"
        self._device: Any = None
        self._master = -1
        self._slave = -1
        self.pty_path = ""

    @property
    def path(self) -> str:
        """What the daemon opens: the symlink if one was asked for, else the pty path."""
        return str(self.link) if self.link is not None else self.pty_path

    def start(self) -> str:
        """Open the device and the pty, start forwarding; returns :attr:`path`."""
        options = dict(self.serial_options)
        if self.baudrate is not None:
            options["baudrate"] = self.baudrate
        try:
            self._device = serial.serial_for_url(self.device_url, timeout=_SLICE_S, **options)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open {self.device_url} to record it: {exc}") from exc
        try:
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)
            self.pty_path = os.ttyname(self._slave)
            if self.link is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.link.unlink()
                self.link.symlink_to(self.pty_path)
            self._stream, self._owns_stream = _open_out(self.out)
        except BaseException:
            self._close_fds()
            raise
        self.writer = TranscriptWriter(
            self._stream,
            transport="serial",
            protocol="raw",
            target=self.device_url,
            note=self.note,
        )
        self._spawn(self._host_to_device, "serial-recorder-tx")
        self._spawn(self._device_to_host, "serial-recorder-rx")
        log.info("%s: serving %s", self.name, self.path)
        return self.path

    def stop(self) -> None:
        """Stop forwarding, close the pty, the device and the transcript (idempotent)."""
        try:
            self._join()
        finally:
            self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1
        device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                device.close()
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()

    def _host_to_device(self) -> None:
        writer, master, device = self.writer, self._master, self._device
        if writer is None or device is None:
            return
        while not self._stop.is_set():
            readable, _, _ = select.select([master], [], [], _SLICE_S)
            if not readable:
                continue
            try:
                data = os.read(master, _READ_SIZE)
            except OSError as exc:
                if exc.errno == errno.EIO:
                    continue  # no one has the pty open right now
                self._problem(f"reading the daemon's side failed: {exc}")
                return
            writer.chunk("tx", data)
            try:
                device.write(data)
                device.flush()
            except (serial.SerialException, OSError) as exc:
                self._problem(f"writing to {self.device_url} failed: {exc}")
                return

    def _device_to_host(self) -> None:
        writer, master, device = self.writer, self._master, self._device
        if writer is None or device is None:
            return
        while not self._stop.is_set():
            try:
                # Blocks at most the port timeout (one slice); then takes what else is waiting.
                data = bytes(device.read(1))
                if data:
                    waiting = device.in_waiting
                    if waiting:
                        data += bytes(device.read(waiting))
            except (serial.SerialException, OSError) as exc:
                if not self._stop.is_set():
                    self._problem(f"reading from {self.device_url} failed: {exc}")
                return
            if not data:
                continue
            writer.chunk("rx", data)
            view = memoryview(data)
            while view and not self._stop.is_set():
                try:
                    written = os.write(master, view)
                except BlockingIOError:
                    select.select([], [master], [], _SLICE_S)
                    continue
                except OSError as exc:
                    self._problem(f"writing to the daemon's side failed: {exc}")
                    return
                view = view[written:]


@contextlib.contextmanager
def recording_tcp_proxy(
    target: str,
    out: Path | IO[str],
    *,
    listen: str = "127.0.0.1:0",
    protocol: WireProtocol = "raw",
    note: str = "",
) -> Iterator[TcpRecordingProxy]:
    """A running :class:`TcpRecordingProxy` for the block (its ``address`` is where to connect)."""
    proxy = TcpRecordingProxy(target, out, listen=listen, protocol=protocol, note=note)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@contextlib.contextmanager
def recording_serial_proxy(
    device_url: str,
    out: Path | IO[str],
    *,
    baudrate: int | None = None,
    link: Path | None = None,
    note: str = "",
) -> Iterator[SerialRecordingProxy]:
    """A running :class:`SerialRecordingProxy` for the block (its ``path`` is what to open)."""
    proxy = SerialRecordingProxy(device_url, out, baudrate=baudrate, link=link, note=note)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
