"""``daq demo``: the product's story in about two minutes, on simulators and the real daemon.

A charm pendant (SKU HMK-CHRM-100, config/specs/HMK-CHRM-100.A.toml) is measured twice:

1. **Golden sample** (lot GS-01): an XRF gauge prints gold thickness on a serial line, a Mark-10
   gauge pulls soldered bails, a second one pushes out individually set stones, a torque tester
   holds 2 in-lbf on the bail, a salt-spray cabinet (Watlow F4T over Modbus TCP) runs at
   35 °C with a specimen in it, and the inspector enters a visual AQL sample. Closing the lot
   fixes the golden-sample baseline of every feature.
2. **Bulk** (lot B-07) of the same SKU, with the quiet process changes the golden sample cannot
   see: thinner gold (still in spec), some unsoldered bails, shared prongs, a bail that lets go
   in the torque hold, and the cabinet's door left open for a moment.

Every instrument is a ``daq simulate`` process speaking its real protocol (pseudo-terminals,
Modbus TCP); the daemon is the production code path; the operator's steps are the ``daq lot``,
``daq enter`` and ``daq chamber`` commands a lab tech types, run in-process and shown as typed.
A live view (rich) shows readings and verdicts as they arrive when the output is a terminal,
plain lines otherwise. The run ends with the lot decisions, the drift alarms, the salt-spray
run, and where to look next.

``--duration`` scales the story's timeline (default 120 s, at least 50 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from daq.errors import ConfigError, HallmarkError
from daq.journal import Journal
from daq.model import Measurement

__all__ = ["run_demo"]

SKU = "HMK-CHRM-100"
PO = "PO-2026-0311"
GOLDEN, BULK = "GS-01", "B-07"
CABINET, RUN = "nss-1", "SS-DEMO"
#: The story's length at scale 1; ``--duration`` stretches or squeezes every time below.
STORY_S = 120.0
MIN_DURATION_S = 50.0
#: Seconds between two XRF result series (at scale 1), and the golden phase's length.
XRF_INTERVAL_S = 3.0
GOLDEN_END_S = 56.0
SPECS = Path(__file__).resolve().parent.parent / "config" / "specs"


# -- the simulators' scenarios (times in story seconds, scaled when written) -------------------


def _pull_faults() -> list[dict[str, Any]]:
    soldered = [6, 14, 22, 30, 38, 62, 78]
    open_bails = [70, 86, 94]
    return [
        *({"kind": "jump_ring", "start": t, "soldered": True} for t in soldered),
        *({"kind": "jump_ring", "start": t, "soldered": False} for t in open_bails),
    ]


def _prong_faults() -> list[dict[str, Any]]:
    individual = [8, 18, 28, 40, 74]
    shared = [64, 84, 96]
    return [
        *({"kind": "prong", "start": t, "setting": "individual"} for t in individual),
        *({"kind": "prong", "start": t, "setting": "shared"} for t in shared),
    ]


def _torque_faults() -> list[dict[str, Any]]:
    hold = {"kind": "hold", "unit": "lbFin", "ramp_s": 1.5, "hold_s": 3.5}
    return [
        {**hold, "start": 6, "target": 2.05},
        {**hold, "start": 26, "target": 2.12},
        {**hold, "start": 62, "target": 2.08},
        {**hold, "start": 82, "target": 2.1, "fail_after_s": 1.5},
    ]


def _chamber_faults() -> list[dict[str, Any]]:
    return [
        {"kind": "excursion", "start": 88, "duration": 6.0, "delta": -7.0},
        {"kind": "no_reply", "start": 102, "duration": 2.0},
    ]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def _scenario(
    description: str, model: dict[str, Any], faults: list[dict[str, Any]], scale: float
) -> str:
    lines = ["schema = 1", f"description = {json.dumps(description)}", "", "[model]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in model.items()]
    for fault in faults:
        lines += ["", "[[fault]]"]
        for k, v in fault.items():
            scaled = round(float(v) * scale, 3) if k in ("start", "duration") else v
            lines.append(f"{k} = {_toml_value(scaled)}")
    return "\n".join(lines) + "\n"


# -- the operator's steps ----------------------------------------------------------------------


def _steps(scale: float, out: Path = Path(".")) -> list[tuple[float, str]]:
    """(story second, the `daq` command a lab tech types)."""
    golden_visuals = [(10 + 4 * i, f"enter visual --unit {i + 1}") for i in range(8)]
    bulk_defects = {3: " --defect brass-showing", 6: " --defect polish-marks"}
    bulk_visuals = [
        (66 + 3.5 * i, f"enter visual --unit {i + 1}{bulk_defects.get(i + 1, '')}")
        for i in range(8)
    ]
    steps = [
        (0.5, f"lot start --sku {SKU} --po {PO} --lot {GOLDEN} --phase golden-sample --size 20"),
        (1.5, f"chamber start --cabinet {CABINET} --run {RUN} --hours 24"),
        (2.5, f"chamber load --run {RUN} --specimen GS01-A --sku {SKU} --lot {GOLDEN}"),
        (3.0, f"chamber load --run {RUN} --specimen GS01-B --sku {SKU} --lot {GOLDEN}"),
        (3.5, f"chamber solution --cabinet {CABINET} --ph 6.8"),
        (4.5, f"chamber solution --cabinet {CABINET} --collection '1.5 mL/h'"),
        *golden_visuals,
        (45, f"chamber inspect --run {RUN} --specimen GS01-A --rating 10"),
        (46, f"chamber inspect --run {RUN} --specimen GS01-B --rating 9"),
        (50, "lot status"),
        (52, "lot close"),
        (GOLDEN_END_S, f"lot start --sku {SKU} --po {PO} --lot {BULK} --phase bulk --size 20"),
        (58, f"chamber load --run {RUN} --specimen B07-A --sku {SKU} --lot {BULK}"),
        *bulk_visuals,
        (98, "enter failure-mode --test jump_ring_pull --mode opened-at-joint --unit 2"),
        (104, f"chamber solution --cabinet {CABINET} --ph 6.9"),
        (107, f"chamber inspect --run {RUN} --specimen B07-A --rating 8"),
        (110, "lot close"),
        (112, f"chamber status --run {RUN}"),
        (114, f"report --lot {GOLDEN} --out {out / (GOLDEN + '.html')}"),
        (116, f"report --lot {BULK} --out {out / (BULK + '.html')}"),
    ]
    return [(t * scale, cmd) for t, cmd in steps]


# -- the generated bench -------------------------------------------------------------------------


def _config_text(args: argparse.Namespace, journal: Path, addresses: dict[str, str]) -> str:
    q = json.dumps
    lines = [
        "## Generated by daq demo: one SKU's bench on simulated instruments.",
        "schema = 1",
        "",
        "[bench]",
        'id = "demo-bench"',
        "health_interval = 2.0",
        "",
        "[journal]",
        f"path = {q(str(journal))}",
        "",
        "[specs]",
        'dir = "specs"',
        "",
    ]
    if args.influx:
        lines += ["[influx]", f"url = {q(args.influx)}"]
        if args.bucket:
            lines += [
                'api = "v2"',
                f"bucket = {q(args.bucket)}",
                f"org = {q(args.org or '')}",
                f"token_env = {q(args.token_env or 'INFLUX_TOKEN')}",
            ]
        else:
            lines += ['api = "v1"', f"database = {q(args.influx_db)}"]
        lines += ["flush_interval = 0.5", ""]
    gauge = 'timeout = 1.0\n[instrument.options]\nmode = "push"\naout_rate = 25\n'
    lines += [
        "[[instrument]]",
        'name = "xrf-1"',
        'driver = "xrf_telegram"',
        f"address = {q(addresses['xrf'])}",
        "[instrument.options]",
        'template = "telegram-per-line"',
        "",
        "[[instrument]]",
        'name = "pull-gauge"',
        'driver = "mark10"',
        f"address = {q(addresses['pull'])}",
        gauge + 'channel = "jump_ring_pull"\nstart_threshold = "3 N"\ncapacity = "500 N"\n',
        "[[instrument]]",
        'name = "prong-gauge"',
        'driver = "mark10"',
        f"address = {q(addresses['prong'])}",
        gauge + 'channel = "stone_retention_center"\nstart_threshold = "3 N"\ncapacity = "500 N"\n',
        "[[instrument]]",
        'name = "torque-tester"',
        'driver = "mark10"',
        f"address = {q(addresses['torque'])}",
        gauge + 'quantity = "torque"\nchannel = "bail_torque"\nstart_threshold = "0.3 lbFin"\n'
        '[instrument.options.hold]\ntarget = "2 lbFin"\ntolerance = "0.2 lbFin"\n'
        "ramp_max_s = 5.0\nhold_s = 3.0\n",
        "[[instrument]]",
        'name = "salt-spray-1"',
        'driver = "watlow_f4t"',
        f"address = {q(addresses['chamber'])}",
        "poll_interval = 1.0",
        "timeout = 0.5",
        "## ASTM B117 / ISO 9227 NSS: 35 ± 2 °C; daily pH 6.5-7.2, collection 1.0-2.0 mL/h.",
        "[instrument.limits.temperature]",
        "low = 33.0",
        "high = 37.0",
        "guard = 0.3",
        "[instrument.limits.ph]",
        "low = 6.5",
        "high = 7.2",
        "[instrument.limits.collection_rate]",
        "low = 1.0",
        "high = 2.0",
        "",
        "[[cabinet]]",
        f"name = {q(CABINET)}",
        'zone = "salt-spray-1"',
        'standard = "ASTM B117"',
        "",
    ]
    return "\n".join(lines)


def _launch(argv: list[str]) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "daq", "simulate", *argv]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _address(proc: subprocess.Popen[str], what: str, deadline: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    line = proc.stdout.readline() if ready else ""
    if not line:
        raise HallmarkError(f"the {what} simulator did not start (no address printed in 30 s)")
    return str(json.loads(line)["address"])


def _start_simulators(
    out: Path, scale: float, seed: int, procs: list[subprocess.Popen[str]]
) -> dict[str, str]:
    """Start every simulator at once (their scenario clocks start together) and wait for the
    addresses they print."""
    golden_series = round(GOLDEN_END_S / XRF_INTERVAL_S)
    xrf_model = {
        "application": "Au/Ni/CuZn",
        "product": SKU,
        "readings_per_series": 3,
        "parts_per_lot": golden_series,
        "drift_start_lot": 2,
        "drift_step_pct": -22.0,
    }
    specs: dict[str, tuple[str, str, dict[str, Any], list[dict[str, Any]], list[str]]] = {
        "xrf": ("xrf-telegram", "gold thickness, thinner from the bulk lot", xrf_model, [], []),
        "pull": ("mark10", "bail pulls", {"profile": "M5-100", "seed": seed}, _pull_faults(),
                 ["--profile", "M5-100"]),
        "prong": ("mark10", "stone push-outs", {"profile": "M5-100", "seed": seed + 1},
                  _prong_faults(), ["--profile", "M5-100"]),
        "torque": ("mark10", "bail torque holds", {"profile": "TT01-12", "seed": seed + 2},
                   _torque_faults(), ["--profile", "TT01-12"]),
        "chamber": ("chamber", "salt spray, door opened in the bulk lot",
                    {"time_constant_s": 3.0}, _chamber_faults(), ["--port", "0"]),
    }  # fmt: skip
    started: dict[str, subprocess.Popen[str]] = {}
    for key, (family, description, model, faults, extra) in specs.items():
        path = out / f"{key}.scenario.toml"
        path.write_text(_scenario(description, model, faults, scale), encoding="utf-8")
        argv = [family, "--seed", str(seed), "--scenario", str(path), *extra]
        if family == "xrf-telegram":
            argv += ["--interval", str(round(XRF_INTERVAL_S * scale, 3))]
        started[key] = _launch(argv)
        procs.append(started[key])
    deadline = time.monotonic() + 30.0
    return {key: _address(proc, key, deadline) for key, proc in started.items()}


# -- what the demo shows -------------------------------------------------------------------------


@dataclass
class _Row:
    value: float = 0.0
    unit: str = ""
    status: str = ""
    z: float | None = None
    counts: Counter[str] = field(default_factory=Counter)


class _Story:
    """Readings, the operator's commands and the bench's events, for the live view."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.started = time.monotonic()
        self.rows: dict[tuple[str, str], _Row] = defaultdict(_Row)
        self.lines: deque[str] = deque(maxlen=16)
        self.lot = "no lot open"
        self.lock = threading.Lock()
        self.plain: TextIO | None = None  # plain lines when the output is not a terminal

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        stamp = f"t={self.elapsed():5.1f}s"
        with self.lock:
            for line in text.splitlines() or [""]:
                self.lines.append(f"{stamp}  {line}")
                if self.plain is not None:
                    print(f"  {stamp}  {line}", file=self.plain, flush=True)

    def observe(self, m: Measurement) -> None:
        s = m.reading.sample
        if s.channel == "setpoint":
            return
        with self.lock:
            row = self.rows[(s.instrument, s.channel)]
            row.value, row.unit, row.status = m.reading.value, m.reading.unit, m.verdict.status
            row.z = m.baseline_z
            row.counts[m.verdict.status] += 1
        if s.measurement != "chamber":  # instrument tests, one line each
            z = f"  z {m.baseline_z:+.1f}" if m.baseline_z is not None else ""
            reason = f"  ({m.verdict.reason})" if m.verdict.reason else ""
            self.say(
                f"{s.instrument:<14} {s.channel:<22} {m.reading.value:8.3f} {m.reading.unit:<4}"
                f" {m.verdict.status.upper()}{z}{reason}"
            )

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table

        table = Table(expand=True, title=f"{SKU} · {self.lot}")
        for name in ("instrument", "feature", "last", "verdict", "pass", "marg.", "fail", "z"):
            table.add_column(name, justify="right" if name not in ("instrument", "feature")
                             else "left")  # fmt: skip
        colour = {"pass": "green", "marginal": "yellow", "fail": "bold red", "suspect": "magenta"}
        with self.lock:
            for (inst, feature), r in sorted(self.rows.items()):
                style = colour.get(r.status, "")
                table.add_row(
                    inst, feature, f"{r.value:.3f} {r.unit}",
                    f"[{style}]{r.status.upper()}[/]" if style else r.status,
                    str(r.counts["pass"]), str(r.counts["marginal"]), str(r.counts["fail"]),
                    "" if r.z is None else f"{r.z:+.1f}",
                )  # fmt: skip
            log = "\n".join(self.lines)
        bar = min(1.0, self.elapsed() / self.duration)
        title = f"Hallmark demo · {self.elapsed():5.1f} s of {self.duration:.0f} s"
        progress = "█" * int(40 * bar) + "░" * (40 - int(40 * bar))
        return Group(Panel(progress, title=title), table, Panel(log, title="bench log"))


class _LogToStory(logging.Handler):
    """The daemon's warnings into the story's log (the live view owns the terminal)."""

    def __init__(self, story: _Story) -> None:
        super().__init__(logging.WARNING)
        self.story = story

    def emit(self, record: logging.LogRecord) -> None:
        self.story.say(f"[{record.levelname.lower()}] {record.getMessage()}")


class _ThreadStdout(io.TextIOBase):
    """sys.stdout that sends what one thread prints to a buffer (the operator's commands run
    in a worker thread while the live view draws on the real stdout)."""

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.buffers: dict[int, io.StringIO] = {}

    def write(self, text: str) -> int:
        buffer = self.buffers.get(threading.get_ident())
        return (buffer or self.real).write(text)

    def flush(self) -> None:
        self.real.flush()

    @contextlib.contextmanager
    def capture(self) -> Iterator[io.StringIO]:
        buffer = io.StringIO()
        self.buffers[threading.get_ident()] = buffer
        try:
            yield buffer
        finally:
            del self.buffers[threading.get_ident()]


def _run_command(config: Path, command: str, stdout: _ThreadStdout) -> tuple[int, str]:
    from daq.cli import main

    argv = [*shlex.split(command), "--config", str(config)]
    with stdout.capture() as out, contextlib.redirect_stderr(out):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refusing a command
            code = int(exc.code or 0)
    return code, out.getvalue().strip()


async def _operator(
    story: _Story, config: Path, scale: float, stdout: _ThreadStdout, done: asyncio.Event
) -> None:
    for at, command in _steps(scale, config.parent):
        delay = at - story.elapsed()
        if delay > 0:
            try:
                await asyncio.wait_for(done.wait(), delay)
                return
            except TimeoutError:
                pass
        story.say(f"$ daq {command}")
        code, text = await asyncio.to_thread(_run_command, config, command, stdout)
        if command.startswith("lot start"):
            lot = command.split("--lot ")[1].split()[0]
            phase = command.split("--phase ")[1].split()[0]
            story.lot = f"lot {lot} ({phase})"
        elif command == "lot close":
            story.lot = "no lot open"
        lines = text.splitlines()
        for line in lines if command == "lot close" else lines[:12]:
            story.say(f"    {line}")
        if code != 0:
            story.say(f"    (exit {code})")


def run_demo(args: argparse.Namespace) -> int:
    from daq.app import load, run_bench

    duration = max(float(args.duration), MIN_DURATION_S)
    scale = duration / STORY_S
    out = Path(tempfile.mkdtemp(prefix="hallmark-demo-"))
    journal = Path(args.journal or out / "journal.db")
    shutil.copytree(SPECS, out / "specs")
    procs: list[subprocess.Popen[str]] = []
    story = _Story(duration)
    live_view = sys.stdout.isatty() and not os.environ.get("HALLMARK_PLAIN")
    stdout = _ThreadStdout(sys.stdout)
    try:
        story.started = time.monotonic()  # the simulators' scenario clocks start now too
        addresses = _start_simulators(out, scale, args.seed, procs)
        config_path = out / "bench.toml"
        config_path.write_text(_config_text(args, journal, addresses), encoding="utf-8")
        config = load(config_path)
        print(f"Hallmark demo: {SKU}, a golden-sample lot then a bulk lot, {duration:.0f} s")
        print(f"  simulators: {', '.join(f'{k} {v}' for k, v in addresses.items())}")
        print(f"  config {config_path}\n  journal {journal}\n", flush=True)
        # The daemon's warnings (drift alarms, excursions, links lost) go to the story's log.
        logging.basicConfig(level=logging.WARNING, handlers=[_LogToStory(story)], force=True)
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        if not live_view:
            story.plain = sys.stdout
        sys.stdout = stdout
        try:
            asyncio.run(
                _story(story, config, out, config_path, scale, stdout, run_bench, live_view)
            )
        finally:
            sys.stdout = stdout.real
    except ConfigError as exc:
        print(f"demo config invalid:\n{exc}", file=sys.stderr)
        return 1
    except HallmarkError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(procs)
    _summary(journal, config_path, out)
    return 0


async def _story(  # noqa: PLR0917 - the demo's parts, passed once
    story: _Story,
    config: Any,
    out: Path,
    config_path: Path,
    scale: float,
    stdout: _ThreadStdout,
    run_bench: Callable[..., Any],
    live_view: bool,
) -> None:
    done = asyncio.Event()
    tasks = [asyncio.create_task(_operator(story, config_path, scale, stdout, done))]
    live: Any = None
    refresher: asyncio.Task[None] | None = None
    if live_view:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=stdout.real)
        live = Live(story.render(), console=console, refresh_per_second=4,
                    redirect_stdout=False, redirect_stderr=False)  # fmt: skip
        live.start()

        async def refresh() -> None:
            while not done.is_set():
                live.update(story.render())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.25)

        refresher = asyncio.create_task(refresh())
    try:
        remaining = max(1.0, story.duration - story.elapsed())
        await run_bench(config, out, remaining, observer=story.observe)
    finally:
        done.set()
        for task in tasks:
            await task
        if refresher is not None:
            await refresher
        if live is not None:
            live.update(story.render())
            live.stop()


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _summary(journal: Path, config_path: Path, out: Path) -> None:
    from daq.lots import LotStore

    print("\nSummary")
    with LotStore(journal) as store:
        for lot in store.lots(SKU):
            decision = (lot.decision or "open").upper()
            print(f"  lot {lot.lot} ({lot.phase}): {decision}")
            for reason in (lot.evidence or {}).get("reasons", [])[:8]:
                print(f"    - {reason}")
    with Journal(journal, readonly=True) as j:
        events = j.latest(5000, "event")
        alarms = [e for e in events if e.tags.get("kind") == "drift_alarm"]
        print(f"  drift alarms: {len(alarms)}")
        for e in alarms[:6]:
            print(f"    - {e.fields.get('message')}")
        excursions = [e for e in events if e.tags.get("kind") == "chamber_excursion"]
        for e in excursions:
            print(f"  chamber excursion: {e.fields.get('message')}")
        counts = Counter(p.measurement for p in j.iter_points())
        shown = ", ".join(f"{n} {m}" for m, n in sorted(counts.items()))
        print(f"  journal: {sum(counts.values())} rows ({shown})")
    print("\nWhere to look next")
    cfg = f"--config {config_path}"
    for lot_id in (GOLDEN, BULK):
        report = out / f"{lot_id}.html"
        if report.exists():
            print(f"  lot report ({lot_id}): {report}")
    print(f"  daq report {cfg} --lot {BULK} --pdf {out / (BULK + '.pdf')}")
    print(f"  daq lot status {cfg} --sku {SKU}")
    print(f"  daq chamber status {cfg}")
    print(f"  daq tail --journal {journal}    daq export --journal {journal} --format lp")
    print("  Grafana: dashboards/docker-compose.yml, then daq demo --influx URL (README)")
