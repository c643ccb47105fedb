"""The forwarder and the daemon writing through a fault-injecting proxy to a real influxd.

Each scenario puts ``tests/faultproxy.py`` between the sink and the server and makes it answer
500, 429 with Retry-After, 413, 400 for one marked line, answer late, or cut the connection.
After each one, what is in InfluxDB is counted and compared with the journal: every point that
was not quarantined arrives exactly once (counted per timestamp; the journal's timestamps are
distinct, so a duplicate or a loss changes the count).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from daq.backoff import Backoff
from daq.forwarder import Forwarder
from daq.journal import Journal
from daq.model import Point
from daq.sinks import InfluxV1Sink
from daq.status import read_status, status_path
from simulators.watlow_f4t import running_chamber
from tests.faultproxy import Fault, FaultProxy
from tests.servers import InfluxServer

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000_000_000


def chamber(i: int, instrument: str = "c1") -> Point:
    return Point(
        "chamber",
        {"bench": "b", "instrument": instrument, "feature": "temperature"},
        {"value": 35.0 + (i % 50) / 100, "status": "pass"},
        T0 + i * 1_000_000,
    )


@pytest.fixture
def proxy(influxd: InfluxServer) -> Iterator[FaultProxy]:
    with FaultProxy(influxd.url) as p:
        yield p


def make_forwarder(
    journal: Journal, url: str, db: str, *, batch_size: int = 100, timeout: float = 5.0
) -> Forwarder:
    return Forwarder(
        journal,
        InfluxV1Sink(url, db, timeout=timeout),
        batch_size=batch_size,
        flush_interval=0.05,
        backoff=Backoff(initial=0.05, cap=0.2),
    )


async def run_until_drained(fwd: Forwarder, journal: Journal, timeout: float = 15.0) -> None:
    """``Forwarder.run`` (the daemon's loop) until the journal has nothing left for the sink."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with ThreadPoolExecutor(1) as pool:
        task = asyncio.create_task(fwd.run(stop, pool))
        deadline = loop.time() + timeout
        while journal.backlog(fwd.key) > 0 and loop.time() < deadline and not task.done():
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 10)
    fwd.close()


def assert_exactly_once(influxd: InfluxServer, db: str, journal: Journal, sink: str) -> None:
    """Every journal row not quarantined is in InfluxDB, once (same timestamps, same count)."""
    quarantined = {q.row_id for q in journal.quarantined(sink)}
    expected = sorted(
        p.time_ns
        for rid, p in enumerate(journal.iter_points(), start=1)
        if rid not in quarantined and p.measurement == "chamber"
    )
    assert len(set(expected)) == len(expected)
    got = sorted(int(row["time"]) for row in influxd.rows("chamber", db))
    assert got == expected


async def test_500_answers_are_retried_and_nothing_is_lost(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, proxy: FaultProxy
) -> None:
    with Journal(tmp_path / "j.db") as journal:
        journal.append([chamber(i) for i in range(250)])
        proxy.add(Fault("status", status=500, message="engine: shard write failed", times=3))
        fwd = make_forwarder(journal, proxy.url, influx_db)
        await run_until_drained(fwd, journal)
        assert journal.backlog(fwd.key) == 0
        assert fwd.stats.retries == 3
        assert fwd.stats.quarantined == 0
        assert_exactly_once(influxd, influx_db, journal, fwd.key)
    outcomes = [e.outcome for e in proxy.writes()]
    assert outcomes[:3] == ["fault 500"] * 3
    assert outcomes[3:] == ["passed 204"] * 3


async def test_dropped_connections_are_retried_without_duplicates(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, proxy: FaultProxy
) -> None:
    # Cut before the database saw the batch, and after it wrote it: the second kind is sent
    # again, and InfluxDB must still hold one copy of each point.
    proxy.add(Fault("drop_before", times=2))
    proxy.add(Fault("drop_after", times=3))
    with Journal(tmp_path / "j.db") as journal:
        journal.append([chamber(i) for i in range(300)])
        fwd = make_forwarder(journal, proxy.url, influx_db)
        await run_until_drained(fwd, journal)
        assert journal.backlog(fwd.key) == 0
        assert fwd.stats.retries >= 1
        assert_exactly_once(influxd, influx_db, journal, fwd.key)
    outcomes = [e.outcome for e in proxy.writes()]
    assert outcomes.count("dropped") == 2
    assert outcomes.count("dropped after forwarding") == 3
    first = proxy.writes()[0].body
    assert sum(e.body == first for e in proxy.writes()) >= 2  # the same batch was sent again


async def test_429_retry_after_is_honoured(
    tmp_path: Path,
    influxd: InfluxServer,
    influx_db: str,
    proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy.add(Fault("status", status=429, message="too many requests", retry_after="1", times=1))
    with Journal(tmp_path / "j.db") as journal:
        journal.append([chamber(i) for i in range(50)])
        fwd = make_forwarder(journal, proxy.url, influx_db)
        with caplog.at_level(logging.WARNING, logger="daq.forwarder"):
            await run_until_drained(fwd, journal)
        assert_exactly_once(influxd, influx_db, journal, fwd.key)
    first, second = proxy.writes()[:2]
    assert first.outcome == "fault 429"
    assert second.outcome == "passed 204"
    # The backoff alone would retry after at most 0.05 s; the server asked for 1 s.
    assert second.received - first.answered >= 0.95
    assert "asked to wait 1 s" in caplog.text


async def test_413_batches_are_split_until_all_points_arrive(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, proxy: FaultProxy
) -> None:
    limit = 3000
    proxy.add(Fault("status", status=413, message="Request Entity Too Large", times=None,
                    min_body=limit))  # fmt: skip
    with Journal(tmp_path / "j.db") as journal:
        journal.append([chamber(i) for i in range(400)])
        fwd = make_forwarder(journal, proxy.url, influx_db, batch_size=400)
        await run_until_drained(fwd, journal)
        assert fwd.stats.quarantined == 0
        assert journal.quarantined() == []
        assert_exactly_once(influxd, influx_db, journal, fwd.key)
    writes = proxy.writes()
    assert any(e.outcome == "fault 413" for e in writes)
    passed = [e for e in writes if e.outcome == "passed 204"]
    assert all(e.body_size <= limit for e in passed)
    assert sum(e.lines for e in passed) == 400


async def test_400_for_one_line_quarantines_it_with_the_servers_message(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, proxy: FaultProxy
) -> None:
    message = 'partial write: unable to parse "chamber,instrument=c-bad": invalid field format'
    proxy.add(Fault("status", status=400, message=message, times=None, marker=b"c-bad"))
    points = [chamber(i) for i in range(120)]
    points[77] = chamber(77, instrument="c-bad")
    with Journal(tmp_path / "j.db") as journal:
        journal.append(points)
        fwd = make_forwarder(journal, proxy.url, influx_db, batch_size=120)
        await run_until_drained(fwd, journal)
        bad = journal.quarantined(fwd.key)
        assert [q.row_id for q in bad] == [78]
        assert "c-bad" in bad[0].line
        assert message in bad[0].message
        assert "HTTP 400" in bad[0].message
        assert fwd.stats.quarantined == 1
        assert_exactly_once(influxd, influx_db, journal, fwd.key)
    assert influxd.count("chamber", influx_db) == 119


async def test_a_backlog_is_sent_in_journal_order_through_failures_midway(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, proxy: FaultProxy
) -> None:
    # A backlog of several batches: the forwarder reads each next batch while the current one
    # is on the wire. A batch that fails (500 twice) or must be bisected (one refused line)
    # midway must not let what was read after it go first, twice, or never.
    t200 = str(chamber(200).time_ns).encode()
    proxy.add(Fault("status", status=500, message="engine: shard write failed", times=2,
                    marker=t200))  # fmt: skip
    message = 'partial write: unable to parse "chamber,instrument=c-bad": invalid field format'
    proxy.add(Fault("status", status=400, message=message, times=None, marker=b"c-bad"))
    points = [chamber(i) for i in range(480)]
    points[351] = chamber(351, instrument="c-bad")
    with Journal(tmp_path / "j.db") as journal:
        journal.append(points)
        fwd = make_forwarder(journal, proxy.url, influx_db, batch_size=100)
        await run_until_drained(fwd, journal)
        assert journal.backlog(fwd.key) == 0
        assert [q.row_id for q in journal.quarantined(fwd.key)] == [352]
        assert fwd.stats.retries == 2
        assert_exactly_once(influxd, influx_db, journal, fwd.key)
    sent = [
        int(line.rsplit(b" ", 1)[1])
        for e in proxy.writes()
        if e.outcome == "passed 204"
        for line in e.body.split(b"\n")
    ]
    expected = [p.time_ns for i, p in enumerate(points) if i != 351]
    assert sent == expected  # in journal order, each once, none left out


async def test_slow_answers_cause_resends_but_no_duplicates(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, proxy: FaultProxy
) -> None:
    # The proxy passes the batch on but answers after the sink has stopped waiting: the
    # database holds the points, the journal's cursor has not moved, the batch goes again.
    proxy.add(Fault("delay", delay=0.8, times=2))
    with Journal(tmp_path / "j.db") as journal:
        journal.append([chamber(i) for i in range(150)])
        fwd = make_forwarder(journal, proxy.url, influx_db, timeout=0.3)
        await run_until_drained(fwd, journal)
        assert journal.backlog(fwd.key) == 0
        assert fwd.stats.retries >= 2
        assert proxy.wait_idle()  # the late answers have been given
        assert_exactly_once(influxd, influx_db, journal, fwd.key)
    delayed = [e for e in proxy.writes() if e.outcome.startswith("delayed")]
    assert len(delayed) == 2
    assert sum(e.body == delayed[0].body for e in proxy.writes()) >= 2


def test_daemon_through_faults_and_daq_status_lists_the_quarantine(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, proxy: FaultProxy
) -> None:
    """``daq run`` through 500s, a cut connection and a 400 on the journal's own health line;
    ``daq status`` then lists the quarantined rows with the server's message."""
    message = "unable to parse: injected bad line"
    # The 400 rule comes first: a batch with the marked line never reaches the database.
    proxy.add(Fault("status", status=400, message=message, times=None,
                    marker=b"component=journal"))  # fmt: skip
    proxy.add(Fault("status", status=500, times=2))
    proxy.add(Fault("drop_after", times=1))
    journal_path = tmp_path / "j.db"
    config = tmp_path / "bench.toml"
    with running_chamber(seed=3) as sim:
        config.write_text(
            'schema = 1\n[bench]\nid = "proxy"\nhealth_interval = 0.4\n'
            f'[journal]\npath = "{journal_path}"\n'
            f'[influx]\nurl = "{proxy.url}"\ndatabase = "{influx_db}"\nflush_interval = 0.1\n'
            "batch_size = 200\n"
            '[[instrument]]\nname = "c1"\ndriver = "watlow_f4t"\n'
            f'address = "{sim.address}"\npoll_interval = 0.05\n'
        )
        run = subprocess.run(
            [sys.executable, "-m", "daq", "run", str(config), "--duration", "2.5"],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "0 still waiting in the journal" in run.stderr
    status = read_status(status_path(journal_path))
    [fwd] = status["forwarders"]
    assert fwd["quarantined"] >= 1
    assert fwd["backlog"] == 0
    shown = subprocess.run(
        [sys.executable, "-m", "daq", "status", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert f"{fwd['quarantined']} row(s) in quarantine (refused by the database)" in shown.stdout
    assert message in shown.stdout
    with Journal(journal_path, readonly=True) as journal:
        bad = journal.quarantined()
        assert len(bad) == fwd["quarantined"]
        assert all("component=journal" in q.line for q in bad)
        assert journal.count("chamber") > 20
        for measurement in ("chamber", "event", "daq_health"):
            quarantined_here = sum(q.line.startswith(measurement + ",") for q in bad)
            expected = journal.count(measurement) - quarantined_here
            assert influxd.count(measurement, influx_db) == expected, measurement
    outcomes = [e.outcome for e in proxy.writes()]
    assert outcomes.count("fault 500") == 2
    assert "dropped after forwarding" in outcomes
    assert json.loads(status_path(journal_path).read_text())["bench"] == "proxy"
