"""Catch-up after a database outage: the forwarder drains a 10-minute backlog into influxd.

At the scale load (200 instruments polled at 10 Hz) a 10-minute InfluxDB outage leaves
200 × 10 × 600 = 1.2 million measurements waiting in the journal. This benchmark builds that
journal (chamber-shaped points: 7 tags, 7 fields; one series per instrument, timestamps spread
over the outage and ending now), then starts a real ``influxd`` (Debian's 1.x, on 127.0.0.1) and
times the forwarder draining it: ``Forwarder.step`` back to back, as the daemon's loop calls it
while a full batch keeps coming (journal read, ``InfluxV1Sink`` POST, cursor update per batch).
The baseline, in the same run against the same server, is raw line-protocol POSTs of the same
lines in batches of the same size over one kept-alive connection, into a second database.

Afterwards both databases are counted per series (``count(value) ... GROUP BY *``) against the
journal: lost = journal rows missing, duplicated = rows more than the journal has.

Run: .venv/bin/python -m benchmarks.catchup [--minutes 10] [--instruments 200] [--hz 10]
     [--raw-first]
"""

from __future__ import annotations

import argparse
import http.client
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks._sim import chamber_point
from benchmarks.crash_trials import SeriesKey, journal_series_times, series_key
from daq.forwarder import Forwarder
from daq.journal import Journal
from daq.model import Point
from daq.sinks import InfluxV1Sink
from tests.servers import InfluxServer

__all__ = ["influx_series_counts", "main", "outage_points"]

BATCH = 5000
#: Points built and committed per journal transaction while filling the backlog.
CHUNK = 50_000


def outage_points(instruments: int, hz: float, seconds: float, end_ns: int) -> list[Point]:
    """The measurements a bench takes during an outage, oldest first, one series per instrument."""
    step_ns = int(1e9 / hz)
    polls = int(seconds * hz)
    start_ns = end_ns - polls * step_ns
    points: list[Point] = []
    for k in range(polls):
        t = start_ns + k * step_ns
        for i in range(instruments):
            value = 35.0 + ((k + i) % 97) / 100.0
            # instruments are polled one after another, not at one instant: t + i
            points.append(
                chamber_point(
                    f"chamber-{i:03d}", "temperature", value, round(37.0 - value, 6), t + i
                )
            )
    return points


def influx_series_counts(server: InfluxServer, db: str) -> dict[SeriesKey, int]:
    """Points per series of ``chamber`` in InfluxDB."""
    result = server.query('SELECT count("value") FROM "chamber" GROUP BY *', db=db)
    out: dict[SeriesKey, int] = {}
    for statement in result["results"]:
        for series in statement.get("series", []):
            key = series_key("chamber", series.get("tags", {}))
            out[key] = out.get(key, 0) + int(series["values"][0][1])
    return out


def lost_and_duplicated(
    expected: dict[SeriesKey, int], found: dict[SeriesKey, int]
) -> tuple[int, int]:
    lost = sum(max(0, n - found.get(k, 0)) for k, n in expected.items())
    extra = sum(max(0, n - expected.get(k, 0)) for k, n in found.items())
    return lost, extra


def raw_posts(url: str, db: str, lines: list[str]) -> float:
    """Seconds to POST ``lines`` in batches over one kept-alive connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        started = time.perf_counter()
        for i in range(0, len(lines), BATCH):
            body = "\n".join(lines[i : i + BATCH]).encode()
            conn.request("POST", f"/write?db={db}&precision=ns", body=body)
            response = conn.getresponse()
            text = response.read()
            if response.status != 204:
                raise RuntimeError(f"raw write answered {response.status}: {text[:300]!r}")
        return time.perf_counter() - started
    finally:
        conn.close()


def drain(journal: Journal, url: str, db: str) -> tuple[float, int, int]:
    """Seconds for the forwarder to empty the journal into ``db``; (seconds, moved, quarantined)."""
    fwd = Forwarder(journal, InfluxV1Sink(url, db, create_database=False, timeout=60),
                    batch_size=BATCH)  # fmt: skip
    try:
        started = time.perf_counter()
        moved = 0
        while n := fwd.step():
            moved += n
        return time.perf_counter() - started, moved, fwd.stats.quarantined
    finally:
        fwd.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the outage")
    ap.add_argument("--instruments", type=int, default=200)
    ap.add_argument("--hz", type=float, default=10.0, help="polls per second per instrument")
    ap.add_argument(
        "--raw-first", action="store_true", help="time the raw POSTs before the forwarder"
    )
    args = ap.parse_args(argv)
    seconds = args.minutes * 60.0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        journal_path = base / "journal" / "j.db"
        points = outage_points(args.instruments, args.hz, seconds, time.time_ns())
        total = len(points)
        print(
            f"backlog of a {args.minutes:g}-minute outage: {args.instruments} instruments x"
            f" {args.hz:g} Hz = {total} measurements, batches of {BATCH}"
        )
        started = time.perf_counter()
        with Journal(journal_path, synchronous="normal") as journal:
            for i in range(0, total, CHUNK):
                journal.append(points[i : i + CHUNK])
        del points
        print(f"journal filled in {time.perf_counter() - started:.1f} s")
        with sqlite3.connect(journal_path) as db:
            lines = [str(r[0]) for r in db.execute("SELECT line FROM points ORDER BY id")]
        expected = {k: len(v) for k, v in journal_series_times(journal_path).items()}
        (base / "influxd").mkdir()
        with InfluxServer(base / "influxd") as server, Journal(journal_path) as journal:
            server.create_database("drained")
            server.create_database("raw")
            # The second writer meets a server still busy compacting the first one's data:
            # --raw-first swaps the order, to show the order is not what decides the ratio.
            if args.raw_first:
                raw_s = raw_posts(server.url, "raw", lines)
            drain_s, moved, quarantined = drain(journal, server.url, "drained")
            if not args.raw_first:
                raw_s = raw_posts(server.url, "raw", lines)
            drained_counts = influx_series_counts(server, "drained")
            raw_counts = influx_series_counts(server, "raw")
            backlog = journal.backlog(f"influxdb-v1 {server.url} db=drained")
    lost, duplicated = lost_and_duplicated(expected, drained_counts)
    raw_lost, raw_dup = lost_and_duplicated(expected, raw_counts)
    drain_rate, raw_rate = moved / drain_s, total / raw_s
    ratio = drain_rate / raw_rate
    print(f"forwarder drain    {drain_s:7.1f} s  {drain_rate:10.0f} points/s  ({moved} moved,"
          f" {quarantined} quarantined, {backlog} left)")  # fmt: skip
    print(f"raw POST baseline  {raw_s:7.1f} s  {raw_rate:10.0f} points/s")
    print(f"ratio drain / raw  {ratio:7.2f}   (target >= 0.50)")
    print(
        f"in InfluxDB per series ({len(expected)} series): forwarder lost {lost}, duplicated"
        f" {duplicated}; raw lost {raw_lost}, duplicated {raw_dup}"
    )
    ok = lost == 0 and duplicated == 0 and backlog == 0 and quarantined == 0 and ratio >= 0.5
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
