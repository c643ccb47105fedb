"""The forwarder: ships journal rows to a database sink in batches, idempotently.

For each batch of rows after the sink's cursor:

- written whole → the cursor moves past the batch;
- ``BatchTooLargeError`` (413) → the batch is split in halves, each sent on its own;
- ``RejectedBatchError`` (400/422) → the batch is bisected until the rejected lines are found;
  those are quarantined in the journal with the server's message, the rest are written;
- ``RetryableSinkError`` (refused, 429, 5xx) → nothing moves; the caller backs off, honouring
  Retry-After, and sends the same rows again later.
- the journal cannot be written (disk full, file made read-only: ``JournalError`` or SQLite's
  own error from the cursor update) → ``run`` says so in the log, backs off and tries again; the
  batch may have reached the database already and is simply sent again (idempotent, see below).
  The forwarder never stops for good on such an error: it resumes when the disk has room again.

Re-sending is safe: a point is identified by its series and its timestamp, so InfluxDB keeps one
copy however often it arrives. That is what makes a crash between writing and acknowledging
harmless. ``step`` is blocking (called from a worker thread); ``Forwarder.run`` is the asyncio
loop around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass

from daq.backoff import Backoff
from daq.errors import BatchTooLargeError, RejectedBatchError, RetryableSinkError
from daq.journal import Journal, JournalError
from daq.sinks.base import Sink

__all__ = ["Forwarder", "ForwarderStats"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ForwarderStats:
    written: int = 0
    quarantined: int = 0
    batches: int = 0
    retries: int = 0
    state: str = "starting"
    last_error: str = ""


class Forwarder:
    """Moves journal rows to one sink."""

    def __init__(
        self,
        journal: Journal,
        sink: Sink,
        *,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.journal = journal
        self.sink = sink
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.backoff = backoff or Backoff(initial=0.5, cap=30.0)
        self.stats = ForwarderStats()
        self._opened = False
        #: Rows after the batch being sent, read meanwhile (a backlog only), and the reader.
        self._ahead: Future[list[tuple[int, str | None]]] | None = None
        self._reader: ThreadPoolExecutor | None = None
        #: The journal problem last logged ("" when the journal is fine).
        self._journal_problem = ""

    @property
    def key(self) -> str:
        """The sink's cursor name in the journal."""
        return self.sink.name

    def step(self) -> int:
        """Send one batch. Returns rows moved past (written or quarantined); 0 when idle.

        Raises RetryableSinkError when the database cannot take it now.
        """
        if not self._opened:
            self.sink.open()
            self._opened = True
        rows = self._read_ahead_result()
        if rows is None:
            rows = self.journal.pending_lines(self.key, self.batch_size)
        if not rows:
            return 0
        try:
            if len(rows) >= self.batch_size:
                # A backlog: the next batch is read from the journal while this one is on its
                # way to the database (the HTTP wait leaves the journal and the GIL free).
                self._read_ahead(rows[-1][0])
            encoded = [(rid, line) for rid, line in rows if line is not None]
            if len(encoded) < len(rows):
                bad = [(rid, "") for rid, line in rows if line is None]
                self.journal.quarantine(
                    self.key,
                    bad,
                    "no field with a finite value: cannot be written as line protocol",
                )
                self.stats.quarantined += len(bad)
            self._send(encoded)
            self.journal.ack(self.key, rows[-1][0])
        except BaseException:
            # This batch is sent again from the cursor: what was read after it does not follow.
            self._drop_read_ahead()
            raise
        self.stats.batches += 1
        return len(rows)

    def _read_ahead(self, after_id: int) -> None:
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="journal-read-ahead")
        self._ahead = self._reader.submit(self.journal.lines_after, after_id, self.batch_size)

    def _read_ahead_result(self) -> list[tuple[int, str | None]] | None:
        """The rows read ahead after the batch just acknowledged, if any (errors as raised)."""
        ahead, self._ahead = self._ahead, None
        return None if ahead is None else ahead.result()

    def _drop_read_ahead(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.cancel()
            with contextlib.suppress(Exception):
                ahead.result()  # wait for a read under way, so none outlives the batch

    def _send(self, rows: Sequence[tuple[int, str]]) -> None:
        if not rows:
            return
        try:
            self.sink.write([line for _, line in rows])
        except BatchTooLargeError as exc:
            if len(rows) == 1:
                self._quarantine(rows, f"too large for the database: {exc}")
                return
            self._split(rows)
        except RejectedBatchError as exc:
            if len(rows) == 1:
                self._quarantine(rows, str(exc))
                return
            self._split(rows)
        else:
            self.stats.written += len(rows)

    def _split(self, rows: Sequence[tuple[int, str]]) -> None:
        mid = len(rows) // 2
        self._send(rows[:mid])
        self._send(rows[mid:])

    def _quarantine(self, rows: Sequence[tuple[int, str]], message: str) -> None:
        log.error(
            "%s rejected %d measurement(s); kept in the journal's quarantine: %s",
            self.sink.name,
            len(rows),
            message,
        )
        self.journal.quarantine(self.key, list(rows), message)
        self.stats.quarantined += len(rows)

    def close(self) -> None:
        self._drop_read_ahead()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.shutdown(wait=True)
        self.sink.close()

    def _journal_failed(self, exc: BaseException) -> None:
        """Say once per distinct problem that forwarding waits for the journal."""
        message = (
            f"cannot record in the journal {self.journal.path} what was sent to {self.sink.name}"
            f" ({exc}); is the disk full or the file read-only? Forwarding waits and tries again;"
            " a batch sent meanwhile is sent again, and the database keeps one copy of each point"
        )
        self.stats.last_error = message
        if str(exc) != self._journal_problem:
            log.error("JOURNAL PROBLEM: %s", message)
            self._journal_problem = str(exc)

    async def run(
        self,
        stop: asyncio.Event,
        executor: Executor,
        *,
        drain_timeout: float = 5.0,
        on_state: Callable[[str, str], None] | None = None,
    ) -> None:
        """Forward until ``stop`` is set, then try for ``drain_timeout`` s to send what is left."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None

        def set_state(state: str, message: str = "") -> None:
            if state != self.stats.state and on_state is not None:
                on_state(state, message)
            self.stats.state = state
            self.stats.last_error = message

        while True:
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + drain_timeout
            if deadline is not None and time.monotonic() >= deadline:
                return
            try:
                moved = await loop.run_in_executor(executor, self.step)
            except (JournalError, sqlite3.Error) as exc:
                self._journal_failed(exc)
                if not await _pause(stop, self.backoff.next(), deadline):
                    return
                continue
            except RetryableSinkError as exc:
                self.stats.retries += 1
                backlog = await loop.run_in_executor(executor, self.journal.backlog, self.key)
                if self.stats.state != "down":
                    log.warning(
                        "%s is not taking data: %s; %d measurement(s) wait safely in the"
                        " journal and will be sent when it is back",
                        self.sink.name,
                        exc,
                        backlog,
                    )
                set_state("down", str(exc))
                if not await _pause(stop, self.backoff.next(exc.retry_after), deadline):
                    return
                continue
            if self._journal_problem and moved:
                log.warning(
                    "%s: the journal can be written again; forwarding goes on", self.sink.name
                )
                self._journal_problem = ""
            if self.stats.state == "down":
                log.warning("%s is taking data again", self.sink.name)
            set_state("up")
            self.backoff.reset()
            if moved >= self.batch_size:
                continue
            if deadline is not None and moved == 0:
                return
            if deadline is None:
                await _wait(stop, self.flush_interval)


async def _pause(stop: asyncio.Event, delay: float, deadline: float | None) -> bool:
    """Wait ``delay`` s before trying again: cut short by ``stop`` while running; while stopping
    (``deadline`` set), keep trying until the drain time is up, and what is left then stays in
    the journal for the next start. False when the drain time is up."""
    if deadline is None:
        await _wait(stop, delay)
        return True
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    await asyncio.sleep(min(delay, left))
    return True


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``event`` is set, whichever comes first."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return
