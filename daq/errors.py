"""Hallmark's one exception tree.

    HallmarkError
    ├── ConfigError            a bench config or spec file is wrong; carries every problem found
    ├── TransportError         the link to an instrument failed (port, socket, VISA session)
    │   └── InstrumentTimeout  the instrument did not answer in time
    ├── ProtocolError          bytes arrived but do not follow the instrument's protocol
    ├── InstrumentError        the instrument answered with an error of its own (Modbus exception,
    │                          a gauge's ``*10`` reply, a sensor break)
    ├── UnitError              a reading's unit is unknown or does not fit the channel
    └── SinkError              the database refused or could not take a batch
        ├── RetryableSinkError the database is away, busy or overloaded; try again later
        ├── BatchTooLargeError the database wants smaller batches (HTTP 413)
        └── RejectedBatchError the database rejected the data itself (HTTP 400/422)

Foreign exceptions (pyserial, pymodbus, pyvisa, urllib3, sqlite3) are translated once, at the
boundary where they occur, with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BatchTooLargeError",
    "ConfigError",
    "ConfigProblem",
    "HallmarkError",
    "InstrumentError",
    "InstrumentTimeout",
    "ProtocolError",
    "RejectedBatchError",
    "RetryableSinkError",
    "SinkError",
    "TransportError",
    "UnitError",
]


class HallmarkError(Exception):
    """Base of every error Hallmark raises on purpose."""


class ConfigProblem:
    """One problem in a config file: where it is and what to do about it."""

    __slots__ = ("file", "instrument", "key", "message")

    def __init__(self, file: str, key: str, message: str, instrument: str | None = None) -> None:
        self.file = file
        self.key = key
        self.message = message
        self.instrument = instrument

    def __str__(self) -> str:
        where = self.file
        if self.instrument:
            where += f": instrument '{self.instrument}'"
        if self.key:
            where += f": {self.key}"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ConfigProblem({str(self)!r})"


class ConfigError(HallmarkError):
    """A config is invalid. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class TransportError(HallmarkError):
    """The link to an instrument failed: port missing, socket refused or closed."""


class InstrumentTimeout(TransportError):
    """The instrument did not answer within its timeout."""


class ProtocolError(HallmarkError):
    """The bytes received do not follow the instrument's protocol (garbage, partial frame)."""


class InstrumentError(HallmarkError):
    """The instrument reported an error itself (Modbus exception, error reply, sensor break)."""


class UnitError(HallmarkError):
    """A unit is unknown, or does not measure what the channel measures."""


class SinkError(HallmarkError):
    """Writing a batch to a database failed."""


class RetryableSinkError(SinkError):
    """The database is unreachable, busy or failing; the batch is sent again later.

    ``retry_after`` is the server's Retry-After in seconds, when it gave one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BatchTooLargeError(SinkError):
    """The database refused the batch as too large (HTTP 413); split it and send the halves."""


class RejectedBatchError(SinkError):
    """The database rejected the batch's content (HTTP 400/422); it is quarantined, not retried."""
