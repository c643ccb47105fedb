"""Real database servers for Hallmark's integration tests: InfluxDB 1.x and VictoriaMetrics.

The sinks are only as good as their behaviour against the servers they talk to, so the tests
start the real Debian binaries (``influxd``, ``victoria-metrics``, installed by
``scripts/setup``) instead of imitating them. Each server lives in its own temp directory,
listens on 127.0.0.1 ports picked by the kernel, is waited for with a bounded loop (a server
that does not come up fails with the tail of its own log) and is stopped by signalling the one
process this module started. ``InfluxServer`` can be stopped and started again on the same data
directory and port, which is how the outage tests take the database away and bring it back.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = [
    "InfluxServer",
    "ServerError",
    "VictoriaMetricsServer",
    "free_port",
    "free_ports",
    "hold_write_slot",
    "make_self_signed_cert",
    "quote_ident",
    "silent_listener",
]

#: How long a server gets to answer its readiness probe after start.
READY_TIMEOUT = 20.0
#: How long a server gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0
#: Timeout of each HTTP request the helpers themselves make.
HTTP_TIMEOUT = 10.0


class ServerError(RuntimeError):
    """A test server is missing, did not start, or answered a helper's request with an error."""


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports on 127.0.0.1 that were free a moment ago (the kernel picks them).

    The sockets are held together until all are bound, so the ports cannot repeat.
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return free_ports(1)[0]


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes, with backslashes and quotes escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServerError(
            f"'{name}' is not installed; the integration tests need the real server. "
            "Run scripts/setup to install it."
        )
    return path


def make_self_signed_cert(directory: Path) -> Path:
    """A self-signed certificate and key for 127.0.0.1 in one PEM file (made with openssl)."""
    pem = directory / "server.pem"
    key = directory / "server.key"
    crt = directory / "server.crt"
    subprocess.run(
        [
            _binary("openssl"),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
        timeout=HTTP_TIMEOUT,
    )
    pem.write_bytes(crt.read_bytes() + key.read_bytes())
    return pem


def _http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One HTTP request; returns (status, body) for any status, raises OSError if unreachable.

    HTTPS certificates are not checked: these are the tests' own self-signed servers.
    """
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT, context=context) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), bytes(exc.read())


class _Process:
    """One server process with its log file: start, bounded readiness wait, stop."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, argv: list[str], ready: Callable[[], bool]) -> None:
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.pid})")
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._release()
                raise ServerError(
                    f"{self.name} exited with code {code} while starting; log tail:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(OSError):
                if ready():
                    return
            time.sleep(0.02)
        self.stop()
        raise ServerError(
            f"{self.name} was not ready within {READY_TIMEOUT:.0f} s; log tail:\n" + self.log_tail()
        )

    def stop(self) -> None:
        """SIGTERM to the process this object started, wait, SIGKILL if it hangs."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        self._release()

    def _release(self) -> None:
        if self._proc is not None:
            self._proc.wait(timeout=STOP_TIMEOUT)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class InfluxServer:
    """An ``influxd`` (InfluxDB 1.x) in its own directory, on free 127.0.0.1 ports.

    ``max_body_size`` (bytes) makes larger writes fail with a real HTTP 413.
    ``auth_enabled`` turns on authentication; :meth:`start` then creates the admin user
    ``admin_user``/``admin_password`` and the helpers use it.
    ``max_concurrent_writes`` with ``enqueued_write_timeout`` lets a test fill the write slots and
    get a real HTTP 503 (see :func:`hold_write_slot`).
    ``tls_cert`` (a PEM file with certificate and key, see :func:`make_self_signed_cert`) serves
    HTTPS instead of HTTP.
    """

    admin_user = "hallmark-admin"
    admin_password = "test-only-password"

    def __init__(
        self,
        base_dir: Path,
        *,
        max_body_size: int | None = None,
        auth_enabled: bool = False,
        max_concurrent_writes: int | None = None,
        enqueued_write_timeout: str = "30s",
        tls_cert: Path | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.tls_cert = tls_cert
        self.max_body_size = max_body_size
        self.auth_enabled = auth_enabled
        self.max_concurrent_writes = max_concurrent_writes
        self.enqueued_write_timeout = enqueued_write_timeout
        self.http_port, self.rpc_port = free_ports(2)
        scheme = "https" if tls_cert is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.http_port}"
        self.config_path = base_dir / "influxdb.conf"
        self._process = _Process("influxd", base_dir / "influxd.log")
        self._admin_created = False

    @property
    def running(self) -> bool:
        return self._process.running

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def log_tail(self, lines: int = 30) -> str:
        return self._process.log_tail(lines)

    def _write_config(self) -> None:
        d = self.base_dir
        http_extra = ""
        if self.max_body_size is not None:
            http_extra += f"  max-body-size = {self.max_body_size}\n"
        if self.max_concurrent_writes is not None:
            http_extra += (
                f"  max-concurrent-write-limit = {self.max_concurrent_writes}\n"
                "  max-enqueued-write-limit = 1\n"
                f'  enqueued-write-timeout = "{self.enqueued_write_timeout}"\n'
            )
        if self.tls_cert is not None:
            http_extra += f'  https-enabled = true\n  https-certificate = "{self.tls_cert}"\n'

        self.config_path.write_text(
            "reporting-enabled = false\n"
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            "\n[meta]\n"
            f'  dir = "{d / "meta"}"\n'
            "\n[data]\n"
            f'  dir = "{d / "data"}"\n'
            f'  wal-dir = "{d / "wal"}"\n'
            "  query-log-enabled = false\n"
            "\n[monitor]\n"
            "  store-enabled = false\n"
            "\n[http]\n"
            f'  bind-address = "127.0.0.1:{self.http_port}"\n'
            f"  auth-enabled = {'true' if self.auth_enabled else 'false'}\n"
            "  log-enabled = false\n" + http_extra
        )

    def start(self) -> None:
        """Start ``influxd`` (again, on the same data and port) and wait for ``/ping`` → 204."""
        argv = [_binary("influxd"), "run", "-config", str(self.config_path)]
        self._write_config()
        self._process.start(argv, self._ready)
        if self.auth_enabled and not self._admin_created:
            # With auth on and no user yet, InfluxDB accepts exactly this statement unauthenticated.
            self.query(
                f"CREATE USER {quote_ident(self.admin_user)} WITH PASSWORD "
                f"'{self.admin_password}' WITH ALL PRIVILEGES"
            )
            self._admin_created = True

    def _ready(self) -> bool:
        status, _ = _http("GET", f"{self.url}/ping")
        return status == 204

    def stop(self) -> None:
        """Stop the server (SIGTERM to its own PID; SIGKILL if it does not exit in time)."""
        self._process.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _auth_headers(self) -> dict[str, str]:
        if self.auth_enabled and self._admin_created:
            raw = f"{self.admin_user}:{self.admin_password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL over ``POST /query`` (timestamps as integer ns); the decoded JSON.

        Raises ServerError when the HTTP status or any statement reports an error.
        """
        params = {"q": q, "epoch": "ns"}
        if db is not None:
            params["db"] = db
        status, body = _http(
            "POST",
            f"{self.url}/query",
            body=urllib.parse.urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", **self._auth_headers()},
        )
        try:
            result: dict[str, Any] = json.loads(body)
        except ValueError as exc:
            raise ServerError(f"influxd answered {status} to {q!r}: {body[:300]!r}") from exc
        errors = [r["error"] for r in result.get("results", []) if "error" in r]
        if status != 200 or "error" in result or errors:
            raise ServerError(f"influxd answered {status} to {q!r}: {result}")
        return result

    def create_database(self, name: str) -> None:
        self.query(f"CREATE DATABASE {quote_ident(name)}")

    def drop_database(self, name: str) -> None:
        self.query(f"DROP DATABASE {quote_ident(name)}")

    def rows(self, measurement: str, db: str) -> list[dict[str, Any]]:
        """Every point of a measurement as a dict (``time`` in ns, tags and fields by name).

        Meant for the small data sets of tests: it fetches all rows in one answer.
        """
        result = self.query(f"SELECT * FROM {quote_ident(measurement)}", db=db)
        out: list[dict[str, Any]] = []
        for statement in result["results"]:
            for series in statement.get("series", []):
                columns = series["columns"]
                out.extend(dict(zip(columns, values, strict=True)) for values in series["values"])
        return out

    def count(self, measurement: str, db: str) -> int:
        """How many points (distinct series + timestamp) a measurement holds."""
        return len(self.rows(measurement, db))

    def field_types(self, measurement: str, db: str) -> dict[str, str]:
        """Field name → InfluxDB type (``float``, ``integer``, ``string``, ``boolean``)."""
        result = self.query(f"SHOW FIELD KEYS FROM {quote_ident(measurement)}", db=db)
        types: dict[str, str] = {}
        for statement in result["results"]:
            for series in statement.get("series", []):
                types.update({name: kind for name, kind in series["values"]})
        return types


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """The URL of a TCP port that accepts connections but never answers (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def hold_write_slot(server: InfluxServer, db: str) -> Iterator[None]:
    """Occupy one of ``server``'s write slots with a request whose body never arrives.

    With ``max_concurrent_writes=1`` the next write waits ``enqueued_write_timeout`` and then gets
    InfluxDB's own HTTP 503 ("request throttled"). The slot is freed when the block exits.
    """
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(
            f"POST /write?db={db} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\n".encode()
        )
        # The server takes the slot before reading the body; give it a moment to get there.
        time.sleep(0.2)
        yield


class VictoriaMetricsServer:
    """A ``victoria-metrics`` single node on a free 127.0.0.1 port; speaks InfluxDB's v2 write API.

    ``http_auth`` ("user", "password") turns on HTTP basic auth, so a token is refused with 401.
    """

    def __init__(self, base_dir: Path, *, http_auth: tuple[str, str] | None = None) -> None:
        self.base_dir = base_dir
        self.http_auth = http_auth
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = _Process("victoria-metrics", base_dir / "victoria-metrics.log")

    @property
    def running(self) -> bool:
        return self._process.running

    def log_tail(self, lines: int = 30) -> str:
        return self._process.log_tail(lines)

    def start(self) -> None:
        """Start the server and wait until ``/health`` says OK."""
        argv = [
            _binary("victoria-metrics"),
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.base_dir / 'data'}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]
        if self.http_auth is not None:
            argv += [
                f"-httpAuth.username={self.http_auth[0]}",
                f"-httpAuth.password={self.http_auth[1]}",
            ]
        self._process.start(argv, self._ready)

    def _headers(self) -> dict[str, str]:
        if self.http_auth is None:
            return {}
        raw = f"{self.http_auth[0]}:{self.http_auth[1]}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def _ready(self) -> bool:
        status, body = _http("GET", f"{self.url}/health", headers=self._headers())
        return status == 200 and body.strip() == b"OK"

    def stop(self) -> None:
        """Stop the server (SIGTERM to its own PID; SIGKILL if it does not exit in time)."""
        self._process.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def force_flush(self) -> None:
        """Make recently written data searchable (``/internal/force_flush``)."""
        status, body = _http("GET", f"{self.url}/internal/force_flush", headers=self._headers())
        if status != 200:
            raise ServerError(f"victoria-metrics force_flush answered {status}: {body[:300]!r}")

    def export(self, match: str) -> list[dict[str, Any]]:
        """Series matching a selector, from ``/api/v1/export`` (one dict per series)."""
        query = urllib.parse.urlencode({"match[]": match})
        status, body = _http("GET", f"{self.url}/api/v1/export?{query}", headers=self._headers())
        if status != 200:
            raise ServerError(f"victoria-metrics export answered {status}: {body[:300]!r}")
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]

    def wait_for_export(
        self, match: str, expected_series: int, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Flush, then poll :meth:`export` until ``expected_series`` series are visible."""
        self.force_flush()
        deadline = time.monotonic() + timeout
        while True:
            series = self.export(match)
            if len(series) >= expected_series or time.monotonic() >= deadline:
                return series
            time.sleep(0.1)
