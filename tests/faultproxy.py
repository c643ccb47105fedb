"""A small fault-injecting HTTP proxy for the reliability tests, in front of a real ``influxd``.

The sinks and the forwarder must survive what a real network and a real, struggling database do:
answer 500 or 429 with ``Retry-After``, refuse a body as too large (413), refuse one bad line
(400), answer late, or cut the connection. InfluxDB 1.6 does some of these on its own (see
``tests/servers.py``), but not on demand; this proxy does, and passes everything else through to
the real server, so that what arrives in the database can be counted afterwards.

It is an ``http.server.ThreadingHTTPServer`` on 127.0.0.1 (a port the kernel picks) that speaks
HTTP/1.1 with keep-alive, as the sink does. Each request to a path starting with ``/write`` is
checked against the :class:`Fault` rules in the order they were added; the first that matches and
has uses left decides what happens. Other requests (``/query``, ``/ping``) are passed through.
Every request is recorded as an :class:`Exchange` so that a test can see what was sent and when.

Bounded: every socket has a timeout, a delay waits on an event that :meth:`FaultProxy.stop`
sets, and ``stop`` closes the listening socket and every open client connection it accepted.
"""

from __future__ import annotations

import email.message
import http.client
import http.server
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

__all__ = ["Exchange", "Fault", "FaultProxy"]

#: Timeout of the proxy's own sockets (client side and upstream side), seconds.
SOCKET_TIMEOUT = 10.0

Action = Literal["status", "delay", "drop_before", "drop_after"]


@dataclass(slots=True)
class Fault:
    """One rule: what to do with a matching write, and how many times (``None``: always).

    ``action``:
      - ``status``: answer ``status`` with ``message`` as InfluxDB 1.x's JSON ``{"error": ...}``
        (and ``Retry-After: retry_after`` when given) without forwarding the request;
      - ``delay``: wait ``delay`` seconds, then forward and answer (the client may have given up);
      - ``drop_before``: close the connection without forwarding or answering;
      - ``drop_after``: forward (the database takes the data), then close without answering.

    A rule matches only requests whose body contains ``marker`` (when given) and is larger than
    ``min_body`` bytes (when given; a 413 for large bodies).
    """

    action: Action
    status: int = 500
    message: str = "injected fault"
    retry_after: str | None = None
    delay: float = 0.0
    times: int | None = 1
    marker: bytes | None = None
    min_body: int | None = None

    def matches(self, body: bytes) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.marker is not None and self.marker not in body:
            return False
        return self.min_body is None or len(body) > self.min_body


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request the proxy received: what, when, and what it did with it."""

    method: str
    path: str
    lines: int
    body_size: int
    received: float  # time.monotonic()
    answered: float
    outcome: str  # "passed 204", "fault 500", "delayed 204", "dropped", ...
    body: bytes = field(repr=False, default=b"")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    proxy: FaultProxy


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the exchanges are recorded instead of printed."""

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        proxy = self.server.proxy
        received = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        proxy._begin()
        outcome = "failed in the proxy"
        try:
            outcome = self._act(proxy, body)
        finally:
            proxy._record(
                Exchange(
                    method=self.command,
                    path=self.path,
                    lines=body.count(b"\n") + 1 if body else 0,
                    body_size=len(body),
                    received=received,
                    answered=time.monotonic(),
                    outcome=outcome,
                    body=body,
                )
            )

    def _act(self, proxy: FaultProxy, body: bytes) -> str:
        """Answer the request as the first matching fault says; returns what was done."""
        fault = proxy._take(body) if self.path.startswith("/write") else None
        outcome: str
        if fault is None:
            status, headers, data = proxy._forward(self.command, self.path, self.headers, body)
            self._answer(status, headers, data)
            outcome = f"passed {status}"
        elif fault.action == "status":
            headers = {"Content-Type": "application/json"}
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            data = json.dumps({"error": fault.message}).encode()
            self._answer(fault.status, headers, data)
            outcome = f"fault {fault.status}"
        elif fault.action == "delay":
            proxy._stopping.wait(fault.delay)
            status, headers, data = proxy._forward(self.command, self.path, self.headers, body)
            try:
                self._answer(status, headers, data)
            except OSError:
                self.close_connection = True  # the client gave up waiting
            outcome = f"delayed {status}"
        else:
            if fault.action == "drop_after":
                proxy._forward(self.command, self.path, self.headers, body)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            outcome = "dropped after forwarding" if fault.action == "drop_after" else "dropped"
        return outcome

    def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        self.wfile.flush()


class FaultProxy:
    """A fault-injecting HTTP proxy on 127.0.0.1 in front of ``upstream`` (an ``http://`` URL)."""

    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the proxy needs an http://host:port upstream, got {upstream!r}")
        self._upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._exchanges: list[Exchange] = []
        self._connections: set[socket.socket] = set()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    # -- control -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the proxy is already running")
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="faultproxy"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, end any delay, close every connection; bounded by the socket timeout."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(SOCKET_TIMEOUT)
            self._thread = None
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue
        self._server.server_close()

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

    def add(self, fault: Fault) -> None:
        """Add a rule after the existing ones."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Remove every rule: from now on everything passes through."""
        with self._lock:
            self._faults.clear()

    def exchanges(self) -> list[Exchange]:
        """Every request received so far, in the order they were answered."""
        with self._lock:
            return list(self._exchanges)

    def wait_idle(self, timeout: float = SOCKET_TIMEOUT) -> bool:
        """Wait until no request is being handled (a delayed one has been answered)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def writes(self) -> list[Exchange]:
        """The ``/write`` requests received so far."""
        return [e for e in self.exchanges() if e.path.startswith("/write")]

    # -- used by the handler -----------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _begin(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _take(self, body: bytes) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(body):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)
            self._in_flight -= 1
            self._idle.notify_all()

    def _forward(
        self, method: str, path: str, headers: email.message.Message, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Send the request to the real server; its status, useful headers and body."""
        conn = http.client.HTTPConnection(*self._upstream, timeout=SOCKET_TIMEOUT)
        try:
            sent = {
                k: v for k, v in headers.items() if k.lower() in ("content-type", "authorization")
            }
            conn.request(method, path, body=body if method == "POST" else None, headers=sent)
            response = conn.getresponse()
            data = response.read()
            kept = {
                k: v
                for k, v in response.getheaders()
                if k.lower() in ("content-type", "retry-after") or k.lower().startswith("x-influx")
            }
            return response.status, kept, data
        finally:
            conn.close()
