"""The forwarder against a real influxd: bisecting rejected batches, splitting large ones."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from daq.errors import RetryableSinkError
from daq.forwarder import Forwarder
from daq.journal import Journal
from daq.model import Point
from daq.sinks import InfluxV1Sink
from tests.servers import InfluxServer


def chamber(i, value):
    return Point(
        "chamber",
        {"bench": "b", "instrument": "c1", "feature": "temperature"},
        {"value": value, "status": "pass"},
        1_700_000_000_000_000_000 + i,
    )


def drain(fwd):
    moved = 0
    while n := fwd.step():
        moved += n
    return moved


def test_rejected_lines_are_found_and_quarantined(tmp_path, influxd, influx_db):
    points = [chamber(i, 35.0 + i / 100) for i in range(40)]
    # A string where InfluxDB already holds floats: a real 400 (field type conflict).
    points[17] = chamber(17, "35.17")
    points[31] = chamber(31, "35.31")
    with Journal(tmp_path / "j.db") as journal:
        journal.append(points[:1])
        fwd = Forwarder(journal, InfluxV1Sink(influxd.url, influx_db), batch_size=100)
        assert drain(fwd) == 1  # the float type is now fixed in the shard
        journal.append(points[1:])
        assert drain(fwd) == 39
        assert journal.backlog(fwd.key) == 0
        bad = journal.quarantined(fwd.key)
        fwd.close()
    assert [q.row_id for q in bad] == [18, 32]
    assert all("field type conflict" in q.message for q in bad)
    assert bad[0].line.startswith('chamber,bench=b,feature=temperature,instrument=c1 value="35.17"')
    assert fwd.stats.quarantined == 2
    assert influxd.count("chamber", influx_db) == 38


def test_too_large_batches_are_split(tmp_path):
    (tmp_path / "small").mkdir()
    with InfluxServer(tmp_path / "small", max_body_size=4000) as server:
        server.create_database("db")
        with Journal(tmp_path / "j.db") as journal:
            journal.append([chamber(i, 30.0 + i) for i in range(300)])
            fwd = Forwarder(journal, InfluxV1Sink(server.url, "db"), batch_size=300)
            assert drain(fwd) == 300
            assert fwd.stats.quarantined == 0
            fwd.close()
        assert server.count("chamber", "db") == 300


def test_unreachable_database_moves_nothing(tmp_path, influxd, influx_db):
    with Journal(tmp_path / "j.db") as journal:
        journal.append([chamber(i, 35.0) for i in range(5)])
        url = influxd.url.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens
        fwd = Forwarder(journal, InfluxV1Sink(url, influx_db), batch_size=100)
        with pytest.raises(RetryableSinkError):
            fwd.step()
        assert journal.backlog(fwd.key) == 5
        fwd.close()


async def test_run_retries_then_delivers(tmp_path, influxd, influx_db):
    """The async loop keeps trying while the database is down and delivers once it is back."""
    with Journal(tmp_path / "j.db") as journal:
        journal.append([chamber(i, 35.0) for i in range(50)])
        fwd = Forwarder(journal, InfluxV1Sink(influxd.url, influx_db), flush_interval=0.1)
        influxd.stop()
        stop = asyncio.Event()
        states = []
        with ThreadPoolExecutor(1) as pool:
            task = asyncio.create_task(fwd.run(stop, pool, on_state=lambda s, m: states.append(s)))
            for _ in range(100):
                if fwd.stats.retries >= 2:
                    break
                await asyncio.sleep(0.05)
            await asyncio.get_running_loop().run_in_executor(None, influxd.start)
            for _ in range(200):
                if journal.backlog(fwd.key) == 0:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(task, 10)
        fwd.close()
        assert states[:2] == ["down", "up"]
        assert journal.backlog(fwd.key) == 0
    assert influxd.count("chamber", influx_db) == 50
