"""``daq chamber``: salt-spray runs, the specimens in them and the daily solution checks.

    daq chamber start   --cabinet C --run R [--hours 96] [--standard "ASTM B117"]
    daq chamber load    --run R --specimen S --sku SKU --lot LOT
    daq chamber solution --cabinet C (--ph 6.8 | --collection "1.4 mL/h")
    daq chamber inspect --run R --specimen S --rating 9 [--note TEXT]
    daq chamber unload  --run R --specimen S
    daq chamber stop    --run R
    daq chamber status  [--run R]

Every figure is computed from the journal (daq/runs.py), so what these commands print, what a
running daemon writes as ``exposure`` points and what a later report says agree.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path

from daq.benchstate import BenchState
from daq.config import CabinetConfig
from daq.errors import ConfigError, HallmarkError, UnitError
from daq.lotcli import _open_journal
from daq.lots import LotStore
from daq.model import FieldValue, LotContext, Sample
from daq.runs import (
    Run,
    RunAccount,
    RunStore,
    SpecimenCheck,
    cabinets,
    exposure_points,
    max_gap_s,
)
from daq.units import Normalizer

__all__ = ["add_commands", "describe_run", "run_command"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ch = sub.add_parser("chamber", help="salt-spray runs, specimens and daily solution checks")
    csub = ch.add_subparsers(dest="chamber_command", required=True, metavar="ACTION")

    def cmd(name: str, text: str) -> argparse.ArgumentParser:
        p = csub.add_parser(name, help=text)
        p.add_argument(
            "--config",
            type=Path,
            default=Path(os.environ.get("HALLMARK_CONFIG", "bench.toml")),
            help="bench config (default: $HALLMARK_CONFIG or ./bench.toml)",
        )
        return p

    s = cmd("start", "start a run in a cabinet")
    s.add_argument("--cabinet", required=True)
    s.add_argument("--run", required=True)
    s.add_argument("--hours", type=float, default=None, help="the exposure the run is for")
    s.add_argument("--standard", default=None, help="default: the cabinet's")
    ld = cmd("load", "load a specimen standing for a SKU and lot")
    ld.add_argument("--run", required=True)
    ld.add_argument("--specimen", required=True)
    ld.add_argument("--sku", required=True)
    ld.add_argument("--lot", required=True)
    so = cmd("solution", "the daily pH or collection-rate check")
    so.add_argument("--cabinet", required=True)
    g = so.add_mutually_exclusive_group(required=True)
    g.add_argument("--ph", type=float)
    g.add_argument("--collection", help='mL per hour per 80 cm², e.g. "1.4 mL/h"')
    so.add_argument("--by", default=None)
    ins = cmd("inspect", "a specimen's corrosion rating at a check")
    ins.add_argument("--run", required=True)
    ins.add_argument("--specimen", required=True)
    ins.add_argument("--rating", required=True, type=float, help="0-10 (ISO 10289 / ASTM D610)")
    ins.add_argument("--note", default=None)
    ins.add_argument("--by", default=None)
    un = cmd("unload", "take a specimen out of the run")
    un.add_argument("--run", required=True)
    un.add_argument("--specimen", required=True)
    st = cmd("stop", "stop a run: its valid hours are fixed")
    st.add_argument("--run", required=True)
    ss = cmd("status", "runs, valid exposure hours and specimens, in words")
    ss.add_argument("--run", default=None)


def _err(text: str) -> int:
    print(text, file=sys.stderr)
    return 1


class _Bench:
    def __init__(self, path: Path) -> None:
        self.config, self.base, self.journal = _open_journal(path)
        self.runs = RunStore(self.journal.path)
        self.lots = LotStore(self.journal.path)
        self.cabinets = cabinets(self.config)

    def close(self) -> None:
        self.lots.close()
        self.runs.close()
        self.journal.close()

    def cabinet(self, name: str) -> CabinetConfig:
        cab = self.cabinets.get(name)
        if cab is None:
            known = ", ".join(sorted(self.cabinets)) or "none (add a [[cabinet]] table)"
            raise HallmarkError(f"no cabinet called '{name}' (cabinets: {known})")
        return cab

    def account(self, run: Run, until_ns: int | None = None) -> RunAccount:
        cab = self.cabinet(run.cabinet)
        acc = RunAccount.of(run, cab, max_gap_s(self.config, cab))
        acc.update(self.journal, until_ns=until_ns)
        return acc


def run_command(args: argparse.Namespace) -> int:
    try:
        bench = _Bench(args.config)
    except ConfigError as exc:
        return _err(
            f"{args.config}: config problems:\n" + "\n".join(f"  - {p}" for p in exc.problems)
        )
    except HallmarkError as exc:
        return _err(str(exc))
    try:
        action = {
            "start": _start,
            "load": _load,
            "solution": _solution,
            "inspect": _inspect,
            "unload": _unload,
            "stop": _stop,
            "status": _status,
        }[args.chamber_command]
        return action(bench, args)
    except HallmarkError as exc:
        return _err(str(exc))
    finally:
        bench.close()


def _start(bench: _Bench, args: argparse.Namespace) -> int:
    cab = bench.cabinet(args.cabinet)
    if args.hours is not None and args.hours <= 0:
        return _err("--hours must be positive")
    now = time.time_ns()
    run = bench.runs.start(args.run, cab.name, args.standard or cab.standard, args.hours, now)
    acc = bench.account(run)
    bench.journal.append(exposure_points(bench.config.bench.id, acc, [], now))
    target = f" for {run.target_hours:g} h" if run.target_hours else ""
    print(f"run {run.run} started in {cab.name} ({run.standard}){target}")
    return 0


def _load(bench: _Bench, args: argparse.Namespace) -> int:
    run = bench.runs.active(args.run)
    now = time.time_ns()
    acc = bench.account(run, until_ns=now)
    s = bench.runs.load(run.run, args.specimen, args.sku, args.lot, now_ns=now, valid_s=acc.valid_s)
    print(
        f"specimen {s.specimen} ({s.sku}, lot {s.lot}) loaded in run {run.run}"
        f" at {acc.valid_s / 3600:.2f} valid h of the run"
    )
    return 0


def _solution(bench: _Bench, args: argparse.Namespace) -> int:
    from daq.app import judge_stage

    cab = bench.cabinet(args.cabinet)
    lot = bench.lots.open_lot()
    ctx = lot.context() if lot is not None else bench.config.lot.context()
    judge = judge_stage(bench.config, bench.base, BenchState(bench.lots, ctx))
    now = time.time_ns()
    if args.ph is not None:
        feature, qty, value, unit = "ph", "acidity", float(args.ph), "pH"
    else:
        parts = str(args.collection).strip().split(None, 1)
        try:
            value = float(parts[0])
        except (ValueError, IndexError):
            return _err(f"--collection '{args.collection}' is not a number with a unit")
        feature, qty, unit = "collection_rate", "flow", parts[1] if len(parts) > 1 else "mL/h"
    sample = Sample(cab.manual_instrument, "chamber", feature, qty, value, unit, now,
                    f"{value} {unit}")  # fmt: skip
    try:
        reading = Normalizer().normalize(sample)
    except UnitError as exc:
        return _err(f"not recorded: {exc}")
    m = judge.judge(reading, ctx, entered_by=args.by or getpass.getuser())
    bench.journal.append([m.to_point()])
    v = m.verdict
    print(
        f"recorded {cab.name} {feature} = {m.reading.value:g} {m.reading.unit}: "
        + v.status.upper()
        + (f" ({v.reason})" if v.reason else "")
    )
    if v.status == "fail":
        print(f"{cab.name}: exposure stops counting until an in-range {feature} is entered")
    return 0


def _inspect(bench: _Bench, args: argparse.Namespace) -> int:
    from daq.app import judge_stage

    run = bench.runs.active(args.run)
    s = bench.runs.specimen(run.run, args.specimen)
    if not 0 <= args.rating <= 10:
        return _err("--rating is on the 0-10 scale (ISO 10289 / ASTM D610)")
    now = time.time_ns()
    acc = bench.account(run, until_ns=now)
    hours = s.valid_hours(acc.valid_s)
    lot = bench.lots.get(s.sku, s.lot)
    ctx = lot.context() if lot is not None else LotContext(sku=s.sku, lot=s.lot)
    judge = judge_stage(bench.config, bench.base, BenchState(bench.lots, ctx))
    sample = Sample("operator", "corrosion", "rating", "rating", args.rating, "rating", now,
                    f"{args.rating} rating")  # fmt: skip
    by = args.by or getpass.getuser()
    extra: tuple[tuple[str, FieldValue], ...] = (
        ("hours", round(hours, 3)), ("run", run.run), ("specimen", s.specimen),
        ("cabinet", run.cabinet),
    )  # fmt: skip
    m = judge.judge(Normalizer().normalize(sample), ctx, entered_by=by, extra=extra)
    if args.note:
        m = type(m)(m.bench, m.reading, m.verdict, m.context, m.baseline_z, m.entered_by,
                    (*m.extra, ("note", args.note)))  # fmt: skip
    bench.runs.add_check(SpecimenCheck(run.run, s.specimen, now, args.rating, hours, by, args.note))
    points = [m.to_point(), *exposure_points(bench.config.bench.id, acc, [s], now)]
    bench.journal.append(points)
    v = m.verdict
    print(
        f"{s.specimen} ({s.sku}, lot {s.lot}) after {hours:.2f} valid h: rating"
        f" {args.rating:g}: {v.status.upper()}" + (f" ({v.reason})" if v.reason else "")
    )
    return 0


def _unload(bench: _Bench, args: argparse.Namespace) -> int:
    run = bench.runs.active(args.run)
    now = time.time_ns()
    acc = bench.account(run, until_ns=now)
    s = bench.runs.unload(run.run, args.specimen, now, acc.valid_s)
    bench.journal.append(exposure_points(bench.config.bench.id, acc, [s], now))
    print(f"specimen {s.specimen} unloaded after {s.valid_hours(acc.valid_s):.2f} valid h")
    return 0


def _stop(bench: _Bench, args: argparse.Namespace) -> int:
    run = bench.runs.active(args.run)
    now = time.time_ns()
    acc = bench.account(run, until_ns=now)
    stopped = bench.runs.stop(run.run, now, acc.valid_s / 3600.0)
    acc.run = stopped
    specimens = bench.runs.specimens(run.run)
    bench.journal.append(exposure_points(bench.config.bench.id, acc, specimens, now))
    print(f"run {run.run} stopped: {acc.valid_s / 3600:.2f} valid h")
    return 0


def _status(bench: _Bench, args: argparse.Namespace) -> int:
    runs = [bench.runs.active(args.run)] if args.run else bench.runs.runs(active_only=True)
    if args.run is None and not runs:
        print("no run is going; start one with 'daq chamber start'")
        return 0
    now = time.time_ns()
    for run in runs:
        print("\n".join(describe_run(bench.account(run), bench.runs, now)))
    return 0


def describe_run(acc: RunAccount, store: RunStore, now_ns: int) -> list[str]:
    """A run in plain words: valid hours, time lost and why, specimens and their checks."""
    run = acc.run
    elapsed = ((run.stopped_ns or now_ns) - run.started_ns) / 3.6e12
    target = f" of {run.target_hours:g} h" if run.target_hours else ""
    lines = [
        f"run {run.run} in {run.cabinet} ({run.standard}): {acc.valid_s / 3600:.2f} valid h"
        f"{target} in {elapsed:.2f} h; {acc.exposure.state.excursions} excursion(s)"
    ]
    lost = {k: v for k, v in (acc.exposure.lost_s or {}).items() if v > 0}
    if lost:
        lines.append(
            "  not counted: " + ", ".join(f"{v / 3600:.2f} h {k}" for k, v in lost.items())
        )
    lines.extend(f"  ! {p}" for p in acc.problems(now_ns))
    checks = store.checks(run.run)
    for s in store.specimens(run.run):
        mine = [c for c in checks if c.specimen == s.specimen]
        rated = "; ".join(f"{c.rating:g} at {c.valid_hours:.1f} h" for c in mine) or "no check yet"
        out = " (unloaded)" if s.unloaded_ns is not None else ""
        lines.append(
            f"  {s.specimen} {s.sku} lot {s.lot}: {s.valid_hours(acc.valid_s):.2f} valid h{out};"
            f" ratings: {rated}"
        )
    return lines
