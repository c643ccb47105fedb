"""Build Hallmark's Grafana dashboards and provisioning files from code.

Run ``python -m dashboards.build`` from the repository root to regenerate ``dashboards/json/``
and ``dashboards/provisioning/``; ``tests/dashboards`` fails when the committed files differ
from what this module produces, and runs every query below against a real InfluxDB.

Conventions every query follows, so that one test can check them all:

* InfluxQL only (InfluxDB 1.8+, 2.x through a DBRP mapping, 3.x).
* Template variables are matched as regexes, ``"tag" =~ /^$var$/``: Grafana expands a
  multi-value or "All" selection into ``(a|b)`` with the values regex-escaped.
* Time ranges come from ``$timeFilter``; buckets from ``$__interval``.
* Every panel and every query variable uses the ``$datasource`` variable.

The schema the queries read is docs/schema.md (measurements, tags and fields).
"""

# S608: the queries are built from this module's constants only; nothing comes from outside.
# ruff: noqa: S608

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafanalib import core as g  # type: ignore[import-untyped]
from grafanalib._gen import DashboardEncoder  # type: ignore[import-untyped]
from grafanalib.influxdb import InfluxDBTarget  # type: ignore[import-untyped]

__all__ = [
    "DATASOURCE",
    "DATASOURCE_UID",
    "ROOT",
    "build_dashboards",
    "main",
    "render",
]

#: Where the generated files go: the ``dashboards`` folder this module lives in.
ROOT = Path(__file__).resolve().parent

#: The uid of the provisioned datasource (dashboards default to it through ``$datasource``).
DATASOURCE_UID = "hallmark-influxdb"

#: How every panel, variable and annotation names its datasource.
DATASOURCE: dict[str, str] = {"type": "influxdb", "uid": "${datasource}"}

#: The measurements that carry judged instrument values (``value``, ``status``, limits).
VALUE_MEASUREMENTS = "/^(chamber|thickness|force|torque|corrosion|abrasion)$/"
#: The measurements a lot review compares between golden sample and production.
LOT_MEASUREMENTS = "/^(thickness|force|torque|corrosion|abrasion)$/"

STATUSES: tuple[str, ...] = ("pass", "marginal", "fail", "suspect")
#: Judged values that did not pass (``none`` is not judged, so it is no excursion).
NOT_PASSING = '"status" =~ /^(marginal|fail|suspect)$/'
#: Events about an instrument's link.
INSTRUMENT_EVENTS = '"kind" =~ /^instrument_(offline|online|warning)$/'


# -- small builders ---------------------------------------------------------------------------


def match(tag: str, var: str | None = None) -> str:
    """``"tag" =~ /^$var$/``: the filter a (multi-value) template variable expands into."""
    return f'"{tag}" =~ /^${var or tag}$/'


def eq(key: str, value: str, op: str = "=") -> str:
    """``"key" = 'value'`` (or another operator): a tag or string-field comparison."""
    return f"\"{key}\" {op} '{value}'"


def where(*conditions: str) -> str:
    """The conditions joined with AND, always ending with ``$timeFilter``."""
    return " AND ".join([*conditions, "$timeFilter"])


def target(query: str, ref: str, alias: str = "", fmt: str = "time_series") -> Any:
    """A raw InfluxQL target on the dashboard's datasource."""
    return InfluxDBTarget(
        query=query, refId=ref, alias=alias, format=fmt, datasource=DATASOURCE, rawQuery=True
    )


def targets(queries: Sequence[str], fmt: str = "time_series") -> list[Any]:
    """Targets A, B, C... for the queries, in order."""
    return [target(q, chr(ord("A") + i), fmt=fmt) for i, q in enumerate(queries)]


def pos(x: int, y: int, w: int, h: int) -> Any:
    return g.GridPos(h=h, w=w, x=x, y=y)


def datasource_variable() -> Any:
    return g.Template(
        name="datasource",
        label="InfluxDB",
        query="influxdb",
        type="datasource",
        default=DATASOURCE_UID,
        refresh=1,
    )


def tag_variable(
    name: str,
    query: str,
    *,
    label: str,
    multi: bool = True,
    regex: str | None = None,
    hide: int = 0,
) -> Any:
    """A query variable over ``SHOW TAG VALUES``; multi-value ones offer "All"."""
    return g.Template(
        name=name,
        label=label,
        query=query,
        dataSource=DATASOURCE,
        multi=multi,
        includeAll=multi,
        regex=regex,
        refresh=2,  # on time range change: new lots and instruments appear without a reload
        sort=1,
        hide=hide,
    )


def bench_variable() -> Any:
    return tag_variable("bench", 'SHOW TAG VALUES WITH KEY = "bench"', label="Bench")


def sku_variable(multi: bool = False) -> Any:
    return tag_variable(
        "sku", f'SHOW TAG VALUES WITH KEY = "sku" WHERE {match("bench")}', label="SKU", multi=multi
    )


def lot_variable() -> Any:
    return tag_variable(
        "lot",
        f'SHOW TAG VALUES WITH KEY = "lot" WHERE {match("bench")} AND {match("sku")}',
        label="Lot",
    )


def phase_variable() -> Any:
    return tag_variable(
        "phase",
        f'SHOW TAG VALUES WITH KEY = "phase" WHERE {match("sku")} AND {match("lot")}',
        label="Phase",
    )


def instrument_variable(measurement: str = "daq_health") -> Any:
    return tag_variable(
        "instrument",
        f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "instrument" WHERE {match("bench")}',
        label="Instrument",
    )


def run_variable() -> Any:
    return tag_variable(
        "run",
        f'SHOW TAG VALUES FROM "exposure" WITH KEY = "run" WHERE {match("bench")}',
        label="Salt-spray run",
    )


def annotation(name: str, query: str, color: str, text: str = "message") -> dict[str, Any]:
    """An InfluxQL annotation: the ``message`` column as text, tag columns as tags."""
    return {
        "datasource": DATASOURCE,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "name": name,
        "query": query,
        "textColumn": text,
        "tagsColumn": "kind,feature,rule,instrument",
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Any],
    variables: list[Any],
    *,
    annotations: Sequence[dict[str, Any]] = (),
    since: str = "now-6h",
) -> Any:
    return g.Dashboard(
        uid=uid,
        title=title,
        description=description,
        tags=["hallmark"],
        panels=panels,
        templating=g.Templating(list=[datasource_variable(), *variables]),
        annotations=g.Annotations(list=list(annotations)),
        time=g.Time(since, "now"),
        timezone="utc",
        refresh="30s",
        schemaVersion=37,
        graphTooltip=1,
    ).auto_panel_ids()


# -- 1 Bench overview -------------------------------------------------------------------------


def bench_overview() -> Any:
    bench = match("bench")
    inst = match("instrument")
    online = (
        'SELECT last("online") AS "online", last("latency_ms") AS "latency_ms" '
        f'FROM "daq_health" WHERE {where(bench, inst)} GROUP BY "instrument"'
    )
    last_reading = (
        'SELECT last("value") AS "value", "unit", "status" '
        f'FROM {VALUE_MEASUREMENTS} WHERE {where(bench, inst)} GROUP BY "instrument", "feature"'
    )
    verdicts = [
        f'SELECT count("value") AS "{s}" FROM {VALUE_MEASUREMENTS} '
        f"WHERE {where(bench, inst, eq('status', s))}"
        for s in STATUSES
    ]
    backlog = (
        'SELECT last("backlog") AS "backlog" FROM "daq_health" '
        f"WHERE {where(bench, eq('component', 'journal'))} "
        'GROUP BY time($__interval), "bench" fill(none)'
    )
    offline = (
        'SELECT "message", "kind"::tag, "instrument"::tag FROM "event" '
        f"WHERE {where(bench, INSTRUMENT_EVENTS)}"
    )
    panels = [
        g.Table(
            title="Instruments online",
            description="Last health report per instrument (daq_health, field online).",
            dataSource=DATASOURCE,
            targets=[target(online, "A", fmt="table")],
            gridPos=pos(0, 0, 10, 8),
        ),
        g.Stat(
            title="Verdicts in range",
            description="Judged values per status, per measurement, in the time range.",
            dataSource=DATASOURCE,
            targets=targets(verdicts),
            reduceCalc="sum",
            graphMode="none",
            gridPos=pos(10, 0, 14, 8),
        ),
        g.Table(
            title="Last reading per instrument",
            dataSource=DATASOURCE,
            targets=[target(last_reading, "A", fmt="table")],
            gridPos=pos(0, 8, 14, 10),
        ),
        g.TimeSeries(
            title="Journal backlog (rows not yet in the database)",
            dataSource=DATASOURCE,
            targets=[target(backlog, "A", alias="$tag_bench")],
            gridPos=pos(14, 8, 10, 10),
        ),
        g.Table(
            title="Instrument events",
            dataSource=DATASOURCE,
            targets=[target(offline, "A", fmt="table")],
            gridPos=pos(0, 18, 24, 8),
        ),
    ]
    return dashboard(
        "hallmark-bench-overview",
        "Hallmark · Bench overview",
        "Which instruments answer, what they read last, verdicts and the journal backlog.",
        panels,
        [bench_variable(), instrument_variable()],
        since="now-1h",
    )


# -- 2 Lot review -----------------------------------------------------------------------------


def lot_review() -> Any:
    ctx = (match("sku"), match("lot"), match("phase"))
    stats = (
        'SELECT count("value") AS "n", mean("value") AS "mean", stddev("value") AS "stddev", '
        'min("value") AS "min", max("value") AS "max" '
        f'FROM {LOT_MEASUREMENTS} WHERE {where(*ctx)} GROUP BY "feature", "phase", "lot"'
    )
    baseline_z = (
        'SELECT mean("baseline_z") AS "baseline_z" '
        f"FROM {LOT_MEASUREMENTS} WHERE {where(*ctx)} "
        'GROUP BY time($__interval), "feature", "lot" fill(none)'
    )
    drift = (
        'SELECT "message", "statistic", "limit", "baseline_mean", "baseline_sigma", '
        '"direction", "feature"::tag, "rule"::tag, "instrument"::tag, "lot"::tag '
        f'FROM "event" WHERE {where(*ctx, eq("kind", "drift_alarm"))}'
    )
    decisions = (
        'SELECT "decision", "units_inspected", "sample_size", "failures", "drift_alarms", '
        '"suspect", "lot"::tag, "po"::tag, "phase"::tag '
        f'FROM "lot_decision" WHERE {where(*ctx)}'
    )
    # The latest figure per lot and feature: a re-closed lot writes new points, last() keeps
    # the newest, and a single selector brings the other fields of the same point along.
    capability = (
        'SELECT last("value") AS "value", "lower", "upper", "n", "mean" '
        f'FROM "capability" WHERE {where(*ctx)} '
        'GROUP BY "lot", "phase", "of", "feature", "index"'
    )
    progress = (
        'SELECT last("inspected") AS "inspected", "sample_size", "nonconforming", "accept", '
        '"reject", "aql", "state", "code_letter" '
        f'FROM "lot_progress" WHERE {where(*ctx)} GROUP BY "lot", "defect_class"'
    )
    panels = [
        g.Table(
            title="Golden sample vs production, per feature",
            description="Mean and spread of each feature per phase and lot, side by side.",
            dataSource=DATASOURCE,
            targets=[target(stats, "A", fmt="table")],
            gridPos=pos(0, 0, 24, 10),
            sortBy=[g.TableSortByField(displayName="feature")],
        ),
        g.TimeSeries(
            title="Shift from the golden-sample baseline (σ)",
            dataSource=DATASOURCE,
            targets=[target(baseline_z, "A", alias="$tag_feature $tag_lot")],
            unit="none",
            gridPos=pos(0, 10, 24, 9),
        ),
        g.Table(
            title="Drift alarms",
            dataSource=DATASOURCE,
            targets=[target(drift, "A", fmt="table")],
            gridPos=pos(0, 19, 24, 8),
        ),
        g.Table(
            title="Lot decisions",
            dataSource=DATASOURCE,
            targets=[target(decisions, "A", fmt="table")],
            gridPos=pos(0, 27, 24, 6),
        ),
        g.Table(
            title="Acceptance sampling progress per defect class",
            description=(
                "Last lot_progress point per lot and defect class: units inspected of the "
                "sample size, nonconforming units against the accept/reject numbers, the "
                "switching state, AQL and code letter (ISO 2859-1 / ANSI Z1.4)."
            ),
            dataSource=DATASOURCE,
            targets=[target(progress, "A", fmt="table")],
            gridPos=pos(0, 33, 24, 7),
            sortBy=[g.TableSortByField(displayName="lot")],
        ),
        g.Table(
            title="Process capability per lot (Cpk, Cpl, Cpu with 95 % interval)",
            description=(
                "Written when a lot closes, for every judged feature with at least 5 values: "
                "the index (Cpk two-sided, Cpl for a minimum, Cpu for a maximum), its 95 % "
                "confidence interval lower–upper (Bissell), n and the mean."
            ),
            dataSource=DATASOURCE,
            targets=[target(capability, "A", fmt="table")],
            gridPos=pos(0, 40, 24, 9),
            sortBy=[g.TableSortByField(displayName="feature")],
        ),
    ]
    return dashboard(
        "hallmark-lot-review",
        "Hallmark · Lot review",
        "One SKU's lots: golden sample against production, drift alarms, lot decisions, "
        "sampling progress and capability.",
        panels,
        [bench_variable(), sku_variable(), lot_variable(), phase_variable()],
        since="now-7d",
    )


# -- 3 Plating thickness SPC ------------------------------------------------------------------


def thickness_spc() -> Any:
    ctx = (match("bench"), match("sku"), match("lot"), match("phase"))
    per_layer = (
        'SELECT "value" AS "thickness", "low", "high" FROM "thickness" '
        f'WHERE {where(*ctx, match("layer"))} GROUP BY "layer"'
    )
    summary = (
        'SELECT count("value") AS "n", mean("value") AS "mean", stddev("value") AS "stddev", '
        'min("value") AS "min", min("low") AS "low", max("high") AS "high", '
        'mean("uncertainty") AS "uncertainty" '
        f'FROM "thickness" WHERE {where(*ctx, match("layer"))} '
        'GROUP BY "layer", "phase"'
    )
    # Control limits from the golden-sample baseline, fixed when the golden lot closed: one
    # point per feature and instrument (no layer tag, hence the feature regex), with the golden
    # lot's context, so it is matched on bench and SKU only, never on $lot or $phase (the
    # limits apply to the bulk lots being charted). InfluxQL cannot draw a constant across the
    # range from one point; last() per $__interval bucket with fill(previous) repeats the
    # newest baseline from the bucket it was written in to the end of the range, as lines next
    # to the individuals (a new baseline version shows as a step). That returns rows whenever
    # the baseline lies in the time range, as every other query needs; buckets before it stay
    # empty. The table below gives the same figures with σ, n and version.
    baseline_scope = (
        match("bench"),
        match("sku"),
        eq("of", "thickness"),
        '"feature" =~ /^layer_$layer$/',
    )
    limits = (
        'SELECT last("mean") AS "baseline mean", last("ucl") AS "UCL", last("lcl") AS "LCL" '
        f'FROM "baseline" WHERE {where(*baseline_scope)} '
        'GROUP BY time($__interval), "feature", "instrument" fill(previous)'
    )
    baseline = (
        'SELECT last("mean") AS "mean", "sigma", "lcl", "ucl", "n", "version" '
        f'FROM "baseline" WHERE {where(*baseline_scope)} GROUP BY "feature", "instrument", "lot"'
    )
    drift = annotation(
        "Drift alarms",
        'SELECT "message", "kind"::tag, "feature"::tag, "rule"::tag, "instrument"::tag '
        f'FROM "event" WHERE {where(match("sku"), eq("kind", "drift_alarm"))}',
        "red",
    )
    layer = tag_variable(
        "layer",
        f'SHOW TAG VALUES FROM "thickness" WITH KEY = "layer" WHERE {match("sku")}',
        label="Layer",
    )
    panels = [
        g.TimeSeries(
            title="Thickness $layer",
            description=(
                "Each reading with the low/high limits in force (µm), and the individuals "
                "chart's centre line and control limits (mean ± 3σ) from the golden-sample "
                "baseline, from the time it was fixed."
            ),
            dataSource=DATASOURCE,
            targets=[
                target(per_layer, "A", alias="$tag_layer $col"),
                target(limits, "B", alias="$tag_feature $col ($tag_instrument)"),
            ],
            unit="lengthum",
            drawStyle="points",
            pointSize=6,
            repeat=g.Repeat(direction="h", variable="layer", maxPerRow=2),
            gridPos=pos(0, 0, 12, 9),
        ),
        g.Table(
            title="Layer summary per phase",
            dataSource=DATASOURCE,
            targets=[target(summary, "A", fmt="table")],
            gridPos=pos(0, 9, 14, 7),
        ),
        g.Table(
            title="Golden-sample baseline and control limits",
            description="The baseline per layer and XRF: mean, σ, LCL/UCL = mean ∓ 3σ, n, version.",
            dataSource=DATASOURCE,
            targets=[target(baseline, "A", fmt="table")],
            gridPos=pos(14, 9, 10, 7),
        ),
    ]
    return dashboard(
        "hallmark-thickness-spc",
        "Hallmark · Plating thickness SPC",
        "XRF thickness per layer against its spec and the golden-sample control limits, "
        "drift alarms as annotations.",
        panels,
        [bench_variable(), sku_variable(), lot_variable(), phase_variable(), layer],
        annotations=[drift],
        since="now-24h",
    )


# -- 4 Mechanical tests -----------------------------------------------------------------------


def mechanical() -> Any:
    ctx = (match("bench"), match("sku"), match("lot"), match("phase"))

    def values(measurement: str, *extra: str) -> str:
        fields = ", ".join(f'"{f}"' for f in ("value", "low", *extra))
        return f'SELECT {fields} FROM "{measurement}" WHERE {where(*ctx)} GROUP BY "feature"'

    counts = [
        f'SELECT count("value") AS "{s}" FROM /^(force|torque)$/ '
        f"WHERE {where(*ctx, eq('status', s))}"
        for s in ("pass", "marginal", "fail")
    ]
    tests = (
        'SELECT "value", "unit", "status", "low", "outcome", "time_to_break_s", "held", '
        '"test_reason", "feature"::tag, "instrument"::tag, "lot"::tag '
        f"FROM /^(force|torque)$/ WHERE {where(*ctx)}"
    )
    modes = (
        'SELECT "mode", "sample_unit", "entered_by", "feature"::tag, "lot"::tag, "phase"::tag '
        f'FROM "failure_mode" WHERE {where(*ctx)}'
    )
    wear = (
        'SELECT "value" AS "wear_index", "high" AS "max" '
        f'FROM "abrasion" WHERE {where(*ctx, eq("feature", "wear_index"))} GROUP BY "lot"'
    )
    abrasion_tests = (
        'SELECT "value" AS "cycles", "preset_cycles", "outcome", "load_g", "wheel", '
        '"mean_speed_rpm", "flags", "instrument"::tag, "lot"::tag '
        f'FROM "abrasion" WHERE {where(*ctx, eq("feature", "test"))}'
    )
    panels = [
        g.TimeSeries(
            title="Pull and retention force vs minimum",
            dataSource=DATASOURCE,
            targets=[target(values("force", "break_force"), "A", alias="$tag_feature $col")],
            unit="none",
            drawStyle="points",
            pointSize=6,
            gridPos=pos(0, 0, 12, 9),
        ),
        g.TimeSeries(
            title="Torque vs minimum",
            dataSource=DATASOURCE,
            targets=[target(values("torque"), "A", alias="$tag_feature $col")],
            drawStyle="points",
            pointSize=6,
            gridPos=pos(12, 0, 12, 9),
        ),
        g.Stat(
            title="Results by status",
            dataSource=DATASOURCE,
            targets=targets(counts),
            reduceCalc="sum",
            graphMode="none",
            gridPos=pos(0, 9, 8, 8),
        ),
        g.Table(
            title="Failure modes",
            dataSource=DATASOURCE,
            targets=[target(modes, "A", fmt="table")],
            gridPos=pos(8, 9, 16, 8),
        ),
        g.Table(
            title="Tests",
            dataSource=DATASOURCE,
            targets=[target(tests, "A", fmt="table")],
            gridPos=pos(0, 17, 24, 10),
        ),
        g.TimeSeries(
            title="Taber wear index vs maximum (mg per 1000 cycles)",
            description="ASTM D4060 wear index entered per coupon: a shortened cure wears faster.",
            dataSource=DATASOURCE,
            targets=[target(wear, "A", alias="$tag_lot $col")],
            drawStyle="points",
            pointSize=6,
            gridPos=pos(0, 27, 12, 9),
        ),
        g.Table(
            title="Abrasion tests (tester's counter)",
            dataSource=DATASOURCE,
            targets=[target(abrasion_tests, "A", fmt="table")],
            gridPos=pos(12, 27, 12, 9),
        ),
    ]
    return dashboard(
        "hallmark-mechanical",
        "Hallmark · Mechanical tests",
        "Force and torque tests against their minimums, verdicts and failure modes; abrasion.",
        panels,
        [bench_variable(), sku_variable(), lot_variable(), phase_variable()],
        since="now-24h",
    )


# -- 5 Chamber compliance ---------------------------------------------------------------------


def chamber() -> Any:
    scope = (match("bench"), match("instrument"))
    temperature = (
        'SELECT mean("value") AS "temperature", min("low") AS "low", max("high") AS "high" '
        f'FROM "chamber" WHERE {where(*scope, eq("feature", "temperature"))} '
        'GROUP BY time($__interval), "instrument" fill(none)'
    )
    setpoint = (
        'SELECT mean("value") AS "setpoint" '
        f'FROM "chamber" WHERE {where(*scope, eq("feature", "setpoint"))} '
        'GROUP BY time($__interval), "instrument" fill(none)'
    )
    excursions = (
        'SELECT "value", "status", "margin", "low", "high", "feature"::tag, "instrument"::tag '
        f'FROM "chamber" WHERE {where(*scope, NOT_PASSING)}'
    )
    events = (
        'SELECT "message", "severity", "kind"::tag, "instrument"::tag FROM "event" '
        f"WHERE {where(*scope, INSTRUMENT_EVENTS)}"
    )
    offline = annotation(
        "Instrument offline",
        'SELECT "message", "kind"::tag, "instrument"::tag FROM "event" '
        f"WHERE {where(*scope, eq('kind', 'instrument_offline'))}",
        "orange",
    )
    runs = (match("bench"), match("run"))
    per_run = (
        'SELECT last("valid_hours") AS "valid_hours", last("target_hours") AS "target_hours", '
        'last("excursions") AS "excursions", '
        'last("lost_hours_temperature") AS "lost_temperature_h", '
        'last("lost_hours_saturator") AS "lost_saturator_h", '
        'last("lost_hours_ph") AS "lost_ph_h", '
        'last("lost_hours_collection_rate") AS "lost_collection_h", '
        'last("lost_hours_no_data") AS "lost_no_data_h" '
        f'FROM "exposure" WHERE {where(*runs, eq("specimen", "", "="))} GROUP BY "run", "cabinet"'
    )
    over_time = (
        'SELECT last("valid_hours") AS "valid_hours" '
        f'FROM "exposure" WHERE {where(*runs, eq("specimen", "", "="))} '
        'GROUP BY time($__interval), "run" fill(previous)'
    )
    per_specimen = (
        'SELECT last("valid_hours") AS "valid_hours" '
        f'FROM "exposure" WHERE {where(*runs, eq("specimen", "", "!="))} '
        'GROUP BY "run", "specimen", "sku", "lot"'
    )
    ratings = (
        'SELECT "value" AS "rating", "hours", "status", "run", "specimen", "low", '
        '"sku"::tag, "lot"::tag '
        f'FROM "corrosion" WHERE {where(match("bench"), match("run"))}'
    )
    panels = [
        g.TimeSeries(
            title="Chamber temperature and its band",
            description="Mean per interval with the low/high limits in force (e.g. 33–37 °C).",
            dataSource=DATASOURCE,
            targets=[
                target(temperature, "A", alias="$tag_instrument $col"),
                target(setpoint, "B", alias="$tag_instrument $col"),
            ],
            unit="celsius",
            gridPos=pos(0, 0, 24, 10),
        ),
        g.Table(
            title="Excursions (readings not passing)",
            dataSource=DATASOURCE,
            targets=[target(excursions, "A", fmt="table")],
            gridPos=pos(0, 10, 12, 9),
        ),
        g.Table(
            title="Chamber link events",
            dataSource=DATASOURCE,
            targets=[target(events, "A", fmt="table")],
            gridPos=pos(12, 10, 12, 9),
        ),
        g.Table(
            title="Valid exposure per run (ASTM B117 / ISO 9227), and hours not counted",
            description="Hours count only while the zone, the saturator and the daily pH and"
            " collection checks are all within limits.",
            dataSource=DATASOURCE,
            targets=[target(per_run, "A", fmt="table")],
            gridPos=pos(0, 19, 24, 7),
        ),
        g.TimeSeries(
            title="Valid exposure hours",
            dataSource=DATASOURCE,
            targets=[target(over_time, "A", alias="$tag_run")],
            unit="h",
            gridPos=pos(0, 26, 12, 9),
        ),
        g.Table(
            title="Specimens: valid exposure hours",
            dataSource=DATASOURCE,
            targets=[target(per_specimen, "A", fmt="table")],
            gridPos=pos(12, 26, 12, 9),
        ),
        g.Table(
            title="Corrosion ratings at checks",
            dataSource=DATASOURCE,
            targets=[target(ratings, "A", fmt="table")],
            gridPos=pos(0, 35, 24, 8),
        ),
    ]
    return dashboard(
        "hallmark-chamber",
        "Hallmark · Chamber compliance",
        "Test chamber temperature within its band, excursions, offline periods, valid"
        " exposure per run and specimen, corrosion ratings.",
        panels,
        [bench_variable(), instrument_variable("chamber"), run_variable()],
        annotations=[offline],
        since="now-24h",
    )


# -- 6 Instrument health ----------------------------------------------------------------------


def instrument_health() -> Any:
    scope = (match("bench"), match("instrument"))
    by_time = 'GROUP BY time($__interval), "instrument" fill(none)'
    rates = (
        'SELECT non_negative_derivative(last("polls"), 1m) AS "polls_per_min", '
        'non_negative_derivative(last("errors"), 1m) AS "errors_per_min" '
        f'FROM "daq_health" WHERE {where(*scope)} {by_time}'
    )
    counters = (
        'SELECT last("errors") AS "errors", last("reconnects") AS "reconnects", '
        'last("missed_polls") AS "missed_polls", last("rejected") AS "rejected" '
        f'FROM "daq_health" WHERE {where(*scope)} {by_time}'
    )
    latency = (
        'SELECT mean("latency_ms") AS "latency_ms", mean("mean_latency_ms") AS "mean_latency_ms" '
        f'FROM "daq_health" WHERE {where(*scope)} {by_time}'
    )
    online = f'SELECT last("online") AS "online" FROM "daq_health" WHERE {where(*scope)} {by_time}'
    forwarder = (
        'SELECT last("written") AS "written", last("quarantined") AS "quarantined", '
        'last("retries") AS "retries" '
        f'FROM "daq_health" WHERE {where(match("bench"), eq("component", "forwarder"))} '
        'GROUP BY time($__interval), "sink" fill(none)'
    )
    panels = [
        g.StateTimeline(
            title="Online",
            dataSource=DATASOURCE,
            targets=[target(online, "A", alias="$tag_instrument")],
            gridPos=pos(0, 0, 24, 6),
        ),
        g.TimeSeries(
            title="Polls and errors per minute",
            dataSource=DATASOURCE,
            targets=[target(rates, "A", alias="$tag_instrument $col")],
            gridPos=pos(0, 6, 12, 9),
        ),
        g.TimeSeries(
            title="Errors, reconnects, missed polls, rejected (since start)",
            dataSource=DATASOURCE,
            targets=[target(counters, "A", alias="$tag_instrument $col")],
            gridPos=pos(12, 6, 12, 9),
        ),
        g.TimeSeries(
            title="Latency",
            dataSource=DATASOURCE,
            targets=[target(latency, "A", alias="$tag_instrument $col")],
            unit="ms",
            gridPos=pos(0, 15, 12, 9),
        ),
        g.TimeSeries(
            title="Forwarder: written, quarantined, retries",
            dataSource=DATASOURCE,
            targets=[target(forwarder, "A", alias="$tag_sink $col")],
            gridPos=pos(12, 15, 12, 9),
        ),
    ]
    return dashboard(
        "hallmark-instrument-health",
        "Hallmark · Instrument health",
        "Daemon health figures: polls, errors, reconnects, latency, forwarder.",
        panels,
        [bench_variable(), instrument_variable()],
        since="now-6h",
    )


# -- files ------------------------------------------------------------------------------------


def build_dashboards() -> list[Any]:
    """The six dashboards as grafanalib objects, in their menu order."""
    return [
        bench_overview(),
        lot_review(),
        thickness_spc(),
        mechanical(),
        chamber(),
        instrument_health(),
    ]


DATASOURCE_YAML = f"""\
# Generated by `python -m dashboards.build`; do not edit by hand.
# InfluxQL datasource. INFLUX_URL and INFLUX_DB come from the environment (docker-compose.yml);
# against InfluxDB 2.x/3.x the database name is the DBRP mapping of the bucket, and the token
# goes in as an Authorization header.
apiVersion: 1
datasources:
  - name: Hallmark InfluxDB
    uid: {DATASOURCE_UID}
    type: influxdb
    access: proxy
    url: ${{INFLUX_URL}}
    isDefault: true
    jsonData:
      version: InfluxQL
      dbName: ${{INFLUX_DB}}
      httpMode: POST
      httpHeaderName1: Authorization
    secureJsonData:
      httpHeaderValue1: Token ${{INFLUX_TOKEN}}
"""

PROVIDER_YAML = """\
# Generated by `python -m dashboards.build`; do not edit by hand.
apiVersion: 1
providers:
  - name: hallmark
    folder: Hallmark
    type: file
    disableDeletion: false
    allowUiUpdates: false
    updateIntervalSeconds: 60
    options:
      path: /var/lib/grafana/dashboards/hallmark
"""


def render() -> dict[str, str]:
    """Every generated file: path relative to ``dashboards/`` → its exact text."""
    files: dict[str, str] = {}
    for board in build_dashboards():
        text = json.dumps(board.to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True)
        files[f"json/{board.uid}.json"] = text + "\n"
    files["provisioning/datasources/hallmark.yaml"] = DATASOURCE_YAML
    files["provisioning/dashboards/hallmark.yaml"] = PROVIDER_YAML
    return files


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated files under ``dashboards/`` (or the folder given as argument)."""
    args = list(sys.argv[1:] if argv is None else argv)
    root = Path(args[0]) if args else ROOT
    for rel, text in render().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
