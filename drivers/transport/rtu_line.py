"""One Modbus RTU line (an RS-485 bus on one serial port) shared by every device id on it.

Modbus RTU is single-master and half-duplex: the master sends one request, the addressed device
answers, and only then may the next request go out (Modbus over Serial Line Specification and
Implementation Guide V1.02, §2.2 and §2.4; INSTRUMENTS_AND_STANDARDS.md §2.1). Several
controllers on one RS-485 adapter must therefore share one open port and take turns on it.

- One :class:`RtuLine` per serial device path, process-wide (:func:`attach` / :func:`detach`,
  thread-safe, reference-counted by the links that use it). Paths are compared after resolving
  symlinks, so ``/dev/serial/by-id/...`` and ``/dev/ttyUSB0`` name one line.
- The line owns one pymodbus ``ModbusSerialClient`` and ONE worker thread, the scheduler: every
  transaction (and the opening of the port) is a job in one FIFO queue that the worker runs one
  at a time, in arrival order. Requests to different device ids never overlap on the wire and
  none starves: a job waits at most for the jobs queued before it, each bounded by its timeout.
- Every transaction carries its own device id and reply timeout. After each transaction the
  worker keeps the line quiet for the RTU inter-frame delay (3.5 character times at or below
  19200 baud, a fixed 1.75 ms above; spec §2.5.1.1) before the next request: after a reply,
  only what pymodbus has not already waited (it returns a reply once the port has been quiet
  for 4 character times, at least 1 ms); after a timeout, all of it.
- A device that does not answer times out its own transaction only (``ModbusIOException``,
  which the link reports as ``InstrumentTimeout``); the next job runs as usual.
- A line-level failure (the port vanished: pymodbus ``ConnectionException`` or ``OSError``)
  closes the client and fails the running job and every transaction waiting behind it with
  ``TransportError``. Later transactions fail the same way until a link attaches again (the
  runtime reconnects it), which reopens the port.
- Two instruments that name one port with different serial settings are refused when the
  second one attaches: one bus has one baud rate and one character format.
- Figures per line (:class:`LineStats`, :func:`line_stats`): transactions, timeouts, line
  failures, time the wire was busy, and the highest number of transactions ever in progress at
  once (always 1: the proof that the scheduler owns the wire).

pymodbus's own retries are off (``retries=0``): retrying is the runtime's business. The client's
reply timeout is a connection parameter in pymodbus 3.16 (``comm_params.timeout_connect``, read
by ``ModbusSerialClient._wait_for_data`` and ``TransactionManager.sync_get_response``), so the
worker sets it, and the pyserial port's own ``timeout``, before each transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from daq.errors import InstrumentTimeout, TransportError

__all__ = [
    "LineStats",
    "RtuLine",
    "SerialSettings",
    "attach",
    "detach",
    "inter_frame_delay_s",
    "line_stats",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A transaction: given the open client and the device id, do one request and return its reply.
Request = Callable[[ModbusSerialClient, int], T]

#: How long to wait for the worker to close the port and end when the last link detaches.
_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """A serial line's settings. Defaults are pymodbus 3.16 ``ModbusSerialClient``'s own."""

    baudrate: int = 19200
    parity: str = "N"
    bytesize: int = 8
    stopbits: int = 1

    def __str__(self) -> str:
        return f"{self.baudrate} baud {self.bytesize}{self.parity}{self.stopbits}"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SerialSettings:
        """Settings from an address's query (``ModbusAddress.serial``); missing keys default."""
        base = cls()
        return cls(
            baudrate=int(options.get("baudrate", base.baudrate)),
            parity=str(options.get("parity", base.parity)).upper(),
            bytesize=int(options.get("bytesize", base.bytesize)),
            stopbits=int(options.get("stopbits", base.stopbits)),
        )


def inter_frame_delay_s(settings: SerialSettings) -> float:
    """The RTU inter-frame silence t3.5 in seconds.

    3.5 character times; a character is 1 start bit, the data bits, a parity bit when parity is
    on, and the stop bits. Above 19200 baud the spec fixes it at 1.75 ms (Modbus over Serial
    Line V1.02, §2.5.1.1).
    """
    if settings.baudrate > 19200:
        return 0.00175
    bits = 1 + settings.bytesize + (0 if settings.parity == "N" else 1) + settings.stopbits
    return 3.5 * bits / settings.baudrate


@dataclass(frozen=True, slots=True)
class LineStats:
    """A snapshot of one line's figures, for health reporting."""

    device: str
    settings: SerialSettings
    #: Links attached now.
    users: int
    #: Whether the port is open (False after a line failure, until a link reconnects).
    open: bool
    transactions: int
    timeouts: int
    #: Line-level failures (port gone): each closed the port.
    failures: int
    #: Transactions given up while still queued (their caller waited too long).
    abandoned: int
    #: The most transactions ever in progress on the wire at once. 1 by construction.
    max_concurrent: int
    #: Seconds the wire spent in transactions since the line was made.
    busy_s: float
    #: Seconds since the line was made.
    age_s: float
    #: Jobs waiting now.
    queued: int
    #: Transactions on the wire now (0 or 1).
    in_progress: int

    @property
    def busy_fraction(self) -> float:
        """Share of the time the wire was busy with transactions (0 to 1)."""
        return self.busy_s / self.age_s if self.age_s > 0 else 0.0


@dataclass(slots=True)
class _Job:
    kind: Literal["open", "transact", "stop"]
    future: Future[Any]
    device_id: int = 0
    timeout: float = 0.0
    request: Request[Any] | None = None


class RtuLine:
    """One serial port and the single worker that owns its wire. Use :func:`attach`."""

    def __init__(self, device: str, settings: SerialSettings) -> None:
        self.device = device
        self.settings = settings
        self.users = 0
        self._client: ModbusSerialClient | None = None
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._running: _Job | None = None
        self._active = 0
        self._stats_lock = threading.Lock()
        self._transactions = 0
        self._timeouts = 0
        self._failures = 0
        self._abandoned = 0
        self._max_concurrent = 0
        self._busy_s = 0.0
        self._born = time.monotonic()
        self._quiet = threading.Event()  # never set: waited on for the inter-frame silence
        self._silence_s = inter_frame_delay_s(settings)
        self._thread = threading.Thread(target=self._work, name=f"rtu-line {device}", daemon=True)

    # -- the callers' side ---------------------------------------------------------------------

    def transact(self, device_id: int, timeout: float, request: Request[T]) -> T:
        """Run one request for ``device_id`` when its turn comes; return its reply.

        Raises ``TransportError`` when the line failed, ``InstrumentTimeout`` when the line was
        too busy to take the request in time; pymodbus exceptions raised by ``request`` itself
        (no reply, bad reply) are passed on for the caller to translate.
        """
        job = _Job("transact", Future(), device_id, timeout, request)
        result: T = self._submit_and_wait(job)
        return result

    def open(self, timeout: float) -> None:
        """Open the port unless it is open (a job like any other). Raises TransportError."""
        self._submit_and_wait(_Job("open", Future(), timeout=timeout))

    def stats(self) -> LineStats:
        with self._cond:
            queued = len(self._queue)
            is_open = self._client is not None
        with self._stats_lock:
            return LineStats(
                device=self.device,
                settings=self.settings,
                users=self.users,
                open=is_open,
                transactions=self._transactions,
                timeouts=self._timeouts,
                failures=self._failures,
                abandoned=self._abandoned,
                max_concurrent=self._max_concurrent,
                busy_s=self._busy_s,
                age_s=time.monotonic() - self._born,
                queued=queued,
                in_progress=self._active,
            )

    def _submit_and_wait(self, job: _Job) -> Any:
        with self._cond:
            # The longest this job can wait: every job ahead of it and itself use up their
            # timeouts (doubled: pymodbus may overrun a timeout by one more read), plus slack.
            ahead = sum(j.timeout for j in self._queue)
            if self._running is not None:
                ahead += self._running.timeout
            self._queue.append(job)
            self._cond.notify()
        budget = 2.0 * (ahead + job.timeout) + 1.0
        done, _ = wait([job.future], timeout=budget)
        if done:
            return job.future.result()
        what = f"device {job.device_id}" if job.kind == "transact" else "opening the port"
        if job.future.cancel():
            with self._stats_lock:
                self._abandoned += 1
            raise InstrumentTimeout(
                f"serial line {self.device} was busy with other instruments for {budget:.1f} s;"
                f" {what}: not even started"
            ) from None
        try:  # it started just now: it ends within its own timeout
            return job.future.result(timeout=2.0 * job.timeout + 1.0)
        except FutureTimeout:
            raise InstrumentTimeout(
                f"serial line {self.device}: {what} did not finish in time"
            ) from None

    # -- start and stop (by attach / detach) ---------------------------------------------------

    def _start(self) -> None:
        self._thread.start()

    def _stop(self) -> None:
        with self._cond:
            self._queue.append(_Job("stop", Future()))
            self._cond.notify()
        self._thread.join(_STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.warning("serial line %s: worker did not end in time", self.device)

    # -- the worker: the only thread that touches the client ------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                job = self._queue.popleft()
                self._running = job
            try:
                if job.kind == "stop":
                    self._close_client()
                    return
                if not job.future.set_running_or_notify_cancel():
                    continue  # its caller gave up waiting
                if job.kind == "open":
                    self._open_client(job)
                else:
                    self._transact(job)
            except Exception as exc:  # the worker must outlive any one job
                log.exception("serial line %s: job failed unexpectedly", self.device)
                if not job.future.done():
                    job.future.set_exception(
                        TransportError(f"serial line {self.device}: unexpected failure: {exc}")
                    )
            finally:
                with self._cond:
                    self._running = None

    def _open_client(self, job: _Job) -> None:
        if self._client is not None:
            job.future.set_result(None)
            return
        s = self.settings
        client = ModbusSerialClient(
            self.device,
            baudrate=s.baudrate,
            parity=s.parity,
            bytesize=s.bytesize,
            stopbits=s.stopbits,
            timeout=job.timeout,
            retries=0,
            reconnect_delay=0,
        )
        try:
            ok = client.connect()
        except (ModbusException, OSError) as exc:
            ok = False
            reason = f": {exc}"
        else:
            reason = " (no such port, or in use by another program)"
        if not ok:
            with contextlib.suppress(ModbusException, OSError):
                client.close()  # type: ignore[no-untyped-call]
            job.future.set_exception(
                TransportError(f"cannot open serial port {self.device} at {s}{reason}")
            )
            return
        with self._cond:
            self._client = client
        job.future.set_result(None)

    def _transact(self, job: _Job) -> None:
        client = self._client
        if client is None:
            job.future.set_exception(
                TransportError(
                    f"serial line {self.device} is closed after a failure;"
                    " it reopens when the instrument reconnects"
                )
            )
            return
        assert job.request is not None
        self._enter()
        started = time.monotonic()
        failed: BaseException | None = None
        silence = self._silence_s
        try:
            client.comm_params.timeout_connect = job.timeout
            port = client.socket
            if port is not None and port.timeout != job.timeout:
                port.timeout = job.timeout  # reconfigures the port: OSError when it is gone
            reply = job.request(client, job.device_id)
        except ConnectionException as exc:
            failed = exc
        except ModbusIOException as exc:
            with self._stats_lock:
                self._timeouts += 1
            job.future.set_exception(exc)
        except OSError as exc:
            failed = exc
        except Exception as exc:  # handed to the caller, who translates it
            job.future.set_exception(exc)
        else:
            job.future.set_result(reply)
            # A reply came: pymodbus returns it only once the port has stayed quiet for its
            # poll interval (4 character times, at least 1 ms; ModbusSerialClient
            # ``_wait_for_data``), so that much of the silence has already passed.
            silence -= float(getattr(client, "_recv_interval", 0.0))
        finally:
            self._leave(time.monotonic() - started)
        if failed is not None:
            self._fail_line(job, failed)
            return
        if silence > 0:
            self._quiet.wait(silence)

    def _fail_line(self, job: _Job, exc: BaseException) -> None:
        if isinstance(exc, ConnectionException):  # pymodbus drops the OSError's text
            detail = "the port stopped working: adapter unplugged or port removed?"
        else:
            detail = str(exc) or type(exc).__name__
        message = (
            f"serial line {self.device} failed ({detail}); port closed,"
            " every instrument on it reconnects"
        )
        log.warning("%s", message)
        self._close_client()
        with self._stats_lock:
            self._failures += 1
        job.future.set_exception(TransportError(message))
        with self._cond:
            waiting = [j for j in self._queue if j.kind == "transact"]
            self._queue = deque(j for j in self._queue if j.kind != "transact")
        for other in waiting:
            if other.future.set_running_or_notify_cancel():
                other.future.set_exception(TransportError(message))

    def _close_client(self) -> None:
        with self._cond:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(ModbusException, OSError):
                client.close()  # type: ignore[no-untyped-call]

    def _enter(self) -> None:
        with self._stats_lock:
            self._active += 1
            self._max_concurrent = max(self._max_concurrent, self._active)

    def _leave(self, busy_s: float) -> None:
        with self._stats_lock:
            self._active -= 1
            self._transactions += 1
            self._busy_s += busy_s


# -- the process-wide registry -------------------------------------------------------------------

_registry_lock = threading.Lock()
_lines: dict[str, RtuLine] = {}


def _key(device: str) -> str:
    return os.path.realpath(device) if device.startswith("/") else device


def attach(device: str, settings: SerialSettings, *, timeout: float) -> RtuLine:
    """The shared line of ``device``, opened; every call needs one :func:`detach`.

    Raises ``TransportError`` when the port cannot be opened, or when the line is already in
    use with other serial settings.
    """
    key = _key(device)
    with _registry_lock:
        line = _lines.get(key)
        if line is None:
            line = RtuLine(device, settings)
            _lines[key] = line
            line._start()
        elif line.settings != settings:
            raise TransportError(
                f"serial port {device} is already in use at {line.settings} by another"
                f" instrument; this one asks for {settings}. Every controller on one RS-485"
                " line must use the same baud rate, parity, data bits and stop bits:"
                " make their addresses agree"
            )
        line.users += 1
    try:
        line.open(timeout)
    except BaseException:
        detach(line)
        raise
    return line


def detach(line: RtuLine) -> None:
    """Give back a line from :func:`attach`; the last one closes the port and ends the worker."""
    with _registry_lock:
        line.users -= 1
        if line.users > 0:
            return
        for key, known in list(_lines.items()):
            if known is line:
                del _lines[key]
        # Under the lock: a new attach to this port waits until the port is closed.
        line._stop()


def line_stats() -> list[LineStats]:
    """Figures of every line in use now, for health reporting."""
    with _registry_lock:
        lines = list(_lines.values())
    return [line.stats() for line in lines]
