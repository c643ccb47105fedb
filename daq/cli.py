"""The ``daq`` command.

    daq check CONFIG                      validate a bench config; every problem at once
    daq run CONFIG [--duration S]         run the bench until signalled (or for S seconds)
    daq simulate FAMILY [...]             serve a simulated instrument; prints one JSON line
    daq demo [--duration S] [...]         simulators + daemon on a generated config
    daq tail [--journal PATH] [-n N]      the latest measurements, human-readable
    daq export [--journal PATH] --format lp [--out F]   the journal as line protocol
    daq backfill CONFIG [--to URL --database DB]       send the journal's backlog now
    daq status CONFIG                     the running daemon's health (from its status file)
    daq lot / enter / po-check / plan     lots, operator entries, PO readiness, sampling plans
    daq chamber ...                       salt-spray runs, specimens, daily solution checks
    daq report --lot LOT                  a lot's HTML (and PDF) report, CoC or NCR
    daq record / replay                   byte transcripts of instrument sessions

Exit codes: 0 success, 1 a problem the message explains (bad config, missing journal),
2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from daq import chambercli, recordcli, reportcli
from daq.errors import ConfigError, HallmarkError
from daq.journal import Journal
from daq.lineprotocol import encode
from daq.lotcli import add_commands, run_command
from daq.model import Point

__all__ = ["format_point", "main"]

DEFAULT_JOURNAL = Path("hallmark-journal.db")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="daq", description="Hallmark data acquisition for QC labs.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="validate a bench config without starting anything")
    c.add_argument("config", type=Path)

    r = sub.add_parser("run", help="run a bench: poll instruments, journal, forward")
    r.add_argument("config", type=Path)
    r.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    r.add_argument("-v", "--verbose", action="store_true")

    s = sub.add_parser("simulate", help="serve a simulated instrument until signalled")
    s.add_argument(
        "family",
        choices=["chamber", "f4t-scpi", "scanner", "rtu-line", "abrasion", "mark10", "imada",
                 "xrf-telegram", "xrf-export"],
        help="chamber: Watlow F4T over Modbus TCP; f4t-scpi: the F4T's SCPI over TCP; scanner:"
        " a 34970A/DAQ970A-style data-acquisition unit (SCPI over TCP); rtu-line: controllers on"
        " one Modbus RTU line (a pty pair, --devices); abrasion: a PLC abrasion tester over"
        " Modbus TCP; mark10, imada: force/torque gauges on a pty; xrf-telegram: XRF result"
        " print-outs on a pty; xrf-export: XRF export files in --dir",
    )  # fmt: skip
    s.add_argument(
        "--devices",
        default="1:ezzone_pm,2:eurotherm_3200",
        help="rtu-line: device ids and models, e.g. 1:ezzone_pm,2:eurotherm_3200",
    )
    s.add_argument(
        "--time-scale", type=float, default=1.0, help="abrasion: run tests this much faster"
    )
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0 picks a free port")
    s.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal (serial)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scenario", type=Path, default=None)
    s.add_argument("--dir", type=Path, default=None, help="xrf-export: the folder to write to")
    s.add_argument(
        "--interval", type=float, default=30.0, help="xrf: seconds between result series"
    )
    s.add_argument(
        "--profile",
        default=None,
        help="gauge model: mark10 M5-2, M5-100, M5-50, TT01-12; imada DS2-500N",
    )

    d = sub.add_parser("demo", help="run simulators and the daemon on a generated config")
    d.add_argument("--duration", type=float, default=30.0)
    d.add_argument("--journal", type=Path, default=None)
    d.add_argument("--influx", default=None, metavar="URL", help="InfluxDB URL to forward to")
    d.add_argument("--influx-db", default="hallmark", help="database (InfluxDB 1.x API)")
    d.add_argument("--bucket", default=None, help="bucket (InfluxDB 2.x/3.x API)")
    d.add_argument("--org", default=None, help="organization (InfluxDB 2.x/3.x API)")
    d.add_argument("--token-env", default=None, help="environment variable holding the token")
    d.add_argument("--seed", type=int, default=7)

    t = sub.add_parser("tail", help="show the latest measurements in the journal")
    t.add_argument("--journal", type=Path, default=DEFAULT_JOURNAL)
    t.add_argument("-n", type=int, default=20)

    add_commands(sub)
    chambercli.add_commands(sub)
    recordcli.add_commands(sub)
    reportcli.add_commands(sub)

    st = sub.add_parser("status", help="the running daemon's health, backlog and quarantine")
    st.add_argument("config", type=Path)

    e = sub.add_parser("export", help="write the journal out")
    e.add_argument("--journal", type=Path, default=DEFAULT_JOURNAL)
    e.add_argument("--format", choices=["lp"], required=True, help="lp: InfluxDB line protocol")
    e.add_argument("--out", type=Path, default=None, help="write to this file, not stdout")
    _progress_arg(e)

    b = sub.add_parser(
        "backfill",
        help="send the journal's backlog to the database now (or all of it to another one)",
    )
    b.add_argument("config", type=Path)
    b.add_argument(
        "--to", default=None, metavar="URL", help="another InfluxDB 1.x to copy the journal to"
    )
    b.add_argument("--database", default=None, help="with --to: the database (created if absent)")
    b.add_argument(
        "--give-up-after", type=float, default=60.0, help="seconds of database errors to bear"
    )
    _progress_arg(b)
    return p


def _progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action="store_const",
        const="on",
        default="auto",
        help="report progress on stderr even when it is not a terminal",
    )


def format_point(p: Point) -> str:
    """One point as a line a person reads."""
    when = datetime.fromtimestamp(p.time_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    who = p.tags.get("instrument", p.tags.get("component", "-"))
    f = p.fields
    if p.measurement == "event":
        return f"{when}Z {who:<16} EVENT {p.tags.get('kind', '')}: {f.get('message', '')}"
    if p.measurement == "daq_health":
        figures = ", ".join(f"{k}={v}" for k, v in f.items() if k != "last_seen_ns")
        return f"{when}Z {who:<16} health: {figures}"
    value = f.get("value")
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    status = str(f.get("status", ""))
    margin = f.get("margin")
    extra = f" (margin {margin:+.3g})" if isinstance(margin, float) else ""
    lot = p.tags.get("lot")
    lot_text = f"  lot {lot}" if lot else ""
    return (
        f"{when}Z {who:<16} {p.measurement}.{p.tags.get('feature', '')} = {shown}"
        f" {f.get('unit', '')}  {status}{extra}{lot_text}"
    )


def _cmd_check(args: argparse.Namespace) -> int:
    from daq.app import line_findings, load
    from daq.skuspec import SpecLibrary

    try:
        config = load(args.config)
        specs = SpecLibrary.load(config.specs_path(args.config.resolve().parent))
    except ConfigError as exc:
        n = len(exc.problems)
        print(f"{args.config}: {n} problem{'s' if n != 1 else ''} found:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    names = ", ".join(i.name for i in config.instrument) or "none"
    skus = ", ".join(f"{f.spec.sku} rev {f.spec.revision}" for f in specs) or "none"
    print(f"{args.config}: OK (bench {config.bench.id}; instruments: {names}; specs: {skus})")
    for finding in line_findings(config):
        print(f"  {finding}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from daq.app import configure_logging, load, run_bench

    configure_logging(logging.DEBUG if args.verbose else logging.INFO)

    def already_stopping(signum: int, frame: object) -> None:
        logging.getLogger("daq").info("signal %d: already stopping", signum)

    # Outside run_bench's own handlers (just before it starts, or once it has stopped), a
    # signal must not kill the daemon half-way: it is only noted.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, already_stopping)
    try:
        config = load(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            logging.getLogger("daq").error("config: %s", problem)
        return 1
    try:
        asyncio.run(
            run_bench(
                config,
                args.config.resolve().parent,
                args.duration,
                reload=lambda: load(args.config),
            )
        )
    except HallmarkError as exc:
        logging.getLogger("daq").error("%s", exc)
        return 1
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    if args.family == "xrf-telegram":
        from simulators.xrf_telegram import serve_telegram

        return serve_telegram(
            seed=args.seed, scenario_path=args.scenario, template=args.profile,
            interval_s=args.interval,
        )  # fmt: skip
    if args.family == "xrf-export":
        from simulators.xrf_export import serve_export

        if args.dir is None:
            print("xrf-export needs --dir, the folder the export files go to", file=sys.stderr)
            return 2
        return serve_export(
            args.dir, seed=args.seed, scenario_path=args.scenario, style=args.profile,
            interval_s=args.interval,
        )  # fmt: skip
    if args.family == "mark10":
        from simulators import mark10

        return mark10.serve(True, args.seed, args.scenario, args.profile or "M5-100")
    if args.family == "imada":
        from simulators import imada

        return imada.serve(True, args.seed, args.scenario, args.profile or "DS2-500N")
    if args.family == "rtu-line":
        from simulators import modbus_rtu

        return modbus_rtu.serve(args.devices, args.seed, args.scenario)
    if args.family == "f4t-scpi":
        from simulators import f4t_scpi

        return f4t_scpi.serve(args.host, args.port, args.seed, args.scenario)
    if args.family == "scanner":
        from simulators import scpi_scanner

        return scpi_scanner.serve(args.host, args.port, args.seed, args.scenario)
    if args.family == "abrasion":
        from simulators import abrasion_plc

        return abrasion_plc.serve(
            args.host, args.port, args.seed, args.scenario, time_scale=args.time_scale
        )
    if args.pty:
        print(
            "the chamber simulator serves Modbus TCP; --pty is for serial instruments",
            file=sys.stderr,
        )
        return 2
    from simulators.watlow_f4t import serve

    return serve(args.host, args.port, args.seed, args.scenario)


def _cmd_status(args: argparse.Namespace) -> int:
    from daq.app import load
    from daq.status import read_status, status_path

    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"{args.config}: config problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    journal = config.journal_path(args.config.resolve().parent)
    try:
        status = read_status(status_path(journal))
    except (FileNotFoundError, ValueError):
        print(f"no status from a daemon of this bench yet ({status_path(journal)})")
        return 1
    age = (time.time_ns() - int(status["written_ns"])) / 1e9
    stale = age > 3 * config.bench.health_interval
    state = "STOPPED" if status.get("stopping") else ("NOT ANSWERING?" if stale else "running")
    print(f"bench {status['bench']}: {state} (pid {status['pid']}, status {age:.0f} s old)")
    for name, h in status["instruments"].items():
        online = "online " if h["online"] else "OFFLINE"
        line = (
            f"  {name:<18} {online} {h['polls']} polls, {h['measurements']} measurements,"
            f" {h['errors']} errors, {h['reconnects']} reconnects, latency {h['latency_ms']} ms"
        )
        if h.get("last_error"):
            line += f"\n  {'':<18} last problem: {h['last_error']}"
        print(line)
    for name, e in status.get("exposure", {}).items():
        print(f"  {name:<18} exposure valid {e['valid_hours']:.2f} h, {e['excursions']} excursions")
    j = status["journal"]
    held = j.get("held", 0)
    print(
        f"  journal {j['path']}: {j['accepted']} accepted, {j['write_failures']} write failures"
        + (
            f", {held} held in memory (NOT yet accepted: the journal cannot be written)"
            if held
            else ""
        )
    )
    for f in status["forwarders"]:
        backlog = f["backlog"] if f["backlog"] is not None else "?"
        print(
            f"  {f['sink']}: {f['state']}, {f['written']} written, {backlog} waiting,"
            f" {f['retries']} retries" + (f" — {f['last_error']}" if f["last_error"] else "")
        )
    with Journal(journal, readonly=True) as jr:
        quarantined = jr.quarantined()
    if quarantined:
        print(f"  {len(quarantined)} row(s) in quarantine (refused by the database):")
        for q in quarantined[-5:]:
            print(f"    row {q.row_id} for {q.sink}: {q.message}")
    return 0


def _cmd_tail(args: argparse.Namespace) -> int:
    try:
        with Journal(args.journal, readonly=True) as journal:
            for point in journal.latest(args.n):
                print(format_point(point))
    except HallmarkError as exc:
        print(f"daq tail: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from daq.progress import Progress

    try:
        with (
            Journal(args.journal, readonly=True) as journal,
            contextlib.ExitStack() as stack,
        ):
            out: TextIO = sys.stdout
            if args.out is not None:
                out = stack.enter_context(args.out.open("w", encoding="utf-8"))
            progress = stack.enter_context(Progress("export", journal.count(), mode=args.progress))
            for point in journal.iter_points():
                try:
                    out.write(encode(point) + "\n")
                except ValueError as exc:
                    print(f"daq export: skipped a point: {exc}", file=sys.stderr)
                progress.advance()
    except HallmarkError as exc:
        print(f"daq export: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return 0
        print(f"daq export: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def _cmd_make_test(args: argparse.Namespace) -> int:
    import json

    from daq.transcripttest import make_case, sidecar_path

    try:
        options = json.loads(args.options)
        if not isinstance(options, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        print(f"daq replay: --options must be a JSON object: {exc}", file=sys.stderr)
        return 2
    try:
        case = make_case(
            args.file, args.make_test, options=options, polls=args.polls, address=args.address
        )
    except HallmarkError as exc:
        print(f"daq replay: {exc}", file=sys.stderr)
        return 1
    print(f"{sidecar_path(args.file)}: {len(case.samples)} sample(s) from {case.driver}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        return _cmd_check(args)
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "simulate":
        return _cmd_simulate(args)
    if args.command == "demo":
        from daq.demo import run_demo

        return run_demo(args)
    if args.command == "tail":
        return _cmd_tail(args)
    if args.command == "status":
        return _cmd_status(args)
    if args.command == "chamber":
        return chambercli.run_command(args)
    if args.command == "backfill":
        from daq.backfill import run_backfill

        return run_backfill(args)
    if args.command == "report":
        return reportcli.run_command(args)
    if args.command == "replay" and args.make_test:
        return _cmd_make_test(args)
    if args.command in ("record", "replay"):
        from simulators.replay import serve_replay

        return recordcli.run_command(args, serve_replay)
    if args.command in ("lot", "enter", "po-check", "plan"):
        return run_command(args)
    return _cmd_export(args)
