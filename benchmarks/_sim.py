"""Start a simulator as its own process (``daq simulate``), as a bench would see it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def chamber_process(seed: int = 0) -> Iterator[dict[str, object]]:
    cmd = [sys.executable, "-m", "daq", "simulate", "chamber", "--port", "0", "--seed", str(seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20.0)
        if not ready:
            raise RuntimeError("simulator did not start within 20 s")
        yield json.loads(proc.stdout.readline())
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
