"""Shared pytest fixtures.

The database fixtures start the real servers of ``tests/servers.py``: one ``influxd`` and one
``victoria-metrics`` per test module (fresh temp directory each), and a fresh InfluxDB database
per test. A missing server binary fails the test with a pointer to ``scripts/setup``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.servers import InfluxServer, VictoriaMetricsServer


@pytest.fixture(scope="module")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A running InfluxDB 1.x server for this module; tests may stop and start it again."""
    server = InfluxServer(tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetricsServer]:
    """A running VictoriaMetrics server (InfluxDB v2 write API) for this module."""
    server = VictoriaMetricsServer(tmp_path_factory.mktemp("victoria"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influx_db(influxd: InfluxServer) -> Iterator[str]:
    """The name of a new, empty database on the module's ``influxd``; dropped afterwards."""
    name = f"hallmark_{uuid.uuid4().hex[:12]}"
    influxd.create_database(name)
    yield name
    if influxd.running:
        influxd.drop_database(name)
