"""What every sink promises, and how a database's answer becomes one of Hallmark's sink errors.

The forwarder ships batches of line protocol through a :class:`Sink` from a worker thread and
decides what to do next from the exception alone (see ``daq/errors.py``):

* ``RetryableSinkError``: the database is away, busy, failing, or refuses the credentials; the
  batch stays in the journal and is sent again later (after ``retry_after`` when the server said).
* ``BatchTooLargeError``: HTTP 413; the forwarder splits the batch.
* ``RejectedBatchError``: HTTP 400/422; the data itself is bad and is quarantined.

Only data the server called bad is ever dropped from the retry path: a missing database, a wrong
URL or a refused token is a setup problem the operator fixes, and the data must wait for it.
The helpers here hold that classification so that the InfluxDB 1.x and 2.x sinks share it, and
they word the messages for the lab technician who reads them in the log: they name the URL and
say what to check, and never carry a password or token.
"""

from __future__ import annotations

import email.utils
import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Sequence
from datetime import UTC
from http import HTTPStatus
from typing import Protocol, runtime_checkable

from daq.errors import BatchTooLargeError, RejectedBatchError, RetryableSinkError, SinkError

__all__ = [
    "Sink",
    "connection_error",
    "error_for_status",
    "join_lines",
    "parse_retry_after",
    "public_url",
    "server_message",
]

#: Longest server message quoted in an error (InfluxDB echoes whole lines back).
_MESSAGE_LIMIT = 500


@runtime_checkable
class Sink(Protocol):
    """A database the forwarder writes to. Synchronous; called from one worker thread.

    ``name`` identifies the sink in logs and health figures (kind, URL, database or bucket);
    it never contains a secret.
    """

    name: str

    def open(self) -> None:
        """Prepare for writing (connect, create the database if configured).

        Raises ``RetryableSinkError`` when the database cannot be reached or refuses us.
        """
        ...

    def write(self, lines: Sequence[str]) -> None:
        """Write one batch of line-protocol lines with nanosecond timestamps."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent."""
        ...


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` value (delta-seconds or an HTTP-date).

    Returns ``None`` when there is no usable value; a date in the past gives ``0.0``.
    ``now`` (a Unix time) is for tests; it defaults to the current time.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        # A delta must be finite and not negative to mean anything.
        return seconds if 0 <= seconds < float("inf") else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; treat a naive one the same way.
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def server_message(body: bytes | str | None, secrets: Sequence[str] = ()) -> str:
    """The server's own words from an error body: InfluxDB's JSON ``error`` (1.x) or
    ``message`` (2.x), else the body as text; shortened to a readable length. Every one of
    ``secrets`` (the sink's token, password, basic-auth value) is replaced by ``***``, so a
    server that echoes the credentials it was sent never puts them in the log."""
    if body is None:
        return ""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = text.strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        for key in ("error", "message"):
            value = decoded.get(key)
            if isinstance(value, str) and value:
                text = value.strip()
                break
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "…"
    return text


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def error_for_status(
    status: int,
    message: str,
    *,
    url: str,
    retry_after: float | None = None,
    not_found: str | None = None,
    body_size: int | None = None,
) -> SinkError:
    """The sink error for a non-2xx answer to a write.

    ``message`` is the server's own text (see :func:`server_message`). ``not_found`` replaces
    the generic explanation of a 404, which each API means differently.
    """
    status_text = _status_text(status)
    # Some servers only repeat the status phrase ("Request Entity Too Large"); skip the echo.
    said = f": {message}" if message and message.lower() not in status_text.lower() else ""
    if status == 400 and "HTTP request to an HTTPS server" in message:
        # Go's own answer to plain HTTP on a TLS port: a wrong URL, not bad data.
        return RetryableSinkError(
            f"The database at {url} only accepts secure connections ({status_text}{said}). "
            "Change the URL to start with https://."
        )
    if status in (400, 422):
        return RejectedBatchError(
            f"The database at {url} rejected the data in this batch ({status_text}){said}"
        )
    if status == 413:
        size = f" of {body_size} bytes" if body_size is not None else ""
        return BatchTooLargeError(
            f"The database at {url} refused the batch{size} as too large ({status_text}){said}. "
            "The batch will be sent in smaller parts."
        )
    if status in (401, 403):
        return RetryableSinkError(
            f"The database at {url} refused the credentials ({status_text}){said}. "
            "Check the user name and password or the token in the bench config; "
            "the data is kept and sent once the database accepts them.",
            retry_after=retry_after,
        )
    if status == 404:
        explanation = not_found or "Check the URL: nothing at that address accepts writes."
        return RetryableSinkError(
            f"The database at {url} answered {status_text}{said}. {explanation}",
            retry_after=retry_after,
        )
    wait = f"; it asked to wait {retry_after:g} s" if retry_after is not None else ""
    if status == 429:
        return RetryableSinkError(
            f"The database at {url} is busy and asked to slow down ({status_text}{wait}){said}",
            retry_after=retry_after,
        )
    if status >= 500:
        return RetryableSinkError(
            f"The database at {url} failed to take the batch ({status_text}{wait}){said}. "
            "It is sent again later.",
            retry_after=retry_after,
        )
    return RetryableSinkError(
        f"The database at {url} gave an unexpected answer ({status_text}){said}. "
        "Check that the URL points at InfluxDB.",
        retry_after=retry_after,
    )


def connection_error(exc: BaseException, *, url: str, timeout: float) -> RetryableSinkError:
    """The retryable error for a request that got no HTTP answer at all.

    ``exc`` is the socket-level cause (an ``OSError`` subclass, ``ssl.SSLError`` or an
    ``http.client`` exception); the message says what it means for the lab.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RetryableSinkError(
            f"The TLS certificate of the database at {url} was not accepted "
            f"({exc.verify_message or exc.reason}). Install the certificate authority that "
            "signed it, or set verify_tls = false if the server uses a self-signed certificate "
            "on a network you trust."
        )
    if isinstance(exc, ssl.SSLError):
        return RetryableSinkError(
            f"The secure (TLS) connection to the database at {url} failed ({exc.reason or exc}). "
            "Check that the URL's http/https matches the server."
        )
    if isinstance(exc, TimeoutError):
        return RetryableSinkError(
            f"The database at {url} did not answer within {timeout:g} s. "
            "It may be overloaded, or the network is slow or down."
        )
    if isinstance(exc, socket.gaierror):
        return RetryableSinkError(
            f"Cannot reach the database at {url}: the host name could not be resolved "
            f"({_describe(exc)}). Check the host name in the URL and the network's DNS."
        )
    if isinstance(exc, ConnectionRefusedError):
        return RetryableSinkError(
            f"Cannot reach the database at {url}: the connection was refused. "
            "Check that the database is running and that the address and port are right."
        )
    if isinstance(exc, ConnectionError):
        return RetryableSinkError(
            f"The connection to the database at {url} was cut ({_describe(exc)}). "
            "The batch is sent again later."
        )
    if isinstance(exc, OSError):
        return RetryableSinkError(
            f"Cannot reach the database at {url} ({_describe(exc)}). "
            "Check the address, the network cable and the database server."
        )
    return RetryableSinkError(
        f"The database at {url} did not give a proper HTTP answer ({_describe(exc)})."
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def join_lines(lines: Sequence[str]) -> bytes:
    """A batch as one request body: the lines separated by newlines, UTF-8."""
    return "\n".join(lines).encode("utf-8")


def public_url(url: str) -> urllib.parse.SplitResult:
    """Check a database URL and return it split; raises ``ValueError`` in plain words.

    Only ``http`` and ``https`` with a host are accepted. Credentials inside the URL are refused,
    because the URL appears in logs and sink names: they belong in the sink's own arguments.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if "@" in parts.netloc:
        # Checked first so that no later message repeats a password.
        raise ValueError(
            "the database URL must not contain a user name or password; "
            "give them in the sink's own settings instead"
        )
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"database URL {url!r} must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"database URL {url!r} has no host name")
    if parts.query or parts.fragment:
        raise ValueError(f"database URL {url!r} must not have a query (?...) or fragment (#...)")
    _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    return parts._replace(path=parts.path.rstrip("/"))
