"""The journal cannot grow (disk full) while the daemon runs: nothing is acknowledged that was not
written, the log says so in words, the daemon keeps running, and it catches up when space returns.

A full disk is made real, for one process only, with the kernel's file-size limit: ``daq run``
runs as its own process with SIGXFSZ ignored, and the test lowers that process's
``RLIMIT_FSIZE`` (``prlimit(2)``) below the size the journal's files have reached. Every write
past the limit then fails with EFBIG, as a write to a full disk fails with ENOSPC; SQLite
reports either as a failed write. Raising the limit again is "space returns".
The daemon's log goes to a pipe (pipes are not files: the limit does not silence the log).

Meanwhile the database answers 500 through the fault proxy and then recovers, so that the
forwarder has a batch in hand when the journal stops taking writes: it must send it, fail to
record that in the journal, say so, and go on once the journal can be written again.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daq.journal import Journal
from daq.status import read_status, status_path
from simulators.watlow_f4t import running_chamber
from tests.faultproxy import Fault, FaultProxy
from tests.servers import InfluxServer

pytestmark = pytest.mark.integration

#: The file-size limit while the "disk is full": one SQLite page; the status file (about 1 kB)
#: still fits, a WAL frame (page + 24-byte header after the 32-byte file header) does not.
FULL_LIMIT = 4096

# Ignore SIGXFSZ (a write past the limit would otherwise kill the process) and become daq run.
LAUNCHER = (
    "import os, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'daq', 'run', sys.argv[1]])"
)


class Daemon:
    """``daq run`` as a child process whose log is collected from a pipe by a thread."""

    def __init__(self, config: Path, status_file: Path) -> None:
        self.status_file = status_file
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self._lines)

    def set_file_limit(self, soft: int) -> None:
        _, hard = resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
        """Poll ``check`` until true; fail with the daemon's log when it does not come true."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(
                    f"gave up after {timeout:g} s waiting for {what}; exit code"
                    f" {self.proc.poll()}; daemon log:\n{self.log[-3000:]}\nstatus file:\n"
                    + (self.status_file.read_text() if self.status_file.exists() else "none")
                )
            threading.Event().wait(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        self._reader.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code


def bench_toml(
    journal: Path, url: str, database: str, address: str, batch_size: int | None = None
) -> str:
    """One simulated F4T polled every 50 ms, forwarding through ``url`` (the proxy)."""
    batch = f"batch_size = {batch_size}\n" if batch_size is not None else ""
    return (
        'schema = 1\n[bench]\nid = "full"\nhealth_interval = 0.3\n'
        f'[journal]\npath = "{journal}"\n'
        f'[influx]\nurl = "{url}"\ndatabase = "{database}"\nflush_interval = 0.1\n{batch}'
        '[[instrument]]\nname = "c1"\ndriver = "watlow_f4t"\n'
        f'address = "{address}"\npoll_interval = 0.05\n'
    )


@pytest.fixture
def proxy(influxd: InfluxServer) -> Iterator[FaultProxy]:
    with FaultProxy(influxd.url) as p:
        yield p


def test_journal_that_cannot_grow_holds_readings_and_recovers(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, proxy: FaultProxy
) -> None:
    journal_path = tmp_path / "journal" / "j.db"
    wal = journal_path.with_name("j.db-wal")
    where = status_path(journal_path)

    def status() -> dict[str, Any]:
        try:
            return read_status(where)
        except (FileNotFoundError, ValueError):
            return {}

    def journal_figures() -> tuple[int, int]:
        j = status().get("journal", {})
        return int(j.get("accepted", 0)), int(j.get("write_failures", 0))

    config = tmp_path / "bench.toml"
    with running_chamber(seed=5) as sim:
        config.write_text(bench_toml(journal_path, proxy.url, influx_db, sim.address, 500))
        daemon = Daemon(config, where)
        try:
            # Running and forwarding; the journal's files are past the limit about to be set.
            # (Starting Python and the daemon can take long on a loaded machine.)
            daemon.wait_for("the first forwarded batch", lambda: any(
                e.outcome == "passed 204" for e in proxy.writes()), timeout=60)  # fmt: skip
            # A WAL frame (a 4096-byte page and its header) no longer fits under the limit, so
            # every write to the journal's files fails from here on, wherever SQLite writes.
            daemon.wait_for("the journal's WAL to grow", lambda: wal.exists()
                            and wal.stat().st_size > FULL_LIMIT)  # fmt: skip
            # The database fails for a moment: a backlog builds up that the forwarder holds.
            proxy.add(Fault("status", status=500, times=None))
            daemon.wait_for("a refused write", lambda: any(
                e.outcome == "fault 500" for e in proxy.writes()))  # fmt: skip

            daemon.set_file_limit(FULL_LIMIT)  # the disk is full
            proxy.clear()  # and the database is back: the forwarder sends, cannot record it
            daemon.wait_for(
                "journal write failures in the status", lambda: journal_figures()[1] >= 2
            )
            held_accepted, failures = journal_figures()
            daemon.wait_for("more failures", lambda: journal_figures()[1] >= failures + 2)
            assert daemon.proc.poll() is None, "the daemon must keep running\n" + daemon.log
            # Not acknowledged while writes fail: "accepted" does not move.
            assert journal_figures()[0] == held_accepted
            assert status()["journal"]["held"] > 0  # taken, held in memory, not accepted
            assert "JOURNAL WRITE FAILED" in daemon.log
            assert "are NOT yet accepted and are held in memory until it works again" in daemon.log
            assert "is the disk full or the file read-only?" in daemon.log
            daemon.wait_for("the forwarder to report it cannot record progress",
                     lambda: "JOURNAL PROBLEM" in daemon.log)  # fmt: skip
            instruments_before = status()["instruments"]["c1"]["measurements"]

            daemon.set_file_limit(resource.RLIM_INFINITY)  # space returns
            daemon.wait_for("accepted to move again", lambda: journal_figures()[0] > held_accepted)
            daemon.wait_for("the forwarder to go on", lambda: "can be written again" in daemon.log)
            failures_after = journal_figures()[1]
            daemon.wait_for(
                "a few clean health ticks", lambda: journal_figures()[0] > held_accepted + 60
            )
            assert journal_figures()[1] == failures_after  # no new failures once there is room
            assert "journal writes work again after" in daemon.log
            assert status()["journal"]["held"] == 0
        finally:
            code = daemon.stop()
    assert code == 0, daemon.log
    assert "0 still waiting in the journal" in daemon.log
    final = status()
    with Journal(journal_path, readonly=True) as journal:
        # Everything acknowledged as accepted is in the journal: the held readings included.
        assert journal.count() == final["journal"]["accepted"]
        assert journal.count("chamber") == final["instruments"]["c1"]["measurements"]
        assert final["instruments"]["c1"]["measurements"] > instruments_before
        for measurement in ("chamber", "event", "daq_health"):
            assert influxd.count(measurement, influx_db) == journal.count(measurement), measurement


def test_stop_while_the_journal_cannot_be_written_ends_in_bounded_time(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, proxy: FaultProxy
) -> None:
    """SIGTERM while the disk is full: the daemon tries for drain_timeout, then stops and says
    how many measurements it could not write (never accepted), instead of hanging."""
    journal_path = tmp_path / "journal" / "j.db"
    wal = journal_path.with_name("j.db-wal")
    where = status_path(journal_path)
    config = tmp_path / "bench.toml"
    with running_chamber(seed=6) as sim:
        config.write_text(bench_toml(journal_path, proxy.url, influx_db, sim.address))
        daemon = Daemon(config, where)
        try:
            daemon.wait_for("the first forwarded batch", lambda: any(
                e.outcome == "passed 204" for e in proxy.writes()), timeout=60)  # fmt: skip
            daemon.wait_for("the journal's WAL to grow", lambda: wal.exists()
                            and wal.stat().st_size > FULL_LIMIT)  # fmt: skip
            daemon.set_file_limit(FULL_LIMIT)
            daemon.wait_for("a failed journal write", lambda: "JOURNAL WRITE FAILED" in daemon.log)
            daemon.proc.send_signal(signal.SIGTERM)
            daemon.wait_for("the daemon to stop", lambda: daemon.proc.poll() is not None,
                            timeout=30)  # fmt: skip
        finally:
            code = daemon.stop()
    assert code == 0, daemon.log
    assert "STOPPING WITHOUT WRITING" in daemon.log
    assert "They were never accepted and are lost." in daemon.log
    final = read_status(where)
    assert final["journal"]["lost_at_stop"] > 0
    with Journal(journal_path, readonly=True) as journal:
        assert journal.count() == final["journal"]["accepted"]
        for measurement in ("chamber", "event", "daq_health"):
            assert influxd.count(measurement, influx_db) == journal.count(measurement), measurement
