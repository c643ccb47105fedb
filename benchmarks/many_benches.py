"""Several benches, one database: N daemons writing to one real influxd at once.

Each bench is what a lab would run on its own bench PC: its own ``daq run`` process with its own
bench id, journal and simulated F4T controllers (a simulator process per bench, one TCP port per
controller, see benchmarks/soak.py). All of them forward to one database of one ``influxd``
(Debian's 1.x, started here on 127.0.0.1 the way the integration tests start it,
tests/servers.py). After the run every daemon gets SIGTERM (it stops polling, commits, drains
what it can); then, per bench and per measurement, the points in influxd (``WHERE bench = ID``)
are counted and compared with the rows of that bench's journal. They must be equal: the
forwarder's writes are idempotent and nothing accepted may be lost.

Printed: per bench, points/s journaled and written, and the total.

Run: .venv/bin/python -m benchmarks.many_benches [--benches 5] [--instruments 10] [--hz 10]
     [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks.soak import bench_toml, read_status, simulator_hosts, stop_process

__all__ = ["BenchResult", "influx_count", "journal_counts", "run_benches"]

_START_TIMEOUT_S = 60.0
_HTTP_TIMEOUT_S = 60.0
#: the files SQLite keeps beside a WAL database
SQLITE_SIDE = ("-wal", "-shm")


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One bench after its daemon stopped: what its journal holds and what influxd holds."""

    bench: str
    exit_code: int
    seconds: float
    journal: dict[str, int]
    influx: dict[str, int]
    backlog: int | None
    polls: int
    missed: int
    #: mean line-protocol bytes per point (what goes over the wire, before compression)
    line_bytes: float
    #: journal files (database, WAL, shared memory) on disk, in bytes
    disk_bytes: int

    @property
    def complete(self) -> bool:
        """Every measurement of the journal is in influxd with exactly as many points."""
        return self.journal == self.influx


def journal_counts(path: Path) -> dict[str, int]:
    """Rows per measurement in a journal (read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT measurement, count(*) FROM points GROUP BY measurement")
        return {str(m): int(n) for m, n in rows.fetchall()}
    finally:
        db.close()


def mean_line_bytes(path: Path) -> float:
    """Mean length in bytes of the line protocol stored with each journal row."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT avg(length(CAST(line AS BLOB))) FROM points").fetchone()
        return float(row[0] or 0.0)
    finally:
        db.close()


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influx_count(url: str, db: str, measurement: str, bench: str) -> int:
    """Points (distinct series and timestamp) of one bench in one measurement, over InfluxQL.

    ``COUNT(*)`` counts per field and the field sets differ between points, so the points are
    fetched (timestamps only matter) and counted.
    """
    literal = bench.replace("\\", "\\\\").replace("'", "\\'")
    q = f"SELECT * FROM {_quote(measurement)} WHERE \"bench\" = '{literal}'"
    query = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"})
    with urllib.request.urlopen(f"{url}/query?{query}", timeout=_HTTP_TIMEOUT_S) as reply:
        result = json.loads(reply.read())
    n = 0
    for statement in result.get("results", []):
        if "error" in statement:
            raise RuntimeError(f"influxd refused {q!r}: {statement['error']}")
        for series in statement.get("series", []):
            n += len(series["values"])
    return n


def _wait_started(journals: Sequence[Path], procs: Sequence[subprocess.Popen[bytes]]) -> None:
    tick = threading.Event()
    deadline = time.monotonic() + _START_TIMEOUT_S
    for journal, proc in zip(journals, procs, strict=True):
        while read_status(journal) is None:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon of {journal} exited with {proc.returncode} at start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon of {journal} wrote no status in {_START_TIMEOUT_S} s")
            tick.wait(0.1)


def run_benches(
    url: str,
    db: str,
    base: Path,
    *,
    benches: int = 5,
    instruments: int = 2,
    hz: float = 5.0,
    seconds: float = 10.0,
    sim: str = "pymodbus",
) -> list[BenchResult]:
    """Run ``benches`` daemons into ``db`` at ``url`` for ``seconds``; stop them; count."""
    names = [f"bench-{i + 1:02d}" for i in range(benches)]
    journals = [base / name / "journal.db" for name in names]
    procs: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        # one simulator process per bench, all started at once
        everything = stack.enter_context(simulator_hosts(benches * instruments, benches, sim))
        for i, (name, journal) in enumerate(zip(names, journals, strict=True)):
            journal.parent.mkdir(parents=True, exist_ok=True)
            addresses = everything[i * instruments : (i + 1) * instruments]
            config = journal.parent / "bench.toml"
            influx = {"url": url, "api": "v1", "database": db}
            config.write_text(
                bench_toml(
                    name,
                    journal,
                    addresses,
                    1.0 / hz,
                    health_interval=1.0,
                    synchronous="full",
                    influx=influx,
                )
            )
            log = stack.enter_context((journal.parent / "daemon.log").open("wb"))
            proc = subprocess.Popen(
                [sys.executable, "-m", "daq", "run", str(config)], stdout=log, stderr=log
            )
            stack.callback(stop_process, proc)
            procs.append(proc)
        _wait_started(journals, procs)
        started = time.monotonic()
        threading.Event().wait(seconds)
        ran = time.monotonic() - started
        for proc in procs:  # all at once, as a site-wide shutdown would
            if proc.poll() is None:
                proc.terminate()
        codes = [stop_process(proc, signalled=True) for proc in procs]
    results = []
    for name, journal, code in zip(names, journals, codes, strict=True):
        counts = journal_counts(journal)
        status = read_status(journal) or {}
        forwarders = status.get("forwarders")
        backlog = None
        if isinstance(forwarders, list) and forwarders:
            backlog = forwarders[0].get("backlog")
        inst = status.get("instruments")
        polls = missed = 0
        if isinstance(inst, dict):
            polls = sum(int(v.get("polls", 0)) for v in inst.values())
            missed = sum(int(v.get("missed_polls", 0)) for v in inst.values())
        results.append(
            BenchResult(
                bench=name,
                exit_code=code,
                seconds=ran,
                journal=counts,
                influx={m: influx_count(url, db, m, name) for m in counts},
                backlog=backlog,
                polls=polls,
                missed=missed,
                line_bytes=mean_line_bytes(journal),
                disk_bytes=sum(
                    p.stat().st_size
                    for p in (journal, *(journal.with_name(journal.name + x) for x in SQLITE_SIDE))
                    if p.exists()
                ),
            )
        )
    return results


def main() -> int:
    from tests.servers import InfluxServer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--benches", type=int, default=5)
    ap.add_argument("--instruments", type=int, default=10, help="per bench")
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--sim", choices=("pymodbus", "lite"), default="lite")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hallmark-benches-") as tmp, ExitStack() as stack:
        base = Path(tmp)
        (base / "influxd").mkdir()
        server = stack.enter_context(InfluxServer(base / "influxd"))
        server.create_database("hallmark")
        results = run_benches(
            server.url,
            "hallmark",
            base,
            benches=args.benches,
            instruments=args.instruments,
            hz=args.hz,
            seconds=args.seconds,
            sim=args.sim,
        )
    print(
        f"{args.benches} daemons x {args.instruments} simulated F4T ({args.sim}) at {args.hz:g} Hz"
        f" into one influxd, {results[0].seconds:.0f} s"
    )
    total_j = total_i = 0
    ok = True
    for r in results:
        j, i = sum(r.journal.values()), sum(r.influx.values())
        total_j += j
        total_i += i
        ok = ok and r.complete and r.exit_code == 0
        print(
            f"{r.bench}: exit {r.exit_code}, {r.polls} polls ({r.missed} missed),"
            f" journal {j} points ({j / r.seconds:.0f}/s), influxd {i} ({i / r.seconds:.0f}/s),"
            f" backlog {r.backlog}, {'equal' if r.complete else 'DIFFERENT'} per measurement;"
            f" {r.line_bytes:.0f} B/point line protocol, {r.disk_bytes / max(1, j):.0f} B/point"
            " in the journal on disk"
        )
        if not r.complete:
            print(f"  journal {r.journal}\n  influxd {r.influx}")
    secs = results[0].seconds
    print(
        f"total: journal {total_j} ({total_j / secs:.0f}/s),"
        f" influxd {total_i} ({total_i / secs:.0f}/s)"
    )
    print("every bench complete and exact" if ok else "NOT every bench is complete")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
