"""``daq backfill``: send a bench journal's backlog to its database now, with progress.

For when the daemon is stopped and the database is reachable again, before a bench PC is
retired, or — with ``--to URL --database DB`` — to copy a whole journal into another InfluxDB
1.x (a new central database: its cursor starts at the journal's first row). Writes are
idempotent (series + timestamp), so a row sent twice is stored once. The same forwarder code
as the daemon's does the work: rejected lines are quarantined with the server's message, a
database that is down is retried with backoff for ``--give-up-after`` seconds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from daq.backoff import Backoff
from daq.errors import ConfigError, HallmarkError, RetryableSinkError
from daq.forwarder import Forwarder
from daq.journal import Journal
from daq.progress import Progress
from daq.sinks import InfluxV1Sink, Sink

__all__ = ["run_backfill"]

log = logging.getLogger(__name__)


def _err(text: str) -> int:
    print(f"daq backfill: {text}", file=sys.stderr)
    return 1


def run_backfill(args: argparse.Namespace) -> int:
    from daq.app import build_sink, load

    try:
        config = load(args.config)
    except ConfigError as exc:
        return _err("config problems:\n" + "\n".join(f"  - {p}" for p in exc.problems))
    sink: Sink | None
    if args.to:
        if not args.database:
            return _err("--to needs --database, the InfluxDB 1.x database to copy into")
        try:
            sink = InfluxV1Sink(args.to, args.database)
        except ValueError as exc:
            return _err(str(exc))
    else:
        sink = build_sink(config)
        if sink is None:
            return _err("the config names no database ([influx]); give --to URL --database DB")
    path = config.journal_path(args.config.resolve().parent)
    try:
        with Journal(path, synchronous=config.journal.synchronous) as journal:
            return _drain(journal, sink, args)
    except HallmarkError as exc:
        return _err(str(exc))


def _drain(journal: Journal, sink: Sink, args: argparse.Namespace) -> int:
    # The daemon's own backoff (doubling, jittered, honouring Retry-After), capped lower here:
    # someone is waiting at the terminal.
    forwarder = Forwarder(journal, sink, backoff=Backoff(initial=0.5, cap=10.0))
    backlog = journal.backlog(forwarder.key)
    print(f"{forwarder.key}: {backlog} row(s) to send from {journal.path}", file=sys.stderr)
    failing_since: float | None = None
    pause = threading.Event()
    try:
        with Progress("backfill", backlog, mode=args.progress) as progress:
            while True:
                try:
                    moved = forwarder.step()
                except RetryableSinkError as exc:
                    now = time.monotonic()
                    failing_since = failing_since or now
                    if now - failing_since > args.give_up_after:
                        left = journal.backlog(forwarder.key)
                        return _err(
                            f"the database keeps failing ({exc}); {left} row(s) still wait in"
                            " the journal, nothing is lost: run it again later"
                        )
                    pause.wait(forwarder.backoff.next(exc.retry_after))
                    continue
                failing_since = None
                forwarder.backoff.reset()
                if moved == 0:
                    break
                progress.advance(moved)
    finally:
        forwarder.close()
    s = forwarder.stats
    print(
        f"{forwarder.key}: {s.written} written, {s.quarantined} quarantined,"
        f" {journal.backlog(forwarder.key)} left",
        file=sys.stderr,
    )
    return 0
