"""Sink for InfluxDB 2.x/3.x (and other servers of the v2 write API) through influxdb-client.

The official client's synchronous ``WriteApi`` posts each batch to ``/api/v2/write``. Two of its
defaults are wrong for Hallmark and are set explicitly here:

* retries: the forwarder owns retrying (with the journal as its outbox), so the client must give
  up at once and report what happened. The synchronous ``WriteApi`` has no retry loop of its own
  (``WriteOptions.max_retries`` only drives the batching mode); the requests go through the
  ``urllib3.PoolManager`` made with the ``retries`` argument of ``InfluxDBClient``. It is passed
  as ``False``: no retry of any kind, and urllib3 raises the original connection error instead
  of wrapping it in ``MaxRetryError``.
* batching: ``SYNCHRONOUS`` write options, so ``write`` returns only when the server answered.

``ApiException`` (an HTTP answer) and urllib3's exceptions (no answer) are translated into the
sink errors of ``daq/errors.py`` with the same rules as the 1.x sink (``daq/sinks/base.py``).
The token is handed to the client and nowhere else: it is not in ``name``, ``repr`` or messages.
"""

from __future__ import annotations

import logging
import ssl
import urllib.parse
from collections.abc import Sequence
from typing import Any

import urllib3.exceptions
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS, WriteApi
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from daq.errors import RetryableSinkError, SinkError
from daq.sinks.base import (
    connection_error,
    error_for_status,
    parse_retry_after,
    public_url,
    server_message,
)

__all__ = ["InfluxV2Sink"]

logger = logging.getLogger(__name__)


class InfluxV2Sink:
    """Writes batches to a bucket through InfluxDB's v2 write API (``/api/v2/write``).

    ``token`` is an API token (for InfluxDB 1.8+ ``user:password`` works as well); the config
    layer reads it from the environment or a file. ``timeout`` is per request, in seconds.
    ``verify_tls=False`` accepts any certificate; urllib3 then warns once that the connection
    is unverified.
    """

    def __init__(
        self,
        url: str,
        bucket: str,
        org: str,
        token: str,
        *,
        timeout: float = 10.0,
        verify_tls: bool = True,
    ) -> None:
        if not bucket:
            raise ValueError("the InfluxDB bucket name must not be empty")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.url = urllib.parse.urlunsplit(public_url(url))
        self.bucket = bucket
        self.org = org
        self.timeout = timeout
        self.verify_tls = verify_tls
        self.name = f"influxdb-v2 {self.url} org={org} bucket={bucket}"
        self._token = token
        self._client: InfluxDBClient | None = None
        self._write_api: WriteApi | None = None

    def __repr__(self) -> str:
        return f"InfluxV2Sink({self.name!r})"

    # -- the Sink contract -------------------------------------------------------------------

    def open(self) -> None:
        """Create the client and check that the server answers ``/ping``.

        Raises ``RetryableSinkError`` when it cannot be reached or refuses the token.
        """
        client, _ = self._ensure_client()
        try:
            version = client.version()
        except ApiException as exc:
            raise self._api_error(exc, body_size=None) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from exc
        logger.info("%s: server answers (version %s)", self.name, version)

    def write(self, lines: Sequence[str]) -> None:
        """Write one batch; raises a ``SinkError`` subclass when it is not taken."""
        if not lines:
            return
        _, write_api = self._ensure_client()
        records = list(lines)
        try:
            write_api.write(
                bucket=self.bucket,
                org=self.org,
                record=records,
                # The generated WritePrecision "enum" holds plain strings, which is what write()
                # really takes; only its annotation says otherwise.
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            size = sum(len(line.encode("utf-8")) + 1 for line in records) - 1
            raise self._api_error(exc, body_size=size) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from exc

    def close(self) -> None:
        """Close the client and its connection pool. Idempotent."""
        write_api, client = self._write_api, self._client
        self._write_api = None
        self._client = None
        # influxdb-client leaves close() unannotated.
        if write_api is not None:
            write_api.close()  # type: ignore[no-untyped-call]
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]

    # -- internals --------------------------------------------------------------------------

    def _ensure_client(self) -> tuple[InfluxDBClient, WriteApi]:
        if self._client is None or self._write_api is None:
            client = InfluxDBClient(
                url=self.url,
                token=self._token,
                org=self.org,
                timeout=int(self.timeout * 1000),
                verify_ssl=self.verify_tls,
                retries=False,
            )
            self._write_api = client.write_api(write_options=SYNCHRONOUS)
            self._client = client
        return self._client, self._write_api

    def _api_error(self, exc: ApiException, body_size: int | None) -> SinkError:
        status = int(exc.status or 0)
        if status == 0:
            # influxdb-client turns urllib3's SSLError into ApiException(status=0, reason=...).
            return RetryableSinkError(
                f"The secure (TLS) connection to the database at {self.url} failed "
                f"({_one_line(exc.reason)}). If the server uses a self-signed certificate on a "
                "network you trust, set verify_tls = false; otherwise install its certificate "
                "authority."
            )
        headers: Any = exc.headers
        retry_after = headers.get("Retry-After") if headers is not None else None
        message = server_message(exc.body, (self._token,))
        not_found = (
            f"Check the URL, the organization '{self.org}' and the bucket '{self.bucket}': "
            "one of them does not exist, or the server does not speak the InfluxDB v2 API "
            "(InfluxDB 1.x before 1.8 does not; use the influxdb-v1 sink for it)."
        )
        return error_for_status(
            status,
            message,
            url=self.url,
            retry_after=parse_retry_after(retry_after),
            not_found=not_found,
            body_size=body_size,
        )

    def _transport_error(self, exc: BaseException) -> RetryableSinkError:
        return connection_error(_root_cause(exc), url=self.url, timeout=self.timeout)


def _root_cause(exc: BaseException) -> BaseException:
    """The socket-level error behind a urllib3 exception, shaped for ``connection_error``."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        # Also NameResolutionError, whose cause is the resolver's socket.gaierror.
        cause = exc.__cause__
        return cause if isinstance(cause, OSError) else ConnectionRefusedError(str(exc))
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return TimeoutError(str(exc))
    if isinstance(exc, urllib3.exceptions.SSLError):
        cause = exc.__cause__ or (exc.args[0] if exc.args else None)
        return cause if isinstance(cause, ssl.SSLError) else ssl.SSLError(str(exc))
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        cause = exc.args[1] if len(exc.args) > 1 else exc.__cause__
        if isinstance(cause, OSError):
            return cause
    return exc


def _one_line(text: object) -> str:
    return ": ".join(line.strip() for line in str(text).splitlines() if line.strip())
