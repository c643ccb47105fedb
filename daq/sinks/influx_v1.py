"""Sink for InfluxDB 1.x: ``POST /write`` over one kept-alive HTTP(S) connection.

InfluxDB 1.x (and 1.x-compatible servers) take line protocol on ``/write?db=..&precision=ns``
and InfluxQL on ``/query``. This sink uses the standard library's ``http.client`` rather than
influxdb-client, whose write path is the 2.x API that InfluxDB 1.x before 1.8 does not have.
One connection is kept open between batches (a bench writes every few seconds, and a new
TCP/TLS handshake each time is wasted work); when the server has closed it in the meantime, the
request is sent once more on a fresh connection, which is safe because a write of the same
series and timestamps is idempotent.

Every failure ends as one of the sink errors of ``daq/errors.py`` (see ``daq/sinks/base.py``):
a 404 because the database does not exist is a setup problem, so it is retryable and says so.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import ssl
import threading
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

from daq.errors import RetryableSinkError, SinkError
from daq.sinks.base import (
    connection_error,
    error_for_status,
    join_lines,
    parse_retry_after,
    public_url,
    server_message,
)

__all__ = ["InfluxV1Sink"]

logger = logging.getLogger(__name__)

#: Failures that mean a kept-alive connection had been closed by the server before we used it.
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    retry_after: str | None
    body: bytes


def _quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxV1Sink:
    """Writes batches to an InfluxDB 1.x database through its ``/write`` endpoint.

    ``url`` is the server's base URL (``http://host:8086``, or ``https://host/influx`` behind a
    proxy). ``retention_policy`` is optional (the database's default policy otherwise).
    ``username``/``password`` are sent as HTTP basic auth, never in the URL. ``timeout`` applies
    to connecting and to each read. ``create_database`` makes :meth:`open` issue
    ``CREATE DATABASE`` (a no-op when it exists; it needs an admin user when auth is on).
    ``verify_tls=False`` accepts any certificate (a self-signed one on a trusted network).
    """

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        create_database: bool = True,
        verify_tls: bool = True,
    ) -> None:
        if not database:
            raise ValueError("the InfluxDB database name must not be empty")
        if password is not None and username is None:
            raise ValueError("an InfluxDB password was given without a user name")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        parts = public_url(url)
        self.url = urllib.parse.urlunsplit(parts)
        self.database = database
        self.retention_policy = retention_policy
        self.timeout = timeout
        self.create_database = create_database
        self.name = f"influxdb-v1 {self.url} db={database}" + (
            f" rp={retention_policy}" if retention_policy else ""
        )

        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = parts.path
        params = {"db": database, "precision": "ns"}
        if retention_policy:
            params["rp"] = retention_policy
        self._write_target = f"{self._path}/write?{urllib.parse.urlencode(params)}"
        self._auth: dict[str, str] = {}
        #: What must never reach a log line, even when a server echoes it back.
        self._secrets: tuple[str, ...] = ()
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
            self._auth = {"Authorization": f"Basic {token}"}
            self._secrets = tuple(x for x in (token, password) if x)
        self._tls: ssl.SSLContext | None = None
        if self._https:
            self._tls = ssl.create_default_context()
            if not verify_tls:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InfluxV1Sink({self.name!r})"

    # -- the Sink contract -------------------------------------------------------------------

    def open(self) -> None:
        """Connect and, when configured, create the database; raises ``RetryableSinkError``.

        Without ``create_database`` it checks that the server answers ``/ping``.
        """
        if not self.create_database:
            answer = self._request("GET", f"{self._path}/ping", b"", {})
            if not 200 <= answer.status < 300:
                raise RetryableSinkError(
                    f"The server at {self.url} answered /ping with HTTP {answer.status}; "
                    "check that the URL points at InfluxDB 1.x."
                )
            return
        statement = f"CREATE DATABASE {_quote_ident(self.database)}"
        body = urllib.parse.urlencode({"q": statement}).encode()
        answer = self._request(
            "POST",
            f"{self._path}/query",
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        problem = self._query_error(answer)
        if problem is None:
            logger.info("%s: database %r is ready", self.name, self.database)
            return
        if answer.status in (401, 403):
            raise RetryableSinkError(
                f"The database at {self.url} refused to create database '{self.database}' "
                f"(HTTP {answer.status}: {problem}). The user needs admin rights for that; "
                "if the database already exists, set create_database = false."
            )
        raise RetryableSinkError(
            f"Could not create database '{self.database}' at {self.url} "
            f"(HTTP {answer.status}: {problem})."
        )

    def write(self, lines: Sequence[str]) -> None:
        """POST one batch to ``/write``; raises a ``SinkError`` subclass when it is not taken."""
        if not lines:
            return
        body = join_lines(lines)
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        answer = self._request("POST", self._write_target, body, headers)
        if 200 <= answer.status < 300:
            return
        raise self._write_error(answer, len(body))

    def close(self) -> None:
        """Close the kept-alive connection, if any. Idempotent; a later write reconnects."""
        with self._lock:
            self._drop()

    # -- HTTP -------------------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> _Answer:
        """One request on the kept connection; one more try on a fresh one if it had gone stale."""
        all_headers = {**headers, **self._auth}
        with self._lock:
            while True:
                reused = self._conn is not None
                if self._conn is None:
                    self._conn = self._connect()
                conn = self._conn
                try:
                    conn.request(method, target, body=body, headers=all_headers)
                    response = conn.getresponse()
                    data = response.read()
                except _STALE as exc:
                    self._drop()
                    if reused:
                        logger.debug(
                            "%s: kept connection was closed (%s); reconnecting", self.name, exc
                        )
                        continue
                    raise connection_error(exc, url=self.url, timeout=self.timeout) from exc
                except (OSError, http.client.HTTPException) as exc:
                    self._drop()
                    raise connection_error(exc, url=self.url, timeout=self.timeout) from exc
                if response.will_close:
                    self._drop()
                return _Answer(response.status, response.getheader("Retry-After"), data)

    # -- answers ----------------------------------------------------------------------------

    def _query_error(self, answer: _Answer) -> str | None:
        """The error of a ``/query`` answer (HTTP status or a statement's own), or None."""
        message = server_message(answer.body, self._secrets)
        if answer.status != 200:
            return message or "no explanation given"
        try:
            result = json.loads(answer.body)
        except ValueError:
            return f"not an InfluxDB answer: {message}"
        for statement in result.get("results", []) if isinstance(result, dict) else []:
            if isinstance(statement, dict) and "error" in statement:
                return str(statement["error"])
        return None

    def _write_error(self, answer: _Answer, body_size: int) -> SinkError:
        message = server_message(answer.body, self._secrets)
        not_found = None
        if answer.status == 404:
            if "database not found" in message:
                not_found = (
                    f"The database '{self.database}' does not exist. This is a setup problem, "
                    f'not bad data: create it (CREATE DATABASE "{self.database}") or set '
                    "create_database = true; the data is kept until then."
                )
            else:
                not_found = "Check the URL: there is no InfluxDB 1.x /write endpoint there."
        elif "retention policy not found" in message:
            message += (
                f" (the retention policy '{self.retention_policy}' does not exist in "
                f"database '{self.database}')"
            )
        return error_for_status(
            answer.status,
            message,
            url=self.url,
            retry_after=parse_retry_after(answer.retry_after),
            not_found=not_found,
            body_size=body_size,
        )
