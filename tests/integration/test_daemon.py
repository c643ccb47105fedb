"""The whole way: chamber simulators → driver → normalize → judge → journal → real databases."""

import asyncio
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from daq.app import run_bench
from daq.config import parse_config
from daq.errors import HallmarkError
from daq.journal import Journal
from simulators.scenario import load_scenario
from simulators.watlow_f4t import running_chamber

LOT = {"sku": "VRM-RING-001", "po": "PO-7", "lot": "GS-01", "phase": "golden-sample"}


def bench_config(tmp_path, addresses, influx=None, interval=0.2, timeout=0.5, names=None):
    names = names or [f"chamber-{i}" for i in range(1, len(addresses) + 1)]
    raw = {
        "schema": 1,
        "bench": {"id": "bench-t", "health_interval": 1.0, "reconnect_max": 0.4},
        "journal": {"path": str(tmp_path / "journal.db"), "synchronous": "normal"},
        "lot": LOT,
        "instrument": [
            {
                "name": name,
                "driver": "watlow_f4t",
                "address": address,
                "poll_interval": interval,
                "timeout": timeout,
                "limits": {"temperature": {"low": 33.0, "high": 37.0, "guard": 0.3}},
            }
            for name, address in zip(names, addresses, strict=True)
        ],
    }
    if influx:
        raw["influx"] = {"flush_interval": 0.2, **influx}
    return parse_config(raw, "test.toml", __import__("drivers.registry").registry.check_instrument)


def exported(victoria, expected, limit_s=20.0):
    """VictoriaMetrics shows new data about a second after a flush: wait, bounded."""
    deadline = time.monotonic() + limit_s
    while True:
        victoria.force_flush()
        series = victoria.export('{__name__="chamber_value"}')
        if sum(len(s["values"]) for s in series) >= expected or time.monotonic() > deadline:
            return series
        time.sleep(0.25)


def journal_counts(path):
    with Journal(path, readonly=True) as j:
        return {m: j.count(m) for m in ("chamber", "event", "daq_health", "exposure")}


def chamber_rows_so_far(path):
    """Chamber rows in a journal another process is writing; 0 while its file or its tables
    do not exist yet."""
    try:
        return journal_counts(path)["chamber"] if path.exists() else 0
    except (HallmarkError, sqlite3.Error):
        return 0


async def test_forwards_to_influxdb_v1(tmp_path, influxd, influx_db):
    with running_chamber(seed=1) as a, running_chamber(seed=2) as b:
        config = bench_config(
            tmp_path, [a.address, b.address], {"url": influxd.url, "database": influx_db}
        )
        runtime = await run_bench(config, tmp_path, duration=2.5)
    counts = journal_counts(tmp_path / "journal.db")
    assert counts["chamber"] >= 2 * 4 * 10
    for measurement, n in counts.items():
        assert influxd.count(measurement, influx_db) == n, measurement
    (fwd,) = runtime.forwarders
    assert fwd.stats.quarantined == 0
    with Journal(tmp_path / "journal.db", readonly=True) as j:
        assert j.backlog(fwd.key) == 0
    rows = influxd.rows("chamber", influx_db)
    temps = [r for r in rows if r["feature"] == "temperature"]
    assert {r["instrument"] for r in temps} == {"chamber-1", "chamber-2"}
    r = temps[0]
    assert (r["bench"], r["sku"], r["po"], r["lot"], r["phase"]) == (
        "bench-t",
        "VRM-RING-001",
        "PO-7",
        "GS-01",
        "golden-sample",
    )
    assert r["unit"] == "°C"
    assert r["status"] == "pass"
    assert (r["low"], r["high"]) == (33.0, 37.0)
    assert 34.0 < r["value"] < 36.0
    assert r["raw"].startswith("27586: ")
    sat = [x for x in rows if x["feature"] == "saturator_temperature"]
    assert sat and all(x["status"] == "none" for x in sat)
    types = influxd.field_types("chamber", influx_db)
    assert types["value"] == "float"
    assert types["status"] == "string"
    health = influxd.rows("daq_health", influx_db)
    assert any(h.get("instrument") == "chamber-1" and h["polls"] > 0 for h in health)


async def test_forwards_to_v2_write_api(tmp_path, victoria, monkeypatch):
    monkeypatch.setenv("HALLMARK_TEST_TOKEN", "test-token")
    with running_chamber(seed=5) as a:
        config = bench_config(
            tmp_path,
            [a.address],
            {
                "url": victoria.url,
                "api": "v2",
                "bucket": "qc",
                "org": "lab",
                "token_env": "HALLMARK_TEST_TOKEN",
            },
        )
        runtime = await run_bench(config, tmp_path, duration=2.0)
    assert runtime.forwarders[0].stats.written > 0
    counts = journal_counts(tmp_path / "journal.db")
    series = await asyncio.to_thread(exported, victoria, counts["chamber"])
    total = sum(len(s["values"]) for s in series)
    assert total == counts["chamber"]
    labels = {s["metric"]["feature"] for s in series}
    assert labels == {"temperature", "setpoint", "saturator_temperature", "saturator_setpoint"}
    m = series[0]["metric"]
    assert (m["bench"], m["instrument"], m["lot"], m["phase"]) == (
        "bench-t",
        "chamber-1",
        "GS-01",
        "golden-sample",
    )


async def test_database_outage_loses_nothing(tmp_path, influxd, influx_db):
    def outage():
        influxd.stop()
        stopped.set()

    stopped = threading.Event()
    with running_chamber(seed=3) as a:
        config = bench_config(
            tmp_path, [a.address], {"url": influxd.url, "database": influx_db}, interval=0.1
        )
        loop = asyncio.get_running_loop()
        bench = asyncio.create_task(run_bench(config, tmp_path, duration=7.0))
        await asyncio.sleep(1.5)
        await loop.run_in_executor(None, outage)
        await asyncio.sleep(2.5)  # measuring on while the database is down
        backlog_during = journal_counts(tmp_path / "journal.db")["chamber"]
        await loop.run_in_executor(None, influxd.start)
        runtime = await bench
    assert stopped.is_set()
    counts = journal_counts(tmp_path / "journal.db")
    assert counts["chamber"] > backlog_during > 0
    for measurement, n in counts.items():
        assert influxd.count(measurement, influx_db) == n, measurement
    fwd = runtime.forwarders[0]
    assert fwd.stats.retries > 0
    with Journal(tmp_path / "journal.db", readonly=True) as j:
        assert j.backlog(fwd.key) == 0
        kinds = [p.tags["kind"] for p in j.latest(100, "event")]
    assert "database_down" in kinds and "database_up" in kinds


FAULTS = """
schema = 1
[model]
time_constant_s = 2.0
[[fault]]
kind = "no_reply"
start = 0.5
duration = 0.8
[[fault]]
kind = "exception"
code = 2
start = 1.8
duration = 0.6
[[fault]]
kind = "exception"
code = 4
start = 2.8
duration = 0.6
[[fault]]
kind = "exception"
code = 6
start = 3.8
duration = 0.6
[[fault]]
kind = "disconnect"
start = 4.8
duration = 0.8
[[fault]]
kind = "word_order_swapped"
start = 6.2
duration = 0.6
[[fault]]
kind = "frozen"
start = 7.2
duration = 1.5
[[fault]]
kind = "device_fail"
start = 9.0
duration = 0.6
[[fault]]
kind = "excursion"
delta = -8.0
start = 9.0
duration = 1.0
"""


async def test_every_fault_knob_keeps_the_rest_running(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    scenario_path = tmp_path / "faults.toml"
    scenario_path.write_text(FAULTS)
    scenario = load_scenario(scenario_path)
    duration = 10.5
    with running_chamber(seed=1) as good, running_chamber(seed=2, scenario=scenario) as bad:
        config = bench_config(
            tmp_path,
            [good.address, bad.address],
            names=["good-chamber", "bad-chamber"],
            interval=0.1,
            timeout=0.3,
        )
        config = config.model_copy(
            update={
                "instrument": [
                    i.model_copy(update={"options": {"stuck_after_s": 0.8}})
                    for i in config.instrument
                ]
            }
        )
        runtime = await run_bench(config, tmp_path, duration=duration)
    good_h, bad_h = runtime.health["good-chamber"], runtime.health["bad-chamber"]
    assert good_h.errors == 0
    assert good_h.polls >= 0.8 * duration / 0.1
    assert bad_h.errors > 0 and bad_h.reconnects >= 2
    assert bad_h.measurements > 0
    log = "\n".join(r.getMessage() for r in caplog.records)
    b = r"bad-chamber: (cannot connect: |link lost: )?"
    for pattern in [
        b + r"no reply from tcp://127\.0\.0\.1:\d+ within 0\.3 s",
        r"bad-chamber: online",
        b + r"device answered Modbus exception 02 \(illegal data address\)",
        b + r"device answered Modbus exception 04 \(device failure\)",
        b + r"device answered Modbus exception 06 \(device busy\)",
        r"bad-chamber: (cannot connect|link lost): connection to tcp://127\.0\.0\.1:\d+ lost",
        r"bad-chamber: (cannot connect: )?\w+ decoded as .* check word_order \(now CDAB\)",
        r"bad-chamber: temperature: value stuck",
        r"bad-chamber: temperature: the instrument reports status FAIL",
    ]:
        assert re.search(pattern, log), f"log lacks {pattern!r}:\n{log}"
    assert "good-chamber: link lost" not in log
    with Journal(tmp_path / "journal.db", readonly=True) as j:
        chamber = j.latest(100000, "chamber")
    bad_temps = [
        p
        for p in chamber
        if p.tags["instrument"] == "bad-chamber" and p.tags["feature"] == "temperature"
    ]
    assert any(p.fields["status"] == "fail" for p in bad_temps)  # the excursion is judged
    assert all(p.fields["value"] > 20 for p in bad_temps)  # no wrong-word-order garbage kept
    # salt-spray exposure counts only in tolerance: the door-open excursion stops the clock
    good_exp, bad_exp = runtime.exposure["good-chamber"], runtime.exposure["bad-chamber"]
    assert good_exp.excursions == 0
    assert good_exp.valid_s >= 0.8 * duration
    assert bad_exp.excursions >= 1 and bad_exp.valid_s < good_exp.valid_s
    with Journal(tmp_path / "journal.db", readonly=True) as j:
        kinds = [e.tags["kind"] for e in j.latest(10_000, "event")]
        exposure = j.latest(100, "exposure")
    assert "chamber_excursion_started" in kinds
    assert {p.tags["instrument"] for p in exposure} == {"good-chamber", "bad-chamber"}
    assert max(p.fields["valid_hours"] for p in exposure) > 0


def test_demo_against_influxdb_matches_export(tmp_path, influxd):
    db = "hallmark_demo"
    journal = tmp_path / "demo.db"
    daq = [sys.executable, "-m", "daq"]
    demo = subprocess.run(
        [
            *daq,
            "demo",
            "--duration",
            "50",
            "--journal",
            str(journal),
            "--influx",
            influxd.url,
            "--influx-db",
            db,
        ],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert demo.returncode == 0, demo.stderr
    summary = demo.stdout.split("\nSummary\n", 1)[1]
    # The story: the golden sample is accepted, the drifting bulk lot is rejected with alarms.
    assert "lot GS-01 (golden-sample): ACCEPT" in summary
    assert "lot B-07 (bulk): REJECT" in summary
    alarms = int(summary.split("drift alarms: ")[1].split()[0])
    assert alarms >= 2
    assert "thickness.layer_Au on xrf-1 drifts" in demo.stdout
    assert "chamber excursion: excursion over" in summary
    reports = [line.split(": ", 1)[1] for line in demo.stdout.splitlines()
               if line.strip().startswith("lot report (")]  # fmt: skip
    assert len(reports) == 2
    assert all("<svg" in Path(r).read_text(encoding="utf-8") for r in reports)
    export = subprocess.run(
        [*daq, "export", "--journal", str(journal), "--format", "lp"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = export.stdout.splitlines()
    assert lines
    measurements = {line.split(",", 1)[0] for line in lines}
    assert {"chamber", "event", "daq_health", "exposure", "thickness", "force", "torque",
            "corrosion", "inspection", "lot_decision", "baseline"} <= measurements  # fmt: skip
    in_influx = sum(influxd.count(m, db) for m in measurements)
    assert in_influx == len(lines)
    tail = subprocess.run(
        [*daq, "tail", "--journal", str(journal), "-n", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(tail.stdout.splitlines()) == 5


def test_daq_run_stops_on_sigterm_and_flushes(tmp_path, influxd, influx_db):
    with running_chamber(seed=4) as sim:
        config = tmp_path / "bench.toml"
        config.write_text(
            'schema = 1\n[bench]\nid = "bench-s"\n[journal]\npath = "j.db"\n'
            f'[influx]\nurl = "{influxd.url}"\ndatabase = "{influx_db}"\n'
            '[[instrument]]\nname = "c1"\ndriver = "watlow_f4t"\n'
            f'address = "{sim.address}"\npoll_interval = 0.2\n'
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "daq", "run", str(config)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if chamber_rows_so_far(tmp_path / "j.db") >= 20:
                    break
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()  # also closes the stderr pipe
    assert proc.returncode == 0, err
    assert "c1: online" in err
    assert "0 still waiting in the journal" in err
    counts = journal_counts(tmp_path / "j.db")
    assert counts["chamber"] >= 20
    for measurement, n in counts.items():
        assert influxd.count(measurement, influx_db) == n, measurement
