"""Forwarder throughput into a real influxd against raw line-protocol POSTs of the same data.

Both write the same points (chamber-shaped: 7 tags, 7 fields) into fresh databases of one
``influxd`` (Debian's 1.x, started here on 127.0.0.1), in batches of the same size, over a
keep-alive HTTP connection. The raw loop POSTs pre-encoded lines and does nothing else; the
forwarder reads rows from the SQLite journal, decodes them, encodes line protocol, writes
through ``InfluxV1Sink`` and moves its cursor. Runs alternate (raw, forwarder, raw, ...);
the best of each is reported with their ratio, and the median of each round's
ratio (a forwarder run against the raw run just before it), which the server's own swings
(compactions, cache flushes) disturb less.

Run: .venv/bin/python -m benchmarks.forwarder [--points 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks._sim import chamber_point
from daq.forwarder import Forwarder
from daq.journal import Journal
from daq.lineprotocol import encode
from daq.model import Point
from daq.sinks import InfluxV1Sink
from tests.servers import InfluxServer

BATCH = 5000


def make_points(n: int) -> list[Point]:
    t0 = time.time_ns() - n * 1_000_000
    features = ["temperature", "setpoint", "saturator_temperature", "saturator_setpoint"]
    points = []
    for i in range(n):
        value = 35.0 + (i % 97) / 100.0
        points.append(
            chamber_point(
                f"chamber-{i % 10}", features[i % 4], value, 37.0 - value, t0 + i * 1_000_000
            )
        )
    return points


def raw_posts(url: str, db: str, lines: list[str]) -> float:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    start = time.perf_counter()
    for i in range(0, len(lines), BATCH):
        body = "\n".join(lines[i : i + BATCH]).encode()
        conn.request("POST", f"/write?db={db}&precision=ns", body=body)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 204, resp.status
    elapsed = time.perf_counter() - start
    conn.close()
    return len(lines) / elapsed


def forwarder(url: str, db: str, journal: Journal) -> float:
    sink = InfluxV1Sink(url, db, create_database=False)
    fwd = Forwarder(journal, sink, batch_size=BATCH)
    start = time.perf_counter()
    moved = 0
    while True:
        n = fwd.step()
        if n == 0:
            break
        moved += n
    elapsed = time.perf_counter() - start
    fwd.close()
    assert fwd.stats.quarantined == 0
    return moved / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    points = make_points(args.points)
    lines = [encode(p) for p in points]
    with tempfile.TemporaryDirectory() as tmp, InfluxServer(Path(tmp)) as server:
        journal = Journal(Path(tmp) / "j.db", synchronous="normal")
        journal.append(points)
        raw_rates, fwd_rates = [], []
        for r in range(args.rounds):
            raw_db, fwd_db = f"raw{r}", f"fwd{r}"
            server.create_database(raw_db)
            server.create_database(fwd_db)
            raw_rates.append(raw_posts(server.url, raw_db, lines))
            # a fresh cursor per round: a new sink name sees every row again
            fwd_journal_sink = f"influxdb-v1 {server.url} db={fwd_db}"
            assert journal.backlog(fwd_journal_sink) == args.points
            fwd_rates.append(forwarder(server.url, fwd_db, journal))
            assert server.count("chamber", raw_db) == args.points
            assert server.count("chamber", fwd_db) == args.points
            server.drop_database(raw_db)
            server.drop_database(fwd_db)
        journal.close()
    raw, fwd = max(raw_rates), max(fwd_rates)
    pairs = sorted(f / r for r, f in zip(raw_rates, fwd_rates, strict=True))
    print(f"points: {args.points}, batch {BATCH}, rounds {args.rounds}")
    print(f"raw line-protocol POSTs  {raw:10.0f} points/s   runs: {[round(x) for x in raw_rates]}")
    print(f"Hallmark forwarder       {fwd:10.0f} points/s   runs: {[round(x) for x in fwd_rates]}")
    print(f"ratio forwarder / raw    {fwd / raw:10.2f}   (best against best)")
    print(
        f"ratio per round          {statistics.median(pairs):10.2f}   (median of"
        f" {[round(x, 2) for x in pairs]}: each forwarder run against the raw run just before it)"
    )


if __name__ == "__main__":
    main()
