"""XRF end to end: the export-file and telegram simulators → XRF drivers → judged against the
vermeil spec in the lot's context → journal → InfluxDB's `thickness` measurement."""

import asyncio
import shutil
from pathlib import Path

from daq.app import run_bench
from daq.cli import main
from daq.config import parse_config
from daq.journal import Journal
from drivers.registry import check_instrument
from simulators.xrf_export import running_xrf_export
from simulators.xrf_telegram import running_xrf_telegram

SPECS = Path(__file__).resolve().parents[2] / "config" / "specs"
VERMEIL = {"application": "Au/Ag925", "product": "VRM-RING-001", "readings_per_series": 5}


def bench(tmp_path, instrument, influx=None):
    shutil.copytree(SPECS, tmp_path / "specs", dirs_exist_ok=True)
    raw = {
        "schema": 1,
        "bench": {"id": "xrf-bench", "health_interval": 1.0},
        "journal": {"path": str(tmp_path / "j.db"), "synchronous": "normal"},
        "instrument": [instrument],
    }
    if influx:
        raw["influx"] = {"flush_interval": 0.2, **influx}
    (tmp_path / "bench.toml").write_text(
        f'schema = 1\n[bench]\nid = "xrf-bench"\n[journal]\npath = "{tmp_path / "j.db"}"\n'
    )
    return parse_config(raw, "bench.toml", check_instrument)


def lot(tmp_path, *args):
    assert main(["lot", *args, "--config", str(tmp_path / "bench.toml")]) == 0


async def measure(config, tmp_path, emit, seconds):
    """Run the daemon while the simulator emits series, one call of `emit` per step."""
    task = asyncio.create_task(run_bench(config, tmp_path, duration=seconds))
    await asyncio.sleep(0.8)
    for step in emit:
        await asyncio.to_thread(step)
        await asyncio.sleep(0.3)
    return await task


async def test_export_files_golden_then_thinner_bulk(tmp_path, influxd, influx_db):
    exports = tmp_path / "exports"
    exports.mkdir()
    model = {**VERMEIL, "drift_start_lot": 2, "drift_step_pct": -12.0, "parts_per_lot": 10}
    with running_xrf_export(exports, seed=3, model=model) as xrf:
        config = bench(
            tmp_path,
            {"name": "xrf-1", "driver": "xrf_export", "address": str(exports),
             "options": {"settle_s": 0.3, "scan_interval_s": 0.1}},
            {"url": influxd.url, "database": influx_db},
        )  # fmt: skip
        lot(tmp_path, "start", "--sku", "VRM-RING-001", "--po", "PO-1", "--lot", "GS-1",
            "--phase", "golden-sample", "--size", "20")  # fmt: skip
        golden = [lambda i=i: xrf.emit_series(f"G{i}", lot=1).wait() for i in range(3)]
        await measure(config, tmp_path, golden, 5.0)
        lot(tmp_path, "close")
        lot(tmp_path, "start", "--sku", "VRM-RING-001", "--po", "PO-2", "--lot", "B-7",
            "--phase", "bulk", "--size", "500")  # fmt: skip
        bulk = [lambda i=i: xrf.emit_series(f"B{i}", lot=2).wait() for i in range(4)]
        await measure(config, tmp_path, bulk, 6.0)
    with Journal(tmp_path / "j.db", readonly=True) as j:
        gold = j.lot_points("VRM-RING-001", "GS-1", "thickness")
        thin = j.lot_points("VRM-RING-001", "B-7", "thickness")
        alarms = [e for e in j.lot_points("VRM-RING-001", "B-7", "event")
                  if e.tags["kind"] == "drift_alarm"]  # fmt: skip
    assert len(gold) == 15 and len(thin) == 20
    assert all(p.tags["feature"] == "layer_Au" and p.fields["unit"] == "µm" for p in gold + thin)
    assert all(p.fields["status"] == "pass" for p in gold)
    assert (
        sum(p.fields["value"] for p in thin) / 20 < 0.92 * sum(p.fields["value"] for p in gold) / 15
    )
    assert all(p.fields["baseline_z"] < 0 for p in thin[-5:])
    assert alarms, "a bulk lot 12 % thinner than the golden sample raises a drift alarm"
    assert all(p.fields["uncertainty"] > 0 for p in thin)
    in_db = influxd.rows("thickness", influx_db)
    assert len(in_db) == 35
    assert {r["lot"] for r in in_db} == {"GS-1", "B-7"}
    assert {r["phase"] for r in in_db} == {"golden-sample", "bulk"}
    assert all(r["spec_rev"] == "A" and r["sku"] == "VRM-RING-001" for r in in_db)
    assert {r["layer"] for r in in_db} == {"Au"}
    assert {r["status"] for r in in_db} <= {"pass", "marginal", "fail"}


async def test_telegrams_over_a_serial_port(tmp_path):
    model = {**VERMEIL, "unit": "uin"}
    with running_xrf_telegram(seed=5, model=model) as xrf:
        config = bench(
            tmp_path,
            {"name": "xrf-tty", "driver": "xrf_telegram", "address": xrf.address,
             "options": {"template": "telegram-per-line"}},
        )  # fmt: skip
        lot(tmp_path, "start", "--sku", "VRM-RING-001", "--po", "PO-3", "--lot", "P-1",
            "--phase", "pre-production", "--size", "50")  # fmt: skip
        emits = [lambda i=i: xrf.emit_series(f"P{i}", lot=1).wait() for i in range(2)]
        await measure(config, tmp_path, emits, 4.0)
    with Journal(tmp_path / "j.db", readonly=True) as j:
        rows = j.lot_points("VRM-RING-001", "P-1", "thickness")
    assert len(rows) == 10
    assert all(r.fields["raw_unit"] == "µin" and r.fields["unit"] == "µm" for r in rows)
    assert all(2.5 < r.fields["value"] < 3.5 for r in rows)  # ~118 µin = 3.0 µm
    assert all(r.fields["application"] == "Au/Ag925" for r in rows)
