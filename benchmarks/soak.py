"""Soak: many simulated chamber controllers polled by one daemon for minutes.

One ``daq run`` (a subprocess, with a generated bench config) polls ``--instruments``
simulated Watlow F4T controllers at ``--hz`` for ``--minutes``. The simulators run in
``--sim-procs`` other processes, each hosting many controllers on 127.0.0.1, one TCP port per
controller (as a lab's controllers each have their own address).

Two simulator kinds (``--sim``):

  pymodbus  the project's :class:`simulators.watlow_f4t.ChamberSimulator` (pymodbus server,
            thermal model): the most faithful, but each Modbus transaction costs the simulator
            more CPU than it costs the daemon, so on a small machine it competes with the daemon.
  lite      a minimal Modbus TCP responder (function 3 only, MBAP framing per the Modbus
            Messaging on TCP/IP Implementation Guide v1.0b §3.1) serving register images taken
            from a real ChamberSimulator at start (ten snapshots, one served per second, so values
            move and stuck detection stays quiet). Same wire protocol and same driver reads; far
            cheaper to serve.

Measured, over the window after ``--warmup`` seconds (start-up and connections excluded):

- missed polls: the runtime's own count (``missed_polls`` of each instrument in the status file
  the daemon writes beside its journal, daq/status.py), end minus start of the window;
- schedule jitter: the runtime does not record each poll's scheduled time, so it is derived from
  the journal: each poll's sample timestamp (``time.time_ns()`` taken by the driver right after
  the registers came back, drivers/modbus_controller.py ``poll``) placed on its instrument's ideal
  ``1/hz`` grid. The grid's phase is estimated per instrument and per 10 s window as the start of
  the cluster of phases (the earliest poll of the window is "on time"); lateness is each poll's
  distance after it. It therefore includes the Modbus round trip, not only the wake-up delay;
- daemon CPU: utime+stime of the daemon process (all its threads) from /proc/PID/stat over the
  window, as % of one core;
- RSS: VmRSS from /proc/PID/status at the start and at the end of the window, and the growth;
- load average (/proc/loadavg) sampled through the run, since the machine may be shared.

Run: .venv/bin/python -m benchmarks.soak --instruments 200 --hz 10 --minutes 10
     .venv/bin/python -m benchmarks.soak --instruments 20 --hz 10 --minutes 0.5   (quick)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import os
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DaemonSample",
    "Percentiles",
    "grid_lateness",
    "percentiles",
    "read_proc",
    "simulator_hosts",
]

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 60.0
_WINDOW_S = 10.0
_TICKS = os.sysconf("SC_CLK_TCK")


# --- pure figures ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Percentiles:
    n: int
    p50: float
    p99: float
    max: float


def percentiles(values: Sequence[float]) -> Percentiles:
    """p50/p99/max by nearest rank (0 for no values)."""
    if not values:
        return Percentiles(0, 0.0, 0.0, 0.0)
    s = sorted(values)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, int(q * len(s) + 0.5) - 1))]

    return Percentiles(len(s), rank(0.50), rank(0.99), s[-1])


def grid_lateness(times_ns: Sequence[int], period_ns: int) -> list[float]:
    """Each timestamp's lateness (s) on an ideal ``period_ns`` grid whose phase is unknown.

    The phases (time mod period) of punctual polls cluster; the grid's phase is taken as the
    start of that cluster: the phase right after the largest empty arc of the circle. A
    timestamp's lateness is its phase's distance after it, in [0, period).
    """
    if not times_ns:
        return []
    phases = sorted(t % period_ns for t in times_ns)
    gaps = [b - a for a, b in itertools.pairwise(phases)]
    gaps.append(phases[0] + period_ns - phases[-1])
    widest = max(range(len(gaps)), key=gaps.__getitem__)
    ref = phases[(widest + 1) % len(phases)]
    return [((t % period_ns) - ref) % period_ns / 1e9 for t in times_ns]


def windowed_lateness(times_ns: Sequence[int], period_ns: int, window_ns: int) -> list[float]:
    """:func:`grid_lateness` per window of ``window_ns`` (a grid phase per window, so a slow
    drift between the wall clock of the timestamps and the daemon's monotonic clock does not
    show up as lateness)."""
    out: list[float] = []
    if not times_ns:
        return out
    ordered = sorted(times_ns)
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] - ordered[start] >= window_ns:
            out.extend(grid_lateness(ordered[start:i], period_ns))
            start = i
    return out


# --- the daemon process ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaemonSample:
    """CPU seconds (user+system, every thread) and resident memory of a process, at a time."""

    at: float
    cpu_s: float
    rss_kib: int


def read_proc(pid: int) -> DaemonSample:
    """The process's CPU time (/proc/PID/stat fields 14-15) and VmRSS (/proc/PID/status)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return DaemonSample(time.monotonic(), cpu, rss)


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def read_status(journal: Path) -> dict[str, object] | None:
    """The daemon's status file (daq/status.py writes it beside the journal), or None yet."""
    path = journal.with_name(journal.name + ".status.json")
    try:
        data: dict[str, object] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def uncommitted(status: dict[str, object]) -> int:
    """Measurements taken but not yet committed to the journal (held in the daemon's memory):
    the instruments' measurements minus the points the journal accepted (which also count
    health points and events, so this is a lower bound)."""
    journal = status.get("journal")
    assert isinstance(journal, dict)
    return instrument_totals(status, "measurements") - int(journal.get("accepted", 0))


def instrument_totals(status: dict[str, object], key: str) -> int:
    instruments = status.get("instruments")
    assert isinstance(instruments, dict)
    return sum(int(v.get(key, 0)) for v in instruments.values())


def bench_toml(
    bench: str,
    journal: Path,
    addresses: Sequence[str],
    interval: float,
    *,
    health_interval: float,
    synchronous: str,
    influx: dict[str, str] | None = None,
    timeout: float = 1.0,
) -> str:
    """A bench config (TOML text) for ``daq run`` with one F4T per address."""
    lines = [
        "schema = 1",
        "[bench]",
        f'id = "{bench}"',
        f"health_interval = {health_interval}",
        "reconnect_max = 2.0",
        "[journal]",
        f'path = "{journal}"',
        f'synchronous = "{synchronous}"',
        "[lot]",
        'sku = "VRM-RING-001"',
        'po = "PO-SOAK"',
        f'lot = "L-{bench}"',
        'phase = "bulk"',
    ]
    if influx is not None:
        lines.append("[influx]")
        lines.extend(f'{k} = "{v}"' for k, v in influx.items())
        lines.append("flush_interval = 0.5")
    for i, address in enumerate(addresses):
        lines += [
            "[[instrument]]",
            f'name = "chamber-{i:03d}"',
            'driver = "watlow_f4t"',
            f'address = "{address}"',
            f"poll_interval = {interval}",
            f"timeout = {timeout}",
            "[instrument.limits.temperature]",
            "low = 33.0",
            "high = 37.0",
            "guard = 0.3",
        ]
    return "\n".join(lines) + "\n"


@contextmanager
def daemon(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``daq run CONFIG`` as its own process; SIGTERM (then SIGKILL) when the block ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daq", "run", str(config)], stdout=out, stderr=out
        )
        try:
            yield proc
        finally:
            stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], *, signalled: bool = False) -> int:
    """SIGTERM (unless ``signalled`` already), a bounded wait, SIGKILL if it did not exit; the
    exit code. One SIGTERM only: a second one while the daemon drains would interrupt it."""
    if proc.poll() is None:
        if not signalled:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=_STOP_TIMEOUT_S)


# --- simulator hosts --------------------------------------------------------------------------


@contextmanager
def simulator_hosts(
    count: int, procs: int, kind: str, seed: int = 0, stagger: float = 0.0
) -> Iterator[list[str]]:
    """``count`` simulated F4T controllers spread over ``procs`` processes; their addresses.

    ``stagger`` (lite only): the first reply on each connection is delayed by the controller's
    share of ``stagger`` seconds, so their connections (and the runtime's schedules, which start
    at connect) are spread evenly instead of all starting at the same instant."""
    per = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    with ExitStack() as stack:
        started: list[subprocess.Popen[str]] = []
        for i, n in enumerate(per):
            if n == 0:
                continue
            cmd = [sys.executable, "-m", "benchmarks.soak", "--serve", str(n), "--sim", kind]
            cmd += ["--seed", str(seed + 1000 * i), "--stagger", str(stagger)]
            cmd += ["--host-index", str(i), "--hosts", str(procs)]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            stack.callback(_stop_host, proc)
            started.append(proc)
        addresses: list[str] = []
        for proc in started:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], _START_TIMEOUT_S)
            line = proc.stdout.readline() if ready else ""
            if not line:
                raise RuntimeError(f"a simulator host did not start within {_START_TIMEOUT_S} s")
            addresses.extend(json.loads(line))
        yield addresses


def _stop_host(proc: subprocess.Popen[str]) -> None:
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_TIMEOUT_S)
                return
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(timeout=_STOP_TIMEOUT_S)
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


class _LiteModbus(asyncio.Protocol):
    """Answers Modbus TCP read-holding-registers (function 3) from a register image.

    Frame (Modbus Messaging on TCP/IP Implementation Guide v1.0b §3.1.3): MBAP header of
    transaction id (2), protocol id 0 (2), length (2), unit id (1); then the PDU. Function 3
    request PDU: address (2), count (2); reply: byte count (1) and the registers, big-endian
    (Modbus Application Protocol v1.1b3 §6.3). An address outside the image answers exception
    2 (illegal data address).
    """

    def __init__(self, images: Sequence[dict[int, int]], first_delay: float = 0.0) -> None:
        self._images = images
        self._first_delay = first_delay
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= 7:
            tid, pid, length, unit = struct.unpack(">HHHB", self._buf[:7])
            end = 6 + length
            if len(self._buf) < end:
                return
            pdu, self._buf = self._buf[7:end], self._buf[end:]
            assert self._transport is not None
            reply = self._reply(tid, pid, unit, pdu)
            if self._first_delay > 0:  # only the very first reply of the connection
                loop = asyncio.get_running_loop()
                loop.call_later(self._first_delay, self._transport.write, reply)
                self._first_delay = 0.0
            else:
                self._transport.write(reply)

    def _reply(self, tid: int, pid: int, unit: int, pdu: bytes) -> bytes:
        image = self._images[int(time.time()) % len(self._images)]
        if len(pdu) != 5 or pdu[0] != 3:
            fc = pdu[0] if pdu else 0
            return struct.pack(">HHHBBB", tid, pid, 3, unit, (fc | 0x80) & 0xFF, 1)
        start, count = struct.unpack(">HH", pdu[1:5])
        try:
            regs = [image[a] for a in range(start, start + count)]
        except KeyError:
            return struct.pack(">HHHBBB", tid, pid, 3, unit, 0x83, 2)
        body = struct.pack(f">BB{count}H", 3, 2 * count, *regs)
        return struct.pack(">HHHB", tid, pid, len(body) + 1, unit) + body


def _snapshot_images(seed: int, snapshots: int) -> list[dict[int, int]]:
    """Register images of a real ChamberSimulator, read the way the driver reads it."""
    from pymodbus.client import ModbusTcpClient

    from daq.instrument import InstrumentSettings
    from drivers.modbus_controller import ModbusControllerOptions, build
    from simulators.watlow_f4t import running_chamber

    with running_chamber(seed=seed) as sim:
        driver = build(
            InstrumentSettings("probe", sim.address, 1.0), ModbusControllerOptions(), "watlow_f4t"
        )
        plan = driver._plan  # the very reads the driver makes
        client = ModbusTcpClient(sim.host, port=sim.port, timeout=2, retries=0)
        if not client.connect():  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped
            raise RuntimeError("cannot reach the simulator to take its register image")
        images: list[dict[int, int]] = []
        tick = threading.Event()
        try:
            for _ in range(snapshots):
                image: dict[int, int] = {}
                for start, count in plan:
                    reply = client.read_holding_registers(start, count=count, device_id=1)
                    if reply.isError():
                        raise RuntimeError(f"simulator refused a read at {start}: {reply}")
                    image.update(zip(range(start, start + count), reply.registers, strict=True))
                images.append(image)
                tick.wait(0.35)
        finally:
            client.close()  # type: ignore[no-untyped-call]
    return images


async def _host(
    count: int, kind: str, seed: int, stagger: float = 0.0, index: int = 0, hosts: int = 1
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    addresses: list[str] = []
    if kind == "pymodbus":
        from simulators.watlow_f4t import ChamberSimulator

        sims = [ChamberSimulator(seed=seed + i) for i in range(count)]
        try:
            for sim in sims:
                await sim.start()
                addresses.append(sim.address)
            print(json.dumps(addresses), flush=True)
            await stop.wait()
        finally:
            for sim in sims:
                await sim.stop()
        return
    images = await asyncio.to_thread(_snapshot_images, seed, 10)
    servers: list[asyncio.Server] = []
    try:
        for i in range(count):
            delay = stagger * (i * hosts + index) / (count * hosts)
            server = await loop.create_server(
                functools.partial(_LiteModbus, images, delay), "127.0.0.1", 0
            )
            servers.append(server)
            addresses.append(f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        print(json.dumps(addresses), flush=True)
        await stop.wait()
    finally:
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()


# --- the soak ---------------------------------------------------------------------------------


def journal_poll_times(journal: Path, since_ns: int, until_ns: int) -> dict[str, list[int]]:
    """Per instrument, the distinct sample timestamps (one per poll) of its chamber rows."""
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT DISTINCT json_extract(tags, '$.instrument'), time_ns FROM points"
            " WHERE measurement = 'chamber' AND time_ns >= ? AND time_ns < ?",
            (since_ns, until_ns),
        ).fetchall()
    finally:
        db.close()
    out: dict[str, list[int]] = {}
    for name, t in rows:
        out.setdefault(str(name), []).append(int(t))
    return out


def journal_rows(journal: Path) -> int:
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM points").fetchone()[0])
    finally:
        db.close()


def _wait_status(journal: Path, proc: subprocess.Popen[bytes], limit_s: float) -> None:
    tick = threading.Event()
    deadline = time.monotonic() + limit_s
    while read_status(journal) is None:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode} before its first status")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no status file from the daemon within {limit_s} s")
        tick.wait(0.2)


def soak(args: argparse.Namespace) -> int:
    interval = 1.0 / args.hz
    seconds = args.minutes * 60.0
    with (
        tempfile.TemporaryDirectory(prefix="hallmark-soak-") as tmp,
        simulator_hosts(
            args.instruments, args.sim_procs, args.sim, args.seed, args.stagger
        ) as addresses,
    ):
        base = Path(tmp)
        journal = base / "soak.db"
        config = base / "soak.toml"
        config.write_text(
            bench_toml(
                "soak",
                journal,
                addresses,
                interval,
                health_interval=args.health_interval,
                synchronous=args.synchronous,
            )
        )
        print(
            f"{len(addresses)} simulated F4T ({args.sim}, {args.sim_procs} process(es)), "
            f"poll every {interval * 1000:.0f} ms, {seconds:.0f} s after {args.warmup:.0f} s"
            f" warm-up, journal synchronous={args.synchronous}",
            flush=True,
        )
        loads: list[float] = []
        rss: list[int] = []  # VmRSS every 10 s through the window
        backlog: list[int] = []  # measurements not yet committed, every 10 s
        tick = threading.Event()
        with daemon(config, base / "daemon.log") as proc:
            _wait_status(journal, proc, _START_TIMEOUT_S)
            tick.wait(args.warmup)
            status0 = read_status(journal)
            s0 = read_proc(proc.pid)
            t0_ns = time.time_ns()
            end = time.monotonic() + seconds
            while time.monotonic() < end and proc.poll() is None:
                loads.append(loadavg())
                rss.append(read_proc(proc.pid).rss_kib)
                now_status = read_status(journal)
                if now_status is not None:
                    backlog.append(uncommitted(now_status))
                tick.wait(min(10.0, max(0.0, end - time.monotonic())))
            s1 = read_proc(proc.pid)
            t1_ns = time.time_ns()
            # one more health tick so the status file covers the window's end
            tick.wait(args.health_interval + 0.5)
            status1 = read_status(journal)
            code = stop_process(proc)
        log_tail = (base / "daemon.log").read_text(errors="replace").splitlines()[-8:]
        assert status0 is not None and status1 is not None
        times = journal_poll_times(journal, t0_ns, t1_ns)
        files = [journal, journal.with_name("soak.db-wal"), journal.with_name("soak.db-shm")]
        size = sum(p.stat().st_size for p in files if p.exists())
        rows = journal_rows(journal)
    window = (t1_ns - t0_ns) / 1e9
    period = round(interval * 1e9)
    late: list[float] = []
    for ts in times.values():
        late.extend(windowed_lateness(ts, period, round(_WINDOW_S * 1e9)))
    jit = percentiles(late)
    polls = sum(len(ts) for ts in times.values())
    expected = args.instruments * window * args.hz
    missed = instrument_totals(status1, "missed_polls") - instrument_totals(status0, "missed_polls")
    errors = instrument_totals(status1, "errors") - instrument_totals(status0, "errors")
    cpu = 100.0 * (s1.cpu_s - s0.cpu_s) / (s1.at - s0.at)
    growth = 100.0 * (s1.rss_kib - s0.rss_kib) / s0.rss_kib
    instruments = status1.get("instruments")
    assert isinstance(instruments, dict)
    lat = [float(v["mean_latency_ms"]) for v in instruments.values()]
    print(f"window                {window:.0f} s, daemon exit code {code}")
    print(f"polls in journal      {polls} of {expected:.0f} scheduled ({polls / window:.0f}/s)")
    print(f"missed polls          {missed} (runtime count), errors {errors}")
    print(
        f"lateness on the grid  p50 {jit.p50 * 1e3:.2f} ms  p99 {jit.p99 * 1e3:.2f} ms"
        f"  max {jit.max * 1e3:.2f} ms  (n={jit.n})"
    )
    print(f"mean poll latency     {sum(lat) / max(1, len(lat)):.2f} ms (runtime, whole run)")
    print(f"daemon CPU            {cpu:.1f} % of one core")
    print(
        f"daemon RSS            {s0.rss_kib / 1024:.1f} MiB -> {s1.rss_kib / 1024:.1f} MiB"
        f" ({growth:+.2f} %)"
    )
    quarters = [rss[min(len(rss) - 1, q * len(rss) // 4)] for q in range(4)] if rss else []
    trail = " -> ".join(f"{k / 1024:.1f}" for k in [*quarters, s1.rss_kib])
    print(f"RSS by quarter (MiB)  {trail}")
    if backlog:
        held = [backlog[min(len(backlog) - 1, q * len(backlog) // 4)] for q in range(4)]
        print(
            "not yet committed     "
            + " -> ".join(str(max(0, n)) for n in [*held, backlog[-1]])
            + " measurements held in memory (by quarter; status file)"
        )
    print(
        f"load average          min {min(loads, default=0):.2f} max {max(loads, default=0):.2f}"
        f" on {os.cpu_count()} CPU(s)"
    )
    print(f"journal               {rows} rows, {size / max(1, rows):.0f} bytes/row on disk")
    targets = {
        "no missed polls": missed == 0,
        "p99 lateness < 10 ms": jit.p99 < 0.010,
        "CPU < 30 % of one core": cpu < 30.0,
        "RSS growth < 5 %": growth < 5.0,
    }
    for name, ok in targets.items():
        print(f"  {'met' if ok else 'NOT met'}: {name}")
    print("daemon log tail:")
    for line in log_tail:
        print("  " + line)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instruments", type=int, default=200)
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    ap.add_argument("--sim", choices=("pymodbus", "lite"), default="lite")
    ap.add_argument("--sim-procs", type=int, default=2)
    ap.add_argument("--synchronous", choices=("full", "normal"), default="full")
    ap.add_argument("--health-interval", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="lite only: spread the controllers' first replies over this many seconds, as a"
        " runtime that spreads its instruments' poll phases would",
    )
    ap.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--host-index", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--hosts", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(
            _host(args.serve, args.sim, args.seed, args.stagger, args.host_index, args.hosts)
        )
        return 0
    return soak(args)


if __name__ == "__main__":
    raise SystemExit(main())
