"""Talking to the SCPI simulators in tests: a plain-socket client, waiting, the serve check."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simulators._scpi import ScpiSimulator

REPO = Path(__file__).resolve().parents[2]
#: How long a command that must draw no answer is listened to.
QUIET_S = 0.3


class Client:
    """A raw SCPI socket client: lines out, bytes in, every wait bounded."""

    def __init__(self, port: int, timeout: float = 2.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, *commands: str) -> None:
        for command in commands:
            self.sock.sendall(command.encode("ascii") + b"\n")

    def read_raw_line(self, timeout: float = 2.0) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line within {timeout} s (got {self.buffer!r})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                raise ConnectionError("closed by the simulator")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line + b"\n"

    def read_available(self, wait: float) -> bytes:
        """Whatever arrives within ``wait`` seconds."""
        deadline = time.monotonic() + wait
        got = b""
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            got += chunk
        return got

    def query(self, command: str, timeout: float = 2.0) -> str:
        self.send(command)
        return self.read_raw_line(timeout).decode("ascii").rstrip("\n")

    def silent(self, command: str, wait: float = QUIET_S) -> bool:
        """True when ``command`` draws no answer within ``wait``."""
        self.send(command)
        return self.read_available(wait) == b""

    def errors(self) -> list[str]:
        found = []
        for _ in range(25):
            answer = self.query("SYST:ERR?")
            if answer.startswith("+0"):
                return found
            found.append(answer)
        raise AssertionError(f"error queue never emptied: {found}")

    def close(self) -> None:
        self.sock.close()


@contextmanager
def client(sim: ScpiSimulator, timeout: float = 2.0) -> Iterator[Client]:
    c = Client(sim.port, timeout)
    try:
        yield c
    finally:
        c.close()


def wait_until(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        threading.Event().wait(0.02)
    raise AssertionError("condition not met in time")


def connect_refused(port: int) -> bool:
    try:
        probe = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    except ConnectionRefusedError:
        return True
    probe.close()
    return False


def check_serve(module: str, identity: bytes) -> None:
    """``module.serve`` in a child process prints its address, answers ``*IDN?`` with
    ``identity`` first, and exits 0 on SIGTERM."""
    code = f"import sys; from {module} import serve; sys.exit(serve('127.0.0.1', 0, 1, None))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert process.stdout is not None
        line = json.loads(process.stdout.readline())
        assert line["address"] == f"TCPIP::127.0.0.1::{line['port']}::SOCKET"
        with socket.create_connection(("127.0.0.1", line["port"]), timeout=2) as sock:
            sock.sendall(b"*IDN?\n")
            assert sock.recv(200).startswith(identity)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()
