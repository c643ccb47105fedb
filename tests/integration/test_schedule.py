"""The runtime's schedule: instruments start spread over their interval, each poll's lateness
is reported, and a journal that falls behind pauses polling (missed polls) instead of piling
readings up in memory."""

import dataclasses
from contextlib import ExitStack

from daq.app import build_runtime
from daq.config import parse_config
from daq.journal import Journal
from drivers.registry import check_instrument
from simulators.watlow_f4t import running_chamber


def config(tmp_path, addresses, interval):
    raw = {
        "schema": 1,
        "bench": {"id": "sched", "health_interval": 0.5},
        "journal": {"path": str(tmp_path / "j.db"), "synchronous": "normal"},
        "instrument": [
            {"name": f"c{i}", "driver": "watlow_f4t", "address": a, "poll_interval": interval}
            for i, a in enumerate(addresses)
        ],
    }
    return parse_config(raw, "t.toml", check_instrument)


async def run(tmp_path, n, interval, seconds, **settings):
    with ExitStack() as stack:
        sims = [stack.enter_context(running_chamber(seed=i)) for i in range(n)]
        cfg = config(tmp_path, [s.address for s in sims], interval)
        with Journal(tmp_path / "j.db", synchronous="normal") as journal:
            runtime = build_runtime(cfg, tmp_path, journal)
            runtime.settings = dataclasses.replace(runtime.settings, **settings)
            await runtime.run(seconds)
    return runtime


async def test_instruments_start_spread_over_their_interval_and_report_lateness(tmp_path):
    interval = 0.4
    runtime = await run(tmp_path, 4, interval, 3.0)
    with Journal(tmp_path / "j.db", readonly=True) as j:
        points = j.latest(100_000, "chamber")
        health = [p for p in j.latest(100_000, "daq_health") if "instrument" in p.tags]
    phases = []
    for i in range(4):
        times = sorted({p.time_ns for p in points if p.tags["instrument"] == f"c{i}"})
        assert len(times) >= 5
        phases.append((times[2] / 1e9) % interval)  # a poll well after connecting
    gaps = sorted((b - a) % interval for a in phases for b in phases if a != b)
    # Four instruments, 0.1 s apart on a 0.4 s grid (give or take the machine's jitter).
    assert min(gaps) > 0.04, phases
    assert any("late_ms_p99" in p.fields and "late_ms_max" in p.fields for p in health)
    assert all(h.errors == 0 for h in runtime.health.values())


async def test_a_journal_that_falls_behind_pauses_polling(tmp_path):
    # At most 2 points may wait for the journal and a group commit lasts 0.5 s: most polls
    # find the queue full and are counted as missed instead of taken.
    runtime = await run(tmp_path, 1, 0.02, 2.0, max_pending=2, commit_window=0.5)
    h = runtime.health["c0"]
    assert h.missed > h.polls
    with Journal(tmp_path / "j.db", readonly=True) as j:
        assert j.count("chamber") == h.measurements  # what was taken was journaled
    assert h.polls > 0 and h.errors == 0
