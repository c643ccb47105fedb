"""Polling throughput: Hallmark against a bare pymodbus loop, same simulator, same run.

The simulated Watlow F4T runs as its own process (``daq simulate chamber``). Three loops read
it for the same wall time each, one after the other, twice over (ABCABC), and the best of each:

  bare      pymodbus ModbusTcpClient reading exactly the registers the driver reads
  driver    Hallmark's driver: ``poll()`` (block reads, decoding, plausibility, Samples)
  pipeline  the whole daemon (runtime → normalize → judge → journal) polling as fast as it can

Figures are polls per second (one poll = every point of the controller) and the ratio to bare.
Run: .venv/bin/python benchmarks/poll_rate.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from pymodbus.client import ModbusTcpClient

from benchmarks._sim import chamber_process
from daq.app import build_runtime
from daq.config import parse_config
from daq.instrument import InstrumentSettings
from daq.journal import Journal
from drivers.modbus_controller import ModbusControllerOptions, build
from drivers.registry import check_instrument


def bare(host: str, port: int, plan: list[tuple[int, int]], seconds: float) -> float:
    client = ModbusTcpClient(host, port=port, timeout=1, retries=0)
    assert client.connect()
    n = 0
    end = time.perf_counter() + seconds
    try:
        while time.perf_counter() < end:
            for start, count in plan:
                reply = client.read_holding_registers(start, count=count, device_id=1)
                assert not reply.isError()
            n += 1
    finally:
        client.close()
    return n / seconds


def driver_loop(address: str, seconds: float) -> float:
    d = build(InstrumentSettings("bench", address, 1.0), ModbusControllerOptions(), "watlow_f4t")
    d.connect()
    n = 0
    end = time.perf_counter() + seconds
    try:
        while time.perf_counter() < end:
            d.poll()
            n += 1
    finally:
        d.close()
    return n / seconds


SYNC = "full"


def pipeline(address: str, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        raw = {
            "schema": 1,
            "bench": {"id": "bench", "health_interval": 3600.0},
            "journal": {"path": str(Path(tmp) / "j.db"), "synchronous": SYNC},
            "instrument": [
                {
                    "name": "c1",
                    "driver": "watlow_f4t",
                    "address": address,
                    "poll_interval": 1e-6,
                    "limits": {"temperature": {"low": 33.0, "high": 37.0}},
                }
            ],
        }
        config = parse_config(raw, "bench", check_instrument)
        with Journal(Path(tmp) / "j.db") as journal:
            runtime = build_runtime(config, Path(tmp), journal)
            asyncio.run(runtime.run(seconds))
            polls = runtime.health["c1"].polls
            assert journal.count("chamber") == runtime.health["c1"].measurements
    return polls / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    with chamber_process() as sim:
        host, port, address = str(sim["host"]), int(str(sim["port"])), str(sim["address"])
        d = build(InstrumentSettings("b", address, 1.0), ModbusControllerOptions(), "watlow_f4t")
        plan = d._plan  # the very registers the driver reads
        results: dict[str, list[float]] = {"bare": [], "driver": [], "pipeline": []}
        for _ in range(2):
            results["bare"].append(bare(host, port, plan, args.seconds))
            results["driver"].append(driver_loop(address, args.seconds))
            results["pipeline"].append(pipeline(address, args.seconds))
    best = {k: max(v) for k, v in results.items()}
    print(f"register reads per poll: {len(plan)} {plan}")
    for name, rate in best.items():
        runs = ", ".join(f"{r:.0f}" for r in results[name])
        print(
            f"{name:<9} {rate:8.1f} polls/s  ({rate * len(plan):7.0f} transactions/s)"
            f"  ratio to bare {rate / best['bare']:.2f}  [runs: {runs}]"
        )


if __name__ == "__main__":
    main()
