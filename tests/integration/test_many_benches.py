"""Five benches into one database: five ``daq run`` processes, each with its own bench id,
journal and simulated F4T controllers (the project's pymodbus simulator, in a process per
bench), write to one real influxd at once. After SIGTERM every bench's points in influxd equal
its journal's rows, measurement by measurement."""

from pathlib import Path

from benchmarks.many_benches import influx_count, journal_counts, run_benches
from daq.journal import Journal
from daq.model import Point

BENCHES = 5


def test_five_daemons_into_one_influxd_lose_nothing(tmp_path: Path, influxd, influx_db):
    results = run_benches(
        influxd.url, influx_db, tmp_path, benches=BENCHES, instruments=2, hz=5.0, seconds=6.0
    )

    assert [r.bench for r in results] == [f"bench-{i:02d}" for i in range(1, BENCHES + 1)]
    for r in results:
        assert r.exit_code == 0, (r.bench, (tmp_path / r.bench / "daemon.log").read_text())
        # both instruments polled and journaled (4 chamber points per answered poll)
        assert r.polls > 0
        assert 0 < r.journal["chamber"] <= 4 * r.polls, r
        assert r.journal["chamber"] % 4 == 0, r
        assert r.journal.get("daq_health", 0) > 0, r
        assert r.backlog == 0, r
        assert r.influx == r.journal, r.bench
    # the benches' data are disjoint: the database holds exactly the sum of the journals
    total = sum(sum(r.journal.values()) for r in results)
    every_bench = sum(
        influx_count(influxd.url, influx_db, m, r.bench) for r in results for m in r.journal
    )
    assert every_bench == total
    rows = influxd.rows("chamber", influx_db)
    assert len(rows) == sum(r.journal["chamber"] for r in results)
    assert {row["bench"] for row in rows} == {r.bench for r in results}


def test_journal_counts_match_the_journal_api(tmp_path: Path):
    path = tmp_path / "j.db"
    with Journal(path) as journal:
        journal.append(
            [
                Point("chamber", {"bench": "b"}, {"value": 1.0}, 1),
                Point("chamber", {"bench": "b"}, {"value": 2.0}, 2),
                Point("event", {"bench": "b"}, {"message": "x"}, 3),
            ]
        )
        expected = {"chamber": journal.count("chamber"), "event": journal.count("event")}
    assert journal_counts(path) == expected == {"chamber": 2, "event": 1}
