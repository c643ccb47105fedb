"""Every fault at once: several simulators with their fault knobs active together, next to
healthy instruments of the same kinds, under the real daemon (daq.app.run_bench).

The daemon must keep running, name every faulty instrument in the log with what went wrong,
and keep each healthy instrument on its schedule (polls within 5 % of duration / interval).
"""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

from daq.app import run_bench
from daq.config import parse_config
from daq.journal import Journal
from drivers.registry import check_instrument
from simulators.f4t_scpi import running_f4t_scpi
from simulators.mark10 import running_mark10
from simulators.modbus_rtu import EzZonePm, running_rtu_line
from simulators.scenario import load_scenario
from simulators.watlow_f4t import running_chamber
from simulators.xrf_telegram import running_xrf_telegram

DURATION = 15.0
INTERVAL = 0.25

CHAMBER_FAULTS = """
schema = 1
[[fault]]
kind = "no_reply"
start = 1.0
duration = 1.0
[[fault]]
kind = "exception"
code = 4
start = 2.5
duration = 1.0
[[fault]]
kind = "disconnect"
start = 4.0
duration = 1.0
[[fault]]
kind = "frozen"
start = 6.0
duration = 3.0
[[fault]]
kind = "word_order_swapped"
start = 10.0
duration = 1.0
"""

GAUGE_FAULTS = """
schema = 1
[[fault]]
kind = "garbage"
where = "inside"
start = 1.0
duration = 1.5
[[fault]]
kind = "partial_line"
mode = "no_terminator"
start = 4.0
duration = 1.5
[[fault]]
kind = "vanish"
start = 7.0
duration = 2.0
"""

XRF_FAULTS = """
schema = 1
[[fault]]
kind = "truncated"
keep_fraction = 0.5
start = 0.0
duration = 60.0
"""

RTU_FAULTS = """
schema = 1
[[fault]]
kind = "crc_error"
device = 1
start = 1.0
duration = 2.0
[[fault]]
kind = "sensor_break"
device = 1
start = 5.0
duration = 2.0
"""

SCPI_FAULTS = """
schema = 1
[[fault]]
kind = "no_reply"
start = 1.0
duration = 1.5
[[fault]]
kind = "garbage"
count = 4
start = 5.0
duration = 1.5
"""


def scenario(tmp_path: Path, name: str, text: str):
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return load_scenario(path)


def polled(name: str, driver: str, address: str, **extra):
    return {
        "name": name,
        "driver": driver,
        "address": address,
        "poll_interval": INTERVAL,
        "timeout": 0.3,
        **extra,
    }


HEALTHY = ["good-chamber", "good-gauge", "good-rtu-zone", "good-scpi"]
FAULTY = ["bad-chamber", "bad-gauge", "bad-rtu-zone", "bad-scpi", "bad-xrf"]


async def test_every_fault_at_once_keeps_the_healthy_instruments_on_schedule(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    sc = {
        "chamber": scenario(tmp_path, "chamber", CHAMBER_FAULTS),
        "gauge": scenario(tmp_path, "gauge", GAUGE_FAULTS),
        "xrf": scenario(tmp_path, "xrf", XRF_FAULTS),
        "rtu": scenario(tmp_path, "rtu", RTU_FAULTS),
        "scpi": scenario(tmp_path, "scpi", SCPI_FAULTS),
    }
    with (
        running_chamber(seed=1) as good_chamber,
        running_chamber(seed=2, scenario=sc["chamber"]) as bad_chamber,
        running_mark10(seed=1) as good_gauge,
        running_mark10(seed=2, scenario=sc["gauge"]) as bad_gauge,
        running_xrf_telegram(seed=3, interval_s=1.5) as good_xrf,
        running_xrf_telegram(seed=4, interval_s=1.5, scenario=sc["xrf"]) as bad_xrf,
        running_rtu_line(devices=[EzZonePm(1)], noise=False) as good_line,
        running_rtu_line(devices=[EzZonePm(1)], noise=False, scenario=sc["rtu"]) as bad_line,
        running_f4t_scpi(seed=5) as good_scpi,
        running_f4t_scpi(seed=6, scenario=sc["scpi"]) as bad_scpi,
    ):
        rtu = "watlow_ezzone_pm"
        instruments = [
            polled("good-chamber", "watlow_f4t", good_chamber.address),
            polled("bad-chamber", "watlow_f4t", bad_chamber.address,
                   options={"stuck_after_s": 1.0}),
            polled("good-gauge", "mark10", good_gauge.path),
            polled("bad-gauge", "mark10", bad_gauge.path),
            polled("good-rtu-zone", rtu, f"rtu://{good_line.path}?baudrate=9600",
                   options={"device_id": 1}),
            polled("bad-rtu-zone", rtu, f"rtu://{bad_line.path}?baudrate=9600",
                   options={"device_id": 1}),
            polled("good-scpi", "f4t_scpi", good_scpi.address),
            polled("bad-scpi", "f4t_scpi", bad_scpi.address),
            {"name": "good-xrf", "driver": "xrf_telegram", "address": good_xrf.address,
             "options": {"template": "telegram-per-line", "block_gap_s": 1.0}},
            {"name": "bad-xrf", "driver": "xrf_telegram", "address": bad_xrf.address,
             "options": {"template": "telegram-per-line", "block_gap_s": 1.0}},
        ]  # fmt: skip
        raw = {
            "schema": 1,
            "bench": {"id": "all-faults", "health_interval": 1.0, "reconnect_max": 0.5},
            "journal": {"path": str(tmp_path / "j.db"), "synchronous": "normal"},
            "instrument": instruments,
        }
        config = parse_config(raw, "all-faults.toml", check_instrument)
        runtime = await run_bench(config, tmp_path, duration=DURATION)

    # the daemon kept running to the end and every instrument is still known to it
    assert set(runtime.health) >= set(HEALTHY) | set(FAULTY)
    scheduled = DURATION / INTERVAL
    for name in HEALTHY:
        h = runtime.health[name]
        assert h.errors == 0, f"{name} had {h.errors} errors"
        assert abs(h.polls - scheduled) <= 0.05 * scheduled, (name, h.polls, scheduled)
    for name in ("bad-chamber", "bad-gauge", "bad-rtu-zone", "bad-scpi"):
        assert runtime.health[name].errors > 0, name
        assert runtime.health[name].measurements > 0, f"{name} never recovered"

    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    log = "\n".join(problems)
    for name in [*HEALTHY, "good-xrf"]:
        assert not any(m.startswith(f"{name}:") for m in problems), (name, log)
    expected = {
        "bad-chamber": [r"no reply", r"Modbus exception 04", r"lost|refused|cannot connect",
                        r"stuck", r"word_order"],
        "bad-gauge": [r"line noise", r"no complete line", r"No such file|Input/output error"],
        "bad-rtu-zone": [r"no reply from device 1", r"sensor break"],
        "bad-scpi": [r"did not answer", r"non-text bytes"],
        "bad-xrf": [r"has no end line"],
    }  # fmt: skip
    for name, patterns in expected.items():
        own = [m for m in problems if m.startswith(f"{name}:") or f"'{name}'" in m]
        assert own, f"nothing logged for {name}:\n{log}"
        for pattern in patterns:
            assert any(re.search(pattern, m) for m in own), f"{name}: no {pattern!r} in\n{log}"

    with Journal(tmp_path / "j.db", readonly=True) as j:
        events = j.latest(100_000, "event")
        thickness = j.latest(100_000, "thickness")
        health = j.latest(100_000, "daq_health")
    named = {e.tags.get("instrument") for e in events}
    assert set(FAULTY) - {"bad-xrf"} <= named
    # the healthy XRF's print-outs were measured; the truncated ones were all thrown away
    assert {p.tags["instrument"] for p in thickness} == {"good-xrf"}
    # health points kept coming to the end (health_interval 1 s): the daemon never stalled
    times = sorted({p.time_ns for p in health})
    assert len(times) >= DURATION - 2
    assert max(b - a for a, b in itertools.pairwise(times)) < 2.5e9
