"""What the runtime needs from an instrument driver, and nothing more.

The runtime drives any object that follows ``Driver``: it calls ``connect`` until it succeeds,
then either ``poll`` on a schedule (a polled instrument) or ``receive`` in a loop (a pushed
instrument that sends when the operator finishes a test). Every call is blocking and runs in a
worker thread, so a slow or dead instrument never stalls the others. Drivers raise errors from
daq/errors.py: ``TransportError`` (the link is gone: reconnect), ``ProtocolError`` and
``InstrumentError`` (the link is fine, this answer was not).

The core never imports drivers; the CLI builds them from the registry in drivers/registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from daq.model import Sample

__all__ = ["Driver", "InstrumentSettings", "Mode"]

Mode = Literal["poll", "push"]


@dataclass(frozen=True, slots=True)
class InstrumentSettings:
    """What every driver is given: its name, its transport address and its reply timeout."""

    name: str
    address: str
    timeout: float = 1.0


class Driver(Protocol):
    """One instrument, as the runtime sees it."""

    name: str
    mode: Mode

    def connect(self) -> None:
        """Open the transport and identify the instrument. Raises TransportError."""
        ...

    def poll(self) -> list[Sample]:
        """Ask the instrument for its current values (polled instruments)."""
        ...

    def receive(self, timeout: float) -> list[Sample]:
        """Wait up to ``timeout`` seconds for pushed results; [] when none came."""
        ...

    def close(self) -> None:
        """Close the transport. Idempotent; never raises."""
        ...
