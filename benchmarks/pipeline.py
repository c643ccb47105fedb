"""Pipeline throughput on one core: sample → normalize → judge → point → journal, same run as bare.

One process, one thread: a realistic bench mix of samples, built up front, goes through the very
stages the daemon runs on each of them (daq/runtime.py ``Runtime._accept`` and its journal
writer):

  normalize  daq/units.py ``Normalizer`` (vendor units to canonical units)
  judge      ``JudgeStage`` composed as daq/app.py ``judge_stage`` does it: the SKU spec files of
             config/specs (RHD-PEND-014 rev B, an open lot) first, the bench config's limits as
             fallback, calibration due dates, golden-sample baselines from the lot store
  point      ``Measurement.to_point``
  journal    ``Journal.append`` in groups of ``--group`` points (one transaction, one fsync
             with ``synchronous = full``), as the runtime's writer commits them

The mix, per 8 samples: 4 chamber readings (temperature °C, humidity %RH, as the F4T driver
reports them), 3 XRF layers (Rh, Pd, Ni in µin with the instrument's uncertainty, spot and
application fields, as the XRF parsers report them) and 1 force reading (Mark-10, lbF).

The baseline, measured in the same run (ABAB, best of ``--rounds``): a bare loop that only
inserts the same rows (tags and fields already JSON, line protocol already encoded) into a
journal-shaped SQLite file with ``executemany``, committing in the same groups. The ratio says
what share of the bare insert rate the whole pipeline keeps.

Run: .venv/bin/python -m benchmarks.pipeline [--samples 100000] [--group 500] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from daq.benchstate import BenchState
from daq.journal import Journal
from daq.judging import JudgeStage
from daq.lineprotocol import encode
from daq.lots import LotStore
from daq.model import Limits, LotContext, Point, Sample
from daq.skuspec import SpecLibrary
from daq.specs import ConfiguredLimits
from daq.sqlitefile import connect
from daq.units import Normalizer

SPECS = Path(__file__).resolve().parent.parent / "config" / "specs"
SKU, REV = "RHD-PEND-014", "B"
BENCH = "bench-1"


def make_samples(n: int, t0: int = 1_790_000_000_000_000_000) -> list[Sample]:
    """``n`` samples of the bench mix, 1 ms apart, with values that move."""
    out: list[Sample] = []
    for i in range(n):
        t = t0 + i * 1_000_000
        k = i % 8
        wobble = (i * 7919 % 1000) / 1000.0  # deterministic, 0..1
        if k < 4:
            channel, quantity, value, unit = (
                ("temperature", "temperature", 34.0 + 2.0 * wobble, "°C")
                if k % 2 == 0
                else ("humidity", "humidity", 95.0 + 3.0 * wobble, "%RH")
            )
            out.append(
                Sample(
                    f"chamber-{k // 2 + 1}",
                    "chamber",
                    channel,
                    quantity,
                    value,
                    unit,
                    t,
                    raw=f"{2782 + k}: 4240 {i % 65536:04X}",
                )
            )
        elif k < 7:
            element, nominal = (("Rh", 40.0), ("Pd", 12.0), ("Ni", 80.0))[k - 4]
            value = nominal * (0.85 + 0.3 * wobble)
            out.append(
                Sample(
                    "xrf-1",
                    "thickness",
                    f"layer_{element}",
                    "length",
                    value,
                    "µin",
                    t,
                    raw=f"{element} {value:.2f} uin",
                    instrument_time="2026-11-26T10:15:00",
                    scaled=(("uncertainty", value * 0.04),),
                    extra=(("spot", i % 3 + 1), ("application", "Rh/Pd/Ni/CuZn")),
                )
            )
        else:
            value = 11.0 + 3.0 * wobble
            out.append(
                Sample(
                    "gauge-1",
                    "force",
                    "stone_retention_center",
                    "force",
                    value,
                    "lbF",
                    t,
                    raw=f"{value:.2f} lbF",
                )
            )
    return out


def judge_stage(folder: Path) -> tuple[JudgeStage, Callable[[], LotContext]]:
    """The judge as daq/app.py ``judge_stage`` composes it, with an open lot and baselines."""
    store = LotStore(folder / "journal.db")
    store.start(sku=SKU, po="PO-1", lot="L-1", phase="bulk", size=500, supplier=None,
                spec_rev=REV, spec_sha256=None, locked=False)  # fmt: skip
    for feature, mean, sigma in (("layer_Rh", 1.0, 0.05), ("layer_Pd", 0.3, 0.02)):
        store.add_baseline(sku=SKU, measurement="thickness", feature=feature, instrument="xrf-1",
                           n=30, mean=mean, sigma=sigma, lot="G-1", spec_rev=REV)  # fmt: skip
    state = BenchState(store, LotContext())
    fallback = ConfiguredLimits(
        {
            "chamber-1": {"temperature": Limits(33.0, 37.0), "humidity": Limits(95.0, 98.0)},
            "chamber-2": {"temperature": Limits(33.0, 37.0), "humidity": Limits(95.0, 98.0)},
        }
    )
    specs = SpecLibrary.load(SPECS, fallback=fallback)
    due = {"xrf-1": date(2099, 1, 1), "gauge-1": date(2099, 1, 1)}
    return JudgeStage(BENCH, specs, calibration_due=due, baseline=state.baseline), state.context


Rate = tuple[float, float]  # (per wall-clock second, per CPU second of this process)


def hallmark(samples: Sequence[Sample], folder: Path, group: int) -> Rate:
    """Measurements/s of the whole pipeline, journal included."""
    judge, context = judge_stage(folder)
    normalizer = Normalizer()
    with Journal(folder / "journal.db") as journal:
        start, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(samples), group):
            ctx = context()
            points: list[Point] = []
            for s in samples[at : at + group]:
                points.append(judge.judge(normalizer.normalize(s), ctx).to_point())
            journal.append(points)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert journal.count() == len(samples)
    return len(samples) / elapsed, len(samples) / cpu


def rows_of(samples: Sequence[Sample], folder: Path) -> list[tuple[int, str, str, str, str]]:
    """The very rows the pipeline inserts, built once outside the timing."""
    judge, context = judge_stage(folder)
    normalizer = Normalizer()
    ctx = context()
    rows = []
    for s in samples:
        p = judge.judge(normalizer.normalize(s), ctx).to_point()
        tags = json.dumps(p.tags, ensure_ascii=False, separators=(",", ":"))
        fields = json.dumps(p.fields, ensure_ascii=False, separators=(",", ":"))
        rows.append((p.time_ns, p.measurement, tags, fields, encode(p)))
    return rows


def bare(rows: Sequence[tuple[int, str, str, str, str]], folder: Path, group: int) -> Rate:
    """Rows/s of executemany inserts alone, same schema, same commit groups."""
    from daq.journal import _SCHEMA

    db: sqlite3.Connection = connect(folder / "bare.db", _SCHEMA, synchronous="FULL")
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(rows), group):
            with db:
                db.executemany(
                    "INSERT INTO points(time_ns, measurement, tags, fields, line)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows[at : at + group],
                )
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        db.close()
    return len(rows) / elapsed, len(rows) / cpu


def profile(samples: Sequence[Sample], group: int, top: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prof = cProfile.Profile()
        prof.enable()
        hallmark(samples, Path(tmp), group)
        prof.disable()
    stats = pstats.Stats(prof)
    for order in ("cumulative", "tottime"):
        print(f"--- top {top} by {order} ---")
        stats.sort_stats(order).print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--group", type=int, default=500, help="points per journal commit")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="print the hot path's profile")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    samples = make_samples(args.samples)
    if args.profile:
        profile(samples, args.group, args.top)
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = rows_of(samples, Path(tmp))
    # The inputs built up front (samples, rows) are scaffolding the daemon never holds: kept
    # out of the garbage collector's scans, as the daemon keeps what it loads at start-up
    # (daq/app.py freezes it), so that both loops pay only for what they allocate.
    gc.freeze()
    results: dict[str, list[Rate]] = {"bare": [], "pipeline": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            results["bare"].append(bare(rows, Path(tmp), args.group))
        with tempfile.TemporaryDirectory() as tmp:
            results["pipeline"].append(hallmark(samples, Path(tmp), args.group))
    best = {k: max(v) for k, v in results.items()}
    print(
        f"{args.samples} samples (4 chamber, 3 XRF layers, 1 force per 8), groups of"
        f" {args.group}, synchronous = full, one thread, best of {args.rounds}"
    )
    print(
        f"{'loop':<9} {'measurements/s':>14} {'ratio':>6} {'per CPU-s':>10} {'CPU µs each':>11}"
        "  runs (wall)"
    )
    for name, (rate, per_cpu) in best.items():
        runs = ", ".join(f"{r:.0f}" for r, _ in results[name])
        print(
            f"{name:<9} {rate:14.0f} {rate / best['bare'][0]:6.2f} {per_cpu:10.0f}"
            f" {1e6 / per_cpu:11.1f}  [{runs}]"
        )


if __name__ == "__main__":
    main()
