"""daq.lineprotocol.encode judged by InfluxDB itself: what is written is what is read back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daq.lineprotocol import encode
from daq.model import FieldValue, Point
from daq.sinks import InfluxV1Sink
from tests.servers import InfluxServer, quote_ident

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000_000_001


@pytest.fixture
def sink(influxd: InfluxServer, influx_db: str) -> Iterator[InfluxV1Sink]:
    s = InfluxV1Sink(influxd.url, influx_db, create_database=False)
    yield s
    s.close()


def read_point(server: InfluxServer, db: str, measurement: str, time_ns: int) -> dict[str, Any]:
    result = server.query(f"SELECT * FROM {quote_ident(measurement)} WHERE time = {time_ns}", db=db)
    series = result["results"][0]["series"]
    assert len(series) == 1 and len(series[0]["values"]) == 1, series
    return dict(zip(series[0]["columns"], series[0]["values"][0], strict=True))


def assert_same_fields(row: dict[str, Any], fields: dict[str, FieldValue], types: dict[str, str]):
    for key, value in fields.items():
        got = row[key]
        if isinstance(value, bool):
            assert types[key] == "boolean" and got is value, key
        elif isinstance(value, int):
            assert types[key] == "integer" and got == value, key
        elif isinstance(value, float):
            # JSON writes 2.0 as 2; the stored type says it is a float.
            assert types[key] == "float" and float(got) == value, key
        else:
            assert types[key] == "string" and got == value, key


TRICKY_TAGS = {
    "bench": "bench 1",
    "lot": "L,23=4",
    "sku": 'R "gold" ring',
    "po": "PO\\2024\\07",
    "instrument": "xrf=1, slot 2",
    "feature": "layer µm °C",
    "spec_rev": "a\\,b\\ c\\=d",
}

TRICKY_FIELDS: dict[str, FieldValue] = {
    "value": 0.1,
    "tiny": 1e-9,
    "huge": 1.5e300,
    "negative": -2.5,
    "whole": 2.0,
    "count": 42,
    "negative_count": -7,
    "big_count": 2**62,
    "ok": True,
    "failed": False,
    "unit": "µm",
    "temperature_unit": "°C",
    "text": 'a b,c=d "quoted" back\\slash \\"both\\" end\\',
    "empty": "",
    "field with space": "x",
    "field,comma=eq": "y",
}


def test_tricky_point_round_trips_exactly(
    sink: InfluxV1Sink, influxd: InfluxServer, influx_db: str
):
    point = Point("thickness check", TRICKY_TAGS, TRICKY_FIELDS, T0)
    sink.write([encode(point)])

    row = read_point(influxd, influx_db, "thickness check", T0)
    assert row["time"] == T0
    assert {k: row[k] for k in TRICKY_TAGS} == TRICKY_TAGS
    assert_same_fields(row, TRICKY_FIELDS, influxd.field_types("thickness check", influx_db))


def test_documented_normalisations(sink: InfluxV1Sink, influxd: InfluxServer, influx_db: str):
    point = Point(
        "thickness",
        {"lot": "L7\\", "po": "\\\\", "sku": "two\nlines"},
        {"raw": "first\nsecond", "value": 1.0},
        T0,
    )
    sink.write([encode(point)])

    row = read_point(influxd, influx_db, "thickness", T0)
    assert row["lot"] == "L7"  # trailing backslash dropped
    assert row.get("po") is None  # nothing left: no tag
    assert row["sku"] == "two\\nlines"
    assert row["raw"] == "first\\nsecond"


# Any Unicode text except lone surrogates (not encodable as UTF-8).
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
_times = itertools.count(T0)


def stored_tag(value: str) -> str | None:
    """What InfluxDB keeps of a tag value, per daq.lineprotocol's documented limits."""
    kept = value.rstrip("\\").replace("\n", "\\n")
    return kept or None


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tag_a=texts, tag_b=texts, text=texts)
def test_any_text_round_trips(
    sink: InfluxV1Sink, influxd: InfluxServer, influx_db: str, tag_a: str, tag_b: str, text: str
):
    time_ns = next(_times)  # one database for all examples; each example its own timestamp
    point = Point("prop", {"a": tag_a, "b": tag_b}, {"text": text, "n": 1}, time_ns)
    sink.write([encode(point)])

    row = read_point(influxd, influx_db, "prop", time_ns)
    assert row["time"] == time_ns
    assert row.get("a") == stored_tag(tag_a)
    assert row.get("b") == stored_tag(tag_b)
    assert row["text"] == text.replace("\n", "\\n")
