"""SIGHUP re-reads the bench config: a good config swaps the instruments without losing what was
accepted; a bad one is refused in the log and the bench keeps running."""

import os
import signal
import subprocess
import sys
import threading
import time

from daq.journal import Journal
from simulators.watlow_f4t import running_chamber


def bench(address_a, address_b=None, extra=""):
    text = (
        'schema = 1\n[bench]\nid = "reload"\nhealth_interval = 0.5\n'
        '[journal]\npath = "j.db"\nsynchronous = "normal"\n'
        '[[instrument]]\nname = "chamber-a"\ndriver = "watlow_f4t"\n'
        f'address = "{address_a}"\npoll_interval = 0.1\n'
    )
    if address_b:
        text += (
            '[[instrument]]\nname = "chamber-b"\ndriver = "watlow_f4t"\n'
            f'address = "{address_b}"\npoll_interval = 0.1\n'
        )
    return text + extra


def counts(path):
    with Journal(path, readonly=True) as j:
        points = j.latest(100_000, "chamber")
    found: dict[str, int] = {}
    for p in points:
        found[p.tags["instrument"]] = found.get(p.tags["instrument"], 0) + 1
    return found


def wait_for(predicate, limit_s=20.0):
    pause = threading.Event()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        pause.wait(0.1)  # the daemon writes the journal in another process
    return False


def test_sighup_reloads_and_refuses_a_bad_config(tmp_path):
    config = tmp_path / "bench.toml"
    log = tmp_path / "daq.log"
    with running_chamber(seed=1) as a, running_chamber(seed=2) as b, log.open("w") as err:
        config.write_text(bench(a.address))
        proc = subprocess.Popen(
            [sys.executable, "-m", "daq", "run", str(config)], stderr=err, cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            journal = tmp_path / "j.db"
            assert wait_for(lambda: journal.exists() and counts(journal).get("chamber-a", 0) > 10)
            # A broken config: refused, and chamber-a goes on.
            config.write_text(bench(a.address, extra="[[instrument]]\nname = 3\n"))
            proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: "reload refused" in log.read_text())
            before = counts(journal)["chamber-a"]
            assert wait_for(lambda: counts(journal)["chamber-a"] > before + 10)
            # A good config with a second chamber: both are polled from then on.
            config.write_text(bench(a.address, b.address))
            proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: counts(journal).get("chamber-b", 0) > 10)
            assert "config reloaded: 2 instrument(s)" in log.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert proc.returncode == 0
    text = log.read_text()
    assert text.count("config reloaded") == 1
    assert "reload refused: the bench keeps running with its previous config" in text
    # Nothing accepted was lost across the reloads: every poll the daemon counted for chamber-a
    # (logged at the end of each runtime) is in the journal, two channels per poll.
    polls = [
        int(line.split("chamber-a: ")[1].split(" polls")[0])
        for line in text.splitlines()
        if "chamber-a: " in line and " polls, " in line
    ]
    assert len(polls) == 2  # a refused reload leaves the runtime alone; a good one replaces it
    measurements = [
        int(line.split(" polls, ")[1].split(" measurements")[0])
        for line in text.splitlines()
        if "chamber-a: " in line and " polls, " in line
    ]
    assert counts(tmp_path / "j.db")["chamber-a"] == sum(measurements)
