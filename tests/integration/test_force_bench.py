"""Force and torque benches end to end: gauge simulators on real ptys → drivers (pyserial) →
tests as events → judged against the SKU spec in the lot's context → journal → InfluxDB."""

import logging
import re
import shutil
from pathlib import Path

from daq.app import run_bench
from daq.cli import main
from daq.config import parse_config
from daq.journal import Journal
from drivers.registry import check_instrument
from simulators.imada import running_imada
from simulators.mark10 import running_mark10
from simulators.scenario import load_scenario

SPECS = Path(__file__).resolve().parents[2] / "config" / "specs"


def bench(tmp_path, instruments, influx=None):
    shutil.copytree(SPECS, tmp_path / "specs", dirs_exist_ok=True)
    raw = {
        "schema": 1,
        "bench": {"id": "mech-1", "health_interval": 1.0, "reconnect_max": 0.5},
        "journal": {"path": str(tmp_path / "j.db"), "synchronous": "normal"},
        "instrument": instruments,
    }
    if influx:
        raw["influx"] = {"flush_interval": 0.2, **influx}
    config = parse_config(raw, "bench.toml", check_instrument)
    (tmp_path / "bench.toml").write_text(
        f'schema = 1\n[bench]\nid = "mech-1"\n[journal]\npath = "{tmp_path / "j.db"}"\n'
    )
    return config


def start_lot(tmp_path, sku, lot, phase="pre-production", size=200):
    code = main(["lot", "start", "--config", str(tmp_path / "bench.toml"), "--sku", sku,
                 "--po", "PO-7", "--lot", lot, "--phase", phase, "--size", str(size)])  # fmt: skip
    assert code == 0


def scenario(tmp_path, text):
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return load_scenario(path)


PULLS = """
schema = 1
[model]
profile = "M5-100"
seed = 5
[[fault]]
kind = "jump_ring"
start = 0.8
soldered = true
[[fault]]
kind = "jump_ring"
start = 3.5
soldered = false
[[fault]]
kind = "jump_ring"
start = 6.2
soldered = true
[[fault]]
kind = "jump_ring"
start = 8.9
soldered = false
"""


async def test_pull_tests_are_events_judged_against_the_spec(tmp_path, influxd, influx_db):
    with running_mark10(scenario=scenario(tmp_path, PULLS)) as gauge:
        config = bench(
            tmp_path,
            [{
                "name": "pull-gauge",
                "driver": "mark10",
                "address": gauge.path,
                "timeout": 1.0,
                "options": {"mode": "push", "channel": "jump_ring_pull", "aout_rate": 25,
                            "start_threshold": "3 N", "capacity": "500 N"},
            }],
            {"url": influxd.url, "database": influx_db},
        )  # fmt: skip
        start_lot(tmp_path, "GPB-NECK-203", "PP-1")
        await run_bench(config, tmp_path, duration=12.5)
    with Journal(tmp_path / "j.db", readonly=True) as j:
        pulls = j.latest(100, "force")
    assert len(pulls) == 4, [p.fields for p in pulls]
    soldered, unsoldered = pulls[0::2], pulls[1::2]
    for p in soldered:
        assert p.fields["status"] == "pass" and p.fields["value"] > 60
    for p in unsoldered:
        assert p.fields["status"] == "fail" and p.fields["value"] < 40  # spec: ≥ 40 N
        assert p.fields["value"] < 0.5 * soldered[0].fields["value"]
    for p in pulls:
        assert p.tags["feature"] == "jump_ring_pull"
        assert (p.tags["sku"], p.tags["lot"], p.tags["spec_rev"]) == ("GPB-NECK-203", "PP-1", "A")
        assert p.fields["unit"] == "N" and p.fields["low"] == 40.0
        assert p.fields["break_force"] <= p.fields["value"]
        assert p.fields["time_to_break_s"] > 0 and p.fields["points"] > 5
        assert p.fields["outcome"] == "broke"
    rows = influxd.rows("force", influx_db)
    assert len(rows) == 4
    assert {r["status"] for r in rows} == {"pass", "fail"}
    # the operator attaches the failure mode to the test they saw
    cfg = str(tmp_path / "bench.toml")
    code = main(["enter", "failure-mode", "--config", cfg, "--test", "jump_ring_pull",
                 "--mode", "opened-at-joint", "--unit", "2"])  # fmt: skip
    assert code == 0
    code = main(["lot", "status", "--config", str(tmp_path / "bench.toml")])
    assert code == 0


HOLDS = """
schema = 1
[model]
profile = "TT01-12"
seed = 2
[[fault]]
kind = "hold"
start = 0.5
target = 4.4
unit = "lbFin"
ramp_s = 1.5
hold_s = 3.0
[[fault]]
kind = "hold"
start = 7.0
target = 4.4
unit = "lbFin"
ramp_s = 1.5
hold_s = 3.0
fail_after_s = 1.0
"""


async def test_torque_holds_pass_and_fail(tmp_path):
    with running_mark10(scenario=scenario(tmp_path, HOLDS)) as tester:
        config = bench(
            tmp_path,
            [{
                "name": "torque-tester",
                "driver": "mark10",
                "address": tester.path,
                "options": {"mode": "push", "quantity": "torque", "channel": "charm_torque",
                            "aout_rate": 25, "start_threshold": "0.3 lbFin",
                            "hold": {"target": "4 lbFin", "tolerance": "0.2 lbFin",
                                     "ramp_max_s": 5.0, "hold_s": 2.5}},
            }],
        )  # fmt: skip
        start_lot(tmp_path, "KID-BRAC-007", "PP-2", size=50)
        await run_bench(config, tmp_path, duration=12.0)
    with Journal(tmp_path / "j.db", readonly=True) as j:
        holds = j.latest(100, "torque")
    assert len(holds) == 2, [h.fields for h in holds]
    good, bad = holds
    assert good.fields["held"] is True and good.fields["status"] == "pass"
    assert good.fields["raw_unit"] == "lbFin" and good.fields["unit"] == "N·m"
    assert good.fields["value"] > 0.4519  # 4 in-lbf, from the spec, in N·m
    assert bad.fields["held"] is False and bad.fields["status"] == "fail"
    assert bad.fields["reason"]


FAULTS = """
schema = 1
[model]
profile = "M5-100"
seed = 9
[[fault]]
kind = "garbage"
start = 0.5
duration = 1.0
where = "before"
content = "noise"
count = 3
[[fault]]
kind = "partial_line"
start = 1.8
duration = 1.0
mode = "split"
gap_s = 0.05
[[fault]]
kind = "cr_only"
start = 3.0
duration = 1.0
[[fault]]
kind = "late_reply"
start = 4.2
duration = 1.0
delay_s = 0.2
[[fault]]
kind = "duplicate"
start = 5.4
duration = 1.0
[[fault]]
kind = "no_reply"
start = 6.6
duration = 1.0
[[fault]]
kind = "panel_unit"
start = 8.0
unit = "lbF"
[[fault]]
kind = "vanish"
start = 9.0
duration = 1.5
new_path = true
"""


async def test_every_gauge_fault_keeps_the_bench_running(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    link = tmp_path / "by-id-mark10"
    with (
        running_mark10(scenario=scenario(tmp_path, FAULTS), link_path=link) as gauge,
        running_imada(seed=4) as imada,
    ):
        assert gauge.path
        config = bench(
            tmp_path,
            [
                {"name": "mark10", "driver": "mark10", "address": str(link),
                 "poll_interval": 0.1, "timeout": 0.3, "options": {"mode": "poll"}},
                {"name": "imada", "driver": "imada", "address": imada.path,
                 "poll_interval": 0.1, "timeout": 0.3,
                 "options": {"mode": "poll", "unit_letters": {"N": "N", "K": "kgF", "L": "lbF"},
                             "judgement_letters": {"N": "off", "G": "ok", "H": "high",
                                                   "L": "low", "E": "overload"}}},
            ],
        )  # fmt: skip
        runtime = await run_bench(config, tmp_path, duration=12.0)
    m10, im = runtime.health["mark10"], runtime.health["imada"]
    assert im.errors == 0 and im.polls >= 0.8 * 12.0 / 0.1
    assert m10.errors > 0 and m10.reconnects >= 1 and m10.measurements > 50
    log = "\n".join(r.getMessage() for r in caplog.records)
    for pattern in [
        r"mark10: (link lost: )?no (complete )?(reply|line)",
        r"mark10: link lost: .*",
        r"mark10: online",
        r"mark10: \w+: unit changed at the instrument \(N to lbF\); values are converted",
    ]:
        assert re.search(pattern, log), f"log lacks {pattern!r}:\n{log}"
    assert "imada: link lost" not in log
    with Journal(tmp_path / "j.db", readonly=True) as j:
        readings = [p for p in j.latest(100_000, "force") if p.tags["instrument"] == "mark10"]
    units = {p.fields.get("raw_unit", p.fields["unit"]) for p in readings}
    assert units == {"N", "lbF"}
    assert all(p.fields["unit"] == "N" for p in readings)  # lbF converted
    assert all(abs(p.fields["value"]) < 600 for p in readings)  # no garbage kept as a value
