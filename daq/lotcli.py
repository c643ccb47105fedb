"""``daq lot``, ``daq enter``, ``daq po-check`` and ``daq plan``: the people's side of a bench.

Lots and operator entries are written to the bench's journal file, next to what the
instruments send, so a running daemon and these commands share one record: the daemon tags
its readings with the open lot within a second, and the forwarder ships the entries like any
other measurement.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from daq.benchstate import BenchState
from daq.config import Config
from daq.errors import ConfigError, HallmarkError, UnitError
from daq.journal import Journal
from daq.lots import Lot, LotStore
from daq.model import PHASES, FieldValue, LotContext, Measurement, Point, Reading, Sample, Verdict
from daq.quality.lotreview import NOT_PRODUCT, LotReview, review_lot
from daq.quality.readiness import readiness
from daq.quality.sampling import SwitchingState, next_state, plan, variables_plan
from daq.skuspec import SpecLibrary, quantity
from daq.units import Normalizer

__all__ = ["add_commands", "run_command", "suspect_predicate"]

FAILURE_MODES = ("opened-at-joint", "ring-broke", "pulled-out-of-casting", "stone-loosened",
                 "held-to-end")  # fmt: skip


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("HALLMARK_CONFIG", "bench.toml")),
        help="bench config (default: $HALLMARK_CONFIG or ./bench.toml)",
    )


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lot = sub.add_parser("lot", help="start, follow and close a lot")
    lsub = lot.add_subparsers(dest="lot_command", required=True, metavar="ACTION")
    s = lsub.add_parser("start", help="open a lot: its context tags every measurement")
    _config_arg(s)
    s.add_argument("--sku", required=True)
    s.add_argument("--po", required=True)
    s.add_argument("--lot", required=True)
    s.add_argument("--phase", required=True, choices=PHASES)
    s.add_argument("--size", required=True, type=int)
    s.add_argument("--supplier", default=None)
    st = lsub.add_parser("status", help="the open lot's progress in plain words")
    _config_arg(st)
    st.add_argument("--sku", default=None)
    st.add_argument("--lot", default=None)
    c = lsub.add_parser("close", help="close the open lot and record the decision")
    _config_arg(c)
    c.add_argument("--by", default=None, help="who decides (default: the login name)")

    e = sub.add_parser("enter", help="record what a person measured or saw")
    esub = e.add_subparsers(dest="enter_command", required=True, metavar="WHAT")
    v = esub.add_parser("visual", help="a sample unit inspected, with its defects")
    v.add_argument("--unit", type=int, required=True)
    v.add_argument("--defect", action="append", default=[], metavar="CODE")
    m = esub.add_parser("measure", help="a value measured by hand")
    m.add_argument("--measurement", required=True, help="thickness, force, torque, ...")
    m.add_argument("--feature", required=True, help="e.g. layer_Au, jump_ring_pull")
    m.add_argument("--value", required=True, help="number and unit, e.g. '41.5 N'")
    m.add_argument("--unit", type=int, default=None, help="sample unit number")
    m.add_argument("--instrument", default="manual")
    f = esub.add_parser("failure-mode", help="how a pull or retention test ended")
    f.add_argument("--test", required=True, help="e.g. jump_ring_pull")
    f.add_argument("--mode", required=True, choices=FAILURE_MODES)
    f.add_argument("--unit", type=int, default=None)
    ch = esub.add_parser("chamber", help="a salt-spray chamber's daily pH or collection rate")
    ch.add_argument("--instrument", required=True, help="the chamber's instrument name")
    g = ch.add_mutually_exclusive_group(required=True)
    g.add_argument("--ph", type=float)
    g.add_argument("--collection", help="e.g. '1.4 mL/h' (per 80 cm² collector)")
    co = esub.add_parser("corrosion", help="a corrosion rating after exposure")
    co.add_argument("--rating", type=float, required=True)
    co.add_argument("--hours", type=float, default=None)
    co.add_argument("--unit", type=int, default=None)
    se = esub.add_parser("setting", help="the stone-setting method observed")
    se.add_argument("--stone", required=True, help="stone position, e.g. center")
    se.add_argument("--method", required=True)
    se.add_argument("--unit", type=int, default=None)
    h = esub.add_parser("hardware", help="a hardware part number observed")
    h.add_argument("--part", required=True)
    h.add_argument("--part-number", required=True)
    h.add_argument("--unit", type=int, default=None)
    r = esub.add_parser("reference-check", help="an instrument checked against a reference")
    r.add_argument("--instrument", required=True)
    r.add_argument("--quantity", required=True, help="force, length, torque, temperature ...")
    r.add_argument("--nominal", required=True, help="e.g. '10 N' (dead weight)")
    r.add_argument("--reading", required=True, help="what the instrument showed")
    r.add_argument("--tolerance", required=True, help="e.g. '0.05 N'")
    a = esub.add_parser("abrasion", help="a Taber wear test result")
    a.add_argument("--cycles", type=int, required=True)
    a.add_argument("--mass-before", required=True, help="e.g. '1234.5 mg'")
    a.add_argument("--mass-after", required=True)
    for p in (v, m, f, ch, co, se, h, r, a):
        _config_arg(p)
        p.add_argument("--by", default=None, help="who enters it (default: the login name)")

    pc = sub.add_parser("po-check", help="is this SKU ready for bulk? (exit 1 while not)")
    _config_arg(pc)
    pc.add_argument("--sku", required=True)

    pl = sub.add_parser("plan", help="an ISO 2859-1 single sampling plan")
    pl.add_argument("--lot-size", type=int, required=True)
    pl.add_argument("--aql", type=float, required=True)
    pl.add_argument("--level", default="II", choices=["I", "II", "III", "S-1", "S-2", "S-3", "S-4"])
    pl.add_argument("--state", default="normal", choices=["normal", "tightened", "reduced"])
    pl.add_argument("--json", action="store_true")
    pl.add_argument(
        "--variables", action="store_true", help="ANSI/ASQ Z1.9 s-method plan (one lower limit)"
    )


@dataclass
class _Bench:
    config: Config
    base: Path
    journal: Journal
    store: LotStore
    specs: SpecLibrary

    def close(self) -> None:
        self.store.close()
        self.journal.close()


def _open_journal(path: Path) -> tuple[Config, Path, Journal]:
    """The bench config at ``path``, its folder and its open journal (``daq chamber`` too)."""
    from daq.app import load

    config = load(path)
    base = path.resolve().parent
    journal = Journal(config.journal_path(base), synchronous=config.journal.synchronous)
    return config, base, journal


def _open_bench(path: Path) -> _Bench:
    config, base, journal = _open_journal(path)
    store = LotStore(journal.path)
    specs = SpecLibrary.load(config.specs_path(base))
    return _Bench(config, base, journal, store, specs)


def _err(text: str) -> int:
    print(text, file=sys.stderr)
    return 1


def run_command(args: argparse.Namespace) -> int:
    if args.command == "plan":
        return _plan(args)
    try:
        bench = _open_bench(args.config)
    except ConfigError as exc:
        return _err(
            f"{args.config}: config problems:\n" + "\n".join(f"  - {p}" for p in exc.problems)
        )
    except HallmarkError as exc:
        return _err(str(exc))
    try:
        if args.command == "po-check":
            return _po_check(bench, args.sku)
        if args.command == "lot":
            return {"start": _lot_start, "status": _lot_status, "close": _lot_close}[
                args.lot_command
            ](bench, args)
        return _enter(bench, args)
    except HallmarkError as exc:
        return _err(str(exc))
    finally:
        bench.close()


def _plan(args: argparse.Namespace) -> int:
    if args.variables:
        try:
            vp = variables_plan(args.lot_size, args.aql, level=args.level)
        except ValueError as exc:
            return _err(str(exc))
        if args.json:
            print(json.dumps({"code_letter": vp.code_letter, "sample_size": vp.sample_size,
                              "k": vp.k, "full_inspection": vp.full_inspection}))  # fmt: skip
            return 0
        print(
            f"lot of {args.lot_size}, AQL {args.aql:g}, level {args.level}, ANSI/ASQ Z1.9"
            f" s-method: code letter {vp.code_letter}, measure {vp.sample_size};"
            f" accept when (mean - LSL) / s >= {vp.k:g}"
        )
        return 0
    try:
        p = plan(args.lot_size, args.aql, level=args.level, state=args.state)
    except ValueError as exc:
        return _err(str(exc))
    if args.json:
        print(json.dumps({
            "code_letter": p.code_letter,
            "sample_size": p.sample_size,
            "accept": p.accept,
            "reject": p.reject,
            "full_inspection": p.full_inspection,
        }))  # fmt: skip
        return 0
    print(
        f"lot of {args.lot_size}, AQL {args.aql:g}, level {args.level}, {args.state} inspection:"
        f" code letter {p.code_letter}, inspect {p.sample_size};"
        f" accept with {p.accept} or fewer nonconforming, reject with {p.reject} or more"
        + (" (100 % inspection: the sample is the whole lot)" if p.full_inspection else "")
    )
    return 0


def _po_check(bench: _Bench, sku: str) -> int:
    spec = bench.specs.get(sku)
    problem = bench.store.check_revision(sku, spec.spec.revision, spec.sha256) if spec else None
    items = readiness(sku, spec, bench.store.baselines(sku), bench.store.lots(sku), problem)
    ready = all(i.ok for i in items)
    print(f"{sku}: {'READY for bulk' if ready else 'NOT READY for bulk'}")
    for item in items:
        print(f"  [{'locked' if item.ok else 'MISSING'}] {item.name}: {item.detail}")
    return 0 if ready else 1


def _lot_start(bench: _Bench, args: argparse.Namespace) -> int:
    spec = bench.specs.get(args.sku)
    if spec is None:
        return _err(
            f"no spec file for {args.sku} in {bench.config.specs_path(bench.base)}:"
            " write the SKU's spec before measuring a lot of it"
        )
    if args.size < 2:
        return _err("--size is the number of pieces in the lot (at least 2)")
    problem = bench.store.check_revision(args.sku, spec.spec.revision, spec.sha256)
    items = readiness(
        args.sku, spec, bench.store.baselines(args.sku), bench.store.lots(args.sku), problem
    )
    locked = all(i.ok for i in items)
    if args.phase == "bulk" and not locked:
        print(
            f"WARNING: {args.sku} is NOT READY for bulk: this lot is recorded as started"
            " WITHOUT A LOCKED PROCESS. Missing:",
            file=sys.stderr,
        )
        for item in items:
            if not item.ok:
                print(f"  - {item.name}: {item.detail}", file=sys.stderr)
    lot = bench.store.start(
        sku=args.sku, po=args.po, lot=args.lot, phase=args.phase, size=args.size,
        supplier=args.supplier, spec_rev=spec.spec.revision, spec_sha256=spec.sha256,
        locked=locked,
    )  # fmt: skip
    _event(bench, lot.context(), "lot_started",
           f"lot {lot.lot} started: {lot.size} pieces, {lot.phase}"
           + ("" if locked or lot.phase != "bulk" else ", process NOT locked"))  # fmt: skip
    review = _review(bench, lot)
    bench.journal.append(_review_points(bench, lot, review, final=False))
    print(f"started lot {lot.lot} of {lot.sku} under spec revision {lot.spec_rev}")
    for line in review.status_lines()[1:4]:
        print(line)
    return 0


def _lot_for(bench: _Bench, args: argparse.Namespace) -> Lot:
    if getattr(args, "sku", None) and getattr(args, "lot", None):
        lot = bench.store.get(args.sku, args.lot)
        if lot is None:
            raise HallmarkError(f"no lot {args.lot} of {args.sku}")
        return lot
    lot = bench.store.open_lot()
    if lot is None:
        raise HallmarkError("no lot is open: start one with 'daq lot start'")
    return lot


def suspect_predicate(config: Config, store: LotStore) -> Callable[[Point], bool]:
    """Whether a point was taken by a configured instrument between its last good reference
    check and a failed one (``LotStore.suspect_ranges``); the lot review counts such a reading
    suspect when it passed or was marginal (daq/quality/lotreview.py). The ranges are read once,
    when the predicate is made."""
    ranges = {i.name: store.suspect_ranges(i.name) for i in config.instrument}

    def suspect(p: Point) -> bool:
        spans = ranges.get(p.tags.get("instrument", ""), [])
        return any(a <= p.time_ns <= b for a, b in spans)

    return suspect


def _review(bench: _Bench, lot: Lot) -> LotReview:
    spec = bench.specs.get(lot.sku, lot.spec_rev)
    if spec is None:
        raise HallmarkError(f"the spec of {lot.sku} revision {lot.spec_rev} is gone")
    points = bench.journal.lot_points(lot.sku, lot.lot)
    return review_lot(
        lot, spec.spec, points, suspect=suspect_predicate(bench.config, bench.store),
        state_of=lambda cls: _switching(bench, lot, cls).state,
    )  # fmt: skip


def _stream(lot: Lot, cls: str) -> str:
    """Switching rules run per supplier, SKU and defect class."""
    return f"{lot.supplier or '-'}|{lot.sku}|{cls}"


def _switching(bench: _Bench, lot: Lot, cls: str) -> SwitchingState:
    stored = bench.store.sampling_state(_stream(lot, cls))
    if stored is None:
        return SwitchingState()
    stored["recent_results"] = tuple(stored.get("recent_results", ()))
    return SwitchingState(**stored)


def _update_switching(bench: _Bench, lot: Lot, review: LotReview) -> list[str]:
    """Move each class's switching state on with this lot's result; say what changed."""
    said = []
    for c in review.classes:
        if c.aql <= 0:
            continue
        before = _switching(bench, lot, c.defect_class)
        after = next_state(before, c.decided != "reject", c.plan, c.nonconforming)
        bench.store.set_sampling_state(_stream(lot, c.defect_class), asdict(after))
        if after.state != before.state or after.discontinued != before.discontinued:
            what = "DISCONTINUED: stop acceptance inspection" if after.discontinued else after.state
            said.append(
                f"{c.defect_class} defects of {lot.sku} from {lot.supplier or 'this supplier'}:"
                f" {before.state} -> {what} inspection"
            )
    return said


def _lot_status(bench: _Bench, args: argparse.Namespace) -> int:
    lot = _lot_for(bench, args)
    review = _review(bench, lot)
    for line in review.status_lines():
        print(line)
    if lot.closed_ns is not None:
        print(f"  closed: {lot.decision}")
    else:
        print(f"  so far: {review.decision}" + ("" if review.complete else " (sample incomplete)"))
    return 0


def _lot_close(bench: _Bench, args: argparse.Namespace) -> int:
    lot = _lot_for(bench, args)
    review = _review(bench, lot)
    if not review.complete:
        print(
            f"WARNING: only {review.units_inspected} of {review.sample_size} sample units"
            " inspected; the decision is taken on what was inspected",
            file=sys.stderr,
        )
    decision = review.decision
    evidence = review.evidence()
    baselines = []
    if lot.phase == "golden-sample":
        baselines = _fix_baselines(bench, lot)
        evidence["baselines_fixed"] = baselines
    switching = _update_switching(bench, lot, review)
    evidence["switching"] = switching
    evidence["closed_by"] = args.by or getpass.getuser()
    closed = bench.store.close_lot(decision, evidence)
    fields: dict[str, FieldValue] = {
        "decision": decision,
        "units_inspected": review.units_inspected,
        "sample_size": review.sample_size,
        "failures": len(review.failures),
        "drift_alarms": review.drift_alarms,
        "suspect": review.suspect,
        "evidence": json.dumps(evidence, ensure_ascii=False),
    }
    for c in review.classes:
        fields[f"{c.defect_class}_nonconforming"] = c.nonconforming
        fields[f"{c.defect_class}_accept"] = c.plan.accept
    tags = {"bench": bench.config.bench.id, **closed.context().tags()}
    bench.journal.append(
        [Point("lot_decision", tags, fields, time.time_ns()),
         *_review_points(bench, closed, review, final=True)]
    )  # fmt: skip
    for line in review.status_lines():
        print(line)
    print(f"lot {closed.lot} closed: {decision.upper()}")
    for b in baselines:
        print(f"  baseline fixed: {b}")
    for line in switching:
        print(f"  switching: {line}")
    return 0


def _fix_baselines(bench: _Bench, lot: Lot) -> list[str]:
    """Freeze a baseline for every feature measured at least twice in a golden-sample lot."""
    import statistics

    values: dict[tuple[str, str, str], list[float]] = {}
    for p in bench.journal.lot_points(lot.sku, lot.lot):
        if p.measurement in NOT_PRODUCT or p.measurement in ("event", "inspection"):
            continue
        value = p.fields.get("value")
        if isinstance(value, float | int) and not isinstance(value, bool):
            key = (p.measurement, p.tags.get("feature", ""), p.tags.get("instrument", ""))
            values.setdefault(key, []).append(float(value))
    fixed = []
    points: list[Point] = []
    for (measurement, feature, instrument), vals in sorted(values.items()):
        if len(vals) < 2 or statistics.stdev(vals) == 0:
            continue
        b = bench.store.add_baseline(
            sku=lot.sku, measurement=measurement, feature=feature, instrument=instrument,
            n=len(vals), mean=statistics.fmean(vals), sigma=statistics.stdev(vals),
            lot=lot.lot, spec_rev=lot.spec_rev,
        )  # fmt: skip
        fixed.append(
            f"{measurement}.{feature} on {instrument}: mean {b.mean:.4g}, σ {b.sigma:.3g},"
            f" n {b.n}, version {b.version}"
        )
        tags = {"bench": bench.config.bench.id, "of": measurement, "feature": feature,
                "instrument": instrument, **lot.context().tags()}  # fmt: skip
        fields: dict[str, FieldValue] = {
            "mean": b.mean, "sigma": b.sigma, "n": b.n, "version": b.version,
            "ucl": b.mean + 3 * b.sigma, "lcl": b.mean - 3 * b.sigma,
        }  # fmt: skip
        points.append(Point("baseline", tags, fields, b.created_ns))
    bench.journal.append(points)
    return fixed


def _review_points(bench: _Bench, lot: Lot, review: LotReview, *, final: bool) -> list[Point]:
    """The lot's sampling progress per defect class (and, when final, capability per feature)."""
    now = time.time_ns()
    base = {"bench": bench.config.bench.id, **lot.context().tags()}
    points = [
        Point(
            "lot_progress",
            {**base, "defect_class": c.defect_class},
            {
                "inspected": min(review.units_inspected, c.plan.sample_size),
                "sample_size": c.plan.sample_size,
                "nonconforming": c.nonconforming,
                "accept": c.plan.accept,
                "reject": c.plan.reject,
                "aql": c.aql,
                "state": c.plan.state,
                "code_letter": c.plan.code_letter,
            },
            now,
        )
        for c in review.classes
    ]
    if final:
        for key, fig in review.capability.items():
            measurement, _, feature = key.partition(".")
            points.append(
                Point(
                    "capability",
                    {**base, "of": measurement, "feature": feature, "index": fig.name},
                    {"value": fig.value, "lower": fig.lower, "upper": fig.upper, "n": fig.n,
                     "mean": fig.mean},
                    now,
                )
            )  # fmt: skip
    return points


def _event(bench: _Bench, ctx: LotContext, kind: str, message: str) -> None:
    tags = {"bench": bench.config.bench.id, "instrument": "operator", "kind": kind, **ctx.tags()}
    bench.journal.append(
        [Point("event", tags, {"message": message, "severity": "info"}, time.time_ns())]
    )


# -- daq enter -------------------------------------------------------------------------------


def _enter(bench: _Bench, args: argparse.Namespace) -> int:
    from daq.app import drift_watch, judge_stage

    lot = bench.store.open_lot()
    if lot is None:
        return _err("no lot is open: start one with 'daq lot start' before entering results")
    ctx = lot.context()
    judge = judge_stage(bench.config, bench.base, BenchState(bench.store, ctx))
    spec_file = bench.specs.get(lot.sku, lot.spec_rev)
    assert spec_file is not None
    spec = spec_file.spec
    by = args.by or getpass.getuser()
    now = time.time_ns()
    unit: list[tuple[str, FieldValue]] = (
        [("sample_unit", args.unit)] if getattr(args, "unit", None) is not None else []
    )
    cmd = args.enter_command

    def sample(
        measurement: str,
        feature: str,
        qty: str,
        value: float,
        u: str,
        *,
        instrument: str = "operator",
    ) -> Sample:
        return Sample(instrument, measurement, feature, qty, value, u, now, f"{value} {u}".strip())

    def judged(s: Sample, extra: list[tuple[str, FieldValue]]) -> Measurement:
        try:
            reading = Normalizer().normalize(s)
        except UnitError as exc:
            raise HallmarkError(f"not recorded: {exc}") from exc
        return judge.judge(reading, ctx, entered_by=by, extra=tuple(unit + extra))

    def finding(
        feature: str, ok: bool, reason: str, extra: list[tuple[str, FieldValue]]
    ) -> Measurement:
        s = sample("inspection", feature, "number", 0.0 if ok else 1.0, "count")
        verdict = Verdict("pass" if ok else "fail", reason=None if ok else reason)
        return Measurement(bench.config.bench.id, Reading(s, s.value, "count"), verdict, ctx,
                           entered_by=by, extra=tuple(unit + extra))  # fmt: skip

    if cmd == "visual":
        counts = {"critical": 0, "major": 0, "minor": 0}
        for code in args.defect:
            cls = spec.defect_class(code)
            if cls is None:
                known = ", ".join(f"{d.code} ({d.defect_class})" for d in spec.defects.code)
                return _err(f"defect '{code}' is not in the spec of {lot.sku}; known: {known}")
            counts[cls] += 1
        s = sample("inspection", "visual", "number", float(len(args.defect)), "count")
        verdict = Verdict("fail") if any(counts.values()) else Verdict("pass")
        m = Measurement(
            bench.config.bench.id, Reading(s, s.value, "count"), verdict, ctx,
            entered_by=by,
            extra=(("sample_unit", args.unit), ("critical", counts["critical"]),
                   ("major", counts["major"]), ("minor", counts["minor"]),
                   ("defects", ",".join(args.defect))),
        )  # fmt: skip
    elif cmd == "measure":
        kind = {"thickness": "length", "force": "force", "torque": "torque",
                "chamber": "temperature", "abrasion": "count"}.get(args.measurement)  # fmt: skip
        if kind is None:
            return _err("--measurement is one of thickness, force, torque, chamber, abrasion")
        value, unit_text = _split(args.value)
        m = judged(sample(args.measurement, args.feature, kind, value, unit_text,
                          instrument=args.instrument), [])  # fmt: skip
    elif cmd == "failure-mode":
        s = sample("failure_mode", args.test, "number", 1.0, "count")
        held = args.mode == "held-to-end"
        m = Measurement(bench.config.bench.id, Reading(s, 1.0, "count"),
                        Verdict("pass" if held else "none"), ctx, entered_by=by,
                        extra=(*unit, ("mode", args.mode)))  # fmt: skip
    elif cmd == "chamber":
        if args.ph is not None:
            m = judged(sample("chamber", "ph", "acidity", args.ph, "pH",
                              instrument=args.instrument), [])  # fmt: skip
        else:
            value, unit_text = _split(args.collection)
            m = judged(sample("chamber", "collection_rate", "flow", value, unit_text,
                              instrument=args.instrument), [])  # fmt: skip
    elif cmd == "corrosion":
        extra: list[tuple[str, FieldValue]] = []
        if args.hours is not None:
            extra.append(("hours", args.hours))
        m = judged(sample("corrosion", "rating", "rating", args.rating, "rating"), extra)
    elif cmd == "setting":
        stone = next((st for st in spec.stone if st.position == args.stone), None)
        if stone is None:
            return _err(f"the spec of {lot.sku} has no '{args.stone}' stone")
        ok = args.method.strip().casefold() == stone.setting.strip().casefold()
        m = finding(f"setting_{stone.position}", ok,
                    f"setting method '{args.method}' differs from the spec's '{stone.setting}'",
                    [("observed", args.method), ("specified", stone.setting)])  # fmt: skip
    elif cmd == "hardware":
        part = next((hw for hw in spec.hardware if hw.part == args.part), None)
        if part is None:
            known = ", ".join(hw.part for hw in spec.hardware) or "none"
            return _err(f"the spec of {lot.sku} names no part '{args.part}' (parts: {known})")
        ok = args.part_number == part.part_number
        m = finding(f"hardware_{part.part.replace(' ', '_')}", ok,
                    f"substitution: {args.part} {args.part_number} found, spec says"
                    f" {part.part_number}" + (" (no substitution allowed)"
                                              if part.no_substitution else ""),
                    [("observed", args.part_number), ("specified", part.part_number)])  # fmt: skip
    elif cmd == "reference-check":
        try:
            nominal = quantity(args.nominal, args.quantity)
            reading = quantity(args.reading, args.quantity)
            tol = abs(quantity(args.tolerance, args.quantity)) if args.quantity != "temperature" \
                else abs(float(_split(args.tolerance)[0]))  # fmt: skip
        except (ValueError, UnitError) as exc:
            return _err(f"not recorded: {exc}")
        ok = abs(reading - nominal) <= tol
        detail = f"{args.reading} against {args.nominal} ± {args.tolerance}"
        bench.store.add_calibration_check(args.instrument, ok, detail)
        outcome = "passed" if ok else "FAILED"
        _event(bench, ctx, "calibration_ok" if ok else "calibration_failed",
               f"{args.instrument}: reference check {outcome}: {detail}")  # fmt: skip
        if not ok:
            print(f"{args.instrument}: reference check FAILED ({detail}); readings since the"
                  " last good check are now suspect")  # fmt: skip
            return 0
        print(f"{args.instrument}: reference check passed ({detail})")
        return 0
    else:  # abrasion
        before, after = quantity(args.mass_before, "mass"), quantity(args.mass_after, "mass")
        if args.cycles <= 0:
            return _err("--cycles must be positive")
        wear = 1000.0 * (before - after) / args.cycles
        m = judged(sample("abrasion", "wear_index", "wear_index", wear, "mg/1000 cycles"),
                   [("cycles", args.cycles), ("mass_loss_mg", before - after)])  # fmt: skip
        bench.journal.append([m.to_point()])
        m = judged(sample("abrasion", "cycles_to_end_point", "count", float(args.cycles),
                          "cycles"), [])  # fmt: skip
    events = []
    watch = drift_watch(bench.config, BenchState(bench.store, ctx), bench.journal)
    if m.baseline_z is not None and watch is not None:
        events = watch.check(m)
    bench.journal.append([m.to_point(), *events])
    for event in events:
        print(f"DRIFT ALARM: {event.fields['message']}")
    if cmd == "visual":
        bench.journal.append(_review_points(bench, lot, _review(bench, lot), final=False))
    v = m.verdict
    shown = f"{m.reading.value:.4g} {m.reading.unit}"
    print(f"recorded {m.reading.sample.measurement}.{m.reading.sample.channel} = {shown}:"
          f" {v.status.upper()}" + (f" ({v.reason})" if v.reason else ""))  # fmt: skip
    return 0


def _split(text: str) -> tuple[float, str]:
    parts = text.strip().split(None, 1)
    try:
        return float(parts[0]), parts[1] if len(parts) > 1 else ""
    except (ValueError, IndexError) as exc:
        raise HallmarkError(f"write a number and a unit, e.g. '41.5 N' (got {text!r})") from exc
