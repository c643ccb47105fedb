"""Replay a byte transcript from the instrument's side, over TCP or a pty.

A transcript recorded by ``daq record`` (daq/recorder.py; format in daq/transcript.py) is served
back to a host: the server waits until the host has sent the bytes of the next recorded request
(matched on the byte stream, not on how writes were cut), then sends the reply that followed it
in the recording. Driver code runs exactly the paths it ran at the bench, in CI, with no
instrument and no simulator model.

- :class:`TcpReplayServer`: listens on 127.0.0.1 (port 0 = any free port) and serves one
  connection at a time. For Modbus TCP transcripts the transaction id of each request is put
  into its reply (daq/transcript.py). A connection the instrument closed in the recording is
  closed after that reply; at the end of the transcript the connection is closed and later
  connections are closed as soon as they are accepted.
- :class:`PtyReplayServer`: a pseudo-terminal (simulators/_pty.py) that the host opens like a
  serial port. At the end of the transcript the port stays open (closing a pty master discards
  what the host has not read yet) and :attr:`ReplayServer.finished` is set; ``daq replay``
  then closes it after a short linger.

A request that differs from the transcript is logged in words (which request, the byte, the
bytes expected and received) and kept in :attr:`ReplayServer.mismatches`. Not strict, nothing is
answered to it and the replay goes on; strict, the replay ends: the connection is closed (TCP)
or the pty vanishes, and :attr:`ReplayServer.failed` is true. By default replies go out as soon
as their request is complete; ``realtime=True`` keeps the recorded delay between the request
and each reply chunk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import selectors
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from daq.progress import Progress, ProgressMode
from daq.recorder import parse_host_port
from daq.transcript import (
    Mismatch,
    ReplayMatcher,
    Send,
    Transcript,
    TranscriptError,
    build_exchanges,
    read_transcript,
)
from simulators._pty import PtyPort

__all__ = [
    "PtyReplayServer",
    "ReplayServer",
    "TcpReplayServer",
    "replaying_pty",
    "replaying_tcp",
    "serve_replay",
]

log = logging.getLogger(__name__)

_SLICE_S = 0.05
_READ_SIZE = 65536
_JOIN_S = 5.0
#: How long ``daq replay`` keeps a pty open after the last reply, so the host can read it.
LINGER_S = 0.5


def _load(source: Path | Transcript) -> tuple[Transcript, str]:
    if isinstance(source, Transcript):
        return source, "transcript"
    return read_transcript(source), str(source)


class ReplayServer:
    """What both replay servers share: the matcher, the reports and the end state."""

    def __init__(
        self,
        source: Path | Transcript,
        *,
        strict: bool = False,
        realtime: bool = False,
        on_mismatch: Callable[[Mismatch], None] | None = None,
    ) -> None:
        self.transcript, self.source = _load(source)
        self.strict = strict
        self.realtime = realtime
        self.on_mismatch = on_mismatch
        self.matcher = ReplayMatcher(
            build_exchanges(self.transcript.entries),
            protocol=self.transcript.header.protocol,
            strict=strict,
        )
        self.name = f"replay of {self.source}"
        #: Requests that differed from the transcript, oldest first.
        self.mismatches: list[Mismatch] = []
        #: Set when the transcript has been played to its end, or a strict replay failed.
        self.finished = threading.Event()
        #: Reply bytes sent so far.
        self.bytes_sent = 0

    @property
    def failed(self) -> bool:
        """A strict replay met a request that differs from the transcript."""
        return self.matcher.stopped

    def _report(self, mismatch: Mismatch) -> None:
        self.mismatches.append(mismatch)
        log.warning("%s: %s", self.name, mismatch.describe())
        if self.on_mismatch is not None:
            self.on_mismatch(mismatch)
        if self.strict:
            self.finished.set()


class TcpReplayServer(ReplayServer):
    """Serve a transcript on a TCP port (see module docstring). No I/O before :meth:`start`."""

    def __init__(
        self,
        source: Path | Transcript,
        *,
        listen: str = "127.0.0.1:0",
        strict: bool = False,
        realtime: bool = False,
        on_mismatch: Callable[[Mismatch], None] | None = None,
    ) -> None:
        super().__init__(source, strict=strict, realtime=realtime, on_mismatch=on_mismatch)
        self.listen = parse_host_port(listen)
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.host = ""
        self.port = 0
        #: Connections accepted so far.
        self.connections = 0

    @property
    def address(self) -> str:
        """``tcp://HOST:PORT``, what the driver connects to."""
        return f"tcp://{self.host}:{self.port}"

    def start(self) -> str:
        """Bind and serve in a background thread; returns :attr:`address`."""
        server = socket.create_server(self.listen)
        server.settimeout(_SLICE_S)
        self._server = server
        self.host, self.port = server.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-replay", daemon=True)
        self._thread.start()
        log.info("%s: serving on %s", self.name, self.address)
        return self.address

    def stop(self) -> None:
        """Stop serving and close every socket (idempotent, bounded)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(_JOIN_S)
            if thread.is_alive():
                raise TimeoutError(f"{self.name}: thread did not stop within {_JOIN_S} s")
        if self._server is not None:
            self._server.close()
            self._server = None

    def _accept_loop(self) -> None:
        server = self._server
        while server is not None and not self._stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self.connections += 1
                if not self.finished.is_set():
                    self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        """Serve one connection until the host closes it, the transcript ends, or a strict fail."""
        conn.settimeout(_SLICE_S)
        if not self._act(conn, list(self.matcher.start())):
            return
        with selectors.DefaultSelector() as sel:
            sel.register(conn, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not sel.select(_SLICE_S):
                    continue
                try:
                    data = conn.recv(_READ_SIZE)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return  # the host closed the connection
                if not self._act(conn, list(self.matcher.feed(data))):
                    return

    def _act(self, conn: socket.socket, actions: list[Send | Mismatch]) -> bool:
        """Carry out the matcher's actions; False when the connection must close."""
        for action in actions:
            if isinstance(action, Mismatch):
                self._report(action)
                if self.strict:
                    return False
                continue
            for segment in action.segments:
                if self.realtime and segment.delay > 0 and self._stop.wait(segment.delay):
                    return False
                try:
                    conn.sendall(segment.data)
                except OSError as exc:
                    log.info("%s: the host went away while replying: %s", self.name, exc)
                    return False
                self.bytes_sent += len(segment.data)
            if action.close_after:
                self._ended()
                return False
        return not self._ended()

    def _ended(self) -> bool:
        if self.matcher.finished:
            self.finished.set()
            return True
        return False


class PtyReplayServer(ReplayServer):
    """Serve a transcript on a pty (see module docstring). No I/O before :meth:`start`."""

    def __init__(
        self,
        source: Path | Transcript,
        *,
        link: Path | None = None,
        strict: bool = False,
        realtime: bool = False,
        on_mismatch: Callable[[Mismatch], None] | None = None,
    ) -> None:
        super().__init__(source, strict=strict, realtime=realtime, on_mismatch=on_mismatch)
        self.link = link
        self._port = PtyPort(self._on_bytes, name="replay", link_path=link)

    @property
    def path(self) -> str:
        """What the host opens: the symlink if one was asked for, else the pty path."""
        if self.link is not None:
            return str(self.link)
        return self._port.path or ""

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised on the port thread."""
        return self._port.errors

    def start(self) -> str:
        """Open the pty and serve; returns :attr:`path`."""
        self._port.start()
        self._port.run_on_thread(lambda: self._act(self.matcher.start()))
        log.info("%s: serving on %s", self.name, self.path)
        return self.path

    def stop(self) -> None:
        """Close the pty and stop the port thread (idempotent, bounded)."""
        self._port.stop()

    def _on_bytes(self, data: bytes) -> None:
        self._act(self.matcher.feed(data))

    def _act(self, actions: list[Send | Mismatch]) -> None:
        delay = 0.0
        for action in actions:
            if isinstance(action, Mismatch):
                self._report(action)
                if self.strict:
                    self._port.vanish()
                    return
                continue
            for segment in action.segments:
                delay += segment.delay if self.realtime else 0.0
                self._port.send(segment.data, delay=delay)
                self.bytes_sent += len(segment.data)
        if self.matcher.finished:
            self.finished.set()


@contextlib.contextmanager
def replaying_tcp(
    source: Path | Transcript,
    *,
    listen: str = "127.0.0.1:0",
    strict: bool = False,
    realtime: bool = False,
    on_mismatch: Callable[[Mismatch], None] | None = None,
) -> Iterator[TcpReplayServer]:
    """A running :class:`TcpReplayServer` for the block (connect to its ``address``)."""
    server = TcpReplayServer(
        source, listen=listen, strict=strict, realtime=realtime, on_mismatch=on_mismatch
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def replaying_pty(
    source: Path | Transcript,
    *,
    link: Path | None = None,
    strict: bool = False,
    realtime: bool = False,
    on_mismatch: Callable[[Mismatch], None] | None = None,
) -> Iterator[PtyReplayServer]:
    """A running :class:`PtyReplayServer` for the block (open its ``path``)."""
    server = PtyReplayServer(
        source, link=link, strict=strict, realtime=realtime, on_mismatch=on_mismatch
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
    if server.errors:
        raise RuntimeError(f"{server.name} failed inside its port thread") from server.errors[0]


def serve_replay(
    path: Path,
    *,
    listen: str | None = None,
    pty: bool = False,
    link: Path | None = None,
    strict: bool = False,
    realtime: bool = False,
    progress: ProgressMode = "auto",
) -> int:
    """``daq replay``: serve until the transcript ends, a strict mismatch, or SIGTERM/SIGINT.

    Prints one JSON line (the address) once serving; every mismatch goes to stderr in words.
    Returns 0 when the transcript was played to its end (or the replay was stopped), 1 after a
    strict mismatch or when the address cannot be bound, 2 for an unreadable transcript.
    """
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def report(mismatch: Mismatch) -> None:
        print(f"replay: {mismatch.describe()}", file=sys.stderr, flush=True)

    server: TcpReplayServer | PtyReplayServer
    try:
        if pty:
            server = PtyReplayServer(
                path, link=link, strict=strict, realtime=realtime, on_mismatch=report
            )
        else:
            server = TcpReplayServer(
                path,
                listen=listen or "127.0.0.1:0",
                strict=strict,
                realtime=realtime,
                on_mismatch=report,
            )
    except TranscriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: --listen: {exc}", file=sys.stderr)
        return 2
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            address = server.start()
        except OSError as exc:
            print(f"error: cannot serve the replay: {exc}", file=sys.stderr)
            return 1
        try:
            header = server.transcript.header
            line = {
                "replay": str(path),
                "transport": "pty" if pty else "tcp",
                "protocol": header.protocol,
                "address": address,
                "exchanges": server.matcher.exchanges,
            }
            if isinstance(server, TcpReplayServer):
                line.update({"host": server.host, "port": server.port})
            print(json.dumps(line), flush=True)
            total = server.matcher.exchanges
            with Progress("replay", total, mode=progress, unit="exchanges") as bar:
                while not stop.is_set() and not server.finished.wait(_SLICE_S * 4):
                    bar.advance(server.matcher.position - bar.done)
                bar.advance(server.matcher.position - bar.done)
            if pty and server.finished.is_set() and not server.failed:
                stop.wait(LINGER_S)
        finally:
            server.stop()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if server.failed:
        return 1
    return 0
