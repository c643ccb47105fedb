"""kill -9 of the daemon at random moments: every measurement the journal committed reaches
InfluxDB exactly once after restarts (the journal is the outbox; writes are idempotent)."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from daq.journal import Journal
from simulators.watlow_f4t import running_chamber

TRIALS = 4


def start(config):
    return subprocess.Popen(
        [sys.executable, "-m", "daq", "run", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_9_loses_nothing_and_duplicates_nothing(tmp_path, influxd, influx_db):
    rng = random.Random(20261126)
    journal = tmp_path / "j.db"
    with running_chamber(seed=8) as sim:
        config = tmp_path / "bench.toml"
        config.write_text(
            'schema = 1\n[bench]\nid = "crash"\nhealth_interval = 0.5\n'
            f'[journal]\npath = "{journal}"\n'
            f'[influx]\nurl = "{influxd.url}"\ndatabase = "{influx_db}"\nflush_interval = 0.1\n'
            "batch_size = 50\n"
            '[[instrument]]\nname = "c1"\ndriver = "watlow_f4t"\n'
            f'address = "{sim.address}"\npoll_interval = 0.05\n'
        )
        for _ in range(TRIALS):
            proc = start(config)
            try:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not journal.exists():
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.5, 2.0))
            finally:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=10)
            assert proc.returncode == -signal.SIGKILL
            with sqlite3.connect(journal) as db:
                assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # a last, orderly run drains what the killed ones left in the journal
        final = subprocess.run(
            [sys.executable, "-m", "daq", "run", str(config), "--duration", "2"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert final.returncode == 0, final.stderr
    assert "0 still waiting in the journal" in final.stderr
    with Journal(journal, readonly=True) as j:
        counts = {m: j.count(m) for m in ("chamber", "event", "daq_health", "exposure")}
    assert counts["chamber"] > TRIALS * 40
    for measurement, n in counts.items():
        assert influxd.count(measurement, influx_db) == n, measurement
