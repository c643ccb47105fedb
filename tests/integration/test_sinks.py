"""The InfluxDB sinks against real servers: influxd 1.6 (/write) and VictoriaMetrics (v2 API)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daq.errors import BatchTooLargeError, RejectedBatchError, RetryableSinkError
from daq.lineprotocol import encode
from daq.model import Point
from daq.sinks import InfluxV1Sink, InfluxV2Sink, Sink
from daq.sinks.base import parse_retry_after
from tests.servers import (
    InfluxServer,
    VictoriaMetricsServer,
    free_port,
    hold_write_slot,
    make_self_signed_cert,
    quote_ident,
    silent_listener,
)

pytestmark = pytest.mark.integration

# 2023-11-14T22:13:20.123456789Z: odd nanoseconds, so any rounding shows.
T0 = 1_700_000_000_123_456_789


def thickness_points(n: int, start: int = T0) -> list[Point]:
    return [
        Point(
            "thickness",
            {"bench": "bench-1", "instrument": "xrf-1", "feature": "layer_Au", "lot": f"L{i % 2}"},
            {"value": 1.25 + i / 1000, "unit": "µm", "status": "pass", "reading": i, "ok": True},
            start + i * 1_000_000_007,
        )
        for i in range(n)
    ]


@pytest.fixture
def v1(influxd: InfluxServer, influx_db: str) -> Iterator[InfluxV1Sink]:
    sink = InfluxV1Sink(influxd.url, influx_db, timeout=5.0)
    sink.open()
    yield sink
    sink.close()


# -- InfluxDB 1.x ------------------------------------------------------------------------------


def test_v1_batch_reads_back_exactly(v1: InfluxV1Sink, influxd: InfluxServer, influx_db: str):
    points = thickness_points(5)
    v1.write([encode(p) for p in points])

    rows = influxd.rows("thickness", influx_db)
    assert len(rows) == 5
    by_time = {row["time"]: row for row in rows}
    for p in points:
        row = by_time[p.time_ns]
        assert {k: row[k] for k in p.tags} == p.tags
        assert row["value"] == p.fields["value"]
        assert row["unit"] == "µm"
        assert row["status"] == "pass"
        assert row["reading"] == p.fields["reading"]
        assert row["ok"] is True
    assert influxd.field_types("thickness", influx_db) == {
        "value": "float",
        "unit": "string",
        "status": "string",
        "reading": "integer",
        "ok": "boolean",
    }


def test_v1_sink_satisfies_the_protocol_and_hides_password(influxd: InfluxServer):
    sink = InfluxV1Sink(influxd.url, "db", username="lab", password="s3cret-pw")
    assert isinstance(sink, Sink)
    assert sink.name == f"influxdb-v1 {influxd.url} db=db"
    assert "s3cret" not in repr(sink)
    with pytest.raises(ValueError, match="must not contain a user name or password"):
        InfluxV1Sink("http://lab:s3cret-pw@127.0.0.1:8086", "db")


def test_v1_bad_line_is_rejected_with_the_server_message(v1: InfluxV1Sink):
    with pytest.raises(RejectedBatchError) as info:
        v1.write(["thickness value=1.5 1", "thickness value=oops 2"])
    message = str(info.value)
    assert "unable to parse 'thickness value=oops 2'" in message
    assert v1.url in message


def test_v1_field_type_conflict_is_rejected(v1: InfluxV1Sink):
    v1.write(["thickness value=1.5 1"])
    with pytest.raises(RejectedBatchError, match="field type conflict"):
        v1.write(['thickness value="thick" 2'])


def test_v1_body_over_max_body_size_is_too_large(tmp_path: Path):
    with InfluxServer(tmp_path, max_body_size=2_000) as server:
        server.create_database("small")
        sink = InfluxV1Sink(server.url, "small")
        try:
            lines = [encode(p) for p in thickness_points(40)]
            with pytest.raises(BatchTooLargeError) as info:
                sink.write(lines)
            assert "HTTP 413" in str(info.value)
            # The halves fit, on the same sink.
            sink.write(lines[:10])
            sink.write(lines[10:20])
            assert server.count("thickness", "small") == 20
        finally:
            sink.close()


def test_v1_missing_database_is_a_retryable_setup_problem(influxd: InfluxServer):
    name = f"missing_{uuid.uuid4().hex[:8]}"
    sink = InfluxV1Sink(influxd.url, name, create_database=False)
    try:
        sink.open()  # only pings
        with pytest.raises(RetryableSinkError) as info:
            sink.write(["thickness value=1 1"])
        assert f"database '{name}' does not exist" in str(info.value)
        assert "setup problem" in str(info.value)
    finally:
        sink.close()


def test_v1_open_creates_the_database(influxd: InfluxServer):
    name = f"created_{uuid.uuid4().hex[:8]}"
    sink = InfluxV1Sink(influxd.url, name)
    try:
        sink.open()
        sink.open()  # CREATE DATABASE on an existing one is a no-op
        sink.write(["thickness value=1 1"])
        assert influxd.count("thickness", name) == 1
    finally:
        sink.close()
        influxd.drop_database(name)


def test_v1_same_points_twice_leave_the_count_unchanged(
    v1: InfluxV1Sink, influxd: InfluxServer, influx_db: str
):
    lines = [encode(p) for p in thickness_points(6)]
    v1.write(lines)
    v1.write(lines)
    v1.write(lines[2:4])
    assert influxd.count("thickness", influx_db) == 6


def test_v1_retention_policy(influxd: InfluxServer, influx_db: str):
    influxd.query(
        f"CREATE RETENTION POLICY keep ON {quote_ident(influx_db)} DURATION INF REPLICATION 1"
    )
    sink = InfluxV1Sink(influxd.url, influx_db, retention_policy="keep")
    missing = InfluxV1Sink(influxd.url, influx_db, retention_policy="nope")
    try:
        assert sink.name.endswith(" rp=keep")
        sink.write(["thickness value=2.5 1"])
        result = influxd.query(
            f'SELECT value FROM {quote_ident(influx_db)}."keep"."thickness"', db=influx_db
        )
        assert result["results"][0]["series"][0]["values"] == [[1, 2.5]]
        with pytest.raises(RetryableSinkError, match="retention policy 'nope' does not exist"):
            missing.write(["thickness value=2.5 2"])
    finally:
        sink.close()
        missing.close()


def test_v1_stopped_server_is_retryable_and_the_sink_reconnects(
    v1: InfluxV1Sink, influxd: InfluxServer, influx_db: str, caplog: pytest.LogCaptureFixture
):
    lines = [encode(p) for p in thickness_points(4)]
    v1.write(lines[:2])  # leaves a kept-alive connection that the stop will break
    influxd.stop()
    try:
        with pytest.raises(RetryableSinkError, match="connection was refused") as info:
            v1.write(lines[2:3])
        assert v1.url in str(info.value)
        with pytest.raises(RetryableSinkError):
            v1.open()
    finally:
        influxd.start()
    v1.write(lines[2:3])  # the same sink object, on a new connection

    # A restart between two writes leaves the kept connection stale; the sink notices by itself.
    influxd.stop()
    influxd.start()
    with caplog.at_level(logging.DEBUG, logger="daq.sinks.influx_v1"):
        v1.write(lines[3:])
    assert "reconnecting" in caplog.text
    assert influxd.count("thickness", influx_db) == 4


def test_v1_unreachable_port_is_retryable():
    sink = InfluxV1Sink(f"http://127.0.0.1:{free_port()}", "db", timeout=2.0)
    try:
        with pytest.raises(RetryableSinkError, match="connection was refused"):
            sink.open()
        with pytest.raises(RetryableSinkError, match="connection was refused"):
            sink.write(["thickness value=1 1"])
    finally:
        sink.close()


def test_v1_silent_server_times_out_once():
    with silent_listener() as url:
        sink = InfluxV1Sink(url, "db", timeout=0.3)
        try:
            started = time.monotonic()
            with pytest.raises(RetryableSinkError, match=r"did not answer within 0\.3 s"):
                sink.write(["thickness value=1 1"])
            assert time.monotonic() - started < 1.0  # one attempt, not a retry loop
        finally:
            sink.close()


def test_v1_throttled_server_503_is_retryable(tmp_path: Path):
    with InfluxServer(tmp_path, max_concurrent_writes=1, enqueued_write_timeout="100ms") as server:
        server.create_database("busy")
        sink = InfluxV1Sink(server.url, "busy")
        try:
            with hold_write_slot(server, "busy"), pytest.raises(RetryableSinkError) as info:
                sink.write(["thickness value=1 1"])
            assert "HTTP 503" in str(info.value)
            assert "request throttled" in str(info.value)
            sink.write(["thickness value=1 1"])
        finally:
            sink.close()


def test_v1_credentials(tmp_path: Path):
    with InfluxServer(tmp_path, auth_enabled=True) as server:
        server.create_database("lab")
        server.query("CREATE USER writer WITH PASSWORD 'w-pass'")
        server.query('GRANT WRITE ON "lab" TO writer')
        admin = InfluxV1Sink(
            server.url, "lab", username=server.admin_user, password=server.admin_password
        )
        wrong = InfluxV1Sink(server.url, "lab", username="writer", password="not-it")
        writer = InfluxV1Sink(server.url, "lab", username="writer", password="w-pass")
        writer_no_create = InfluxV1Sink(
            server.url, "lab", username="writer", password="w-pass", create_database=False
        )
        try:
            admin.open()
            admin.write(["thickness value=1 1"])

            with pytest.raises(RetryableSinkError, match="refused the credentials") as info:
                wrong.write(["thickness value=1 2"])
            assert "not-it" not in str(info.value)

            with pytest.raises(RetryableSinkError, match="create_database = false"):
                writer.open()
            writer_no_create.open()
            writer_no_create.write(["thickness value=1 3"])
            assert server.count("thickness", "lab") == 2
        finally:
            for sink in (admin, wrong, writer, writer_no_create):
                sink.close()


def test_v1_https(tmp_path: Path):
    pem = make_self_signed_cert(tmp_path)
    with InfluxServer(tmp_path, tls_cert=pem) as server:
        verifying = InfluxV1Sink(server.url, "tls")
        trusting = InfluxV1Sink(server.url, "tls", verify_tls=False)
        plain = InfluxV1Sink(server.url.replace("https:", "http:"), "tls", create_database=False)
        try:
            with pytest.raises(RetryableSinkError, match="certificate") as info:
                verifying.open()
            assert "verify_tls = false" in str(info.value)

            trusting.open()
            trusting.write(["thickness value=1 1"])
            assert server.count("thickness", "tls") == 1

            # Plain HTTP to the TLS port: a wrong URL, so retryable, not quarantined as bad data.
            with pytest.raises(RetryableSinkError, match="https://"):
                plain.write(["thickness value=1 2"])
        finally:
            for sink in (verifying, trusting, plain):
                sink.close()


def test_v1_close_is_idempotent(v1: InfluxV1Sink):
    v1.write(["thickness value=1 1"])
    v1.close()
    v1.close()
    v1.write(["thickness value=1 2"])  # a write after close reconnects


# -- the InfluxDB v2 write API -----------------------------------------------------------------


@pytest.fixture
def v2(victoria: VictoriaMetricsServer) -> Iterator[InfluxV2Sink]:
    sink = InfluxV2Sink(victoria.url, "hallmark", "lab", "test-token-123", timeout=5.0)
    sink.open()
    yield sink
    sink.close()


def test_v2_batch_reaches_victoria_metrics(v2: InfluxV2Sink, victoria: VictoriaMetricsServer):
    bench = f"bench-{uuid.uuid4().hex[:6]}"
    points = [
        Point(
            "thickness",
            {"bench": bench, "lot": "L 7", "sku": "R-100,Au"},
            {"value": 1.25 + i / 100, "reading": i, "ok": i % 2 == 0},
            T0 + i * 1_000_000_007,
        )
        for i in range(3)
    ]
    v2.write([encode(p) for p in points])

    selector = f'{{__name__=~"thickness_.*",bench="{bench}"}}'
    series = victoria.wait_for_export(selector, expected_series=3)
    by_name = {s["metric"]["__name__"]: s for s in series}
    assert set(by_name) == {"thickness_value", "thickness_reading", "thickness_ok"}
    for s in series:
        assert s["metric"] == {
            "__name__": s["metric"]["__name__"],
            "bench": bench,
            "lot": "L 7",
            "sku": "R-100,Au",
        }
        # VictoriaMetrics keeps milliseconds.
        assert s["timestamps"] == [p.time_ns // 1_000_000 for p in points]
    assert by_name["thickness_value"]["values"] == [1.25, 1.26, 1.27]
    assert by_name["thickness_reading"]["values"] == [0, 1, 2]
    assert by_name["thickness_ok"]["values"] == [1, 0, 1]


def test_v2_sink_satisfies_the_protocol_and_hides_token(victoria: VictoriaMetricsServer):
    sink = InfluxV2Sink(victoria.url, "hallmark", "lab", "test-token-123")
    assert isinstance(sink, Sink)
    assert sink.name == f"influxdb-v2 {victoria.url} org=lab bucket=hallmark"
    assert "test-token" not in repr(sink)
    sink.close()
    sink.close()


def test_v2_unreachable_port_is_retryable():
    sink = InfluxV2Sink(f"http://127.0.0.1:{free_port()}", "b", "o", "test-token-123")
    try:
        with pytest.raises(RetryableSinkError, match="connection was refused") as info:
            sink.write(["thickness value=1 1"])
        assert "test-token" not in str(info.value)
        with pytest.raises(RetryableSinkError, match="connection was refused"):
            sink.open()
    finally:
        sink.close()


def test_v2_client_does_not_retry_on_its_own():
    with silent_listener() as url:
        sink = InfluxV2Sink(url, "b", "o", "test-token-123", timeout=0.3)
        try:
            started = time.monotonic()
            with pytest.raises(RetryableSinkError, match=r"did not answer within 0\.3 s"):
                sink.write(["thickness value=1 1"])
            # influxdb-client's default would retry; one timeout means one attempt.
            assert time.monotonic() - started < 1.0
        finally:
            sink.close()


def test_v2_refused_token_is_retryable(tmp_path: Path):
    with VictoriaMetricsServer(tmp_path, http_auth=("lab", "vm-pass")) as server:
        sink = InfluxV2Sink(server.url, "b", "o", "test-token-123")
        try:
            with pytest.raises(RetryableSinkError, match="refused the credentials") as info:
                sink.write(["thickness value=1 1"])
            assert "HTTP 401" in str(info.value)
            assert "test-token" not in str(info.value)
        finally:
            sink.close()


def test_v2_against_influxdb_1_6_explains_the_missing_api(influxd: InfluxServer):
    sink = InfluxV2Sink(influxd.url, "b", "o", "test-token-123")
    try:
        sink.open()  # InfluxDB 1.6 answers /ping, like any version
        with pytest.raises(RetryableSinkError, match="does not speak the InfluxDB v2 API"):
            sink.write(["thickness value=1 1"])
    finally:
        sink.close()


def test_v2_self_signed_certificate_is_refused(tmp_path: Path):
    pem = make_self_signed_cert(tmp_path)
    with InfluxServer(tmp_path, tls_cert=pem) as server:
        sink = InfluxV2Sink(server.url, "b", "o", "test-token-123")
        try:
            with pytest.raises(RetryableSinkError, match="verify_tls = false"):
                sink.write(["thickness value=1 1"])
        finally:
            sink.close()


# -- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("-3", None),
        ("soon", None),
        ("Tue, 14 Nov 2023 22:15:20 GMT", 120.0),
        ("Tue, 14 Nov 2023 22:10:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None):
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after(header, now=now) == expected
