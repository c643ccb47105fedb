"""A simulated hour on one bench, as Hallmark would have written it to InfluxDB.

Four instruments (XRF, force gauge, torque gauge, chamber controller), one SKU in two lots
(golden sample, then bulk drifting low on the gold layer), chamber readings with excursions,
an instrument going offline and back, a drift alarm, a failure mode, daq_health figures and
two lot decisions. Closing the golden lot fixes a baseline (mean, σ, control limits) per
feature, which the bulk lot's ``baseline_z`` and drift alarm refer to; each lot close writes
capability indices, and acceptance-sampling progress is written at lot start, after each visual
inspection and at close. Instrument values go through ``Measurement.to_point`` so that the field
set is exactly the daemon's; events, health, decisions, baselines, capability and progress are
schema points as daq/runtime.py and daq/lotcli.py write them, with the figures from daq.quality.
Timestamps are spread over the last 50 minutes.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterable

from daq.config import CabinetConfig
from daq.model import (
    FieldValue,
    Limits,
    LotContext,
    Measurement,
    Phase,
    Point,
    Reading,
    Sample,
    Status,
    Verdict,
)
from daq.quality.capability import capability_of
from daq.quality.lotreview import MIN_CAPABILITY_N, class_plan
from daq.runs import Run, RunAccount, Specimen, exposure_points

BENCH = "bench-1"
SKU = "RING-042"
PO = "PO-7731"
LOTS: dict[str, Phase] = {"L-GS-01": "golden-sample", "L-B-02": "bulk"}
SPEC_REV = "C"
XRF, GAUGE, TORQUE, CHAMBER = "xrf-1", "gauge-1", "torque-1", "chamber-1"
INSTRUMENTS = (XRF, GAUGE, TORQUE, CHAMBER)
ABRASER = "abraser-1"
CABINET, RUN = "nss-1", "R-118"

MINUTE = 60 * 10**9
#: The lot size both lots are sampled for: ISO 2859-1 level II, normal inspection, code letter
#: E (13 units; the major class's AQL 2.5 has no E plan and moves on to F, 20 units).
LOT_SIZE = 80
#: The default AQLs of a SKU spec (daq/skuspec.py) per defect class.
AQL = {"critical": 0.0, "major": 2.5, "minor": 4.0}
#: Nonconforming units found by visual inspection, per lot and defect class, as
#: (units inspected when found, class): the bulk lot reaches the major reject number.
FINDINGS: dict[str, tuple[tuple[int, str], ...]] = {
    "L-GS-01": ((4, "minor"),),
    "L-B-02": ((7, "major"), (10, "minor"), (12, "major")),
}
#: Units inspected after each visual entry (the lot decisions say 12 units).
VISUAL_ENTRIES = (4, 8, 12)
#: What a baseline or capability is computed over: (measurement, feature, instrument).
Key = tuple[str, str, str]


def _verdict(value: float, low: float | None, high: float | None, guard: float) -> Verdict:
    margins = [
        m
        for m in (None if low is None else value - low, None if high is None else high - value)
        if m is not None
    ]
    margin = min(margins)
    width = (high - low) if low is not None and high is not None else (low or high or 1.0)
    status: Status = "fail" if margin < 0 else "marginal" if margin < guard else "pass"
    return Verdict(status, margin, 100 * margin / width, low, high)


def _measurement(
    instrument: str,
    measurement: str,
    feature: str,
    quantity: str,
    value: float,
    unit: str,
    t: int,
    limits: tuple[float | None, float | None, float],
    context: LotContext,
    *,
    baseline_z: float | None = None,
    extra: tuple[tuple[str, FieldValue], ...] = (),
    scaled: tuple[tuple[str, float], ...] = (),
    suspect: bool = False,
) -> Point:
    sample = Sample(
        instrument,
        measurement,
        feature,
        quantity,
        value,
        unit,
        t,
        raw=f"{value:.4f}",
        extra=extra,
        scaled=scaled,
    )
    verdict = _verdict(value, *limits)
    if suspect:
        verdict = Verdict(
            "suspect",
            verdict.margin,
            verdict.margin_pct,
            verdict.low,
            verdict.high,
            "calibration due 2026-11-01",
        )
    return Measurement(
        BENCH, Reading(sample, value, unit, scaled), verdict, context, baseline_z
    ).to_point()


def _lot_values(points: Iterable[Point], lot: str) -> dict[Key, list[Point]]:
    """The lot's judged instrument points per measurement, feature and instrument."""
    found: dict[Key, list[Point]] = {}
    for p in points:
        if p.tags.get("lot") == lot and p.measurement in ("thickness", "force", "torque"):
            key = (p.measurement, p.tags["feature"], p.tags["instrument"])
            found.setdefault(key, []).append(p)
    return found


def _value(p: Point) -> float:
    value = p.fields["value"]
    assert isinstance(value, float)
    return value


def _baselines(
    values: dict[Key, list[Point]], ctx: LotContext, t: int
) -> tuple[dict[Key, tuple[float, float]], list[Point]]:
    """What closing a golden-sample lot fixes (daq/lotcli.py ``_fix_baselines``): per key the
    (mean, σ) of its values, and the ``baseline`` points with the individuals' control limits.
    """
    fixed: dict[Key, tuple[float, float]] = {}
    points = []
    for (measurement, feature, instrument), found in sorted(values.items()):
        vals = [_value(p) for p in found]
        mean, sigma = statistics.fmean(vals), statistics.stdev(vals)
        fixed[(measurement, feature, instrument)] = (mean, sigma)
        tags = {"bench": BENCH, "of": measurement, "feature": feature, "instrument": instrument}
        fields: dict[str, FieldValue] = {
            "mean": mean,
            "sigma": sigma,
            "n": len(vals),
            "version": 1,
            "ucl": mean + 3 * sigma,
            "lcl": mean - 3 * sigma,
        }
        points.append(Point("baseline", {**tags, **ctx.tags()}, fields, t))
    return fixed, points


def _capability(values: dict[Key, list[Point]], ctx: LotContext, t: int) -> list[Point]:
    """The ``capability`` points of a lot close: Cpk (Cpl/Cpu for one limit) with the 95 %
    interval, over the values that are not suspect (daq/quality/lotreview.py).
    """
    points = []
    for (measurement, feature, _), found in sorted(values.items()):
        judged = [p for p in found if p.fields["status"] != "suspect"]
        if len(judged) < MIN_CAPABILITY_N:
            continue
        low, high = judged[0].fields.get("low"), judged[0].fields.get("high")
        limits = Limits(
            low if isinstance(low, float) else None, high if isinstance(high, float) else None
        )
        cap = capability_of([_value(p) for p in judged], limits)
        index = (
            "Cpk"
            if limits.low is not None and limits.high is not None
            else ("Cpl" if limits.low is not None else "Cpu")
        )
        assert cap.cpk is not None
        tags = {"bench": BENCH, **ctx.tags(), "of": measurement, "feature": feature}
        fields: dict[str, FieldValue] = {
            "value": cap.cpk.value,
            "lower": cap.cpk.lower,
            "upper": cap.cpk.upper,
            "n": cap.n,
            "mean": cap.mean,
        }
        points.append(Point("capability", {**tags, "index": index}, fields, t))
    return points


def _progress(lot: str, ctx: LotContext, times: tuple[int, ...]) -> list[Point]:
    """``lot_progress`` per defect class at lot start, after each visual entry and at close."""
    points = []
    for t, inspected in zip(times, (0, *VISUAL_ENTRIES, VISUAL_ENTRIES[-1]), strict=True):
        for defect_class, aql in AQL.items():
            plan = class_plan(LOT_SIZE, aql, "II", "normal")
            nonconforming = sum(
                1 for at, c in FINDINGS[lot] if c == defect_class and at <= inspected
            )
            fields: dict[str, FieldValue] = {
                "inspected": min(inspected, plan.sample_size),
                "sample_size": plan.sample_size,
                "nonconforming": nonconforming,
                "accept": plan.accept,
                "reject": plan.reject,
                "aql": aql,
                "state": plan.state,
                "code_letter": plan.code_letter,
            }
            tags = {"bench": BENCH, **ctx.tags(), "defect_class": defect_class}
            points.append(Point("lot_progress", tags, fields, t))
    return points


def _salt_spray_run(chamber: list[Point], start: int) -> list[Point]:
    """A salt-spray run over the chamber's readings, accounted by daq/runs.py: two specimens
    (one per lot), a failing pH entry at minute 30 put right at minute 35, ratings at checks."""
    cabinet = CabinetConfig(name=CABINET, zone=CHAMBER)
    run = Run(RUN, CABINET, "ASTM B117", 48.0, start, None, None)
    acc = RunAccount.of(run, cabinet, gap_s=180.0)
    ph = [
        Measurement(
            BENCH,
            Reading(Sample(CHAMBER, "chamber", "ph", "acidity", value, "pH", start + m * MINUTE),
                    value, "pH"),
            _verdict(value, 6.5, 7.2, 0.0), LotContext(), entered_by="tech",
        ).to_point()
        for m, value in ((30, 7.5), (35, 6.9))
    ]  # fmt: skip
    zone = [p for p in chamber if p.tags.get("feature") == "temperature"]
    feed = sorted([*zone, *ph], key=lambda p: p.time_ns)
    out: list[Point] = list(ph)
    specimens: list[Specimen] = []
    for p in feed:
        acc.feed(p)
        minute = (p.time_ns - start) // MINUTE
        if p.tags.get("feature") == "temperature" and minute in (2, 12):
            lot = list(LOTS)[len(specimens)]
            specimens.append(
                Specimen(
                    RUN, f"S{len(specimens) + 1}", SKU, lot, p.time_ns, acc.valid_s, None, None
                )
            )
        if p.tags.get("feature") == "temperature" and minute % 5 == 4:
            out.extend(exposure_points(BENCH, acc, specimens, p.time_ns + 2))
        if p.tags.get("feature") == "temperature" and minute in (25, 45):
            for s in specimens:
                ctx = LotContext(SKU, PO, s.lot, LOTS[s.lot], SPEC_REV)
                hours = s.valid_hours(acc.valid_s)
                rating = 10.0 if minute == 25 else 9.0
                out.append(
                    _measurement("operator", "corrosion", "rating", "rating", rating, "rating",
                                 p.time_ns + 3, (8.0, None, 0.0), ctx,
                                 extra=(("hours", round(hours, 4)), ("run", RUN),
                                        ("specimen", s.specimen), ("cabinet", CABINET)))
                )  # fmt: skip
    return out


def _abrasion(start: int, rng: random.Random) -> list[Point]:
    """Taber wear: the tester's test events (a PLC counter) and the operator's wear index per
    lot; the bulk lot's coupons wear faster (a shortened cure)."""
    out = []
    for lot_index, (lot, phase) in enumerate(LOTS.items()):
        ctx = LotContext(SKU, PO, lot, phase, SPEC_REV)
        for k in range(3):
            t = start + (lot_index * 20 + 5 + 5 * k) * MINUTE
            early = lot_index == 1 and k == 2
            cycles = 640.0 if early else 1000.0
            flags = ("stopped_early",) if early else ()
            sample = Sample(
                ABRASER, "abrasion", "test", "count", cycles, "cycles", t, raw="0 1000",
                flags=flags,
                extra=(("test_number", 10 * lot_index + k), ("preset_cycles", 1000),
                       ("load_g", 1000.0), ("wheel", "CS-17"),
                       ("outcome", "stopped by operator" if early else "end point reached"),
                       ("mean_speed_rpm", 60.0 + rng.gauss(0, 0.3))),
            )  # fmt: skip
            out.append(Measurement(BENCH, Reading(sample, cycles, "cycles"), Verdict("none"),
                                   ctx).to_point())  # fmt: skip
            wear = (8.0 if lot_index == 0 else 13.0) + rng.gauss(0, 0.8)
            out.append(
                _measurement("operator", "abrasion", "wear_index", "wear_index", wear,
                             "mg/1000 cycles", t + MINUTE, (None, 15.0, 1.0), ctx,
                             extra=(("cycles", cycles), ("mass_loss_mg", wear * cycles / 1000)))
            )  # fmt: skip
    return out


def session(now_ns: int | None = None, seed: int = 7) -> list[Point]:
    """Every point of the simulated session, oldest first."""
    rng = random.Random(seed)
    now = time.time_ns() if now_ns is None else now_ns
    start = now - 50 * MINUTE
    points: list[Point] = []
    #: (mean, σ) per (measurement, feature, instrument), fixed when the golden lot closes.
    baseline: dict[Key, tuple[float, float]] = {}

    def z(key: Key, value: float) -> float | None:
        """The shift from the golden-sample baseline, in σ, once there is one."""
        if key not in baseline:
            return None
        mean, sigma = baseline[key]
        return (value - mean) / sigma

    # Chamber: a reading a minute, band 33-37 °C, two excursions; setpoint 35 °C.
    for i in range(50):
        t = start + i * MINUTE
        temp = 35.0 + rng.gauss(0, 0.4)
        if i in (20, 21):
            temp = 37.6 if i == 20 else 36.8
        ctx = LotContext()
        points.append(
            _measurement(
                CHAMBER,
                "chamber",
                "temperature",
                "temperature",
                temp,
                "°C",
                t,
                (33.0, 37.0, 0.3),
                ctx,
            )
        )
        points.append(
            Measurement(
                BENCH,
                Reading(
                    Sample(CHAMBER, "chamber", "setpoint", "temperature", 35.0, "°C", t + 1),
                    35.0,
                    "°C",
                ),
                Verdict("none"),
            ).to_point()
        )

    points.extend(_salt_spray_run(points, start))
    points.extend(_abrasion(start, rng))

    # Thickness, force, torque for both lots: golden sample first, then bulk.
    for lot_index, (lot, phase) in enumerate(LOTS.items()):
        ctx = LotContext(SKU, PO, lot, phase, SPEC_REV)
        t0 = start + lot_index * 20 * MINUTE + 30 * 10**9
        bulk = phase == "bulk"
        for i in range(12):
            t = t0 + i * MINUTE
            au = 1.0 + rng.gauss(0, 0.04) - (0.02 * i if bulk else 0.0)
            ni = 3.0 + rng.gauss(0, 0.1)
            for feature, value, limits in (
                ("layer_Au", au, (0.75, 1.5, 0.05)),
                ("layer_Ni", ni, (2.5, 4.0, 0.1)),
            ):
                points.append(
                    _measurement(
                        XRF,
                        "thickness",
                        feature,
                        "length",
                        value,
                        "µm",
                        t,
                        limits,
                        ctx,
                        baseline_z=z(("thickness", feature, XRF), value),
                        extra=(
                            ("uncertainty", 0.02),
                            ("application", "Au-Ni-Brass"),
                            ("reading", i + 1),
                        ),
                        suspect=bulk and i == 11 and feature == "layer_Ni",
                    )
                )
            pull = 40.0 + rng.gauss(0, 3.0) - (1.5 * i if bulk else 0.0)
            points.append(
                _measurement(
                    GAUGE,
                    "force",
                    "jump_ring_pull",
                    "force",
                    pull,
                    "N",
                    t + 10**9,
                    (25.0, None, 2.0),
                    ctx,
                    baseline_z=z(("force", "jump_ring_pull", GAUGE), pull),
                    scaled=(("break_force", pull),),
                    extra=(
                        ("outcome", "broke"),
                        ("broke", True),
                        ("time_to_break_s", 2.5 + 0.1 * i),
                        ("sample_unit", i + 1),
                    ),
                )
            )
            torque = 0.9 + rng.gauss(0, 0.05) - (0.03 * i if bulk else 0.0)
            held = torque >= 0.6
            points.append(
                _measurement(
                    TORQUE,
                    "torque",
                    "charm_torque",
                    "torque",
                    torque,
                    "N·m",
                    t + 2 * 10**9,
                    (0.6, None, 0.05),
                    ctx,
                    extra=(("outcome", "released"), ("held", held), ("sample_unit", i + 1))
                    + (
                        ()
                        if held
                        else (
                            ("test_reason", "the part did not hold the target for the hold time"),
                        )
                    ),
                )
            )
        decision_t = t0 + 13 * MINUTE
        values = _lot_values(points, lot)
        if not bulk:
            baseline, fixed = _baselines(values, ctx, decision_t)
            points.extend(fixed)
        points.extend(_capability(values, ctx, decision_t))
        visual = tuple(t0 + (4 * k + 3) * MINUTE + 40 * 10**9 for k in range(len(VISUAL_ENTRIES)))
        points.extend(_progress(lot, ctx, (t0 - 20 * 10**9, *visual, decision_t)))
        points.append(
            Point(
                "lot_decision",
                {"bench": BENCH, **ctx.tags()},
                {
                    "decision": "reject" if bulk else "accept",
                    "units_inspected": 12,
                    "sample_size": 13,
                    "failures": 2 if bulk else 0,
                    "drift_alarms": 1 if bulk else 0,
                    "suspect": 1 if bulk else 0,
                    "critical_nonconforming": 0,
                    "critical_accept": 0,
                    "evidence": '{"plans": [], "verdicts": {}}',
                },
                decision_t,
            )
        )
        if bulk:
            fm_t = t0 + 11 * MINUTE + 5 * 10**9
            points.append(
                Measurement(
                    BENCH,
                    Reading(
                        Sample(
                            GAUGE, "failure_mode", "jump_ring_pull", "number", 1.0, "count", fm_t
                        ),
                        1.0,
                        "count",
                    ),
                    Verdict("none"),
                    ctx,
                    entered_by="ana",
                    extra=(("mode", "ring opened at the solder joint"), ("sample_unit", 11)),
                ).to_point()
            )
            points.append(
                Point(
                    "event",
                    {
                        "bench": BENCH,
                        "instrument": XRF,
                        "kind": "drift_alarm",
                        "feature": "layer_Au",
                        "rule": "cusum-lower",
                        **ctx.tags(),
                    },
                    {
                        "message": "layer_Au drifts low from the golden-sample baseline (CUSUM)",
                        "severity": "warning",
                        "statistic": 5.4,
                        "limit": 4.0,
                        "baseline_mean": baseline[("thickness", "layer_Au", XRF)][0],
                        "baseline_sigma": baseline[("thickness", "layer_Au", XRF)][1],
                        "baseline_version": 1,
                        "evidence_indices": "7,8,9",
                        "evidence_times_ns": "1,2,3",
                        "evidence_values": "0.86,0.84,0.82",
                        "direction": "lower",
                    },
                    t0 + 9 * MINUTE + 3 * 10**9,
                )
            )

    # The chamber's link drops for three minutes.
    for kind, minute, message in (
        ("instrument_offline", 30, "no answer to 3 polls (timeout 1.0 s)"),
        ("instrument_online", 33, "answers again"),
    ):
        points.append(
            Point(
                "event",
                {"bench": BENCH, "instrument": CHAMBER, "kind": kind},
                {"message": message, "severity": "warning" if kind.endswith("offline") else "info"},
                start + minute * MINUTE + 7,
            )
        )

    # Health every two minutes: per instrument, journal, forwarder.
    for k in range(25):
        t = start + k * 2 * MINUTE + 3
        for n, name in enumerate(INSTRUMENTS):
            offline = name == CHAMBER and 15 <= k <= 16
            points.append(
                Point(
                    "daq_health",
                    {"bench": BENCH, "instrument": name},
                    {
                        "polls": 120 * k + n,
                        "errors": (k // 5) if name == CHAMBER else 0,
                        "reconnects": 1 if name == CHAMBER and k > 16 else 0,
                        "missed_polls": 2 if offline else 0,
                        "rejected": 0,
                        "measurements": 100 * k,
                        "online": not offline,
                        "last_seen_ns": t - 10**9,
                        "latency_ms": 12.0 + rng.random() * 5,
                        "mean_latency_ms": 14.0,
                    },
                    t,
                )
            )
        points.append(
            Point(
                "daq_health",
                {"bench": BENCH, "component": "journal"},
                {"accepted": 90 * k, "write_failures": 0, "backlog": 40 if 15 <= k <= 16 else 0},
                t + 1,
            )
        )
        points.append(
            Point(
                "daq_health",
                {
                    "bench": BENCH,
                    "component": "forwarder",
                    "sink": "influxdb-v1 http://127.0.0.1:8086 db=hallmark",
                },
                {
                    "written": 90 * k,
                    "quarantined": 1 if k > 20 else 0,
                    "retries": 3 if k > 16 else 0,
                    "up": True,
                },
                t + 2,
            )
        )
    points.sort(key=lambda p: p.time_ns)
    return points
