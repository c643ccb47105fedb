"""``daq report``: the QC lead's report of one lot, as a self-contained HTML file (and a PDF).

    daq report --lot LOT [--sku SKU] [--out report.html] [--pdf report.pdf] [--config bench.toml]

The lot's review is the one ``daq lot status`` and ``daq lot close`` compute
(``daq.lotcli._review``), so the report's decision figures are theirs; see daq/report.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from daq.errors import ConfigError, HallmarkError
from daq.lotcli import _Bench, _open_bench, _review
from daq.lots import Lot
from daq.report import LotReport, gather, render_html, render_pdf
from daq.runs import RunStore

__all__ = ["add_commands", "build_report", "run_command"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="write a lot's QC report (HTML, and a PDF when asked)")
    p.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("HALLMARK_CONFIG", "bench.toml")),
        help="bench config (default: $HALLMARK_CONFIG or ./bench.toml)",
    )
    p.add_argument("--lot", required=True, help="the lot id")
    p.add_argument("--sku", default=None, help="the SKU, when two SKUs have a lot of that id")
    p.add_argument(
        "--out", type=Path, default=None, help="HTML file (default: report-SKU-LOT.html)"
    )
    p.add_argument("--pdf", type=Path, default=None, help="also write this PDF file")


def _err(text: str) -> int:
    print(text, file=sys.stderr)
    return 1


def find_lot(bench: _Bench, lot_id: str, sku: str | None) -> Lot:
    """The lot called ``lot_id`` (of ``sku``); a HallmarkError in words when there is none or
    when the id is ambiguous."""
    where = f"the journal {bench.journal.path}"
    if sku is not None:
        lot = bench.store.get(sku, lot_id)
        if lot is None:
            known = ", ".join(x.lot for x in bench.store.lots(sku)) or "none"
            raise HallmarkError(f"no lot {lot_id} of {sku} in {where} (lots of {sku}: {known})")
        return lot
    found = [x for x in bench.store.lots() if x.lot == lot_id]
    if not found:
        known = ", ".join(f"{x.lot} ({x.sku})" for x in bench.store.lots()) or "none"
        raise HallmarkError(f"no lot {lot_id} in {where} (lots: {known})")
    if len(found) > 1:
        skus = ", ".join(x.sku for x in found)
        raise HallmarkError(f"lot {lot_id} exists for several SKUs ({skus}): give --sku")
    return found[0]


def build_report(bench: _Bench, lot: Lot, now_ns: int | None = None) -> LotReport:
    """Gather one lot's report from an open bench (the review is ``daq lot status``'s)."""
    spec = bench.specs.get(lot.sku, lot.spec_rev)
    if spec is None:
        raise HallmarkError(f"the spec of {lot.sku} revision {lot.spec_rev} is gone")
    review = _review(bench, lot)
    with RunStore(bench.journal.path) as runs:
        return gather(
            lot, review, config=bench.config, journal=bench.journal, store=bench.store,
            runs=runs, spec=spec, now_ns=time.time_ns() if now_ns is None else now_ns,
        )  # fmt: skip


def run_command(args: argparse.Namespace) -> int:
    try:
        bench = _open_bench(args.config)
    except ConfigError as exc:
        return _err(
            f"{args.config}: config problems:\n" + "\n".join(f"  - {p}" for p in exc.problems)
        )
    except HallmarkError as exc:
        return _err(str(exc))
    try:
        lot = find_lot(bench, args.lot, args.sku)
        report = build_report(bench, lot)
    except HallmarkError as exc:
        return _err(str(exc))
    finally:
        bench.close()
    out: Path = args.out or Path(f"report-{lot.sku}-{lot.lot}.html")
    try:
        out.write_text(render_html(report), encoding="utf-8")
        if args.pdf is not None:
            render_pdf(report, args.pdf)
    except OSError as exc:
        return _err(f"cannot write the report: {exc}")
    written = f"{out}" + (f" and {args.pdf}" if args.pdf is not None else "")
    print(
        f"lot {lot.lot} of {lot.sku} ({report.decision}): {len(report.features)} feature(s),"
        f" {report.points} journal points; wrote {written}"
    )
    return 0
