"""Gauge throughput: Hallmark's Mark-10 driver against bare pyserial, same simulator, same run.

Two simulated Mark-10 gauges run as their own processes (``daq simulate mark10 --pty``), so the
simulator's thread does not share this process's GIL:

  stream  streams at AOUT 250/s; readings/s and CPU time per reading (this process only) of
          bare      pyserial ``readline`` in a loop (after writing ``AOUT250``)
          driver    Hallmark's push-mode driver: ``receive()`` (line framing, parsing, unit
                    checks, duplicate filter, the force-test detector), counted by its
                    ``stream_readings``
  poll    answers ``?C`` with no simulated latency; round trips/s of
          bare      pyserial ``write(b"?C\\r\\n")`` + ``readline``
          driver    ``poll()`` (discard unasked input, query, parse, Sample)

Each pair runs alternately (ABAB) for the same wall time each; the best of each is printed with
the ratio to bare. The stream rate is capped by the gauge (250/s): the ratio shows whether the
driver keeps up; CPU per reading shows what keeping up costs.
Run: .venv/bin/python benchmarks/gauge_stream.py [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import serial

from daq.instrument import InstrumentSettings
from drivers.mark10 import Mark10Options, build

RATE = 250


@contextmanager
def mark10_process(model: str) -> Iterator[str]:
    """A ``daq simulate mark10 --pty`` process with ``model`` as its [model] table; its pty."""
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "scenario.toml"
        scenario.write_text(f"schema = 1\n[model]\n{model}\n")
        cmd = [sys.executable, "-m", "daq", "simulate", "mark10", "--pty"]
        cmd += ["--scenario", str(scenario)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 20.0)
            if not ready:
                raise RuntimeError("simulator did not start within 20 s")
            yield str(json.loads(proc.stdout.readline())["port"])
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


def bare_stream(path: str, seconds: float) -> tuple[float, float]:
    with serial.Serial(path, 115200, timeout=1.0) as port:
        port.write(f"AOUT{RATE}\r\n".encode())
        port.readline()
        n = 0
        cpu = time.process_time()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            if port.readline():
                n += 1
        cpu = time.process_time() - cpu
        port.write(b"AOUT0\r\n")
    return n / seconds, cpu / max(n, 1)


def driver_stream(path: str, seconds: float) -> tuple[float, float]:
    options = Mark10Options(mode="push", aout_rate=RATE, start_threshold="1000 N")
    d = build(InstrumentSettings("bench", path, 1.0), options)
    d.connect()
    try:
        before = d.stream_readings
        cpu = time.process_time()
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            d.receive(min(left, 0.1))
        cpu = time.process_time() - cpu
        n = d.stream_readings - before
    finally:
        d.close()
    return n / seconds, cpu / max(n, 1)


def bare_poll(path: str, seconds: float) -> tuple[float, float]:
    with serial.Serial(path, 115200, timeout=1.0) as port:
        n = 0
        cpu = time.process_time()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            port.write(b"?C\r\n")
            assert port.readline().endswith(b" N\r\n")
            n += 1
        cpu = time.process_time() - cpu
    return n / seconds, cpu / max(n, 1)


def driver_poll(path: str, seconds: float) -> tuple[float, float]:
    d = build(InstrumentSettings("bench", path, 1.0), Mark10Options())
    d.connect()
    try:
        n = 0
        cpu = time.process_time()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            d.poll()
            n += 1
        cpu = time.process_time() - cpu
    finally:
        d.close()
    return n / seconds, cpu / max(n, 1)


def report(title: str, unit: str, results: dict[str, list[tuple[float, float]]]) -> None:
    best = {k: max(v) for k, v in results.items()}
    print(title)
    for name, (rate, cpu) in best.items():
        runs = ", ".join(f"{r:.1f}" for r, _ in results[name])
        print(
            f"  {name:<7} {rate:8.1f} {unit}  ratio to bare {rate / best['bare'][0]:.3f}"
            f"  CPU {cpu * 1e6:6.1f} µs/reading  [runs: {runs}]"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    stream: dict[str, list[tuple[float, float]]] = {"bare": [], "driver": []}
    poll: dict[str, list[tuple[float, float]]] = {"bare": [], "driver": []}
    with mark10_process("noise_pct_fs = 0.05") as path:
        for _ in range(args.rounds):
            stream["bare"].append(bare_stream(path, args.seconds))
            stream["driver"].append(driver_stream(path, args.seconds))
    with mark10_process("reply_latency_s = 0.0\nlatency_jitter_s = 0.0") as path:
        for _ in range(args.rounds):
            poll["bare"].append(bare_poll(path, args.seconds))
            poll["driver"].append(driver_poll(path, args.seconds))
    print(f"Mark-10 simulator in its own process, {args.seconds:g} s a run, best of {args.rounds}")
    report(f"stream AOUT{RATE} (readings/s)", "readings/s", stream)
    report("poll ?C (round trips/s)", "polls/s   ", poll)


if __name__ == "__main__":
    main()
