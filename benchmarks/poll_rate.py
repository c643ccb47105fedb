"""Polling overhead per driver family: Hallmark against the bare library, same simulator, same run.

Every simulator runs as its own process (``daq simulate ...``), so its thread does not share
this process's GIL. For each family, loops read the same simulator for the same wall time each,
one after the other (ABCABC), ``--rounds`` times, and the best of each is kept:

  bare      the library alone, asking exactly what the driver asks in one poll
  driver    Hallmark's driver: ``poll()`` (framing, decoding, plausibility, Samples)
  daemon    the whole daemon (runtime → normalize → judge → journal with ``synchronous =
            full``) polling the one instrument as fast as it can (``poll_interval`` 1 µs)

Families:

  modbus-tcp  Watlow F4T simulator (``daq simulate chamber``); bare pymodbus ``ModbusTcpClient``
              vs drivers/modbus_controller.py (driver ``watlow_f4t``)
  modbus-rtu  EZ-ZONE PM on a socat pty pair (``daq simulate rtu-line``); bare pymodbus
              ``ModbusSerialClient`` vs the driver through the shared line scheduler
              (drivers/transport/rtu_line.py; driver ``watlow_ezzone_pm``)
  serial      Mark-10 gauge on a pty answering ``?C`` at once (``daq simulate mark10 --pty``);
              bare pyserial ``write`` + ``readline`` vs drivers/mark10.py ``poll()``
  visa        F4T SCPI server over TCP (``daq simulate f4t-scpi``); bare pyvisa ``@py``
              ``TCPIP::…::SOCKET`` queries vs drivers/f4t_scpi.py

Figures are polls per second (one poll = every value the driver reads) and the ratio to bare.
Run: .venv/bin/python -m benchmarks.poll_rate [--seconds 3] [--rounds 2] [--family modbus-tcp]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvisa
import serial
from pymodbus.client import ModbusSerialClient, ModbusTcpClient

from benchmarks._sim import chamber_process, simulator_process
from benchmarks.gauge_stream import mark10_process
from daq.app import build_runtime
from daq.config import parse_config
from daq.instrument import Driver
from daq.journal import Journal
from drivers.f4t_scpi import pv_command, sp_command
from drivers.registry import build_driver, check_instrument

#: ``synchronous`` of the daemon's journal: ``full`` as shipped (fsync at every commit).
SYNC = "full"


@dataclass(frozen=True)
class Target:
    """One instrument on a running simulator, as a bench config would name it."""

    driver: str
    address: str
    options: dict[str, Any]
    measurement: str
    limits: dict[str, dict[str, float]]

    def instrument(self, name: str, interval: float) -> dict[str, Any]:
        return {
            "name": name,
            "driver": self.driver,
            "address": self.address,
            "poll_interval": interval,
            "timeout": 1.0,
            "options": self.options,
            "limits": self.limits,
        }


def config(target: Target, journal: Path, interval: float = 1e-6) -> Any:
    raw = {
        "schema": 1,
        "bench": {"id": "bench", "health_interval": 3600.0},
        "journal": {"path": str(journal), "synchronous": SYNC},
        "instrument": [target.instrument("i1", interval)],
    }
    return parse_config(raw, "bench", check_instrument)


def build(target: Target) -> Driver:
    with tempfile.TemporaryDirectory() as tmp:
        return build_driver(config(target, Path(tmp) / "j.db").instrument[0])


#: (polls per wall-clock second, CPU seconds of this process per poll)
Rate = tuple[float, float]


def timed(step: Callable[[], object], seconds: float) -> Rate:
    """Calls of ``step`` per second over ``seconds``, and this process's CPU time per call."""
    n = 0
    cpu = time.process_time()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        step()
        n += 1
    return n / seconds, (time.process_time() - cpu) / max(n, 1)


def driver_loop(target: Target, seconds: float) -> Rate:
    d = build(target)
    d.connect()
    try:
        return timed(d.poll, seconds)
    finally:
        d.close()


def daemon(target: Target, seconds: float) -> Rate:
    """Polls/s of the whole daemon; checks that every measurement it counted was journaled."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.db"
        cfg = config(target, path)
        with Journal(path) as journal:
            runtime = build_runtime(cfg, Path(tmp), journal)
            gc.freeze()  # as daq/app.py does before running a runtime
            cpu = time.process_time()
            try:
                asyncio.run(runtime.run(seconds))
            finally:
                cpu = time.process_time() - cpu
                gc.unfreeze()
            health = runtime.health["i1"]
            assert health.measurements > 0, health.last_error
            assert journal.count(target.measurement) == health.measurements
    return health.polls / seconds, cpu / max(health.polls, 1)


# -- the families ------------------------------------------------------------------------------

Loop = Callable[[float], Rate]
Loops = dict[str, Loop]


def plan_of(target: Target) -> list[tuple[int, int]]:
    """The register blocks the Modbus driver reads in one poll (its own plan)."""
    plan: list[tuple[int, int]] = build(target)._plan  # type: ignore[attr-defined]
    return plan


def bare_modbus(make_client: Callable[[], Any], plan: list[tuple[int, int]]) -> Loop:
    """The bare pymodbus loop: a fresh client from ``make_client`` reading ``plan`` each poll."""

    def bare(seconds: float) -> Rate:
        client = make_client()
        assert client.connect()

        def poll() -> None:
            for start, count in plan:
                reply = client.read_holding_registers(start, count=count, device_id=1)
                assert not reply.isError()

        try:
            return timed(poll, seconds)
        finally:
            client.close()

    return bare


@contextmanager
def modbus_tcp() -> Iterator[tuple[str, Loops]]:
    with chamber_process() as sim:
        host, port = str(sim["host"]), int(str(sim["port"]))
        target = Target("watlow_f4t", str(sim["address"]), {}, "chamber",
                        {"temperature": {"low": 33.0, "high": 37.0}})  # fmt: skip
        plan = plan_of(target)
        bare = bare_modbus(lambda: ModbusTcpClient(host, port=port, timeout=1, retries=0), plan)
        yield f"{len(plan)} register reads a poll", _loops(bare, target)


@contextmanager
def modbus_rtu() -> Iterator[tuple[str, Loops]]:
    with simulator_process("rtu-line") as sim:
        path, baud = str(sim["path"]), int(str(sim["baudrate"]))
        target = Target("watlow_ezzone_pm", str(sim["address"]), {"device_id": 1}, "chamber",
                        {"temperature": {"low": 33.0, "high": 37.0}})  # fmt: skip
        plan = plan_of(target)
        bare = bare_modbus(
            lambda: ModbusSerialClient(path, baudrate=baud, timeout=1, retries=0), plan
        )
        yield f"{len(plan)} register reads a poll, pty", _loops(bare, target)


@contextmanager
def serial_gauge() -> Iterator[tuple[str, Loops]]:
    with mark10_process("reply_latency_s = 0.0\nlatency_jitter_s = 0.0") as path:
        target = Target("mark10", path, {}, "force", {})

        def bare(seconds: float) -> Rate:
            with serial.Serial(path, 115200, timeout=1.0) as port:

                def poll() -> None:
                    port.write(b"?C\r\n")
                    assert port.readline().endswith(b" N\r\n")

                return timed(poll, seconds)

        yield "?C round trip a poll, pty", _loops(bare, target)


@contextmanager
def visa() -> Iterator[tuple[str, Loops]]:
    with simulator_process("f4t-scpi", "--port", "0") as sim:
        address = str(sim["address"])
        target = Target("f4t_scpi", address, {}, "chamber",
                        {"temperature": {"low": 33.0, "high": 37.0}})  # fmt: skip
        # What drivers/f4t_scpi.py asks in one poll with its default loops.
        queries = [":UNIT:TEMPERATURE?", pv_command(1), sp_command(1)]

        def bare(seconds: float) -> Rate:
            rm = pyvisa.ResourceManager("@py")
            res: Any = rm.open_resource(
                address, timeout=1000, read_termination="\n", write_termination="\n"
            )

            def poll() -> None:
                for q in queries:
                    res.query(q)

            try:
                return timed(poll, seconds)
            finally:
                res.close()
                rm.close()

        yield f"{len(queries)} queries a poll, TCP socket", _loops(bare, target)


def _loops(bare: Callable[[float], Rate], target: Target) -> Loops:
    return {
        "bare": bare,
        "driver": lambda s: driver_loop(target, s),
        "daemon": lambda s: daemon(target, s),
    }


FAMILIES = {"modbus-tcp": modbus_tcp, "modbus-rtu": modbus_rtu, "serial": serial_gauge,
            "visa": visa}  # fmt: skip


def measure(family: str, seconds: float, rounds: int) -> tuple[str, dict[str, list[Rate]]]:
    with FAMILIES[family]() as (what, loops):
        for loop in loops.values():  # warm-up: imports, first connections, caches
            loop(min(seconds, 0.5))
        results: dict[str, list[Rate]] = {name: [] for name in loops}
        for _ in range(rounds):
            for name, loop in loops.items():
                results[name].append(loop(seconds))
    return what, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--family", action="append", choices=list(FAMILIES))
    args = ap.parse_args()
    rows = []
    for family in args.family or list(FAMILIES):
        what, results = measure(family, args.seconds, args.rounds)
        rows.append((family, what, results))
    print(
        f"{args.seconds:g} s a loop, bare/driver/daemon interleaved x {args.rounds}, best of each;"
        " polls/s (ratio to bare); CPU of this process per poll, µs"
    )
    print(
        f"{'family':<11} {'bare':>6} {'driver':>13} {'daemon':>13}   {'CPU µs/poll b/dr/dm':>20}"
        "  runs bare / driver / daemon"
    )
    for family, what, results in rows:
        best = {k: max(v) for k, v in results.items()}
        b = best["bare"][0]
        cells = [f"{best[k][0]:6.0f} ({best[k][0] / b:4.2f})" for k in ("driver", "daemon")]
        cpu = "/".join(f"{min(c for _, c in results[k]) * 1e6:.0f}" for k in results)
        runs = " / ".join(",".join(f"{r:.0f}" for r, _ in results[k]) for k in results)
        print(f"{family:<11} {b:6.0f} {cells[0]} {cells[1]}   {cpu:>20}  [{runs}]  {what}")


if __name__ == "__main__":
    main()
