"""The daemon's status, for `daq status` and for systemd — no network listener.

Every health interval (and once at stop) the daemon writes ``<journal>.status.json`` beside its
journal (0600, replaced atomically): per-instrument health, the journal backlog, the forwarder's
state and the quarantined rows. `daq status` reads that file. When systemd started the daemon
with ``Type=notify``, it is told READY=1 once the instruments are running, WATCHDOG=1 with every
status write (set ``WatchdogSec`` above twice the health interval) and STOPPING=1 at the end,
through the ``NOTIFY_SOCKET`` datagram socket (the sd_notify protocol, a few lines of code).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["notify", "read_status", "status_path", "write_status"]


def status_path(journal: Path) -> Path:
    """Where the daemon of this journal writes its status."""
    return journal.with_name(journal.name + ".status.json")


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file atomically, readable by its owner only."""
    fd, tmp = tempfile.mkstemp(prefix=".status-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({**status, "written_ns": time.time_ns()}, out, ensure_ascii=False, indent=1)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_status(path: Path) -> dict[str, Any]:
    """The last status a daemon wrote. Raises FileNotFoundError when none is there."""
    with path.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def notify(message: str) -> bool:
    """Send an sd_notify message (``READY=1``...) when systemd asked for them; else do nothing.

    Returns whether a message was sent. Never raises: the daemon runs on without systemd.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True
