"""Serve a byte-protocol instrument on a pseudo-terminal, which pyserial opens like a real port.

A :class:`PtyPort` makes a pty pair with :func:`os.openpty`, puts the terminal in raw mode
(:func:`tty.setraw`) and runs one background thread that reads what the client writes, hands it
to the instrument's ``on_bytes`` callback, and writes the instrument's output back. The client
opens :attr:`PtyPort.path` (for example ``/dev/pts/7``) with ``serial.Serial(path)`` exactly like
a real port (Hallmark's REAL_COMPONENTS.md, "pyserial 3.5": a pty opens like any port, but baud
rate is not emulated).

Everything the instrument does happens on that one thread: received bytes, timers
(:meth:`PtyPort.call_at`) and output, so an instrument model needs no locking against itself;
public methods that other threads call (:meth:`send`, :meth:`call_at`, :meth:`vanish`,
:meth:`come_back`) hand their work to the thread.

Output timing
    :meth:`send` queues bytes to leave after ``delay`` seconds, in order. With ``baud`` set, the
    link is paced as 10 bits per byte (8N1): an item of *n* bytes is written when its last byte
    would have arrived, ``n * 10 / baud`` seconds after the previous item finished, so replies and
    stream lines queue behind each other as on a slow link (:meth:`backlog_s` tells how far
    behind the link is, which a streaming instrument uses to drop lines). Without ``baud`` bytes
    go out as soon as they are due. If the client stops reading and the kernel's pty buffer
    fills, up to 64 KiB wait in the port; beyond that whole items are dropped and counted in
    :attr:`dropped_items` (no item is ever cut, so framing survives).

Vanishing and coming back (the device unplugged, powered off or re-enumerated)
    :meth:`vanish` closes the pty master and the port's own slave descriptor: a client that still
    has the old path open gets ``SerialException`` from pyserial on its next read (the kernel
    reports readiness then end-of-file) or write (``EIO``). While vanished nothing is read and
    all output is discarded; timers keep running, since the instrument's clock does not stop.
    :meth:`come_back` opens a **new** pty pair. Its path is whatever the kernel hands out: Linux
    reuses the lowest free ``/dev/pts`` number, so it is usually the same path when the client
    has closed the old one and a different one while the client still holds it, much like a
    USB CDC device that comes back as ``/dev/ttyACM1`` while ``ttyACM0`` is still held open.
    ``come_back(new_path=True)`` guarantees a path different from the one that vanished.
    The current path is published three ways: the :attr:`path` property (``None`` while
    vanished), the ``on_path`` callback (called with the new path, or ``None`` on vanish, on
    the port thread), and ``path_file`` (rewritten atomically: the path and a newline, or an
    empty file while vanished). ``link_path`` is optionally kept as a symlink to the current
    path and removed while vanished, the way udev keeps ``/dev/serial/by-id/...``; pyserial opens
    the symlink like the port itself.

Start and stop are bounded: :meth:`start` waits at most ``timeout`` for the thread, :meth:`stop`
joins it for at most ``timeout`` and raises :class:`TimeoutError` if it does not end. An
exception raised by an instrument callback is logged and kept in :attr:`errors` (the thread
keeps serving); the ``running_*`` context managers of the simulators raise it when they exit.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

__all__ = ["MAX_PENDING_BYTES", "PtyPort", "TimerHandle"]

_log = logging.getLogger(__name__)

#: Output waiting for the client to read beyond this is dropped item by item.
MAX_PENDING_BYTES = 64 * 1024
#: Bits on the wire per byte when pacing (start + 8 data + stop: 8N1).
_BITS_PER_BYTE = 10
_READ_CHUNK = 4096

_T = TypeVar("_T")


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class TimerHandle:
    """A scheduled callback; :meth:`cancel` stops it from running (thread-safe)."""

    def __init__(self, timer: _Timer) -> None:
        self._timer = timer

    @property
    def due(self) -> float:
        """When the callback runs, on :func:`time.monotonic`."""
        return self._timer.due

    def cancel(self) -> None:
        """Do not run the callback (no effect once it has run)."""
        self._timer.cancelled = True


class PtyPort:
    """One simulated serial port on a pty, served by a background thread (see module docstring).

    ``on_bytes`` is called on the port thread with each chunk the client writes. ``name`` names
    the thread and log lines. ``baud`` (``None`` = unpaced) paces output.
    """

    def __init__(
        self,
        on_bytes: Callable[[bytes], None],
        *,
        name: str = "pty",
        baud: int | None = None,
        path_file: Path | None = None,
        link_path: Path | None = None,
        on_path: Callable[[str | None], None] | None = None,
    ) -> None:
        if baud is not None and baud <= 0:
            raise ValueError(f"baud must be a positive number of bits per second (got {baud})")
        self._on_bytes = on_bytes
        self.name = name
        self.baud = baud
        self.path_file = path_file
        self.link_path = link_path
        self._on_path = on_path
        self._lock = threading.Lock()
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._pending = bytearray()
        self._link_free = 0.0
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._started = threading.Event()
        #: Exceptions raised by instrument callbacks on the port thread, oldest first.
        self.errors: list[BaseException] = []
        #: Output items dropped because the client did not read (see module docstring).
        self.dropped_items = 0
        #: Bytes written to the pty master so far.
        self.bytes_sent = 0
        #: How many times the port has come back after vanishing.
        self.generation = 0
        self._last_path: str | None = None

    # --- life cycle ------------------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> str:
        """Open the pty and start serving; returns the slave path the client should open."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: a PtyPort starts once")
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._open_pty(avoid=None)
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-pty", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"{self.name}: port thread did not start within {timeout} s")
        path = self._path
        if path is None:
            raise RuntimeError(f"{self.name}: no pty after start")
        return path

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close every descriptor; safe to call twice."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._stopping = True
            self._wake()
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"{self.name}: port thread did not stop within {timeout} s")
        self._close_pty(publish=False)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    @property
    def path(self) -> str | None:
        """The slave path the client opens, or ``None`` while the device has vanished."""
        return self._path

    @property
    def vanished(self) -> bool:
        """True between :meth:`vanish` and :meth:`come_back`."""
        return self._master is None

    # --- scheduling (thread-safe) ----------------------------------------------------------

    def call_at(self, due: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` on the port thread at ``due`` (:func:`time.monotonic`)."""
        timer = _Timer(due, next(self._seq), callback)
        with self._lock:
            heapq.heappush(self._timers, timer)
        self._wake()
        return TimerHandle(timer)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` on the port thread after ``delay`` seconds."""
        return self.call_at(time.monotonic() + max(0.0, delay), callback)

    def run_on_thread(self, function: Callable[[], _T], timeout: float = 5.0) -> _T:
        """Run ``function`` on the port thread and return its result (directly if already there)."""
        if threading.current_thread() is self._thread or self._thread is None:
            return function()
        done = threading.Event()
        box: list[_T] = []
        failure: list[BaseException] = []

        def call() -> None:
            try:
                box.append(function())
            except BaseException as exc:
                failure.append(exc)
            finally:
                done.set()

        self.call_later(0.0, call)
        if not done.wait(timeout):
            raise TimeoutError(f"{self.name}: port thread did not answer within {timeout} s")
        if failure:
            raise failure[0]
        return box[0]

    def send(self, data: bytes, *, delay: float = 0.0) -> None:
        """Queue ``data`` to leave after ``delay`` seconds, after everything queued before it."""
        if data:
            self.call_later(delay, lambda: self._transmit(bytes(data)))

    def backlog_s(self) -> float:
        """Seconds until the paced link has sent everything queued (0 when idle or unpaced)."""
        return max(0.0, self._link_free - time.monotonic())

    # --- vanish / come back ----------------------------------------------------------------

    def vanish(self) -> None:
        """Close the pty: the device disappears (see module docstring). No effect if gone."""
        self.run_on_thread(lambda: self._close_pty(publish=True))

    def come_back(self, *, new_path: bool = False) -> str:
        """Open a new pty and serve on it; returns its path (see module docstring)."""

        def reopen() -> str:
            if self._master is not None and self._path is not None:
                return self._path
            self.generation += 1
            return self._open_pty(avoid=self._last_path if new_path else None)

        return self.run_on_thread(reopen)

    # --- internals -------------------------------------------------------------------------

    def _open_pty(self, avoid: str | None) -> str:
        spare: list[tuple[int, int]] = []
        try:
            while True:
                master, slave = os.openpty()
                path = os.ttyname(slave)
                if path != avoid:
                    break
                # Hold the reused number while asking for another, then give it back.
                spare.append((master, slave))
        finally:
            for fds in spare:
                for fd in fds:
                    os.close(fd)
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave, self._path = master, slave, path
        self._last_path = path
        self._pending.clear()
        self._link_free = 0.0
        self._publish(path)
        return path

    def _close_pty(self, *, publish: bool) -> None:
        master, slave = self._master, self._slave
        self._master = self._slave = None
        self._path = None
        self._pending.clear()
        for fd in (master, slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if publish and master is not None:
            self._publish(None)

    def _publish(self, path: str | None) -> None:
        if self.path_file is not None:
            tmp = self.path_file.with_name(self.path_file.name + ".tmp")
            tmp.write_text("" if path is None else path + "\n", encoding="ascii")
            tmp.replace(self.path_file)
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()
            if path is not None:
                self.link_path.symlink_to(path)
        if self._on_path is not None:
            self._on_path(path)
        if path is None:
            _log.info("%s: device vanished (pty closed)", self.name)
        else:
            _log.info("%s: serving on %s", self.name, path)

    def _wake(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_w, b"\0")

    def _transmit(self, data: bytes) -> None:
        """Called when an item is due: pace it, then write it."""
        if self._master is None:
            return
        if self.baud is None:
            self._write(data)
            return
        now = time.monotonic()
        finish = max(now, self._link_free) + len(data) * _BITS_PER_BYTE / self.baud
        self._link_free = finish
        generation = self.generation
        # The whole item appears when its last byte would have arrived.
        self.call_at(finish, lambda: self._write(data) if generation == self.generation else None)

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return
        if len(self._pending) + len(data) > MAX_PENDING_BYTES:
            self.dropped_items += 1
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        master = self._master
        if master is None or not self._pending:
            return
        try:
            written = os.write(master, self._pending)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return
            raise
        self.bytes_sent += written
        del self._pending[:written]

    def _run(self) -> None:
        self._started.set()
        while not self._stopping:
            timeout = self._run_due_timers()
            readers = [self._wake_r]
            writers: list[int] = []
            master = self._master
            if master is not None:
                readers.append(master)
                if self._pending:
                    writers.append(master)
            try:
                readable, writable, _ = select.select(readers, writers, [], timeout)
            except (OSError, ValueError):
                continue  # the master was closed by vanish() between two loops
            if self._wake_r in readable:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.read(self._wake_r, _READ_CHUNK)
            if master is not None and master == self._master:
                if master in writable:
                    self._guard(self._flush)
                if master in readable:
                    self._read(master)

    def _read(self, master: int) -> None:
        try:
            data = os.read(master, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return  # no client has the slave open (we hold ours, so rare)
            raise
        if data:
            self._guard(lambda: self._on_bytes(data))

    def _run_due_timers(self) -> float | None:
        """Run every due timer; return seconds until the next one (``None``: none queued)."""
        while True:
            with self._lock:
                if not self._timers:
                    return None
                timer = self._timers[0]
                now = time.monotonic()
                if timer.due > now:
                    return timer.due - now
                heapq.heappop(self._timers)
            if not timer.cancelled:
                self._guard(timer.callback)

    def _guard(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception as exc:
            _log.exception("%s: instrument callback failed", self.name)
            self.errors.append(exc)
