"""The runtime: an asyncio supervisor that runs every instrument, the journal and the forwarder.

- One task per instrument. Drivers are blocking (pyserial, pyvisa, pymodbus's sync clients), so
  every driver call runs in a worker thread from a pool sized to the instruments; a dead or slow
  instrument holds only its own thread and never stalls the others.
- A polled instrument is polled on a fixed schedule (next = previous + interval, so latency does
  not accumulate into drift; polls that could not happen in time are counted as missed). While
  its link is up, one worker thread polls it on that schedule and hands each poll's result to
  the event loop, which keeps the figures and accepts the readings; the thread does not wait
  for the loop between polls. A push instrument is listened to in a loop.
- A lost link is reopened with capped exponential backoff and jitter. The log says what went
  wrong, naming the instrument, once per change of state rather than once per poll.
- Every sample is normalized (daq/units.py) and judged (daq/quality/judge.py) against the
  limits the ``SpecSource`` gives in the lot context of the moment, then handed to the journal
  writer, which commits in groups (what arrives within ``commit_window``, 50 ms by default, in
  one transaction): a measurement is accepted once its group has committed.
- A rejected sample (unknown unit) becomes an ``event`` with the reason; it never crashes a task.
- Health figures per instrument are written as ``daq_health`` points every ``health_interval``.
- ``stop()`` (SIGTERM/SIGINT in ``daq run``) ends the polls, commits what was measured, and
  gives the forwarder a few seconds to send it; the rest waits in the journal for next time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from daq.backoff import Backoff
from daq.driftwatch import DriftWatch
from daq.errors import HallmarkError, TransportError, UnitError
from daq.forwarder import Forwarder
from daq.instrument import Driver
from daq.journal import Journal, JournalError
from daq.judging import JudgeStage
from daq.model import FieldValue, LotContext, Measurement, Point, Sample
from daq.quality.exposure import ExposureState
from daq.quality.exposure import observe as observe_exposure
from daq.units import Normalizer

__all__ = ["InstrumentHealth", "Runtime", "RuntimeSettings", "Scheduled"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scheduled:
    """An instrument with its schedule: ``interval`` seconds, or None for a push instrument."""

    driver: Driver
    interval: float | None


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    bench: str
    health_interval: float = 10.0
    reconnect_initial: float = 0.5
    reconnect_cap: float = 30.0
    retention_days: float = 0.0
    drain_timeout: float = 5.0
    #: Longest a measured point waits for its group commit (seconds); 0: commit at once.
    commit_window: float = 0.05
    #: Points waiting for the journal beyond which instruments are not polled (their polls
    #: count as missed): an overloaded or failing journal shows as missed polls, never as
    #: memory growing without end.
    max_pending: int = 100_000


@dataclass(slots=True)
class InstrumentHealth:
    """Running figures for one instrument (written as ``daq_health``)."""

    polls: int = 0
    errors: int = 0
    reconnects: int = 0
    missed: int = 0
    rejected: int = 0
    measurements: int = 0
    online: bool = False
    last_seen_ns: int = 0
    last_latency_s: float = 0.0
    latency_total_s: float = 0.0
    last_error: str = ""
    _logged_error: str = field(default="", repr=False)
    #: How late each poll started against its schedule since the last health write (s).
    lateness: list[float] = field(default_factory=list, repr=False)

    def fields(self) -> dict[str, FieldValue]:
        mean = self.latency_total_s / self.polls if self.polls else 0.0
        late = sorted(self.lateness)
        self.lateness = []
        extra: dict[str, FieldValue] = {}
        if late:
            extra = {
                "late_ms_max": round(late[-1] * 1000.0, 3),
                "late_ms_p99": round(late[min(len(late) - 1, int(0.99 * len(late)))] * 1000.0, 3),
            }
        return {
            **extra,
            "polls": self.polls,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "missed_polls": self.missed,
            "rejected": self.rejected,
            "measurements": self.measurements,
            "online": self.online,
            "last_seen_ns": self.last_seen_ns,
            "latency_ms": round(self.last_latency_s * 1000.0, 3),
            "mean_latency_ms": round(mean * 1000.0, 3),
        }


@dataclass(slots=True)  # made for every poll: not frozen, which would cost a setattr per field
class _Poll:
    """What one poll in a worker thread brought, for the event loop (``Runtime._polled``)."""

    name: str
    samples: Sequence[Sample]
    elapsed: float
    error: HallmarkError | None
    missed: int
    seen_ns: int
    late_s: float = 0.0


MeasurementObserver = Callable[[Measurement], None]
_NO_FLAGS: frozenset[str] = frozenset()
#: How long poll results may wait to be taken by the event loop (see ``Runtime._post``); far
#: below the group commit window, so acceptance is not delayed by it in practice.
_BATCH_S = 0.002


class Runtime:
    """Runs the instruments of one bench until stopped."""

    def __init__(
        self,
        settings: RuntimeSettings,
        instruments: Sequence[Scheduled],
        *,
        journal: Journal,
        judge: JudgeStage,
        context: Callable[[], LotContext],
        forwarders: Sequence[Forwarder] = (),
        observer: MeasurementObserver | None = None,
        drift: DriftWatch | None = None,
        on_health: Callable[[Runtime], None] | None = None,
        periodic: Sequence[Callable[[], Sequence[Point]]] = (),
        exposure_zones: Collection[tuple[str, str]] | None = None,
    ) -> None:
        self.settings = settings
        self.instruments = list(instruments)
        self.journal = journal
        self.judge = judge
        self.context = context
        self.forwarders = list(forwarders)
        self.observer = observer
        self.drift = drift
        #: Called after every health write and once at the end (status file, watchdog).
        self.on_health = on_health
        #: Called in the journal's thread at every health tick; their points are journaled
        #: (the run accounting of daq/runwatch.py).
        self.periodic = list(periodic)
        #: (instrument, channel) of the chambers' exposure zones; None: every chamber's
        #: ``temperature`` channel.
        self.exposure_zones = None if exposure_zones is None else frozenset(exposure_zones)
        self.started_ns = time.time_ns()
        self.health: dict[str, InstrumentHealth] = {
            s.driver.name: InstrumentHealth() for s in self.instruments
        }
        self.accepted = 0
        self.journal_failures = 0
        self._normalizer = Normalizer()
        self._flags: dict[tuple[str, str], frozenset[str]] = {}
        # Salt-spray exposure validity per chamber (daq/quality/exposure.py).
        self._exposure: dict[str, ExposureState] = {}
        self._intervals = {s.driver.name: s.interval or 1.0 for s in self.instruments}
        # Polled instruments start their schedules spread over their interval (instrument i of
        # n at i/n of it), so that many instruments do not all poll at the same instant.
        polled = [s for s in self.instruments if s.interval is not None]
        self._phase = {
            s.driver.name: (s.interval or 0.0) * i / len(polled) for i, s in enumerate(polled)
        }
        self.journal_held = 0
        self.journal_lost = 0
        self._backlog: dict[str, int] = {}
        self._queue: asyncio.Queue[Point] = asyncio.Queue()
        self._stop = asyncio.Event()
        # The same, for the worker threads that poll (see _poll_run).
        self._halt = threading.Event()
        # Results posted by worker threads, run in order in the loop's thread (see _post).
        self._inbox: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._inbox_lock = threading.Lock()
        self._inbox_scheduled = False
        self._polls_done = asyncio.Event()
        # Set once the writer has committed the last points: only then may forwarders drain.
        self._committed = asyncio.Event()
        self._pool = ThreadPoolExecutor(
            max_workers=len(self.instruments) + 1, thread_name_prefix="instrument"
        )
        # One thread for the journal and the forwarders: SQLite work stays serialized.
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._net = ThreadPoolExecutor(
            max_workers=max(1, len(self.forwarders)), thread_name_prefix="forwarder"
        )

    def stop(self) -> None:
        """Ask every task to finish (safe to call from a signal handler)."""
        self._stop.set()
        self._halt.set()

    @property
    def exposure(self) -> dict[str, ExposureState]:
        """Valid exposure so far per chamber (salt-spray validity)."""
        return dict(self._exposure)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self, duration: float | None = None) -> None:
        """Run until ``stop()`` or for ``duration`` seconds; then flush and close."""
        writer = asyncio.create_task(self._writer(), name="journal-writer")
        tasks = [
            asyncio.create_task(self._instrument(s), name=f"instrument:{s.driver.name}")
            for s in self.instruments
        ]
        tasks.append(asyncio.create_task(self._health_loop(), name="health"))
        fwd = [
            asyncio.create_task(
                f.run(
                    self._committed,
                    self._net,
                    drain_timeout=self.settings.drain_timeout,
                    on_state=self._forwarder_state(f),
                ),
                name=f"forwarder:{f.key}",
            )
            for f in self.forwarders
        ]
        try:
            if duration is not None:
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=duration)
                except TimeoutError:
                    self.stop()
            else:
                await self._stop.wait()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._write_health()
            self._polls_done.set()
            await writer
            self._committed.set()
            await asyncio.gather(*fwd, return_exceptions=True)
            for f in self.forwarders:
                self._backlog[f.key] = await asyncio.get_running_loop().run_in_executor(
                    self._io, self.journal.backlog, f.key
                )
            self._report()
        finally:
            self._halt.set()  # poll runs end after their current poll
            for t in [*tasks, writer, *fwd]:
                t.cancel()
            loop = asyncio.get_running_loop()
            for s in self.instruments:
                await loop.run_in_executor(self._pool, s.driver.close)
            for f in self.forwarders:
                await loop.run_in_executor(self._net, f.close)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._net.shutdown(wait=True)
            self._io.shutdown(wait=True)

    # -- instruments ---------------------------------------------------------------------------

    async def _instrument(self, sched: Scheduled) -> None:
        driver = sched.driver
        health = self.health[driver.name]
        loop = asyncio.get_running_loop()
        backoff = Backoff(self.settings.reconnect_initial, self.settings.reconnect_cap)
        connected = False
        next_at = time.monotonic()
        while not self._stop.is_set():
            if not connected:
                try:
                    await loop.run_in_executor(self._pool, driver.connect)
                except HallmarkError as exc:
                    health.errors += 1
                    self._problem(driver.name, health, f"cannot connect: {exc}")
                    await self._sleep(backoff.next())
                    continue
                connected = True
                backoff.reset()
                self._set_online(driver.name, health, True)
                next_at = time.monotonic() + self._phase.get(driver.name, 0.0)
            if sched.interval is not None:
                # A poll run: a worker thread polls on the schedule until the runtime stops
                # (None) or the link is lost (the error), handing its results to the loop.
                lost = await loop.run_in_executor(
                    self._pool, self._poll_run, loop, driver, health, sched.interval, next_at
                )
                self._drain_inbox()  # every result of the run, before what follows it
                if lost is not None:
                    connected = False
                    await self._link_lost(driver, health, lost, backoff)
                continue
            try:
                samples = await loop.run_in_executor(self._pool, driver.receive, 1.0)
            except TransportError as exc:
                connected = False
                await self._link_lost(driver, health, exc, backoff)
                continue
            except HallmarkError as exc:
                health.errors += 1
                self._problem(driver.name, health, str(exc))
                samples = []
            else:
                if health.last_error:
                    log.info("%s: answering normally again", driver.name)
                    health.last_error = health._logged_error = ""
            while self._queue.qsize() >= self.settings.max_pending and not self._stop.is_set():
                await self._sleep(0.05)  # the journal is behind: do not pile up more
            if samples:
                health.last_seen_ns = time.time_ns()
                # Accepted by the event loop as soon as this task waits again, while the
                # instrument is listened to again, so the two overlap. Callbacks run in order,
                # so readings are accepted in the order they came.
                loop.call_soon(self._accept, samples, health)

    async def _link_lost(
        self, driver: Driver, health: InstrumentHealth, exc: TransportError, backoff: Backoff
    ) -> None:
        health.errors += 1
        health.reconnects += 1
        await asyncio.get_running_loop().run_in_executor(self._pool, driver.close)
        self._problem(driver.name, health, f"link lost: {exc}")
        self._set_online(driver.name, health, False, str(exc))
        await self._sleep(backoff.next())

    def _poll_run(
        self,
        loop: asyncio.AbstractEventLoop,
        driver: Driver,
        health: InstrumentHealth,
        interval: float,
        next_at: float,
    ) -> TransportError | None:
        """Poll on the schedule in this worker thread until the runtime stops (None) or the
        link is lost (the error). next = previous + interval; polls that could not happen in
        time are counted as missed. Each poll's result goes to the event loop (``_polled``),
        which keeps every figure and accepts the readings: the thread touches only the driver,
        so a poll needs no hop to the loop and back before the next one starts."""
        while not self._halt.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._halt.wait(delay):
                break
            if self._queue.qsize() >= self.settings.max_pending:
                # The journal is behind (overload, or it cannot be written): this poll does
                # not happen and is counted as missed, rather than piling points up in memory.
                next_at += interval
                self._post(loop, self._skipped, health)
                continue
            started = time.monotonic()
            late = max(0.0, started - next_at)
            error: HallmarkError | None = None
            try:
                samples = driver.poll()
            except TransportError as exc:
                return exc
            except HallmarkError as exc:
                error, samples = exc, []
            elapsed = time.monotonic() - started
            seen_ns = time.time_ns() if samples else 0
            next_at += interval
            now = time.monotonic()
            missed = 0
            if next_at < now:
                missed = int((now - next_at) / interval) + 1
                next_at += missed * interval
            result = _Poll(driver.name, samples, elapsed, error, missed, seen_ns, late)
            self._post(loop, self._polled, health, result)
        return None

    def _skipped(self, health: InstrumentHealth) -> None:
        health.missed += 1

    def _polled(self, health: InstrumentHealth, poll: _Poll) -> None:
        """One poll's result, in the event loop's thread."""
        if poll.error is not None:
            health.errors += 1
            self._problem(poll.name, health, str(poll.error))
        elif health.last_error:
            log.info("%s: answering normally again", poll.name)
            health.last_error = health._logged_error = ""
        health.polls += 1
        health.lateness.append(poll.late_s)
        health.last_latency_s = poll.elapsed
        health.latency_total_s += poll.elapsed
        if poll.samples:
            health.last_seen_ns = poll.seen_ns
            self._accept(poll.samples, health)
        health.missed += poll.missed

    def _post(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` in the event loop's thread, after everything posted before it.
        Called from worker threads. Results are taken in batches, ``_BATCH_S`` after the first
        one of a batch, so that fast polling wakes the loop once per batch, not once per poll
        (a poll run's end drains what is left, see ``_instrument``)."""
        with self._inbox_lock:
            self._inbox.append((fn, args))
            if self._inbox_scheduled:
                return
            self._inbox_scheduled = True
        loop.call_soon_threadsafe(loop.call_later, _BATCH_S, self._drain_inbox)

    def _drain_inbox(self) -> None:
        with self._inbox_lock:
            batch, self._inbox = self._inbox, []
            self._inbox_scheduled = False
        for fn, args in batch:
            try:
                fn(*args)
            except Exception:
                # A bug in accepting one result must not drop the other results of the batch.
                log.exception("a poll result could not be handled; the next ones are")

    def _accept(self, samples: Sequence[Sample], health: InstrumentHealth) -> None:
        ctx = self.context()
        for sample in samples:
            try:
                reading = self._normalizer.normalize(sample)
            except UnitError as exc:
                health.rejected += 1
                name = sample.instrument
                self._problem(name, health, f"reading rejected: {exc}")
                self._event(name, "reading_rejected", "warning", str(exc))
                continue
            self._watch_flags(reading.sample)
            m = self.judge.judge(reading, ctx)
            self._queue.put_nowait(m.to_point())
            if m.verdict.margin is not None and self._is_exposure_zone(reading.sample):
                self._account_exposure(m)
            if self.drift is not None and m.baseline_z is not None:
                for event in self.drift.check(m):
                    log.warning("%s", event.fields["message"])
                    self._queue.put_nowait(event)
            health.measurements += 1
            if self.observer is not None:
                self.observer(m)

    def _is_exposure_zone(self, s: Sample) -> bool:
        """The reading of a chamber's exposure zone, whose time in tolerance is exposure."""
        if s.measurement != "chamber":
            return False
        if self.exposure_zones is None:
            return s.channel == "temperature"
        return (s.instrument, s.channel) in self.exposure_zones

    def _account_exposure(self, m: Measurement) -> None:
        """Valid exposure time and excursions of a chamber's exposure zone."""
        s = m.reading.sample
        assert m.verdict.margin is not None
        state = self._exposure.get(s.instrument, ExposureState())
        state, started, ended = observe_exposure(
            state,
            s.time_ns,
            m.reading.value,
            m.verdict.margin,
            max_gap_s=3.0 * self._intervals.get(s.instrument, 1.0),
        )
        self._exposure[s.instrument] = state
        band = f"{m.verdict.low}–{m.verdict.high} {m.reading.unit}"
        if started is not None:
            text = f"temperature {m.reading.value:.2f} {m.reading.unit} is outside {band}"
            log.warning("%s: excursion: %s; exposure stops counting", s.instrument, text)
            self._event(s.instrument, "chamber_excursion_started", "warning", text)
        if ended is not None and ended.duration_s is not None:
            text = (
                f"excursion over after {ended.duration_s:.0f} s (worst {ended.worst:.2f}"
                f" {m.reading.unit}, band {band})"
            )
            log.warning("%s: %s", s.instrument, text)
            tags = {"bench": self.settings.bench, "instrument": s.instrument,
                    "kind": "chamber_excursion", **m.context.tags()}  # fmt: skip
            fields: dict[str, FieldValue] = {
                "message": text, "severity": "warning", "start_ns": ended.start_ns,
                "end_ns": s.time_ns, "duration_s": ended.duration_s, "worst": ended.worst,
            }  # fmt: skip
            self._queue.put_nowait(Point("event", tags, fields, s.time_ns))

    def _watch_flags(self, s: Sample) -> None:
        """Say it once when a driver starts (or stops) flagging a channel."""
        key = (s.instrument, s.channel)
        before = self._flags.get(key, _NO_FLAGS)
        if not s.flags and not before:
            return  # the common case: nothing flagged, nothing was
        now = frozenset(f for f in s.flags if not f.startswith("unit_changed"))
        for flag in s.flags:
            if flag.startswith("unit_changed") or flag not in before:
                text = describe_flag(flag)
                log.warning("%s: %s: %s", s.instrument, s.channel, text)
                self._event(s.instrument, "instrument_warning", "warning", f"{s.channel}: {text}")
        for flag in before - now:
            log.info("%s: %s: back to normal (%s ended)", s.instrument, s.channel, flag)
        self._flags[key] = now

    def _problem(self, name: str, health: InstrumentHealth, message: str) -> None:
        health.last_error = message
        if message != health._logged_error:
            # Drivers often name their instrument already: say it once.
            shown = message.replace(f"{name}: ", "", 1) if f"{name}: " in message else message
            log.warning("%s: %s", name, shown)
            health._logged_error = message

    def _set_online(
        self, name: str, health: InstrumentHealth, online: bool, reason: str = ""
    ) -> None:
        if online == health.online:
            return
        health.online = online
        if online:
            log.info("%s: online", name)
            self._event(name, "instrument_online", "info", "instrument answering")
        else:
            self._event(name, "instrument_offline", "warning", reason or "link lost")

    def _event(self, instrument: str, kind: str, severity: str, message: str) -> None:
        tags = {"bench": self.settings.bench, "instrument": instrument, "kind": kind}
        tags.update(self.context().tags())
        self._queue.put_nowait(
            Point("event", tags, {"message": message, "severity": severity}, time.time_ns())
        )

    async def _wait_done(self, seconds: float) -> None:
        """Wait ``seconds``, or less once the polls have ended."""
        try:
            await asyncio.wait_for(self._polls_done.wait(), timeout=seconds)
        except TimeoutError:
            return

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            return

    # -- journal -------------------------------------------------------------------------------

    async def _writer(self) -> None:
        """Commit queued points in groups; a failed commit is retried, never dropped."""
        loop = asyncio.get_running_loop()
        pending: list[Point] = []
        failing_since: float | None = None
        give_up_at: float | None = None
        while True:
            if not pending:
                if self._polls_done.is_set() and self._queue.empty():
                    return
                get = asyncio.ensure_future(self._queue.get())
                done_wait = asyncio.ensure_future(self._polls_done.wait())
                await asyncio.wait({get, done_wait}, return_when=asyncio.FIRST_COMPLETED)
                done_wait.cancel()
                if not get.done():
                    get.cancel()
                    continue
                pending.append(get.result())
            if self.settings.commit_window > 0 and not self._polls_done.is_set():
                # Group commit: let a window's worth of points gather so that one transaction
                # (and one fsync) carries many polls. Nothing counts as accepted before.
                await self._wait_done(self.settings.commit_window)
            while not self._queue.empty():
                pending.append(self._queue.get_nowait())
            try:
                await loop.run_in_executor(self._io, self.journal.append, pending)
            except JournalError as exc:
                self.journal_failures += 1
                self.journal_held = len(pending)
                if failing_since is None:
                    failing_since = time.monotonic()
                log.error(
                    "JOURNAL WRITE FAILED, %d measurement(s) are NOT yet accepted and are held in"
                    " memory until it works again (polling pauses beyond %d): %s",
                    len(pending),
                    self.settings.max_pending,
                    exc,
                )
                if self._polls_done.is_set():
                    # Stopping: keep trying for drain_timeout, then stop rather than hang.
                    if give_up_at is None:
                        give_up_at = time.monotonic() + self.settings.drain_timeout
                    if time.monotonic() >= give_up_at:
                        log.critical(
                            "STOPPING WITHOUT WRITING %d measurement(s): the journal %s still"
                            " cannot be written (%s). They were never accepted and are lost.",
                            len(pending),
                            self.journal.path,
                            exc,
                        )
                        self.journal_lost += len(pending)
                        self.journal_held = 0
                        return
                await asyncio.sleep(1.0)
                continue
            if failing_since is not None:
                log.warning(
                    "journal writes work again after %.0f s: %d held measurement(s) are now"
                    " accepted",
                    time.monotonic() - failing_since,
                    len(pending),
                )
                failing_since = None
            self.journal_held = 0
            self.accepted += len(pending)
            pending = []

    # -- health --------------------------------------------------------------------------------

    async def _health_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = time.monotonic()
        while not self._stop.is_set():
            await self._sleep(self.settings.health_interval)
            if self._stop.is_set():
                return
            for f in self.forwarders:
                self._backlog[f.key] = await loop.run_in_executor(
                    self._io, self.journal.backlog, f.key
                )
            self._write_health()
            for hook in self.periodic:
                try:
                    points = await loop.run_in_executor(self._io, hook)
                except Exception:
                    log.exception("periodic accounting failed; it is tried again next tick")
                    continue
                for point in points:
                    self._queue.put_nowait(point)
            self._report()
            if self.settings.retention_days > 0 and time.monotonic() >= next_prune:
                next_prune = time.monotonic() + 3600.0
                await loop.run_in_executor(self._io, self._prune)

    def _report(self) -> None:
        if self.on_health is None:
            return
        try:
            self.on_health(self)
        except (OSError, ValueError) as exc:
            log.warning("cannot write the status: %s", exc)

    def status(self) -> dict[str, Any]:
        """The daemon's state in plain data, for the status file and `daq status`."""
        return {
            "bench": self.settings.bench,
            "pid": os.getpid(),
            "started_ns": self.started_ns,
            "stopping": self._stop.is_set(),
            "instruments": {
                name: {**h.fields(), "last_error": h.last_error} for name, h in self.health.items()
            },
            "journal": {
                "path": str(self.journal.path),
                "accepted": self.accepted,
                "write_failures": self.journal_failures,
                "held": self.journal_held,
                "lost_at_stop": self.journal_lost,
            },
            "forwarders": [
                {
                    "sink": f.key,
                    "state": f.stats.state,
                    "last_error": f.stats.last_error,
                    "written": f.stats.written,
                    "quarantined": f.stats.quarantined,
                    "retries": f.stats.retries,
                    "backlog": self._backlog.get(f.key),
                }
                for f in self.forwarders
            ],
            "exposure": {
                name: {"valid_hours": e.valid_hours, "excursions": e.excursions}
                for name, e in self._exposure.items()
            },
        }

    def _prune(self) -> None:
        cutoff = time.time_ns() - int(self.settings.retention_days * 86400e9)
        removed = self.journal.prune(cutoff, [f.key for f in self.forwarders])
        if removed:
            log.info(
                "journal retention: removed %d row(s) older than %g days",
                removed,
                self.settings.retention_days,
            )

    def _write_health(self) -> None:
        now = time.time_ns()
        for name, h in self.health.items():
            tags = {"bench": self.settings.bench, "instrument": name}
            self._queue.put_nowait(Point("daq_health", tags, h.fields(), now))
        self._queue.put_nowait(
            Point(
                "daq_health",
                {"bench": self.settings.bench, "component": "journal"},
                {
                    "accepted": self.accepted,
                    "write_failures": self.journal_failures,
                    "backlog": max(self._backlog.values(), default=0),
                },
                now,
            )
        )
        ctx = self.context().tags()
        for name, exp in self._exposure.items():
            self._queue.put_nowait(
                Point(
                    "exposure",
                    {"bench": self.settings.bench, "instrument": name, **ctx},
                    {
                        "valid_hours": exp.valid_hours,
                        "excursions": exp.excursions,
                        "in_tolerance": bool(exp.last_ok),
                    },
                    now,
                )
            )
        for f in self.forwarders:
            s = f.stats
            self._queue.put_nowait(
                Point(
                    "daq_health",
                    {"bench": self.settings.bench, "component": "forwarder", "sink": f.key},
                    {
                        "written": s.written,
                        "quarantined": s.quarantined,
                        "retries": s.retries,
                        "up": s.state == "up",
                    },
                    now,
                )
            )

    def _forwarder_state(self, f: Forwarder) -> Callable[[str, str], None]:
        def changed(state: str, message: str) -> None:
            if state == "down":
                self._event("forwarder", "database_down", "warning", f"{f.key}: {message}")
            elif state == "up":
                self._event("forwarder", "database_up", "info", f"{f.key}: taking data")

        return changed


def describe_flag(flag: str) -> str:
    """A driver's flag in words for the log."""
    if flag == "stuck":
        return "value stuck: identical readings for many polls (frozen sensor or controller?)"
    if flag.startswith("status="):
        return f"the instrument reports status {flag.split('=', 1)[1].upper()}"
    if flag.startswith("unit_changed:"):
        change = flag.split(":", 1)[1].replace("->", " to ")
        return f"unit changed at the instrument ({change}); values are converted"
    return flag
