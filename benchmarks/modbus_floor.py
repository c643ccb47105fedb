"""CPU floor of polling many Modbus TCP instruments from one Python process.

``--instruments`` lite simulated Watlow F4T controllers (benchmarks/soak.py ``simulator_hosts``:
a minimal Modbus TCP responder serving register images of the real simulator, one TCP port per
controller on 127.0.0.1, hosted in ``--sim-procs`` other processes) are polled at ``--hz`` with
the F4T driver's own poll plan (drivers/modbus_controller.py ``build(..., "watlow_f4t")._plan``:
the register blocks one poll reads), unit id 1, reply timeout 1 s. Instrument i's polls are due
at ``t0 + i/N·T + k·T`` (T = 1/hz, schedules spread evenly over the interval); a poll that
starts after its next slot skips the slots it missed (they count as not done).

Each transport runs alone in a fresh subprocess of this module, so its CPU is its own:

  threads  one thread per instrument, pymodbus sync ``ModbusTcpClient`` (retries=0), the reads
           of a poll one after the other: the daemon's transport today
  asyncio  pymodbus ``AsyncModbusTcpClient``, one task per instrument on one event loop, the
           reads of a poll one after the other
  floor    the measuring stick, not production code: one asyncio loop, an ``asyncio.Protocol``
           per connection with hand-written MBAP framing (struct; Modbus Messaging on TCP/IP
           Implementation Guide v1.0b §3.1.3), the poll's requests written in one
           ``transport.write``, replies matched by transaction id and counted in
           ``data_received``, polls fired by ``loop.call_at``, one deadline per poll. No
           decoding beyond the registers, no reconnection, no error detail: about the least a
           Python transport can do for the same reads, to show what no Python transport gets
           under

Measured in the subprocess over ``--seconds`` after ``--warmup`` seconds (connections and
start-up excluded): polls done (ideal slot inside the window) against polls due; the process's
CPU (getrusage RUSAGE_SELF, user+sys, all threads) as % of one core, and per register read and
per poll; lateness of each poll's start after its ideal slot (p50/p99/max; the Modbus round trip
is not included); failed reads (timeouts, exception replies, lost connections); the simulator
hosts' CPU over the same window and the 1-minute load average, since the machine may be shared
(the simulators run on the same cores). On loopback the client's sys time includes kernel TCP
work a NIC would partly take elsewhere. Figures are printed, not asserted.

Run: .venv/bin/python -m benchmarks.modbus_floor [--instruments 200] [--hz 10] [--seconds 20]
     .venv/bin/python -m benchmarks.modbus_floor --instruments 20 --seconds 5 --warmup 2  (quick)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.soak import loadavg, percentiles, read_proc, simulator_hosts

VARIANTS = ("threads", "asyncio", "floor")
#: The budget the claim is about, % of one core.
BUDGET_PCT = 30.0
#: The documented load: 200 F4T at 10 Hz.
TARGET_INSTRUMENTS, TARGET_HZ = 200, 10.0
UNIT = 1
#: Seconds between the last connection and the first poll slot.
_LEAD_S = 1.0
#: Seconds granted to in-flight polls after the last slot before the variant gives up on them.
_DRAIN_S = 5.0
_ROOT = Path(__file__).resolve().parent.parent

now = time.monotonic
#: One finished poll: (ideal slot, start minus ideal slot in s, reads ok, reads failed).
Record = tuple[float, float, int, int]


# --- the child: one variant ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    endpoints: list[tuple[str, int]]
    plan: list[tuple[int, int]]
    hz: float
    seconds: float
    warmup: float
    timeout: float
    sim_pids: list[int]

    @property
    def period(self) -> float:
        return 1.0 / self.hz


@dataclass(slots=True)
class Window:
    """The schedule's origin and the measurement window, with what was read at its edges."""

    t0: float = 0.0
    end: float = 0.0
    m0: float = 0.0
    m1: float = 0.0
    user: float = 0.0
    sys: float = 0.0
    sims_cpu: float = 0.0
    load0: float = 0.0
    load1: float = 0.0

    def start(self, job: Job) -> None:
        self.t0 = now() + _LEAD_S
        self.end = self.t0 + job.warmup + job.seconds + 0.05

    def open(self, job: Job) -> tuple[resource.struct_rusage, float]:
        self.load0 = loadavg()
        self.m0 = now()
        return resource.getrusage(resource.RUSAGE_SELF), _sims_cpu(job)

    def close(self, job: Job, at_open: tuple[resource.struct_rusage, float]) -> None:
        r1, s1 = resource.getrusage(resource.RUSAGE_SELF), _sims_cpu(job)
        self.m1 = now()
        r0, s0 = at_open
        self.user, self.sys = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
        self.sims_cpu = s1 - s0
        self.load1 = loadavg()


def _sims_cpu(job: Job) -> float:
    total = 0.0
    for pid in job.sim_pids:
        with contextlib.suppress(OSError):  # a host that has gone
            total += read_proc(pid).cpu_s
    return total


def next_slot(n: int, phase: float, t0: float, period: float) -> int:
    """The next slot after ``n`` whose ideal time has not passed yet (missed slots skipped)."""
    return max(n + 1, math.ceil((now() - t0 - phase) / period))


def run_threads(job: Job, records: list[list[Record]]) -> Window:
    from pymodbus.client import ModbusTcpClient

    clients: list[Any] = []
    for host, port in job.endpoints:
        client: Any = ModbusTcpClient(host, port=port, timeout=job.timeout, retries=0)
        if not client.connect():
            raise RuntimeError(f"cannot connect to {host}:{port}")
        clients.append(client)
    win = Window()
    win.start(job)
    period, count = job.period, len(clients)

    def worker(i: int) -> None:
        client, out = clients[i], records[i]
        phase = i / count * period
        n = 0
        while (ideal := win.t0 + phase + n * period) < win.end:
            delay = ideal - now()
            if delay > 0:
                time.sleep(delay)
            start = now()
            ok = err = 0
            for address, size in job.plan:
                try:
                    reply = client.read_holding_registers(address, count=size, device_id=UNIT)
                except Exception:
                    err += 1
                    continue
                if reply.isError():
                    err += 1
                else:
                    ok += 1
            out.append((ideal, start - ideal, ok, err))
            n = next_slot(n, phase, win.t0, period)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    tick = threading.Event()
    tick.wait(max(0.0, win.t0 + job.warmup - now()))
    at_open = win.open(job)
    tick.wait(job.seconds)
    win.close(job, at_open)
    deadline = win.end + _DRAIN_S
    for t in threads:
        t.join(timeout=max(0.0, deadline - now()))
    for client in clients:
        client.close()
    return win


async def _measure(job: Job, win: Window) -> None:
    await asyncio.sleep(max(0.0, win.t0 + job.warmup - now()))
    at_open = win.open(job)
    await asyncio.sleep(job.seconds)
    win.close(job, at_open)


def run_asyncio(job: Job, records: list[list[Record]]) -> Window:
    from pymodbus.client import AsyncModbusTcpClient

    async def main() -> Window:
        clients: list[Any] = []
        for host, port in job.endpoints:
            client: Any = AsyncModbusTcpClient(host, port=port, timeout=job.timeout, retries=0)
            if not await client.connect():
                raise RuntimeError(f"cannot connect to {host}:{port}")
            clients.append(client)
        win = Window()
        win.start(job)
        period, count = job.period, len(clients)

        async def worker(i: int) -> None:
            client, out = clients[i], records[i]
            phase = i / count * period
            n = 0
            while (ideal := win.t0 + phase + n * period) < win.end:
                delay = ideal - now()
                if delay > 0:
                    await asyncio.sleep(delay)
                start = now()
                ok = err = 0
                for address, size in job.plan:
                    try:
                        reply = await client.read_holding_registers(
                            address, count=size, device_id=UNIT
                        )
                    except Exception:
                        err += 1
                        continue
                    if reply.isError():
                        err += 1
                    else:
                        ok += 1
                out.append((ideal, start - ideal, ok, err))
                n = next_slot(n, phase, win.t0, period)

        tasks = [asyncio.create_task(worker(i)) for i in range(count)]
        await _measure(job, win)
        _, late = await asyncio.wait(tasks, timeout=max(0.0, win.end + _DRAIN_S - now()))
        for task in late:
            task.cancel()
        for client in clients:
            client.close()
        return win

    return asyncio.run(main())


_MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length, unit id
_READ = struct.Struct(">HHHBBHH")  # MBAP + function 3, start address, register count


class _FloorPoller(asyncio.Protocol):
    """One connection of the ``floor`` variant: polls itself on its own schedule.

    The measuring stick, not production code: no reconnection, no decoding beyond unpacking
    the registers, errors only counted.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        job: Job,
        win: Window,
        phase: float,
        out: list[Record],
    ) -> None:
        self.loop, self.win, self.phase, self.out = loop, win, phase, out
        self.plan, self.period, self.timeout = job.plan, job.period, job.timeout
        self.size = len(job.plan)
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.tid = 0  # last transaction id sent
        self.first = 0  # transaction id of the current poll's first request
        self.got = 0  # bit k set: the reply to request k of the current poll came
        self.left = 0  # replies still awaited by the current poll
        self.ok = self.err = 0
        self.n = 0
        self.ideal = self.start = 0.0
        self.deadline: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.left:
            self.err += self.left
            self.left = 0
            self.finish()

    def schedule(self) -> None:
        ideal = self.win.t0 + self.phase + self.n * self.period
        if ideal < self.win.end and not self.closed:
            self.ideal = ideal
            self.loop.call_at(ideal, self.fire)

    def fire(self) -> None:
        self.start = now()
        if self.closed or self.transport is None:
            self.out.append((self.ideal, self.start - self.ideal, 0, self.size))
            return
        tid = self.tid
        self.first = (tid + 1) & 0xFFFF
        frames = []
        for address, size in self.plan:
            tid = (tid + 1) & 0xFFFF
            frames.append(_READ.pack(tid, 0, 6, UNIT, 3, address, size))
        self.tid = tid
        self.got, self.left, self.ok, self.err = 0, self.size, 0, 0
        self.transport.write(b"".join(frames))
        self.deadline = self.loop.call_later(self.timeout, self.expire)

    def expire(self) -> None:
        self.deadline = None
        self.err += self.left
        self.left = 0
        self.finish()

    def finish(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.out.append((self.ideal, self.start - self.ideal, self.ok, self.err))
        self.n = next_slot(self.n, self.phase, self.win.t0, self.period)
        self.schedule()

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos, length = 0, len(buf)
        while length - pos >= 9:
            tid, _, size, _ = _MBAP.unpack_from(buf, pos)
            end = pos + 6 + size
            if end > length:
                break
            k = (tid - self.first) & 0xFFFF
            if self.left and k < self.size and not (self.got >> k) & 1:
                self.got |= 1 << k
                if buf[pos + 7] == 3:
                    struct.unpack_from(f">{buf[pos + 8] // 2}H", buf, pos + 9)
                    self.ok += 1
                else:  # exception reply (function | 0x80)
                    self.err += 1
                self.left -= 1
                if not self.left:
                    self.buf = buf[end:]
                    self.finish()
                    return
            pos = end  # a reply of an expired poll (or unknown): dropped
        self.buf = buf[pos:]


def run_floor(job: Job, records: list[list[Record]]) -> Window:
    async def main() -> Window:
        loop = asyncio.get_running_loop()
        win = Window()
        count = len(job.endpoints)
        pollers: list[_FloorPoller] = []
        for i, (host, port) in enumerate(job.endpoints):
            poller = _FloorPoller(loop, job, win, i / count * job.period, records[i])
            await loop.create_connection(lambda p=poller: p, host, port)  # type: ignore[misc]
            pollers.append(poller)
        win.start(job)
        for poller in pollers:
            poller.schedule()
        await _measure(job, win)
        # let the polls of the window's last slots finish (each has its own deadline)
        await asyncio.sleep(max(0.0, win.end - now()) + job.timeout + 0.2)
        for poller in pollers:
            if poller.transport is not None:
                poller.transport.close()
        return win

    return asyncio.run(main())


RUNNERS: dict[str, Callable[[Job, list[list[Record]]], Window]] = {
    "threads": run_threads,
    "asyncio": run_asyncio,
    "floor": run_floor,
}


def child(variant: str) -> int:
    """Run one variant with the job read from stdin; print its figures as one JSON line."""
    raw = json.loads(sys.stdin.read())
    job = Job(
        endpoints=[(str(h), int(p)) for h, p in raw["endpoints"]],
        plan=[(int(a), int(c)) for a, c in raw["plan"]],
        hz=float(raw["hz"]),
        seconds=float(raw["seconds"]),
        warmup=float(raw["warmup"]),
        timeout=float(raw["timeout"]),
        sim_pids=[int(p) for p in raw["sim_pids"]],
    )
    records: list[list[Record]] = [[] for _ in job.endpoints]
    win = RUNNERS[variant](job, records)
    polls = [r for out in records for r in out if win.m0 <= r[0] < win.m1]
    late = percentiles([r[1] for r in polls])
    result = {
        "variant": variant,
        "instruments": len(job.endpoints),
        "hz": job.hz,
        "reads_per_poll": len(job.plan),
        "window_s": win.m1 - win.m0,
        "polls": len(polls),
        "reads_ok": sum(r[2] for r in polls),
        "reads_err": sum(r[3] for r in polls),
        "late_p50_s": late.p50,
        "late_p99_s": late.p99,
        "late_max_s": late.max,
        **{k: v for k, v in asdict(win).items() if k not in ("t0", "end", "m0", "m1")},
    }
    print(json.dumps(result), flush=True)
    return 0


# --- the parent: simulators, one subprocess per variant, the table -----------------------------


def poll_plan() -> list[tuple[int, int]]:
    """The register blocks the F4T driver reads in one poll (its own plan)."""
    from daq.instrument import InstrumentSettings
    from drivers.modbus_controller import ModbusControllerOptions, build

    settings = InstrumentSettings("probe", "tcp://127.0.0.1:502", 1.0)
    plan: list[tuple[int, int]] = build(settings, ModbusControllerOptions(), "watlow_f4t")._plan
    return [(int(a), int(c)) for a, c in plan]


def child_pids() -> list[int]:
    """This process's children (here: the simulator hosts), or none if /proc does not say."""
    try:
        text = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def endpoint(address: str) -> tuple[str, int]:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


def run_variant(variant: str, job: dict[str, object], limit_s: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.modbus_floor", "--child", variant],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=limit_s,
        cwd=_ROOT,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"variant {variant} exited with {proc.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def report(results: Sequence[dict[str, Any]]) -> None:
    print(
        f"{'variant':<8} {'polls/s done/due':>17} {'reads/s':>8} {'CPU % (usr+sys)':>18}"
        f" {'µs/read':>8} {'µs/poll':>8} {'late p50/p99/max ms':>20} {'err':>5}"
        f" {'sims CPU %':>10} {'load':>10}"
    )
    for r in results:
        win = r["window_s"]
        cpu = r["user"] + r["sys"]
        reads = r["reads_ok"] + r["reads_err"]
        due = r["instruments"] * r["hz"]
        per_read = 1e6 * cpu / reads if reads else math.nan
        per_poll = 1e6 * cpu / r["polls"] if r["polls"] else math.nan
        late = (
            f"{r['late_p50_s'] * 1e3:.2f}/{r['late_p99_s'] * 1e3:.2f}/{r['late_max_s'] * 1e3:.1f}"
        )
        usage = f"{100 * cpu / win:.1f} ({100 * r['user'] / win:.1f}+{100 * r['sys'] / win:.1f})"
        print(
            f"{r['variant']:<8} {r['polls'] / win:8.1f}/{due:<8.1f} {reads / win:8.0f}"
            f" {usage:>18} {per_read:8.1f} {per_poll:8.1f} {late:>20} {r['reads_err']:5d}"
            f" {100 * r['sims_cpu'] / win:10.1f} {r['load0']:4.2f}-{r['load1']:4.2f}"
        )
    target_reads = TARGET_INSTRUMENTS * TARGET_HZ * (results[0]["reads_per_poll"] if results else 0)
    print(
        f"against {BUDGET_PCT:.0f} % of one core (measured; then per-read cost"
        f" x {target_reads:,.0f} reads/s of {TARGET_INSTRUMENTS} F4T at {TARGET_HZ:g} Hz):"
    )
    for r in results:
        win = r["window_s"]
        cpu = r["user"] + r["sys"]
        reads = r["reads_ok"] + r["reads_err"]
        pct = 100 * cpu / win
        due = r["instruments"] * r["hz"]
        kept = "all polls done" if r["polls"] / win >= 0.99 * due else "polls MISSED"
        verdict = "within" if pct <= BUDGET_PCT else "OVER"
        line = (
            f"  {r['variant']:<8} {pct:5.1f} % {verdict} ({pct / BUDGET_PCT:.2f}x budget), {kept}"
        )
        if reads:
            projected = 100 * cpu / reads * target_reads
            line += f"; x {target_reads:,.0f} reads/s = {projected:.0f} % of one core"
        print(line)
    if results and results[0]["instruments"] * results[0]["hz"] != TARGET_INSTRUMENTS * TARGET_HZ:
        print(
            "  (a linear projection from another load, off either way: more replies per wake-up"
            " lower the per-read cost at higher rates, saturation raises it; only a run at"
            f" {TARGET_INSTRUMENTS} x {TARGET_HZ:g} Hz backs the claim)"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instruments", type=int, default=200)
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    ap.add_argument("--sim-procs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1.0, help="reply timeout, s")
    ap.add_argument("--variant", action="append", choices=VARIANTS)
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    variants = args.variant or list(VARIANTS)
    plan = poll_plan()
    limit_s = _LEAD_S + args.warmup + args.seconds + _DRAIN_S + 60.0  # + start-up, connections
    results = []
    with simulator_hosts(args.instruments, args.sim_procs, "lite") as addresses:
        job = {
            "endpoints": [endpoint(a) for a in addresses],
            "plan": plan,
            "hz": args.hz,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "timeout": args.timeout,
            "sim_pids": child_pids(),
        }
        print(
            f"{len(addresses)} lite F4T simulators ({args.sim_procs} process(es)) at {args.hz:g} Hz"
            f", {len(plan)} reads a poll {plan}, {args.seconds:g} s after {args.warmup:g} s"
            f" warm-up, each variant alone in its own process, {os.cpu_count()} CPU(s)",
            flush=True,
        )
        for variant in variants:
            results.append(run_variant(variant, job, limit_s))
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
