"""Every dashboard query, run against a real InfluxDB holding a simulated session.

The session (tests/dashboards/session.py) is written with Hallmark's own line-protocol encoder
and InfluxDB 1.x sink. Each dashboard's template variables are resolved the way Grafana does
it: in order, each ``SHOW TAG VALUES`` query with the variables before it substituted, a
multi-value variable set to "All" (``(a|b)``, values regex-escaped), a single-value one to its
first value. Then every panel target and annotation query runs with ``$timeFilter`` and
``$__interval`` substituted, and must answer rows that carry every column it selects.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daq.lineprotocol import encode
from daq.sinks import InfluxV1Sink
from dashboards import build
from tests.dashboards.session import BENCH, INSTRUMENTS, LOTS, SKU, session
from tests.servers import InfluxServer

pytestmark = pytest.mark.integration

DASHBOARD_FILES = sorted((build.ROOT / "json").glob("*.json"))
MACROS = {
    "$timeFilter": "time > now() - 2h",
    "$__interval_ms": "60000",
    "$__interval": "1m",
}
_REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}/])")


@pytest.fixture(scope="module")
def loaded(influxd: InfluxServer) -> Iterator[str]:
    """A database holding the simulated session, written through InfluxV1Sink."""
    db = "hallmark_dashboards"
    sink = InfluxV1Sink(influxd.url, db, timeout=5.0)
    sink.open()
    try:
        sink.write([encode(p) for p in session()])
    finally:
        sink.close()
    yield db
    influxd.drop_database(db)


def escape(value: str) -> str:
    """A value escaped as Grafana escapes it inside an InfluxQL regex."""
    return _REGEX_SPECIAL.sub(r"\\\1", value)


def substitute(query: str, values: dict[str, str]) -> str:
    for macro, text in MACROS.items():
        query = query.replace(macro, text)
    # Longest names first, so $lot does not eat into a hypothetical $lot_x.
    for name in sorted(values, key=len, reverse=True):
        query = query.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    assert not re.search(r"\$\w", query), f"unsubstituted variable in {query}"
    return query


def series(influxd: InfluxServer, db: str, query: str) -> list[dict[str, Any]]:
    answer = influxd.query(query, db=db)
    return [s for r in answer["results"] for s in r.get("series", [])]


def selected_columns(query: str) -> list[str]:
    """The column names a SELECT produces: its aliases, plain fields and ``::tag`` columns."""
    head = query.split(" FROM ", 1)[0].removeprefix("SELECT ")
    names = []
    for item in re.split(r",\s*(?![^()]*\))", head):
        alias = re.search(r'AS "([^"]+)"$', item.strip())
        plain = re.fullmatch(r'"([^"]+)"(?:::tag)?', item.strip())
        match = alias or plain
        assert match, f"cannot name the column of {item!r}"
        names.append(match.group(1))
    return names


def resolve_variables(influxd: InfluxServer, db: str, board: dict[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for var in board["templating"]["list"]:
        if var["type"] == "datasource":
            values[var["name"]] = build.DATASOURCE_UID
            continue
        found = series(influxd, db, substitute(var["query"], values))
        assert found, f"variable {var['name']} has no values: {var['query']}"
        assert found[0]["columns"] == ["key", "value"]
        options = sorted({row[1] for s in found for row in s["values"]})
        assert options, var["name"]
        if var["includeAll"]:
            values[var["name"]] = "(" + "|".join(escape(o) for o in options) + ")"
        else:
            values[var["name"]] = escape(options[0])
    return values


def board_queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in board["panels"]:
        for t in panel["targets"]:
            yield f"{panel['title']} [{t['refId']}]", t["query"]
    for ann in board["annotations"]["list"]:
        yield f"annotation {ann['name']}", ann["query"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_every_query_answers_rows_with_its_columns(influxd, loaded, path: Path):
    board = json.loads(path.read_text(encoding="utf-8"))
    values = resolve_variables(influxd, loaded, board)
    checked = 0
    for where, query in board_queries(board):
        found = series(influxd, loaded, substitute(query, values))
        assert found, f"{board['title']} / {where}: no rows for {query}"
        seen: set[str] = set()
        for s in found:
            assert s["values"], where
            missing = set(selected_columns(query)) - set(s["columns"])
            assert not missing, f"{where}: columns {missing} absent from {s['columns']}"
            for i, column in enumerate(s["columns"]):
                if any(row[i] is not None for row in s["values"]):
                    seen.add(column)
        empty = set(selected_columns(query)) - seen
        assert not empty, f"{where}: columns {empty} hold no value in any row"
        checked += 1
    assert checked >= 3


def test_variables_chain_to_the_loaded_session(influxd, loaded):
    board = json.loads((build.ROOT / "json" / "hallmark-lot-review.json").read_text())
    values = resolve_variables(influxd, loaded, board)
    assert values["bench"] == f"({escape(BENCH)})"
    assert values["sku"] == escape(SKU)
    assert values["lot"] == "(" + "|".join(escape(lot) for lot in sorted(LOTS)) + ")"
    assert values["phase"] == "(bulk|golden-sample)"
    spc = json.loads((build.ROOT / "json" / "hallmark-thickness-spc.json").read_text())
    assert resolve_variables(influxd, loaded, spc)["layer"] == "(Au|Ni)"
    health = json.loads((build.ROOT / "json" / "hallmark-instrument-health.json").read_text())
    instruments = resolve_variables(influxd, loaded, health)["instrument"]
    assert instruments == "(" + "|".join(escape(i) for i in sorted(INSTRUMENTS)) + ")"


def test_lot_review_compares_golden_sample_with_bulk(influxd, loaded):
    board = json.loads((build.ROOT / "json" / "hallmark-lot-review.json").read_text())
    values = resolve_variables(influxd, loaded, board)
    query = substitute(board["panels"][0]["targets"][0]["query"], values)
    rows = {
        (s["name"], s["tags"]["feature"], s["tags"]["phase"]): dict(
            zip(s["columns"], s["values"][0], strict=True)
        )
        for s in series(influxd, loaded, query)
    }
    golden = rows[("thickness", "layer_Au", "golden-sample")]
    bulk = rows[("thickness", "layer_Au", "bulk")]
    assert golden["n"] == bulk["n"] == 12
    assert bulk["mean"] < golden["mean"] - 0.05  # the bulk lot drifts low on gold
    assert rows[("force", "jump_ring_pull", "bulk")]["min"] < 25.0


def test_session_timestamps_are_within_the_last_hour():
    now = time.time_ns()
    assert all(now - 3600 * 10**9 < p.time_ns <= now for p in session(now))


def _rows(
    influxd: InfluxServer, db: str, query: str
) -> list[tuple[dict[str, str], list[dict[str, Any]]]]:
    """Each series' tags and its rows as column → value."""
    return [
        (s.get("tags", {}), [dict(zip(s["columns"], row, strict=True)) for row in s["values"]])
        for s in series(influxd, db, query)
    ]


def _query(board: dict[str, Any], title: str, ref: str = "A") -> str:
    (panel,) = [p for p in board["panels"] if p["title"].startswith(title)]
    (found,) = [t["query"] for t in panel["targets"] if t["refId"] == ref]
    return str(found)


def test_spc_control_limits_run_from_the_golden_baseline_to_the_end(influxd, loaded):
    board = json.loads((build.ROOT / "json" / "hallmark-thickness-spc.json").read_text())
    values = resolve_variables(influxd, loaded, board)
    limits = substitute(_query(board, "Thickness", "B"), values)
    found = _rows(influxd, loaded, limits)
    assert {tags["feature"] for tags, _ in found} == {"layer_Au", "layer_Ni"}
    for _, rows in found:
        first = next(i for i, r in enumerate(rows) if r["UCL"] is not None)
        filled = rows[first:]
        assert first > 0 and len(filled) > 30  # from the golden lot's close to "now"
        assert len({(r["baseline mean"], r["UCL"], r["LCL"]) for r in filled}) == 1
        mean, ucl, lcl = filled[-1]["baseline mean"], filled[-1]["UCL"], filled[-1]["LCL"]
        assert abs((ucl - mean) - (mean - lcl)) < 1e-9 and lcl < mean < ucl
    # A single layer, as each repeated panel sees it, keeps to its own feature.
    single = substitute(_query(board, "Thickness", "B"), {**values, "layer": "Au"})
    assert [tags["feature"] for tags, _ in _rows(influxd, loaded, single)] == ["layer_Au"]


def test_lot_review_shows_capability_and_sampling_progress(influxd, loaded):
    board = json.loads((build.ROOT / "json" / "hallmark-lot-review.json").read_text())
    values = resolve_variables(influxd, loaded, board)
    capability = {
        (tags["feature"], tags["phase"]): (tags["index"], rows[-1])
        for tags, rows in _rows(influxd, loaded, substitute(_query(board, "Process"), values))
    }
    index, golden = capability[("jump_ring_pull", "golden-sample")]
    _, bulk = capability[("jump_ring_pull", "bulk")]
    assert index == "Cpl"  # a minimum only
    assert capability[("layer_Au", "bulk")][0] == "Cpk"
    assert bulk["upper"] < golden["value"]  # the bulk lot's weaker pull is out of the interval
    for _, row in capability.values():
        assert row["lower"] < row["value"] < row["upper"] and row["n"] >= 5
    progress = {
        (tags["lot"], tags["defect_class"]): rows[-1]
        for tags, rows in _rows(influxd, loaded, substitute(_query(board, "Acceptance"), values))
    }
    assert len(progress) == 6
    rejected = progress[("L-B-02", "major")]
    assert rejected["nonconforming"] >= rejected["reject"]
    for row in progress.values():
        assert row["inspected"] <= row["sample_size"] and row["accept"] < row["reject"]
    assert all(
        row["nonconforming"] <= row["accept"]
        for (lot, _), row in progress.items()
        if lot == "L-GS-01"
    )
