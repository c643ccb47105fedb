"""kill -9 trials: ``daq run`` is killed with SIGKILL at random moments, restarted, and drained.

Each trial starts ``daq run`` as its own process against two simulated Watlow F4T chambers
(Modbus TCP, ``simulators/watlow_f4t.py``) and a real ``influxd`` (Debian's 1.x, started here on
127.0.0.1), waits a random time (seeded), and kills it with SIGKILL: no handler runs, whatever
was in memory is gone. After every kill the journal must pass SQLite's ``integrity_check``.
A last, orderly run (``--duration``) drains what the killed ones left. Then every measurement the
journal committed is looked for in InfluxDB, per series (measurement + tags) and per timestamp:
none may be missing and none may be there twice (a resent point with another timestamp would be
an extra one; the same series + timestamp InfluxDB keeps once).

Per trial it prints the rows committed so far, the rows the trial added, the backlog at the kill
(journal rows past the sink's cursor) and how many of those InfluxDB already had (written but not
yet acknowledged in the journal: they are sent again after the restart, harmlessly).

Run: .venv/bin/python -m benchmarks.crash_trials [--trials 20] [--seed 20261126]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from random import Random

from simulators.watlow_f4t import running_chamber
from tests.servers import InfluxServer, quote_ident

__all__ = [
    "SeriesKey",
    "TrialResult",
    "compare",
    "influx_series_times",
    "journal_series_times",
    "main",
]

#: A series as InfluxDB identifies it: the measurement and its non-empty tags, sorted.
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def series_key(measurement: str, tags: dict[str, object]) -> SeriesKey:
    """The series of a point; empty tags are left out (line protocol has none)."""
    pairs = tuple(sorted((k, str(v)) for k, v in tags.items() if k and v not in ("", None)))
    return measurement, pairs


def journal_series_times(
    journal: Path, after_id: int = 0, quarantined: bool = False
) -> dict[SeriesKey, list[int]]:
    """Timestamps per series of the journal's rows with an id above ``after_id``.

    Rows in quarantine are left out unless ``quarantined``: they were refused on purpose.
    """
    out: dict[SeriesKey, list[int]] = {}
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        skip: set[int] = set()
        if not quarantined:
            skip = {int(r[0]) for r in db.execute("SELECT row_id FROM quarantine")}
        rows = db.execute(
            "SELECT id, measurement, tags, time_ns FROM points WHERE id > ? ORDER BY id",
            (after_id,),
        )
        for rid, measurement, tags, time_ns in rows:
            if rid in skip:
                continue
            out.setdefault(series_key(measurement, json.loads(tags)), []).append(int(time_ns))
    return out


def influx_series_times(
    server: InfluxServer, db: str, measurements: Iterable[str]
) -> dict[SeriesKey, list[int]]:
    """Timestamps per series of everything InfluxDB holds in these measurements."""
    out: dict[SeriesKey, list[int]] = {}
    for measurement in measurements:
        result = server.query(f"SELECT * FROM {quote_ident(measurement)} GROUP BY *", db=db)
        for statement in result["results"]:
            for series in statement.get("series", []):
                key = series_key(measurement, series.get("tags", {}))
                column = series["columns"].index("time")
                out.setdefault(key, []).extend(int(v[column]) for v in series["values"])
    return out


@dataclass(frozen=True, slots=True)
class Comparison:
    series: int
    expected: int
    found: int
    missing: int
    extra: int
    journal_duplicates: int


def compare(expected: dict[SeriesKey, list[int]], found: dict[SeriesKey, list[int]]) -> Comparison:
    """Per series and timestamp: what the journal committed against what InfluxDB holds."""
    missing = extra = dups = 0
    for key in expected.keys() | found.keys():
        want = Counter(expected.get(key, []))
        have = Counter(found.get(key, []))
        dups += sum(n - 1 for n in want.values() if n > 1)
        missing += sum((want - have).values())
        extra += sum((have - want).values())
    return Comparison(
        series=len(expected),
        expected=sum(len(v) for v in expected.values()),
        found=sum(len(v) for v in found.values()),
        missing=missing,
        extra=extra,
        journal_duplicates=dups,
    )


@dataclass(frozen=True, slots=True)
class TrialResult:
    trial: int
    ran_s: float
    rows: int
    added: int
    backlog: int
    written_unacked: int
    integrity: str


def _wait(seconds: float) -> None:
    threading.Event().wait(seconds)


def _rows(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM points").fetchone()[0])
    except sqlite3.Error:
        return 0


def _journal_state(journal: Path) -> tuple[int, int, str]:
    """(rows, the lowest sink cursor, integrity_check) of the journal after a kill."""
    if not journal.exists():
        return 0, 0, "ok"
    with sqlite3.connect(journal) as db:
        integrity = str(db.execute("PRAGMA integrity_check").fetchone()[0])
        rows = int(db.execute("SELECT count(*) FROM points").fetchone()[0])
        cursor = db.execute("SELECT min(last_id) FROM cursors").fetchone()[0]
    return rows, int(cursor or 0), integrity


def _config(tmp: Path, journal: Path, url: str, db: str, addresses: list[str]) -> Path:
    config = tmp / "bench.toml"
    text = (
        'schema = 1\n[bench]\nid = "crash"\nhealth_interval = 0.5\n'
        f'[journal]\npath = "{journal}"\n'
        f'[influx]\nurl = "{url}"\ndatabase = "{db}"\nflush_interval = 0.1\nbatch_size = 50\n'
    )
    for i, address in enumerate(addresses):
        text += (
            f'[[instrument]]\nname = "c{i + 1}"\ndriver = "watlow_f4t"\n'
            f'address = "{address}"\npoll_interval = 0.05\n'
        )
    config.write_text(text)
    return config


@dataclass(slots=True)
class _Daemon:
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, config: Path, *extra: str) -> _Daemon:
        argv = [sys.executable, "-m", "daq", "run", str(config), *extra]
        return cls(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def kill(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=10)


def _measurements(journal: Path) -> list[str]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        return [str(r[0]) for r in db.execute("SELECT DISTINCT measurement FROM points")]


def run_trials(
    tmp: Path, trials: int, seed: int, low: float, high: float
) -> Iterator[TrialResult | Comparison]:
    """Yield each trial's result, then the final comparison."""
    rng = Random(seed)
    journal = tmp / "journal" / "j.db"
    with ExitStack() as stack:
        (tmp / "influxd").mkdir()
        server = stack.enter_context(InfluxServer(tmp / "influxd"))
        server.create_database("crash")
        sims = [stack.enter_context(running_chamber(seed=seed + i)) for i in range(2)]
        config = _config(tmp, journal, server.url, "crash", [s.address for s in sims])
        before = 0
        for trial in range(1, trials + 1):
            daemon = _Daemon.start(config)
            try:
                # The moment the new process has committed its first rows is "running";
                # the kill comes a random time after that.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and _rows(journal) <= before:
                    _wait(0.02)
                ran = rng.uniform(low, high)
                _wait(ran)
            finally:
                code = daemon.kill()
            if code != -signal.SIGKILL:
                raise RuntimeError(f"trial {trial}: daq run ended with {code} before the kill")
            rows, cursor, integrity = _journal_state(journal)
            unacked = journal_series_times(journal, after_id=cursor, quarantined=True)
            held = influx_series_times(server, "crash", _measurements(journal)) if rows else {}
            written_unacked = sum(
                len(set(times) & set(held.get(key, []))) for key, times in unacked.items()
            )
            yield TrialResult(
                trial, ran, rows, rows - before, rows - cursor, written_unacked, integrity
            )
            before = rows
        final = subprocess.run(
            [sys.executable, "-m", "daq", "run", str(config), "--duration", "3"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if final.returncode != 0 or "0 still waiting in the journal" not in final.stderr:
            raise RuntimeError(f"the draining run failed:\n{final.stderr[-2000:]}")
        expected = journal_series_times(journal)
        found = influx_series_times(server, "crash", _measurements(journal))
        yield compare(expected, found)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--min-run", type=float, default=0.0, help="shortest run before a kill, s")
    ap.add_argument("--max-run", type=float, default=2.0, help="longest run before a kill, s")
    args = ap.parse_args(argv)
    started = time.monotonic()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.trials} kill -9 trials, seed {args.seed}, 2 chambers at 20 Hz, influxd 1.x")
        print("trial  ran s  journal rows  added  backlog at kill  in InfluxDB unacked  integrity")
        for result in run_trials(Path(tmp), args.trials, args.seed, args.min_run, args.max_run):
            if isinstance(result, TrialResult):
                failures += result.integrity != "ok"
                print(
                    f"{result.trial:5d}  {result.ran_s:5.2f}  {result.rows:12d}  {result.added:5d}"
                    f"  {result.backlog:15d}  {result.written_unacked:19d}  {result.integrity}"
                )
                continue
            print(
                f"total: {result.expected} measurements committed in {result.series} series;"
                f" in InfluxDB {result.found}; missing {result.missing};"
                f" duplicated {result.extra}; journal rows sharing series+time"
                f" {result.journal_duplicates}"
            )
            failures += result.missing + result.extra
    print(f"elapsed {time.monotonic() - started:.0f} s; {'PASS' if failures == 0 else 'FAIL'}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
