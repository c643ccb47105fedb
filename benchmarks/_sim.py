"""Start a simulator as its own process (``daq simulate``), as a bench would see it.

The simulator then has its own interpreter and GIL, so what a benchmark measures in this
process is the client side only. Each simulator prints one JSON line once it serves (its
address among others); the process is ended by its PID when the block exits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from daq.model import Point

START_TIMEOUT_S = 60.0  # the machines these run on are shared: a busy one starts slowly


@contextmanager
def simulator_process(kind: str, *args: str) -> Iterator[dict[str, object]]:
    """``daq simulate KIND ARGS...`` in its own process; yields the JSON line it printed."""
    cmd = [sys.executable, "-m", "daq", "simulate", kind, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
        if not ready:
            raise RuntimeError(f"the {kind} simulator did not start within {START_TIMEOUT_S:g} s")
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {kind} simulator exited with {proc.wait(timeout=10)}")
        yield json.loads(line)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@contextmanager
def chamber_process(seed: int = 0) -> Iterator[dict[str, object]]:
    """The Watlow F4T over Modbus TCP (``daq simulate chamber``)."""
    with simulator_process("chamber", "--port", "0", "--seed", str(seed)) as info:
        yield info


def chamber_point(
    instrument: str, feature: str, value: float, margin: float, time_ns: int
) -> Point:
    """A chamber reading as the daemon journals it (7 tags, 7 fields), for the forwarding
    benchmarks' data."""
    return Point(
        "chamber",
        {
            "bench": "bench-1",
            "instrument": instrument,
            "feature": feature,
            "sku": "VRM-RING-001",
            "po": "PO-2026-0117",
            "lot": "L-0042",
            "phase": "bulk",
        },
        {
            "value": value,
            "unit": "°C",
            "status": "pass",
            "low": 33.0,
            "high": 37.0,
            "margin": margin,
            "raw": "27586: 0000 420C",
        },
        time_ns,
    )
