"""Salt-spray runs through `daq chamber` on a real journal: valid hours per run and specimen
from the cabinet's zone, saturator and daily solution checks (ASTM B117 / ISO 9227 NSS)."""

import shlex
import time

import pytest

from daq.cli import main
from daq.journal import Journal
from daq.model import Point
from daq.runs import RunStore

H = 3600 * 1_000_000_000
MIN = 60 * 1_000_000_000

CONFIG = """schema = 1
[bench]
id = "salt-spray-room"
[journal]
path = "j.db"

[[instrument]]
name = "zone"
driver = "watlow_f4t"
address = "tcp://127.0.0.1:1"
poll_interval = 60.0
[instrument.limits.temperature]
low = 33.0
high = 37.0
[instrument.limits.ph]
low = 6.5
high = 7.2
[instrument.limits.collection_rate]
low = 1.0
high = 2.0

[[instrument]]
name = "saturator"
driver = "eurotherm_3200"
address = "rtu:///dev/ttyUSB0"
poll_interval = 60.0
[instrument.options]
device_id = 2
[instrument.limits.temperature]
low = 46.0
high = 49.0

[[cabinet]]
name = "nss-1"
zone = "zone"
saturator = "saturator"
"""


@pytest.fixture
def bench(tmp_path, monkeypatch):
    (tmp_path / "bench.toml").write_text(CONFIG)
    monkeypatch.setenv("HALLMARK_CONFIG", str(tmp_path / "bench.toml"))
    return tmp_path


@pytest.fixture
def daq(capsys):
    def run(command):
        code = main(shlex.split(command))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def reading(instrument, t_ns, value, low, high):
    margin = min(value - low, high - value)
    return Point(
        "chamber",
        {"bench": "salt-spray-room", "instrument": instrument, "feature": "temperature"},
        {"value": value, "unit": "°C", "status": "pass" if margin >= 0 else "fail",
         "low": low, "high": high, "margin": margin},
        t_ns,
    )  # fmt: skip


def test_a_ten_hour_run_with_an_excursion_a_bad_ph_and_a_cold_saturator(bench, daq):
    t0 = time.time_ns() - 10 * H
    with RunStore(bench / "j.db") as runs:
        runs.start("R-118", "nss-1", "ASTM B117", 96.0, t0)
    points = []
    for k in range(0, 10 * 60 + 1):  # a zone reading a minute for ten hours
        t = t0 + k * MIN
        hot = 2 * 60 <= k < 3 * 60  # the door stood open for an hour: 31 °C
        points.append(reading("zone", t, 31.0 if hot else 35.2, 33.0, 37.0))
        cold = 8 * 60 <= k < 8 * 60 + 30
        points.append(reading("saturator", t + 1, 44.0 if cold else 47.5, 46.0, 49.0))
    with Journal(bench / "j.db") as j:
        j.append(points)
    with RunStore(bench / "j.db") as runs:
        # Loaded at hour 1 (1 valid h) and hour 4 (4 - 1 = 3 valid h: the excursion hour lost).
        runs.load("R-118", "S1", "VRM-RING-001", "B-7", now_ns=t0 + 1 * H, valid_s=3600.0)
        runs.load("R-118", "S2", "VRM-RING-001", "B-8", now_ns=t0 + 4 * H, valid_s=3 * 3600.0)

    # The operator's pH five hours in: out of range; an hour later a good one.
    with Journal(bench / "j.db") as j:
        for t, ph in ((t0 + 5 * H, 7.6), (t0 + 6 * H, 6.9)):
            j.append([Point(
                "chamber", {"bench": "salt-spray-room", "instrument": "zone", "feature": "ph"},
                {"value": ph, "unit": "pH", "status": "fail" if ph > 7.2 else "pass"}, t,
            )])  # fmt: skip

    code, out, err = daq("chamber status")
    assert code == 0, err
    # 10 h - 1 h excursion (+1 min to the first good reading) - 1 h pH - 0.5 h saturator.
    line = out.splitlines()[0]
    assert "run R-118 in nss-1 (ASTM B117):" in line
    valid = float(line.split(": ")[1].split(" valid h")[0])
    assert valid == pytest.approx(10 - 61 / 60 - 1 - 31 / 60, abs=0.02)
    assert "h temperature" in out and "h saturator" in out and "h pH" in out
    assert "no collection rate entered yet" in out
    assert "S1 VRM-RING-001 lot B-7:" in out

    code, out, err = daq("chamber inspect --run R-118 --specimen S2 --rating 9 --by tester")
    assert code == 0, err
    s2_hours = valid - 3.0
    assert f"after {s2_hours:.2f} valid h: rating 9" in out
    with Journal(bench / "j.db", readonly=True) as j:
        (rating,) = j.latest(1, "corrosion")
        assert rating.tags["sku"] == "VRM-RING-001" and rating.tags["lot"] == "B-8"
        assert rating.fields["hours"] == pytest.approx(s2_hours, abs=0.02)
        assert rating.fields["run"] == "R-118" and rating.fields["specimen"] == "S2"
        exposure = [p for p in j.latest(10, "exposure") if p.tags.get("specimen") == "S2"]
        assert exposure and exposure[-1].fields["valid_hours"] == pytest.approx(s2_hours, abs=0.02)

    code, out, _ = daq("chamber unload --run R-118 --specimen S1")
    assert code == 0 and f"after {valid - 1.0:.2f} valid h" in out
    code, out, _ = daq("chamber stop --run R-118")
    assert code == 0 and f"{valid:.2f} valid h" in out
    code, _, err = daq("chamber inspect --run R-118 --specimen S2 --rating 8")
    assert code == 1 and "was stopped" in err


def test_solution_checks_are_judged_and_need_no_lot(bench, daq):
    code, out, err = daq("chamber solution --cabinet nss-1 --ph 7.5 --by tech")
    assert code == 0, err
    assert "ph = 7.5 pH: FAIL" in out and "exposure stops counting" in out
    code, out, _ = daq('chamber solution --cabinet nss-1 --collection "1.4 mL/h"')
    assert code == 0 and "collection_rate = 1.4 mL/h: PASS" in out
    code, _, err = daq('chamber solution --cabinet nss-1 --collection "1.4 furlongs"')
    assert code == 1 and "not recorded" in err


def test_mistakes_are_refused_in_words(bench, daq):
    code, _, err = daq("chamber start --cabinet nss-9 --run R1")
    assert code == 1 and "no cabinet called 'nss-9' (cabinets: nss-1)" in err
    assert daq("chamber start --cabinet nss-1 --run R1 --hours 48")[0] == 0
    code, _, err = daq("chamber start --cabinet nss-1 --run R2")
    assert code == 1 and "already running 'R1'" in err
    code, _, err = daq("chamber load --run R9 --specimen S --sku K --lot L")
    assert code == 1 and "no run called 'R9' (running: R1)" in err
    assert daq("chamber load --run R1 --specimen S --sku K --lot L")[0] == 0
    code, _, err = daq("chamber load --run R1 --specimen S --sku K --lot L")
    assert code == 1 and "already in run" in err
    code, _, err = daq("chamber inspect --run R1 --specimen S --rating 11")
    assert code == 1 and "0-10 scale" in err


def test_a_cabinet_must_name_real_instruments(tmp_path, daq):
    (tmp_path / "bench.toml").write_text(CONFIG.replace('saturator = "saturator"',
                                                        'saturator = "bubbler"'))  # fmt: skip
    code, _, err = daq(f"chamber status --config {tmp_path / 'bench.toml'}")
    assert code == 1
    assert "cabinet.1.saturator: no instrument called 'bubbler'" in err
